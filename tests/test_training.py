"""The training loop: schedules, data order, label masks, resume after SIGKILL, the three entry points."""

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, write_jsonl  # noqa: E402
from instruct_pt.data.packing import pack  # noqa: E402
from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer  # noqa: E402
from instruct_pt.training.batches import IGNORE, BatchPlan  # noqa: E402
from instruct_pt.training.finetune_data import (  # noqa: E402
    format_synth_example,
    instruction_rows,
    synth_sequences,
)
from instruct_pt.training.launch import launch  # noqa: E402
from instruct_pt.training.loss import LossModel, chunked_ce_sum  # noqa: E402
from instruct_pt.training.modeling import load_model  # noqa: E402
from instruct_pt.training.settings import check_train, lr_at  # noqa: E402
from instruct_pt.training.stages import (  # noqa: E402
    RUN_KEYS,
    finetune_synthesizer,
    instruction_tune,
    pretrain,
)

ARCH = {
    "family": "mistral",
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "tie_embeddings": True,
    "rope_theta": 10000.0,
    "attention_dropout": 0.1,  # so that resuming must restore the RNG stream too
}
TRAIN = {
    "batch_size": 4,
    "micro_batch_size": 2,
    "lr": 3e-3,
    "warmup_steps": 2,
    "checkpoint_every": 5,
    "log_every": 5,
    "precision": "bf16",
}
NAMES = ["Ada", "Bo", "Cy", "Di"]
CITIES = ["Paris", "Rome", "Oslo"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    raw = [
        {
            "id": f"r{i}",
            "text": f"{NAMES[i % 4]} was born in {CITIES[i % 3]} and likes tea number {i}.",
        }
        for i in range(120)
    ]
    synth = [
        {
            "id": f"s{i}",
            "dataset": f"ds{i % 2}",
            "task_type": "qa",
            "seen": True,
            "context": f"ds{i % 2} {raw[i]['text']}",
            "pairs": [
                {
                    "question": f"Where was {NAMES[i % 4]} born?",
                    "answer": CITIES[i % 3],
                    "format": "free",
                }
            ]
            * (1 + i % 3),
        }
        for i in range(24)
    ]
    flan = [
        {
            "id": f"f{i}",
            "task": "t",
            "instruction": f"Where was {NAMES[i % 4]} born?",
            "response": CITIES[i % 3],
        }
        for i in range(30)
    ]
    write_jsonl(tmp / "raw.jsonl", raw)
    write_jsonl(tmp / "synth.jsonl", synth)
    write_jsonl(tmp / "flan.jsonl", flan)
    corpus = [str(tmp / n) for n in ("raw.jsonl", "synth.jsonl", "flan.jsonl")]
    prepare_tokenizer({"source": "train", "vocab_size": 300}, corpus, str(tmp / "tok"), 0)
    pack(str(tmp / "raw.jsonl"), str(tmp / "tok"), str(tmp / "packed"), 32, 0)
    return tmp


def _digest(model_dir) -> str:
    return hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- pure pieces


def test_lr_schedule_warms_up_then_decays_to_min():
    lrs = [lr_at(s, 100, 10, 1.0, 0.1) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10], strict=True))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[100] == pytest.approx(0.1) and min(lrs) == pytest.approx(0.1)
    assert lr_at(5, 10, 0, 2.0, 0.0) == pytest.approx(1.0)  # cosine midpoint


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 16), seed=st.integers(0, 3))
def test_plan_visits_every_row_once_per_epoch(n, batch, seed):
    plan = BatchPlan(n, batch, seed)
    steps = math.ceil(3 * n / batch)
    rows = np.concatenate([plan.rows(s) for s in range(steps)])
    for e in range(3):
        assert sorted(rows[e * n : (e + 1) * n]) == list(range(n))
    assert np.array_equal(BatchPlan(n, batch, seed).rows(steps - 1), plan.rows(steps - 1))


def test_synth_label_mask_token_by_token(env):
    tok = load_tokenizer(str(env / "tok"))
    pairs = [
        {"question": "Where was Ada born?", "answer": "Paris"},
        {"question": "Who?", "answer": "Ada"},
    ]
    text, start = format_synth_example("Ada was born in Paris.", pairs)
    body = "<QUE> Where was Ada born? <ANS> Paris </END>\n\n<QUE> Who? <ANS> Ada </END></s>"
    assert text == "<s> <CON> Ada was born in Paris. </CON>\n\n" + body
    assert text[start:] == body
    rec = {"id": "a", "dataset": "d", "context": "Ada was born in Paris.", "pairs": pairs}
    rows, _ = synth_sequences([rec], tok, 200, 10, 0)
    ((ids, labels),) = rows
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert ids == enc["input_ids"] and ids[0] == 1 and ids[-1] == 2
    for tid, lab, (s, e) in zip(ids, labels, enc["offset_mapping"], strict=True):
        assert lab == (tid if e > start else IGNORE), (text[s:e], lab)
    assert tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]) == body
    assert (
        tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab == IGNORE]) == text[:start]
    )


