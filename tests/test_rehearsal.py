"""The paper-shape rehearsal (presets/rehearsal.yaml): the paper's training, synthesis and
evaluation jobs through Snakemake at the paper's process counts (gloo processes on CPU), with
hub-format models and the real tokenizers loaded from local folders; then one multi-process
training is SIGKILLed mid-run, and its rerun resumes from the checkpoint to the same weights.

Runs only when IPT_MISTRAL_COMMON and IPT_LLAMA_MODELS name the `pip install --no-deps --target`
folders of mistral-common==1.13.1 and llama-models==0.3.0 (the wheels that ship Mistral's and
Llama 3's tokenizers): `make check-rehearsal` sets them up (part of `make test`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MISTRAL_COMMON = os.environ.get("IPT_MISTRAL_COMMON")
LLAMA_MODELS = os.environ.get("IPT_LLAMA_MODELS")
HUB = ROOT / ".cache" / "rehearsal-hub"  # presets/rehearsal.yaml's base model / tokenizer paths
RUN = "pytest-rehearsal"  # its own run name: a fresh run every time, beside the user's
RESULTS = ROOT / "results" / RUN
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}
CPT = "cpt-biomedicine-vanilla"
#: The jobs rehearsed: one per training kind of the paper, a synthesized shard, an evaluation.
TARGETS = [
    f"results/{RUN}/models/scratch-500m-vanilla",
    f"results/{RUN}/models/it-500m-vanilla",
    f"results/{RUN}/models/synthesizer",
    f"results/{RUN}/synthesis/biomedicine/model/shard0.jsonl",
    f"results/{RUN}/models/{CPT}",
    f"results/{RUN}/eval/{CPT}/biomedicine",
]

needs_wheels = pytest.mark.skipif(
    not (MISTRAL_COMMON and LLAMA_MODELS),
    reason="IPT_MISTRAL_COMMON / IPT_LLAMA_MODELS are not set: `make check-rehearsal` installs "
    "mistral-common and llama-models with pip --target and runs the rehearsal",
)


def snakemake(*args, timeout=900, **popen):
    cmd = [str(BIN / "snakemake"), *args, "--configfile", "presets/rehearsal.yaml"]
    cmd += ["--config", f"run={RUN}", "--cores", "2"]
    return subprocess.run(
        cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, **popen
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    assert files, f"{model_dir}: no safetensors"
    out = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


# ----------------------------------------------------------------------------- the preset


@pytest.mark.parametrize("preset", [(), ("presets/rehearsal.yaml",)])
def test_rehearsal_keeps_the_paper_batches_process_counts_and_mixtures(preset):
    """config.yaml and the rehearsal: the same sequences per batch, micro-batches per process,
    processes per job and mixture proportions (only lengths, sizes and token counts differ)."""
    from instruct_pt import config as cfg
    from instruct_pt.training.settings import check_train

    config = cfg.load_config(ROOT / "config.yaml", *(ROOT / p for p in preset))
    cfg.validate_config(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    gpus = config["compute"]["gpus"]
    # (stage, size, gpus key, processes, batch sequences, micro-batch per process)
    for stage, size, key, world, batch, micro in [
        ("pretrain", "500m", "pretrain", 8, 256, 32),
        ("pretrain", "1.3b", "pretrain", 8, 512, 64),
        ("synthesizer", None, "synthesizer_train", 4, 4, 1),
        ("continual_pretrain", None, "continual_pretrain", 4, 64, 16),
        ("instruction_tuning", None, "instruction_tune", 8, 64, 8),
    ]:
        assert gpus[key] == world, key
        run = check_train(cfg.train_settings(config, stage, size), world)
        assert (run.batch_size, run.micro_batch_size) == (batch, micro), (stage, size)
    assert config["pretrain"]["ft_repeat"] == 4
    assert config["continual_pretrain"]["instruction_ratio"] == 1.0
    corpora = config["synthesis"]["corpora"]
    assert {c: (v["fraction"], v["rounds"]) for c, v in corpora.items()} == {
        "general": (0.2, 2),
        "biomedicine": (1.0, 3),
        "finance": (1.0, 3),
    }
    if preset:  # hub-format folders instead of hub ids
        for name, repo in [
            ("mistral_7b", "mistralai/Mistral-7B-v0.1"),
            ("llama3_8b", "meta-llama/Meta-Llama-3-8B"),
        ]:
            spec = config["base_models"][name]
            assert (spec["source"], Path(spec["path"])) == (
                "local",
                Path(".cache/rehearsal-hub", repo),
            )


# ----------------------------------------------------------------------------- hub fixtures


@pytest.fixture(scope="module")
def hub() -> dict:
    from instruct_pt.data.hub_fixtures import write_hub_fixtures

    return write_hub_fixtures(MISTRAL_COMMON, LLAMA_MODELS, str(HUB))


HUB_FILES = {
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
}


@needs_wheels
@pytest.mark.parametrize(
    "repo, arch, vocab, files",
    [
        ("mistralai/Mistral-7B-v0.1", "MistralForCausalLM", 32000, HUB_FILES | {"tokenizer.model"}),
        ("meta-llama/Meta-Llama-3-8B", "LlamaForCausalLM", 128256, HUB_FILES),
    ],
)
def test_hub_fixture_is_laid_out_as_the_hub_repo(hub, repo, arch, vocab, files):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    folder = HUB / repo
    assert {p.name for p in folder.iterdir()} == files
    config = read_json(folder / "config.json")
    assert config["architectures"] == [arch]
    assert config["vocab_size"] == vocab
    # The index names every tensor of the two shards once, and their bytes add up.
    index = read_json(folder / "model.safetensors.index.json")
    seen = {}
    total = 0
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        with safe_open(str(folder / shard), "pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                assert name not in seen
                seen[name] = shard
                t = f.get_tensor(name)
                assert t.dtype == torch.bfloat16
                total += t.numel() * 2
    assert seen == index["weight_map"]
    assert index["metadata"]["total_size"] == total
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == arch
    assert model.get_output_embeddings().weight.shape == (vocab, config["hidden_size"])


@needs_wheels
def test_hub_fixture_tokenizers_are_the_real_ones(hub):
    from transformers import AutoTokenizer

    mistral = AutoTokenizer.from_pretrained(HUB / "mistralai/Mistral-7B-v0.1")
    assert len(mistral) == 32000
    assert (mistral.bos_token_id, mistral.eos_token_id, mistral.unk_token_id) == (1, 2, 0)
    assert mistral("Hello world").input_ids == [1, 22557, 1526]
    assert mistral.tokenize("a\n\nb") == ["▁a", "<0x0A>", "<0x0A>", "b"]  # byte fallback
    llama = AutoTokenizer.from_pretrained(HUB / "meta-llama/Meta-Llama-3-8B")
    assert len(llama) == 128256
    assert (llama.bos_token_id, llama.eos_token_id) == (128000, 128001)
    assert llama.convert_ids_to_tokens([128009, 128255]) == [
        "<|eot_id|>",
        "<|reserved_special_token_250|>",
    ]
    # llama-models' own test of its tokenizer (tests/api/test_tokenizer.py), BOS without EOS.
    ids = llama("This is a test sentence.").input_ids
    assert ids == [128000, 2028, 374, 264, 1296, 11914, 13]
    text = "Ünïcode 東京 and  two  spaces\n"
    assert llama.decode(llama(text).input_ids, skip_special_tokens=True) == text


@needs_wheels
def test_hub_fixtures_are_not_rewritten_when_up_to_date(hub):
    from instruct_pt.data.hub_fixtures import write_hub_fixtures

    shard = HUB / "meta-llama/Meta-Llama-3-8B/model-00001-of-00002.safetensors"
    before = shard.stat().st_mtime_ns
    assert write_hub_fixtures(MISTRAL_COMMON, LLAMA_MODELS, str(HUB)) == hub
    assert shard.stat().st_mtime_ns == before


@needs_wheels
def test_hub_fixtures_name_the_missing_wheel(tmp_path):
    from instruct_pt.common import DataError
    from instruct_pt.data.hub_fixtures import write_hub_fixtures

    with pytest.raises(DataError, match="mistral-common==1.13.1"):
        write_hub_fixtures(str(tmp_path), LLAMA_MODELS, str(tmp_path / "out"))


# ----------------------------------------------------------------------------- the rehearsal


@pytest.fixture(scope="module")
def rehearsal(hub) -> dict:
    """The rehearsal's jobs, run from scratch through Snakemake; returns timings."""
    for folder in ("results", "logs", "benchmarks"):
        shutil.rmtree(ROOT / folder / RUN, ignore_errors=True)
    t0 = time.perf_counter()
    result = snakemake(*TARGETS, "--resources", "gpu=8")
    wall = time.perf_counter() - t0
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    return {"wall_s": wall, "log": result.stdout + result.stderr}


