"""The GPU check (perf/gpu_check.sh): its CPU dry path end to end, and its retry and averaging
logic on hand-made inputs. The GPU path itself runs only on a GPU machine (README)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "perf"))

import gpu_check as G  # noqa: E402

# The dry run's tiny Mistral (gpu_check.TINY) with the 512-token BPE, seq_len 32, by hand:
# per layer q, o 64x64 + k, v 64x32 + MLP 3 x 64x128 = 36864 matmul weights (+ 2 norms of 64);
# 2 layers; embeddings and the untied head 512 x 64 each; a final norm of 64.
TINY_PARAMS = 512 * 64 + 2 * (36864 + 128) + 64 + 512 * 64  # 139584
# 6 N_matmul + 12 L H T = 6 x (2 x 36864 + 512 x 64) + 12 x 2 x 64 x 32
TINY_FLOPS_PER_TOKEN = 6 * (2 * 36864 + 32768) + 12 * 2 * 64 * 32  # 688128


def _finite_positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    proc = subprocess.run(
        ["bash", str(ROOT / "perf" / "gpu_check.sh"), "--cpu-dry-run", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_dry_run_report_structure(report):
    assert report["schema"] == 1
    assert report["mode"] == "cpu-dry-run"
    assert list(report["sections"]) == ["train_500m", "train_1.3b", "synthesis", "evaluation"]
    for name, s in report["sections"].items():
        assert s["status"] == "ok", (name, s.get("error"), s.get("traceback"))
        assert _finite_positive(s["wall_s"])
        assert _finite_positive(s["peak_memory_gib"])
        assert _finite_positive(s["parameters"])
    assert report["peak_flops"] == 989e12
    assert report["machine"]["torch"] and report["machine"]["gpu"] is None
    assert _finite_positive(report["wall_s"])


def test_dry_run_training_sections(report):
    for size in ("500m", "1.3b"):
        s = report["sections"][f"train_{size}"]
        assert (s["seq_len"], s["micro_batch_size"], s["steps"]) == (32, 4, 4)
        # config.yaml's setting (one try: nothing runs out of memory on the CPU)
        ckpt = s["train_settings"]["gradient_checkpointing"]
        assert s["gradient_checkpointing"] is ckpt
        assert s["attempts"] == [
            {"micro_batch_size": 4, "gradient_checkpointing": ckpt, "outcome": "ok"}
        ]
        assert s["parameters"] == TINY_PARAMS
        assert s["flops_per_token"] == TINY_FLOPS_PER_TOKEN
        assert s["arch"]["vocab_size"] == 512
        # the paper's batch in 2048-token sequences: 0.5M (500M) and 1M (1.3B) tokens
        assert s["paper_batch_sequences"] == {"500m": 256, "1.3b": 512}[size]
        # 4 steps logged every 2: two windows; the steady rate is the second.
        assert len(s["tokens_per_s_windows"]) == 2
        assert s["tokens_per_s"] == s["tokens_per_s_windows"][1]
        assert _finite_positive(s["tokens_per_s"]) and _finite_positive(s["mfu"])
        assert s["mfu"] == pytest.approx(TINY_FLOPS_PER_TOKEN * s["tokens_per_s"] / 989e12)
        assert math.isfinite(s["final_loss"])
        assert s["train_settings"]["batch_size"] == 4
        assert s["train_settings"]["steps"] == 4
        if s["plan_estimate"] is not None:  # instruct_pt.plan present
            assert _finite_positive(s["plan_allocated_gib"])
            assert s["plan_total_gib"] >= s["plan_allocated_gib"]


def test_dry_run_synthesis_section(report):
    s = report["sections"]["synthesis"]
    assert s["texts"] == 4 and s["rounds"] == 2 and s["max_new_tokens"] == 8
    assert s["engine"] == "transformers"
    assert abs(s["raw_tokens_per_text_mean"] - 40) <= 2  # texts cut at 40 tokens
    assert 0 < s["generated_tokens"] <= 4 * 8
    for key in ("generated_tokens_per_s", "raw_tokens_per_s", "gpu_days_per_1b_raw_tokens"):
        assert _finite_positive(s[key]), key
    assert s["gpu_days_per_1b_raw_tokens"] == pytest.approx(1e9 / s["raw_tokens_per_s"] / 86400)
    assert s["raw_tokens_per_s"] == pytest.approx(
        s["raw_tokens_per_text_mean"] * s["texts"] / s["seconds"]
    )
    assert s["ratio_to_paper"] == pytest.approx(s["gpu_days_per_1b_raw_tokens"])


def test_dry_run_evaluation_section(report):
    s = report["sections"]["evaluation"]
    assert s["questions"] == 5 * 4  # the world's finance suite, 4 questions per task
    assert len(s["tasks"]) == 5 and all(t["n"] == 4 for t in s["tasks"].values())
    assert s["output_types"] == ["generate_until", "multiple_choice"]
    assert s["arch"]["vocab_size"] == 640  # padded past the tokenizer's 512
    assert _finite_positive(s["questions_per_s"])


# ---------------------------------------------------------------------------- logic by hand


def test_attempts_order():
    assert G._attempts(8, "auto") == [(8, False), (8, True), (4, True), (2, True), (1, True)]
    assert G._attempts(8, "auto", configured=True) == [(8, True), (4, True), (2, True), (1, True)]
    assert G._attempts(4, "off") == [(4, False), (2, False), (1, False)]
    assert G._attempts(1, "on") == [(1, True)]


def test_steady_tokens_per_s_drops_the_first_window(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 5, "tokens_per_s": 10.0}, {"step": 10, "tokens_per_s": 20.0}]
    rows.append({"step": 15, "tokens_per_s": 40.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert G._steady_tokens_per_s(path) == (30.0, [10.0, 20.0, 40.0])
    path.write_text(json.dumps({"step": 5, "tokens_per_s": 7.0}) + "\n")
    assert G._steady_tokens_per_s(path) == (7.0, [7.0])


def _oom_pretrain(calls: list, failures: int):
    """A stand-in for training.pretrain: out of memory `failures` times, then a metrics log."""

    def fake(packed, out_dir, tok, train, ckpt_dir, seed, arch=None):
        calls.append((train["micro_batch_size"], train["gradient_checkpointing"]))
        if len(calls) <= failures:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")
        Path(ckpt_dir).mkdir(parents=True)
        lines = [{"step": 2, "tokens_per_s": 50.0}, {"step": 4, "tokens_per_s": 100.0}]
        (Path(ckpt_dir) / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        return {"parameters": 123, "steps": train["steps"], "final_loss": 6.0}

    return fake


@pytest.mark.parametrize(
    "configured, failures, expected",
    [
        # config without checkpointing: the same micro-batch with it, then half of it
        (False, 1, [(4, False), (4, True)]),
        (False, 2, [(4, False), (4, True), (2, True)]),
        # config with checkpointing: straight to half the micro-batch
        (True, 1, [(4, True), (2, True)]),
    ],
)
def test_out_of_memory_is_recorded_and_retried(
    tmp_path, monkeypatch, configured, failures, expected
):
    import instruct_pt.training.stages as T

    calls: list = []
    monkeypatch.setattr(T, "pretrain", _oom_pretrain(calls, failures))
    p = G.load_profile(G.parse_args(["--cpu-dry-run"]))
    p.train_base = {s: {**t, "gradient_checkpointing": configured} for s, t in p.train_base.items()}
    res = G.train_section("1.3b", p, {"packed": "-", "tokenizer": "-"}, tmp_path, "auto")
    assert calls == expected
    assert [a["outcome"] for a in res["attempts"]] == ["out of memory"] * failures + ["ok"]
    assert "Tried to allocate" in res["attempts"][0]["error"]
    assert (res["micro_batch_size"], res["gradient_checkpointing"]) == expected[-1]
    assert res["train_settings"]["micro_batch_size"] == expected[-1][0]
    assert res["tokens_per_s"] == 100.0  # the window after the first
    assert res["mfu"] == pytest.approx(TINY_FLOPS_PER_TOKEN * 100.0 / 989e12)


def test_other_errors_are_not_retried(tmp_path, monkeypatch):
    import instruct_pt.training.stages as T

    def broken(*a, **k):
        raise ValueError("train: bad setting")

    monkeypatch.setattr(T, "pretrain", broken)
    p = G.load_profile(G.parse_args(["--cpu-dry-run"]))
    with pytest.raises(ValueError, match="bad setting"):
        G.train_section("500m", p, {"packed": "x", "tokenizer": "x"}, tmp_path, "auto")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU machine")
def test_gpu_mode_without_cuda_says_so(capsys):
    assert G.main(["--out", "/nonexistent/x.json"]) == 2
    assert "--cpu-dry-run" in capsys.readouterr().err


def test_gpu_profile_runs_the_paper_sizes():
    """What the GPU run trains, synthesizes and evaluates (no GPU needed to resolve it)."""
    p = G.load_profile(G.parse_args([]))
    assert (p.device, p.seq_len) == ("cuda", 2048)
    assert p.micro_batch == {"500m": 64, "1.3b": 64}
    assert (
        p.train_arch["500m"]["hidden_size"] == 1280 and p.train_arch["1.3b"]["hidden_size"] == 2048
    )
    assert p.tokenizer_vocab == 32000  # Mistral's: the 500M / 1.3B models' vocabulary
    assert (p.synth_arch["hidden_size"], p.synth_arch["num_layers"], p.synth_vocab) == (
        4096, 32, 32000
    )  # fmt: skip
    assert (p.max_new_tokens, p.max_model_len, p.synth_rounds) == (400, 4096, 2)
    assert p.synth_texts == 64 and p.synth_raw_tokens == 500
    assert (p.eval_arch["family"], p.eval_vocab) == ("llama", 128256)
    assert p.eval_per_task * 5 == 300 and p.eval_batch_size == 32
    q = G.load_profile(G.parse_args(["--train-steps", "100", "--eval-batch-size", "auto"]))
    assert q.train_steps == {"500m": 100, "1.3b": 100} and q.eval_batch_size == "auto"


def test_every_carried_wheel_is_pinned_in_the_lock():
    """perf/gpu_wheels.sh downloads requirements.lock's versions: each package must be there."""
    import re

    script = (ROOT / "perf" / "gpu_wheels.sh").read_text()
    names = re.search(r"PKGS=\(([^)]*)\)", script).group(1).split()
    assert {"lm_eval", "datasets", "evaluate"} <= set(names)

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lock = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = {norm(line.split("==")[0]) for line in lock if "==" in line}
    assert not [n for n in names if norm(n) not in pinned]
    # never torch, transformers or CUDA wheels: the GPU image has its own
    assert not [n for n in names if re.match(r"(torch|transformers|nvidia|triton)", norm(n))]