def test_synth_rows_are_single_dataset_and_prefer_most_pairs(env):
    tok = load_tokenizer(str(env / "tok"))
    recs = [json.loads(line) for line in (env / "synth.jsonl").read_text().splitlines()]
    rows, stats = synth_sequences(recs, tok, 200, max_per_dataset=6, seed=0)
    assert "longer_than_seq_len" not in stats["dropped"]
    for ids, _ in rows:
        text = tok.decode(ids)
        assert ("ds0" in text) != ("ds1" in text)  # never two datasets in one row
        assert len(ids) <= 200 and text.startswith("<s> <CON>") and text.endswith("</s>")
    assert stats["datasets"]["ds0"]["examples"] == 6
    assert stats["dropped"]["over_max_per_dataset"] == 24 - 12
    kept = "".join(tok.decode(ids) for ids, _ in rows)
    assert kept.count("<CON>") == 12
    # every kept example has the most pairs available in its dataset (3, then 2)
    assert kept.count("<QUE>") == 2 * (4 * 3 + 2 * 2)
    assert (
        max(len(ids) for ids, _ in rows)
        > max(len(tok(r["context"])["input_ids"]) for r in recs) + 20
    )


def test_synth_too_long_and_empty_are_counted(env):
    tok = load_tokenizer(str(env / "tok"))
    recs = [
        {
            "id": "a",
            "dataset": "d",
            "context": "x " * 200,
            "pairs": [{"question": "q", "answer": "a"}],
        },
        {"id": "b", "dataset": "d", "context": "y", "pairs": []},
    ]
    rows, stats = synth_sequences(recs, tok, 64, 10, 0)
    assert rows == [] and stats["dropped"] == {"longer_than_seq_len": 1, "no_pairs": 1}
    with pytest.raises(DataError, match="pairs"):
        synth_sequences(
            [{"id": "c", "dataset": "d", "context": "z", "pairs": [{"q": 1}]}], tok, 64, 1, 0
        )


def test_instruction_rows_train_only_the_response(env):
    tok = load_tokenizer(str(env / "tok"))
    rows, stats = instruction_rows(
        [{"instruction": "Where was Ada born?", "response": "Paris"}], tok, 64
    )
    ((ids, labels),) = rows
    assert tok.decode(ids) == "<s>Where was Ada born?\nParis</s>"
    assert (
        tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]) == "Paris</s>"
    )
    assert stats == {"examples": 1, "dropped": {}}


# ----------------------------------------------------------------------------- training runs


def test_pretrain_writes_model_metrics_and_learns(env, tmp_path):
    train = {**TRAIN, "tokens": 4 * 32 * 30, "peak_flops": 1e12}
    s = pretrain(
        str(env / "packed"),
        str(tmp_path / "m"),
        str(env / "tok"),
        train,
        str(tmp_path / "c"),
        0,
        arch=ARCH,
    )
    assert s["steps"] == 30 and s["tokens"] == 30 * 4 * 32 and s["resumed_from_step"] == 0
    assert s["tokens_trained"] == s["tokens_this_run"] == 30 * 4 * 32
    assert read_json(tmp_path / "m" / "train_summary.json")["final_loss"] == s["final_loss"]
    # the attempt's own facts live beside the summary, not in it
    assert not set(RUN_KEYS) & set(read_json(tmp_path / "m" / "train_summary.json"))
    assert read_json(tmp_path / "m" / "train_run.json") == {k: s[k] for k in RUN_KEYS}
    metrics = [json.loads(x) for x in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [5, 10, 15, 20, 25, 30]
    assert set(metrics[0]) == {"step", "loss", "lr", "grad_norm", "tokens"}
    assert [m["tokens"] for m in metrics] == [5 * 4 * 32 * k for k in range(1, 7)]
    timing = [json.loads(x) for x in (tmp_path / "c" / "timing.jsonl").read_text().splitlines()]
    assert [t["step"] for t in timing] == [5, 10, 15, 20, 25, 30]
    assert {"tokens_per_s", "mfu", "elapsed_s"} <= set(timing[0])
    assert (tmp_path / "m" / "metrics.jsonl").read_bytes() == (
        tmp_path / "c" / "metrics.jsonl"
    ).read_bytes()
    assert (tmp_path / "m" / "timing.jsonl").is_file()
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 0.5
    assert sorted(p.name for p in (tmp_path / "c").glob("step*")) == [
        "step00000025",
        "step00000030",
    ]
    model = load_model(str(tmp_path / "m"))
    assert model.config.vocab_size == len(load_tokenizer(str(tmp_path / "m")))
    # a rerun finds the finished checkpoint and rewrites identical weights without training
    again = pretrain(
        str(env / "packed"),
        str(tmp_path / "m2"),
        str(env / "tok"),
        train,
        str(tmp_path / "c"),
        0,
        arch=ARCH,
    )
    assert again["resumed_from_step"] == 30 and again["final_loss"] == s["final_loss"]
    assert _digest(tmp_path / "m") == _digest(tmp_path / "m2")
    # another seed: the checkpoints are another run's; they are discarded, training starts over
    other = pretrain(
        str(env / "packed"),
        str(tmp_path / "m3"),
        str(env / "tok"),
        train,
        str(tmp_path / "c"),
        1,
        arch=ARCH,
    )
    assert other["resumed_from_step"] == 0
    assert _digest(tmp_path / "m3") != _digest(tmp_path / "m")


_CHILD = """
import json, sys
from instruct_pt.training.stages import pretrain
a = json.loads(sys.argv[1])
pretrain(a["packed"], a["out"], a["tok"], a["train"], a["ckpt"], 0, arch=a["arch"], threads=1)
"""


def test_sigkill_and_rerun_gives_bit_identical_weights(env, tmp_path):
    train = {**TRAIN, "tokens": 4 * 32 * 120, "checkpoint_every": 10}
    args = {"packed": str(env / "packed"), "tok": str(env / "tok"), "train": train, "arch": ARCH}
    # uninterrupted reference, in this process, same thread count as the child
    torch_threads = torch.get_num_threads()
    pretrain(
        args["packed"],
        str(tmp_path / "ref"),
        args["tok"],
        train,
        str(tmp_path / "ref_ckpt"),
        0,
        arch=ARCH,
        threads=1,
    )
    torch.set_num_threads(torch_threads)

    run = {**args, "out": str(tmp_path / "out"), "ckpt": str(tmp_path / "ckpt")}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(run)], stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while (
        not list((tmp_path / "ckpt").glob("step*"))
        and child.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.01)
    time.sleep(0.05)  # land the kill between checkpoints
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert not (tmp_path / "out").exists()  # it really died mid-run
    done = int(sorted((tmp_path / "ckpt").glob("step*"))[-1].name[4:])
    assert 0 < done < 120

    rerun = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(run)], stderr=subprocess.DEVNULL
    )
    assert rerun.returncode == 0
    summary = read_json(tmp_path / "out" / "train_summary.json")
    assert read_json(tmp_path / "out" / "train_run.json")["resumed_from_step"] == done
    assert summary["steps"] == 120
    assert _digest(tmp_path / "out") == _digest(tmp_path / "ref")
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(5, 121, 5))  # no duplicated or missing log lines after resume
    for name in ("metrics.jsonl", "train_summary.json"):  # the same numbers, byte for byte
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_grad_accumulation_matches_one_big_batch(env, tmp_path):
    """Loss is normalised by the global count of target tokens, so micro-batching changes nothing
    (up to float rounding) even when rows hold different numbers of targets."""
    base = tmp_path / "base"
    pretrain(
        str(env / "packed"),
        str(base),
        str(env / "tok"),
        {**TRAIN, "steps": 1},
        str(tmp_path / "bc"),
        0,
        arch={**ARCH, "attention_dropout": 0.0},
    )
    weights = []
    for micro in (1, 4):
        train = {**TRAIN, "steps": 3, "micro_batch_size": micro, "precision": "fp32"}
        out = tmp_path / f"s{micro}"
        finetune_synthesizer(
            str(env / "synth.jsonl"),
            str(base),
            str(out),
            train,
            str(tmp_path / f"c{micro}"),
            0,
            10,
            96,
        )
        weights.append(load_model(str(out)).state_dict())
    for k in weights[0]:
        assert torch.allclose(weights[0][k], weights[1][k], atol=1e-5), k