@needs_wheels
def test_rehearsal_trains_at_the_paper_process_counts_and_batches(rehearsal):
    from instruct_pt import config as cfg
    from instruct_pt.training.settings import check_train

    config = cfg.load_config(ROOT / "config.yaml", ROOT / "presets" / "rehearsal.yaml")
    models = RESULTS / "models"
    # (model, stage, size, processes, steps, batch sequences, micro-batch per process)
    expected = [
        ("scratch-500m-vanilla", "pretrain", "500m", 8, 3, 256, 32),
        ("synthesizer", "synthesizer", None, 4, 3, 4, 1),
        (CPT, "continual_pretrain", None, 4, 4, 64, 16),
        ("it-500m-vanilla", "instruction_tuning", None, 8, 3, 64, 8),
    ]
    for model, stage, size, world, steps, batch, micro in expected:
        summary = read_json(models / model / "train_summary.json")
        assert summary["world_size"] == world, model
        assert summary["steps"] == steps, model
        assert read_json(models / model / "train_run.json")["resumed_from_step"] == 0, model
        run = check_train(cfg.train_settings(config, stage, size), world)
        assert (run.batch_size, run.micro_batch_size) == (batch, micro), model
    # Packed trainings saw steps x sequences x 32 tokens.
    assert read_json(models / "scratch-500m-vanilla" / "train_summary.json")["tokens"] == 24576
    assert read_json(models / CPT / "train_summary.json")["tokens"] == 8192
    # Checkpoints outside the outputs, one folder per training, removed once the job succeeded
    # (compute.keep_finished_checkpoints: false); each job's log says so.
    for model in ("scratch-500m-vanilla", "synthesizer", CPT, "it-500m-vanilla"):
        assert not (RESULTS / "checkpoints" / model).exists(), model
        log = (ROOT / "logs" / RUN / "models" / f"{model}.log").read_text()
        assert f"checkpoints/{model}: removed" in log, model