def test_instruction_tune_saves_requested_steps(env, tmp_path):
    base = tmp_path / "base"
    pretrain(
        str(env / "packed"),
        str(base),
        str(env / "tok"),
        {**TRAIN, "steps": 2},
        str(tmp_path / "bc"),
        0,
        arch=ARCH,
    )
    train = {**TRAIN, "epochs": 1}
    s = instruction_tune(
        str(env / "flan.jsonl"),
        str(base),
        str(tmp_path / "it"),
        train,
        [0, 3, 999],
        str(tmp_path / "ic"),
        0,
        64,
    )
    assert s["steps"] == math.ceil(30 / 4) == 8 and s["saved_steps"] == [0, 3, 8]
    assert sorted(p.name for p in (tmp_path / "it").glob("step*")) == ["step0", "step3", "step8"]
    b, s0, s8 = (
        load_model(str(p)).state_dict()
        for p in (base, tmp_path / "it" / "step0", tmp_path / "it" / "step8")
    )
    assert all(torch.equal(b[k], s0[k]) for k in b)
    assert not all(torch.equal(b[k], s8[k]) for k in b)
    assert (tmp_path / "it" / "step3" / "tokenizer.json").exists()
    assert read_json(tmp_path / "it" / "train_summary.json")["data"]["examples"] == 30
    first_summary = (tmp_path / "it" / "train_summary.json").read_bytes()
    # Snakemake deletes outputs before a rerun: the finished run re-delivers every step folder
    shutil.rmtree(tmp_path / "it")
    again = instruction_tune(
        str(env / "flan.jsonl"),
        str(base),
        str(tmp_path / "it"),
        train,
        [0, 3, 999],
        str(tmp_path / "ic"),
        0,
        64,
    )
    assert again["resumed_from_step"] == 8
    assert sorted(p.name for p in (tmp_path / "it").glob("step*")) == ["step0", "step3", "step8"]
    assert (tmp_path / "it" / "train_summary.json").read_bytes() == first_summary
    assert read_json(tmp_path / "it" / "train_run.json")["resumed_from_step"] == 8


def test_bad_train_configs_raise(env, tmp_path):
    packed, tok = str(env / "packed"), str(env / "tok")
    for train, msg in [
        ({**TRAIN, "tokens": 10, "bogus": 1}, "unknown"),
        ({**TRAIN}, "tokens"),
        ({**TRAIN, "tokens": 10, "micro_batch_size": 3}, "multiple"),
        ({**TRAIN, "tokens": 10, "precision": "fp8"}, "precision"),
    ]:
        with pytest.raises(DataError, match=msg):
            pretrain(packed, str(tmp_path / "m"), tok, train, str(tmp_path / "c"), 0, arch=ARCH)
    with pytest.raises(DataError, match="exactly one"):
        pretrain(packed, str(tmp_path / "m"), tok, {**TRAIN, "tokens": 10}, str(tmp_path / "c"), 0)


def test_fsdp_on_two_gloo_ranks_matches_one_process(env, tmp_path):
    """torchrun x2 (gloo, FSDP2) with the same global batch gives the same loss curve and weights
    as one process (up to float reduction order), and the same tensor names (tied head dropped
    on export); activation checkpointing and a chunked loss under FSDP change none of it."""
    from safetensors.torch import load_file

    arch = {**ARCH, "attention_dropout": 0.0}
    train = {**TRAIN, "steps": 4, "checkpoint_every": 2, "log_every": 1, "precision": "fp32"}
    run = {
        "packed_dir": str(env / "packed"),
        "out_dir": str(tmp_path / "dist"),
        "tokenizer_dir": str(env / "tok"),
        "train": {**train, "gradient_checkpointing": True, "loss_chunk_tokens": 7},
        "checkpoint_dir": str(tmp_path / "dist_ckpt"),
        "seed": 0,
        "arch": arch,
    }
    launched = launch("pretrain", run, nproc=2, backend_env={"OMP_NUM_THREADS": "1"})
    assert launched["world_size"] == 2
    assert launched["fsdp_mixed_precision"] == {"param_dtype": None, "reduce_dtype": None}
    single = tmp_path / "single"
    pretrain(
        run["packed_dir"],
        str(single),
        run["tokenizer_dir"],
        train,
        str(tmp_path / "sc"),
        0,
        arch=arch,
    )

    summary = read_json(tmp_path / "dist" / "train_summary.json")
    assert summary["world_size"] == 2 and summary["steps"] == 4
    a = load_file(tmp_path / "dist" / "model.safetensors")
    b = load_file(single / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k

    def curve(ckpt):
        lines = (tmp_path / ckpt / "metrics.jsonl").read_text().splitlines()
        return [(m["step"], m["loss"]) for m in map(json.loads, lines)]

    dist_curve, single_curve = curve("dist_ckpt"), curve("sc")
    assert [s for s, _ in dist_curve] == [s for s, _ in single_curve] == [1, 2, 3, 4]
    for (_, x), (_, y) in zip(dist_curve, single_curve, strict=True):
        assert x == pytest.approx(y, rel=1e-5, abs=1e-6)
    assert sorted(p.name for p in (tmp_path / "dist_ckpt").glob("step*")) == [
        "step00000002",
        "step00000004",
    ]


# ----------------------------------------------------------------------------- paper-scale memory


def _tiny_lm(dropout: float = 0.0):
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(
        vocab_size=37, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False, attention_dropout=dropout,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MistralForCausalLM(cfg)


def test_chunked_ce_by_hand():
    """A zero head gives uniform logits: every kept target costs ln V, IGNORE costs nothing."""
    head = torch.nn.Linear(2, 4, bias=False)
    torch.nn.init.zeros_(head.weight)
    hidden = torch.randn(1, 5, 2, requires_grad=True)
    targets = torch.tensor([[1, IGNORE, 3, IGNORE, 0]])
    for chunk in (0, 1, 2, 3, 100):
        loss = chunked_ce_sum(hidden, targets, head, chunk)
        assert loss.item() == pytest.approx(3 * math.log(4), rel=1e-6)
    # the gradient of the head: softmax (1/4 each) minus one-hot, summed over kept rows
    chunked_ce_sum(hidden.detach(), targets, head, 2).backward()
    h = hidden.detach()[0]
    expected = torch.zeros(4, 2)
    for row, t in ((0, 1), (2, 3), (4, 0)):
        expected += torch.outer(torch.full((4,), 0.25) - torch.eye(4)[t], h[row])
    assert torch.allclose(head.weight.grad, expected, atol=1e-6)
    empty = chunked_ce_sum(hidden, torch.full((1, 5), IGNORE), head, 2)
    assert empty.item() == 0.0
    empty.backward()
    assert torch.equal(hidden.grad, torch.zeros_like(hidden))


@pytest.mark.parametrize("chunk", [0, 1, 5, 7, 16, 1000])
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_loss_and_grads_equal_the_full_logits_ce(chunk, masked):
    """LossModel (decoder, then head + fp32 CE chunk by chunk under checkpoint) gives the loss
    and every gradient of the plain CE over the full logits; 2 x 8 = 16 positions minus the
    last = 14 targets, so 5 and 7 do not divide them unless padding removes some."""
    lm = _tiny_lm()
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 37, (2, 9), generator=gen)
    y = x.clone()
    if masked:  # right padding and prompt tokens without loss
        y[0, 6:] = IGNORE
        y[1, :3] = IGNORE
    logits = lm(input_ids=x, use_cache=False).logits
    ref = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, 37), y[:, 1:].reshape(-1),
        ignore_index=IGNORE, reduction="sum",
    )  # fmt: skip
    ref.backward()
    ref_grads = {n: p.grad.clone() for n, p in lm.named_parameters()}
    lm.zero_grad(set_to_none=True)
    loss = LossModel(lm, chunk)(x, y)
    loss.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for n, p in lm.named_parameters():
        assert torch.allclose(p.grad, ref_grads[n], rtol=1e-5, atol=1e-6), n