@needs_wheels
def test_rehearsal_models_keep_the_hub_families_and_tokenizers(rehearsal):
    from transformers import AutoTokenizer

    models = RESULTS / "models"
    cpt = read_json(models / CPT / "config.json")
    assert cpt["architectures"] == ["LlamaForCausalLM"]
    rope = cpt.get("rope_parameters", cpt)["rope_theta"]  # transformers 5 nests it
    assert (cpt["vocab_size"], rope, cpt["num_key_value_heads"]) == (128256, 5e5, 1)
    synth = read_json(models / "synthesizer" / "config.json")
    assert synth["architectures"] == ["MistralForCausalLM"]
    assert (synth["vocab_size"], synth["sliding_window"]) == (32000, 4096)
    scratch = read_json(models / "scratch-500m-vanilla" / "config.json")
    assert scratch["architectures"] == ["MistralForCausalLM"] and scratch["vocab_size"] == 32000
    assert AutoTokenizer.from_pretrained(models / CPT)("Hi").input_ids[0] == 128000
    tok = AutoTokenizer.from_pretrained(models / "it-500m-vanilla" / "step3")
    assert tok("Hello world").input_ids == [1, 22557, 1526]
    # Instruction tuning saved the configured steps and the last one.
    assert {p.name for p in (models / "it-500m-vanilla").glob("step*")} == {
        "step1",
        "step2",
        "step3",
    }
    # The base models were taken from the hub-layout folders.
    base = read_json(models / "base-llama3_8b" / "base_model.json")
    assert base["summary"] == {
        "source": "local",
        "path": str(Path(".cache/rehearsal-hub") / "meta-llama/Meta-Llama-3-8B"),
    }


@needs_wheels
def test_rehearsal_synthesizes_a_shard_and_evaluates(rehearsal):
    shard_in = RESULTS / "synthesis/biomedicine/split/shard0.jsonl"
    shard_out = RESULTS / "synthesis/biomedicine/model/shard0.jsonl"
    ids_in = [json.loads(line)["id"] for line in shard_in.read_text().splitlines()]
    out = [json.loads(line) for line in shard_out.read_text().splitlines()]
    assert ids_in and [r["id"] for r in out] == ids_in
    assert {r["round"] for r in out} == {1, 2, 3}  # M = 3 for biomedicine
    results = list((RESULTS / "eval" / CPT / "biomedicine").glob("*.json"))
    assert results
    for path in results:
        rec = read_json(path)
        assert rec["harness"].startswith("lm-eval")
        assert 0.0 <= rec["value"] <= 100.0 and rec["n"] > 0  # percentages
    # The domain mixture holds general instructions 1:1 by tokens with the domain corpus.
    manifest = read_json(RESULTS / "mixtures/llama3/biomedicine-vanilla/manifest.json")
    src = manifest["sources"]
    corpus = src["domain"]["tokens"]
    assert corpus <= src["general_instructions"]["tokens"] < corpus + 1000


# ----------------------------------------------------------------------------- kill and resume


def _checkpoint_steps(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(
        int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"step0*(\d+)", p.name))
    )


def _kill_tree(pid: int) -> int:
    """SIGKILL a process and every descendant (torchrun starts its workers in sessions of their
    own, so killing one process group would leave them): what a scheduler does to a job."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    return len(procs)


@needs_wheels
def test_sigkilled_training_resumes_to_the_uninterrupted_weights(rehearsal):
    """Kill the 4-process continual pre-training after its step-2 checkpoint (of 4), rerun it
    through Snakemake: it resumes from step 2 and ends on the uninterrupted run's weights."""
    import torch

    model_dir = RESULTS / "models" / CPT
    ckpt_dir = RESULTS / "checkpoints" / CPT
    uninterrupted = load_weights(model_dir)
    curve = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(model_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # removed after success (keep_finished_checkpoints)

    target = f"results/{RUN}/models/{CPT}"
    cmd = [str(BIN / "snakemake"), target, "--configfile", "presets/rehearsal.yaml"]
    cmd += ["--config", f"run={RUN}", "--cores", "2", "--nolock"]
    log = RESULTS / "kill_run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        try:
            while not _checkpoint_steps(ckpt_dir):
                assert proc.poll() is None, f"the job ended before a checkpoint: {log}"
                assert time.monotonic() < deadline, "no checkpoint within 600 s"
                time.sleep(0.05)
            killed_at = _checkpoint_steps(ckpt_dir)
            n_killed = _kill_tree(proc.pid)
        finally:
            if proc.poll() is None:
                _kill_tree(proc.pid)
    assert killed_at == [2], f"killed after checkpoints {killed_at}, expected step 2 of 4 only"
    assert n_killed >= 6  # snakemake, the job's script, torchrun and its 4 workers (at least)
    assert not model_dir.exists() or not (model_dir / "train_summary.json").exists()

    rerun = snakemake(target, "--nolock", "--rerun-incomplete")
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-8000:]
    summary = read_json(model_dir / "train_summary.json")
    assert read_json(model_dir / "train_run.json")["resumed_from_step"] == 2
    assert summary["steps"] == 4
    assert summary["world_size"] == 4
    assert not ckpt_dir.exists()  # the resumed job's checkpoints go once its outputs are complete
    # Every step's loss and gradient norm (fp32, before the export's cast) are the same numbers.
    again = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [r["step"] for r in again] == [1, 2, 3, 4]
    for a, b in zip(curve, again, strict=True):
        assert (a["loss"], a["grad_norm"], a["lr"]) == (b["loss"], b["grad_norm"], b["lr"]), a[
            "step"
        ]
    resumed = load_weights(model_dir)
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