def test_chunked_loss_under_bf16_autocast_matches_one_chunk():
    lm = _tiny_lm()
    x = torch.randint(0, 37, (2, 9), generator=torch.Generator().manual_seed(2))
    out = []
    for chunk in (0, 5):
        lm.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = LossModel(lm, chunk)(x, x)
        loss.backward()
        assert loss.dtype == torch.float32
        out.append((loss.item(), lm.lm_head.weight.grad.clone()))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-5)
    # the head's gradient is a bf16 matmul per chunk, summed in fp32: bf16 rounding (2^-8) apart
    assert torch.allclose(out[0][1], out[1][1], rtol=2e-2, atol=2e-3)


def test_activation_checkpointing_keeps_loss_grads_and_dropout_stream():
    """Gradient checkpointing (non-reentrant, as _run enables it) recomputes each layer with the
    same dropout mask: same loss and gradients as without, under bf16 autocast too."""
    results = []
    for ckpt in (False, True):
        lm = _tiny_lm(dropout=0.3)
        if ckpt:
            lm.activation_checkpointing_enable({"use_reentrant": False})
        lm.train()
        x = torch.randint(0, 37, (2, 9), generator=torch.Generator().manual_seed(3))
        torch.manual_seed(5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = LossModel(lm, 4)(x, x)
        loss.backward()
        results.append((loss.item(), {n: p.grad for n, p in lm.named_parameters()}))
    (l0, g0), (l1, g1) = results
    assert l0 == l1
    for n in g0:
        assert torch.allclose(g0[n], g1[n], rtol=1e-5, atol=1e-6), n


def test_new_train_keys_are_checked():
    base = {**TRAIN, "steps": 3}
    cfg = check_train({**base, "loss_chunk_tokens": 8192, "export_dtype": "bfloat16"}, 2)
    assert (cfg.loss_chunk_tokens, cfg.export_dtype, cfg.micro_batch_size) == (8192, "bfloat16", 2)
    assert check_train(base, 1).loss_chunk_tokens == 0 and check_train(base, 1).export_dtype == (
        "float32"
    )
    for bad, msg in [
        ({"loss_chunk_tokens": -1}, "loss_chunk_tokens"),
        ({"loss_chunk_tokens": 1.5}, "loss_chunk_tokens"),
        ({"export_dtype": "int8"}, "export_dtype"),
        ({"gradient_checkpointing": "yes"}, "gradient_checkpointing"),
    ]:
        with pytest.raises(DataError, match=msg):
            check_train({**base, **bad}, 1)


def test_entry_points_check_the_batch_split_before_loading_anything(env, tmp_path, monkeypatch):
    """Under WORLD_SIZE=3 a batch of 4 cannot split: every entry point says so at once, before it
    opens its (here missing) data or model."""
    monkeypatch.setenv("WORLD_SIZE", "3")
    missing = str(tmp_path / "missing")
    train = {**TRAIN, "steps": 2}
    calls = [
        lambda: pretrain(missing, missing, missing, train, missing, 0, arch=ARCH),
        lambda: pretrain(missing, missing, missing, train, missing, 0, init_from=missing),
        lambda: finetune_synthesizer(missing, missing, missing, train, missing, 0, 10, 64),
        lambda: instruction_tune(missing, missing, missing, train, [0], missing, 0, 64),
    ]
    for call in calls:
        with pytest.raises(DataError, match="does not split over 3"):
            call()
    assert not (tmp_path / "missing").exists()


def test_export_dtype_bfloat16_and_reexport_without_training(env, tmp_path):
    from safetensors import safe_open

    train = {**TRAIN, "steps": 4, "export_dtype": "bfloat16"}
    args = (str(env / "packed"), str(env / "tok"))
    s = pretrain(args[0], str(tmp_path / "bf"), args[1], train, str(tmp_path / "c"), 0, arch=ARCH)
    assert read_json(tmp_path / "bf" / "config.json")["dtype"] == "bfloat16"
    with safe_open(tmp_path / "bf" / "model.safetensors", "pt") as f:
        bf = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    assert {v.dtype for v in bf.values()} == {torch.bfloat16}
    # another export dtype is not another training: the finished checkpoint is re-exported
    again = pretrain(
        args[0], str(tmp_path / "fp"), args[1], {**train, "export_dtype": "float32"},
        str(tmp_path / "c"), 0, arch=ARCH,
    )  # fmt: skip
    assert again["resumed_from_step"] == 4 and again["final_loss"] == s["final_loss"]
    fp = load_model(str(tmp_path / "fp")).state_dict()
    assert read_json(tmp_path / "fp" / "config.json")["dtype"] == "float32"
    for k, v in bf.items():
        assert fp[k].dtype == torch.float32 and torch.equal(fp[k].to(torch.bfloat16), v), k


def _descendants(pid: int) -> list[int]:
    """Every live process below pid (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


_LAUNCH_CHILD = """
import json, sys
from instruct_pt.training.launch import launch
launch("pretrain", json.loads(sys.argv[1]), nproc=2, backend_env={"OMP_NUM_THREADS": "1"})
"""


def test_two_process_sigkill_and_rerun_gives_bit_identical_weights(env, tmp_path):
    """FSDP2 on 2 gloo ranks, bf16 (mixed precision: bf16 params, fp32 reduce), activation
    checkpointing and a chunked loss: a run SIGKILLed (launcher, torchrun and both workers) after
    a sharded DCP checkpoint and rerun ends with the bytes of an uninterrupted run."""
    from safetensors import safe_open

    train = {
        **TRAIN, "steps": 24, "checkpoint_every": 6, "log_every": 3, "keep_checkpoints": 2,
        "gradient_checkpointing": True, "loss_chunk_tokens": 24, "export_dtype": "bfloat16",
    }  # fmt: skip
    run = {
        "packed_dir": str(env / "packed"), "tokenizer_dir": str(env / "tok"), "train": train,
        "seed": 0, "arch": ARCH,
    }  # fmt: skip
    ref = {**run, "out_dir": str(tmp_path / "ref"), "checkpoint_dir": str(tmp_path / "ref_c")}
    summary = launch("pretrain", ref, nproc=2, backend_env={"OMP_NUM_THREADS": "1"})
    assert summary["world_size"] == 2 and summary["resumed_from_step"] == 0
    assert summary["fsdp_mixed_precision"] == {
        "param_dtype": "bfloat16",
        "reduce_dtype": "float32",
    }
    with safe_open(tmp_path / "ref" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}  # noqa: SIM118
    # one folder per kept step: each rank's own shard, each rank's RNG, no temporaries left
    ckpts = sorted(p.name for p in (tmp_path / "ref_c").iterdir() if not p.name.endswith(".jsonl"))
    assert ckpts == [".lock", "step00000018", "step00000024"]
    last = tmp_path / "ref_c" / "step00000024"
    names = {p.name for p in last.iterdir()}
    assert {".metadata", "__0_0.distcp", "__1_0.distcp", "state.json"} <= names
    assert {"rng-rank00000.pt", "rng-rank00001.pt"} <= names
    sizes = [(last / f"__{r}_0.distcp").stat().st_size for r in (0, 1)]
    assert min(sizes) > 0.4 * sum(sizes)  # sharded: each rank wrote about half
    assert read_json(last / "state.json")["world_size"] == 2

    out = {**run, "out_dir": str(tmp_path / "out"), "checkpoint_dir": str(tmp_path / "ckpt")}
    child = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH_CHILD, json.dumps(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while (
        not list((tmp_path / "ckpt").glob("step*"))
        and child.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.01)
    time.sleep(0.1)  # land the kill between checkpoints
    procs = _descendants(child.pid)
    for pid in [*reversed(procs), child.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert child.wait() == -signal.SIGKILL
    for pid in procs:  # no orphaned worker goes on writing
        deadline = time.time() + 10
        while Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid):
            assert time.time() < deadline, f"process {pid} survived SIGKILL"
            time.sleep(0.01)
    assert not (tmp_path / "out").exists()  # it really died mid-run
    done = int(sorted((tmp_path / "ckpt").glob("step*"))[-1].name[4:])
    assert 0 < done < 24

    again = launch("pretrain", out, nproc=2, backend_env={"OMP_NUM_THREADS": "1"})
    assert again["resumed_from_step"] == done and again["steps"] == 24
    assert _digest(tmp_path / "out") == _digest(tmp_path / "ref")
    assert not list((tmp_path / "ckpt").glob(".tmp-*"))
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(3, 25, 3))
    # the resumed run's logged numbers and summary are the uninterrupted run's, byte for byte
    for name in ("metrics.jsonl", "train_summary.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_two_process_tuning_broadcasts_rank0_weights(env, tmp_path):
    """On 2 processes a saved model is read by rank 0 only (the other builds it on the meta
    device) and broadcast into the shards: the step-0 export is the base, bit for bit (tied
    embeddings included), and training then matches one process."""
    base = tmp_path / "base"
    pretrain(
        str(env / "packed"), str(base), str(env / "tok"), {**TRAIN, "steps": 2},
        str(tmp_path / "bc"), 0, arch={**ARCH, "attention_dropout": 0.0},
    )  # fmt: skip
    train = {**TRAIN, "steps": 3, "precision": "fp32", "checkpoint_every": 10}
    run = {
        "train_path": str(env / "flan.jsonl"), "base_model_dir": str(base),
        "out_dir": str(tmp_path / "it2"), "train": train, "save_steps": [0],
        "checkpoint_dir": str(tmp_path / "c2"), "seed": 0, "seq_len": 64,
    }  # fmt: skip
    summary = launch("instruction_tune", run, nproc=2, backend_env={"OMP_NUM_THREADS": "1"})
    assert summary["world_size"] == 2 and summary["saved_steps"] == [0, 3]
    b = load_model(str(base)).state_dict()
    s0 = load_model(str(tmp_path / "it2" / "step0")).state_dict()
    assert b.keys() == s0.keys() and all(torch.equal(b[k], s0[k]) for k in b)
    instruction_tune(
        run["train_path"], str(base), str(tmp_path / "it1"), train, [0], str(tmp_path / "c1"),
        0, 64,
    )  # fmt: skip
    two = load_model(str(tmp_path / "it2" / "step3")).state_dict()
    one = load_model(str(tmp_path / "it1" / "step3")).state_dict()
    assert not torch.equal(two["model.norm.weight"], b["model.norm.weight"])
    for k in one:
        assert torch.allclose(two[k], one[k], atol=1e-5), k


def test_activation_checkpointing_on_old_and_new_transformers():
    """5.23's activation_checkpointing_enable when present, else 5.17's gradient_checkpointing_*."""
    from transformers import MistralConfig, MistralForCausalLM

    from instruct_pt.training.loop import enable_activation_checkpointing

    cfg = MistralConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1,
    )  # fmt: skip
    model = MistralForCausalLM(cfg)
    enable_activation_checkpointing(model)
    assert model.is_gradient_checkpointing

    class Old:  # transformers 5.17's surface: only the old name
        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
            self.kwargs = gradient_checkpointing_kwargs

    old = Old()
    enable_activation_checkpointing(old)
    assert old.kwargs == {"use_reentrant": False}


# ----------------------------------------------------------------------------- resume: the logs


class _Stop(Exception):
    """Ends a run right after one of its checkpoints, as a kill there would (no process kill)."""


def _stop_after_checkpoint(monkeypatch, at_step: int) -> None:
    import instruct_pt.training.loop as T

    real = T.save_checkpoint

    def save(checkpoint_dir, step, *args, **kwargs):
        real(checkpoint_dir, step, *args, **kwargs)
        if step == at_step:
            raise _Stop(step)

    monkeypatch.setattr(T, "save_checkpoint", save)


@pytest.mark.parametrize("stop_at", [7, 10])  # inside a logging window, and on its last step
def test_resumed_run_writes_the_metrics_and_summary_of_an_uninterrupted_one(
    env, tmp_path, monkeypatch, stop_at
):
    """A run stopped after its step-`stop_at` checkpoint (log_every 5: step 7 is inside the
    window 6..10) and rerun logs the same mean losses and writes the same train_summary.json as
    an uninterrupted run; only train_run.json (this attempt) says it resumed."""
    train = {**TRAIN, "steps": 20, "checkpoint_every": 7 if stop_at == 7 else 5}
    args = (str(env / "packed"), str(env / "tok"))
    ref = pretrain(
        args[0], str(tmp_path / "ref"), args[1], train, str(tmp_path / "rc"), 0, arch=ARCH
    )

    with monkeypatch.context() as m:
        _stop_after_checkpoint(m, stop_at)
        with pytest.raises(_Stop):
            pretrain(
                args[0], str(tmp_path / "out"), args[1], train, str(tmp_path / "c"), 0, arch=ARCH
            )
    assert not (tmp_path / "out").exists()
    logged = [
        json.loads(x)["step"] for x in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == ([5] if stop_at == 7 else [5, 10])
    again = pretrain(
        args[0], str(tmp_path / "out"), args[1], train, str(tmp_path / "c"), 0, arch=ARCH
    )

    assert again["resumed_from_step"] == stop_at and ref["resumed_from_step"] == 0
    assert again["tokens_this_run"] == (20 - stop_at) * 4 * 32
    assert again["tokens_trained"] == ref["tokens_trained"] == 20 * 4 * 32
    for name in (
        "metrics.jsonl",
        "train_summary.json",
        "model.safetensors",
        "tokenizer_config.json",
    ):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), (
            name
        )
    assert read_json(tmp_path / "out" / "train_run.json")["resumed_from_step"] == stop_at
    assert read_json(tmp_path / "ref" / "train_run.json")["resumed_from_step"] == 0
    # the timing log still has one line per log step, none twice
    timing = [
        json.loads(x)["step"] for x in (tmp_path / "out" / "timing.jsonl").read_text().splitlines()
    ]
    assert timing == [5, 10, 15, 20]


# ----------------------------------------------------------------------------- checkpoint lock

_HOLD = """
import sys, time
from instruct_pt.training.dirlock import FolderLock
lock = FolderLock(sys.argv[1], "training")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_job_on_a_locked_checkpoint_folder_fails_at_once(env, tmp_path):
    """Another process holds the folder (an orphaned job of a killed Snakemake): the new job
    fails before training, naming the folder and the holder; once the holder is gone (SIGKILL,
    no clean-up) the folder is free again."""
    from instruct_pt.training.dirlock import FolderLocked

    ckpt = tmp_path / "c"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(ckpt)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        train = {**TRAIN, "steps": 2}
        args = (str(env / "packed"), str(tmp_path / "m"), str(env / "tok"), train, str(ckpt), 0)
        t0 = time.perf_counter()
        with pytest.raises(FolderLocked) as err:
            pretrain(*args, arch=ARCH)
        assert time.perf_counter() - t0 < 30  # no waiting for the holder
        msg = str(err.value)
        assert str(ckpt) in msg and f"pid {holder.pid} on host " in msg and "\n" not in msg
        assert sorted(p.name for p in ckpt.iterdir()) == [".lock"]  # nothing written
        assert not (tmp_path / "m").exists()
    finally:
        holder.kill()
        holder.wait()
    s = pretrain(*args, arch=ARCH)
    assert s["steps"] == 2 and (tmp_path / "m" / "model.safetensors").exists()
    # and the lock was let go at the end: the same process may run the job again
    assert pretrain(*args, arch=ARCH)["resumed_from_step"] == 2


def test_every_rank_of_a_second_two_process_job_fails_on_a_locked_folder(env, tmp_path):
    """Under torchrun rank 0 alone takes the lock and tells the others: on a held folder both
    ranks of the new job stop at once with the holder's message (none waits in a collective)."""
    ckpt = tmp_path / "c"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(ckpt)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        run = {
            "packed_dir": str(env / "packed"), "tokenizer_dir": str(env / "tok"),
            "train": {**TRAIN, "steps": 2}, "seed": 0, "arch": ARCH,
            "out_dir": str(tmp_path / "m"), "checkpoint_dir": str(ckpt),
        }  # fmt: skip
        child = subprocess.run(
            [sys.executable, "-c", _LAUNCH_CHILD, json.dumps(run)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert child.returncode != 0
    said = child.stdout + child.stderr
    for rank in (0, 1):  # torchrun prefixes each worker's output with its rank
        line = f"[rank{rank}]: instruct_pt.training.dirlock.FolderLocked: {ckpt}: checkpoint folder in use"
        assert f"{line} by another training (pid {holder.pid} on host " in said, said[-3000:]
    assert sorted(p.name for p in ckpt.iterdir()) == [".lock"] and not (tmp_path / "m").exists()


_TRY = """
import sys
from instruct_pt.training.dirlock import FolderLock, FolderLocked
try:
    FolderLock(sys.argv[1], "synthesis").release()
    print("got it")
except FolderLocked as e:
    print(e)
"""


def test_folder_lock_is_exclusive_between_processes_and_released(tmp_path):
    from instruct_pt.training.dirlock import FolderLock

    def other_process() -> str:
        cmd = [sys.executable, "-c", _TRY, str(tmp_path / "x")]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    first = FolderLock(tmp_path / "x", "synthesis")
    msg = other_process()
    assert msg.startswith(f"{tmp_path / 'x'}: checkpoint folder in use by another synthesis")
    assert f"(pid {os.getpid()} on host " in msg
    # in this process a new lock takes an earlier one over (a job that failed and is rerun)
    second = FolderLock(tmp_path / "x", "synthesis")
    first.release()  # no longer the holder: releases nothing
    assert other_process() != "got it"
    second.release()
    assert other_process() == "got it"
    assert (tmp_path / "x" / ".lock").exists()  # the file stays; only the lock goes


@given(
    step=st.integers(0, 10**8 - 1),
    host=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,30}", fullmatch=True),
    pid=st.integers(1, 2**22),
)
@settings(max_examples=200, deadline=None)
def test_temporary_names_name_their_writer(step, host, pid):
    from instruct_pt.training.checkpoint import tmp_name, tmp_owner

    name = tmp_name(step, host, pid)
    assert name.startswith(".tmp-step") and tmp_owner(name) == (host, pid)
    assert tmp_name(step, host, pid + 1) != name and tmp_name(step, host + "x", pid) != name


def test_clear_temporaries_spares_live_writers_only(tmp_path):
    from instruct_pt.training.checkpoint import clear_temporaries, tmp_name
    from instruct_pt.training.dirlock import holder_id

    host, me = holder_id()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        names = {
            "dead": tmp_name(5, host, dead_pid),
            "live": tmp_name(5, host, live.pid),
            "mine": tmp_name(10, host, me),
            "elsewhere": tmp_name(5, host + "-other", live.pid),
            "legacy": ".tmp-step00000005-1234",
        }
        for name in names.values():
            (tmp_path / name).mkdir()
            (tmp_path / name / "x").write_text("half-written")
        (tmp_path / "step00000005").mkdir()
        clear_temporaries(tmp_path)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted([names["live"], "step00000005"])
    finally:
        live.kill()
        live.wait()


# ----------------------------------------------------------------------------- progress lines


def test_training_logs_progress_lines_without_carriage_returns(env, tmp_path, caplog, capfd):
    import logging

    from instruct_pt.progress import format_duration

    train = {**TRAIN, "steps": 10, "log_every": 5}
    with caplog.at_level(logging.INFO, logger="instruct_pt.training"):
        pretrain(
            str(env / "packed"),
            str(tmp_path / "m"),
            str(env / "tok"),
            train,
            str(tmp_path / "c"),
            0,
            arch=ARCH,
        )
    lines = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    assert len(lines) == 2
    import re

    pat = r"pretrain step (\d+)/10 \((\d+)%\) loss \d+\.\d{4} [\d,]+ tok/s ETA (\S+)"
    got = [re.fullmatch(pat, line) for line in lines]
    assert all(got), lines
    assert [(m[1], m[2]) for m in got] == [("5", "50"), ("10", "100")]
    assert got[-1][3] == "0s"
    err = capfd.readouterr().err
    assert "\r" not in err  # no tqdm bar when stderr is not a terminal
    assert format_duration(3725) == "1h02m" and format_duration(185) == "3m05s"
    assert format_duration(float("nan")) == "?" and format_duration(-1) == "?"
