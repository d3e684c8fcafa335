"""The GPU check of issue #9: our code at the paper's sizes on one GPU, one JSON report.

Sections (each runs the package's own entry point; random weights, synthetic tokens, no download):

- train_500m, train_1.3b: `instruct_pt.training.stages.pretrain` on a packed folder (instruct_pt.data.packing)
  of synthetic text, with config.yaml's arch, micro-batch (64) and sequence length (2048), bf16
  autocast, for a few steps. Reports steady-state tokens/s (the metrics log's windows after the
  first), MFU against the assumed peak, and peak GPU memory beside the plan's estimate
  (`instruct_pt.plan.estimate_training_memory`, null while that function is absent). A try that
  runs out of memory is recorded and retried with gradient checkpointing, then with half the
  micro-batch; the report says what ran.
- synthesis: `instruct_pt.synthesis.multi_round.synthesize_shard` with the transformers engine
  (config.yaml's engine options) on a Mistral-7B-shaped model (bf16, random weights), M-round
  prompts of texts of the paper's mean length, 400 new tokens; generated tokens/s and the
  projected GPU-days per 1B raw tokens beside the paper's ~1 A100-day (vLLM).
- evaluation: `instruct_pt.evaluation.runner.evaluate` (lm-eval) on a Llama3-8B-shaped model (bf16,
  random weights) over the world's finance suite (multiple choice and generation), a few
  hundred questions.

`--cpu-dry-run` runs every section with tiny dimensions on the CPU (well under a minute) and
writes the same JSON structure. Run it through perf/gpu_check.sh, which sets up the offline GPU
machine; the exact device command is in that script's header. Output: $OUT/gpu_check.json when
OUT is set, else results/gpu_check.json (or --out).

Uses only APIs present in torch 2.11 and transformers 5.17 (the GPU image); the training loop
itself falls back to transformers 5.17's name for activation checkpointing.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.metadata
import json
import os
import platform
import random
import shutil
import string
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from instruct_pt.common import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = 1
GiB = 2**30  # memory is reported in GiB, as torch, nvidia-smi and instruct_pt.plan do
SECTIONS = ("train_500m", "train_1.3b", "synthesis", "evaluation")

# H200 SXM dense bf16 peak, vendor datasheet (device docs: "dense bf16 about 990 TFLOP/s"); the
# MFU denominator. A matrix product measured on such a machine ran at ~790 TFLOP/s.
PEAK_FLOPS = 989e12
PEAK_FLOPS_WHAT = "NVIDIA H200 SXM dense bf16, vendor datasheet"

# The synthesizer base, Mistral-7B-v0.1's config.json [P] (vocab 32000).
MISTRAL_7B = {
    "family": "mistral", "hidden_size": 4096, "num_layers": 32, "num_heads": 32,
    "num_kv_heads": 8, "intermediate_size": 14336, "max_position_embeddings": 32768,
    "tie_embeddings": False, "rope_theta": 10000.0, "sliding_window": 4096,
}  # fmt: skip
MISTRAL_VOCAB = 32000
# The continual pre-training base, Meta-Llama-3-8B's config.json [P] (vocab 128256).
LLAMA3_8B = {
    "family": "llama", "hidden_size": 4096, "num_layers": 32, "num_heads": 32,
    "num_kv_heads": 8, "intermediate_size": 14336, "max_position_embeddings": 8192,
    "tie_embeddings": False, "rope_theta": 500000.0,
}  # fmt: skip
LLAMA3_VOCAB = 128256

# Paper: synthesizing pairs for 1B raw tokens takes about one day on one A100-80GB with vLLM [S2]
# (as instruct_pt.plan cites it).
PAPER_SYNTH_GPU_DAYS_PER_1B = 1.0
# Raw general texts: RefinedWeb, 200M texts ~ 100B tokens (config.yaml datasets.raw_general)
# -> ~500 tokens per text [derived].
PAPER_RAW_TOKENS_PER_TEXT = 500

TINY = {  # the dry run's stand-in for every architecture (same code paths, CPU-sized)
    "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
    "intermediate_size": 128, "max_position_embeddings": 512, "tie_embeddings": False,
    "rope_theta": 10000.0,
}  # fmt: skip


@dataclasses.dataclass
class Profile:
    """What each section runs: the paper's dims on the GPU, or tiny ones for the CPU dry run."""

    mode: str
    device: str
    seq_len: int
    train_arch: dict[str, dict]
    micro_batch: dict[str, int]
    train_steps: dict[str, int]
    log_every: int
    train_base: dict[str, dict]  # config.yaml's train settings per size
    tokenizer_vocab: int
    corpus_words: int  # distinct random words
    corpus_docs: int
    doc_words: int
    synth_arch: dict
    synth_vocab: int
    synth_texts: int
    synth_raw_tokens: int
    synth_rounds: int
    max_new_tokens: int
    max_model_len: int
    engine_options: dict
    eval_arch: dict
    eval_vocab: int
    eval_suite: str
    eval_per_task: int
    eval_max_gen_toks: int
    eval_batch_size: Any
    eval_dtype: str
    model_dtype: str
    seed: int
    paper_seq_len: int = 2048  # config.yaml pretrain.seq_len, for the paper's batch in sequences
    plan_synthesis_tokens_per_s: float | None = None  # config.yaml compute (the plan's vLLM guess)


def load_profile(args: argparse.Namespace) -> Profile:
    cfg = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    pre = cfg["pretrain"]
    sizes = {"500m": pre["sizes"]["500m"], "1.3b": pre["sizes"]["1.3b"]}
    train_base = {s: {**pre["train"], **sizes[s]["train"]} for s in sizes}
    syn = cfg["synthesis"]
    engine_options = dict(syn["engine_options"]["transformers"])
    if args.synth_batch_size:
        engine_options["batch_size"] = args.synth_batch_size
    ev = cfg["evaluation"]
    common = dict(
        train_base=train_base,
        synth_rounds=int(syn["corpora"]["general"]["rounds"]),
        engine_options=engine_options,
        eval_suite="finance",
        eval_dtype=str(ev["dtype"]),
        model_dtype="bfloat16",
        seed=int(cfg["seed"]),
        paper_seq_len=int(pre["seq_len"]),
        log_every=args.log_every,
        plan_synthesis_tokens_per_s=(cfg.get("compute") or {}).get("synthesis_tokens_per_s"),
    )
    if args.cpu_dry_run:
        tiny = {"family": "mistral", **TINY}
        return Profile(
            mode="cpu-dry-run",
            device="cpu",
            seq_len=32,
            train_arch={"500m": tiny, "1.3b": tiny},
            micro_batch={"500m": 4, "1.3b": 4},
            train_steps={s: args.train_steps or 4 for s in sizes},
            tokenizer_vocab=512,
            corpus_words=3000,
            corpus_docs=60,
            doc_words=200,
            synth_arch={**tiny, "sliding_window": 128},
            synth_vocab=512,  # = the tokenizer's, as 32000 is at paper scale
            synth_texts=args.synth_texts or 4,
            synth_raw_tokens=args.synth_raw_tokens or 40,
            max_new_tokens=8,
            max_model_len=128,
            eval_arch={"family": "llama", **TINY},
            eval_vocab=640,  # padded past the tokenizer's 512, as 128256 past 32000
            eval_per_task=args.eval_per_task or 4,
            eval_max_gen_toks=8,
            eval_batch_size=8,
            **{**common, "log_every": 2, "engine_options": {**engine_options, "batch_size": 4}},
        )
    return Profile(
        mode="gpu",
        device="cuda",
        seq_len=int(pre["seq_len"]),
        train_arch={s: dict(sizes[s]["arch"]) for s in sizes},
        micro_batch={s: int(train_base[s]["micro_batch_size"]) for s in sizes},
        # Within ~8 minutes in all: 64 x 2048 tokens a step is ~2 s (500M) / ~4.5 s (1.3B) at 40%
        # MFU with checkpointing's recompute; 3-4 logged windows of 5 steps each.
        train_steps={"500m": args.train_steps or 20, "1.3b": args.train_steps or 15},
        tokenizer_vocab=MISTRAL_VOCAB,
        corpus_words=50000,
        corpus_docs=600,
        doc_words=500,
        synth_arch=MISTRAL_7B,
        synth_vocab=MISTRAL_VOCAB,
        synth_texts=args.synth_texts or 64,
        synth_raw_tokens=args.synth_raw_tokens or PAPER_RAW_TOKENS_PER_TEXT,
        max_new_tokens=int(syn["max_new_tokens"]),
        max_model_len=int(syn["max_model_len"]),
        eval_arch=LLAMA3_8B,
        eval_vocab=LLAMA3_VOCAB,
        eval_per_task=args.eval_per_task or 60,
        eval_max_gen_toks=100,  # paper §4.3 (evaluation.GENERATION_KWARGS)
        # config.yaml says "auto": lm-eval then probes 5 forwards at the model's full window (8192)
        # from batch 64 down through out-of-memory retries, time this check does not have.
        eval_batch_size=args.eval_batch_size or 32,
        **common,
    )


# ----------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "lm_eval", "datasets", "pyarrow", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _machine(p: Profile) -> dict:
    info: dict[str, Any] = {"host": platform.node(), "cpus": os.cpu_count(), **_versions()}
    if p.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_memory_gib=props.total_memory / GiB,
            cuda=torch.version.cuda,
        )
    else:
        info.update(gpu=None, gpu_memory_gib=None, cuda=None)
    return info


def _free(p: Profile) -> None:
    gc.collect()
    if p.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory(p: Profile) -> dict:
    """Peak memory since the last _free: CUDA's allocator on the GPU; the process's peak RSS
    (over its whole life) in the CPU dry run."""
    if p.device == "cuda":
        return {
            "peak_memory_gib": torch.cuda.max_memory_allocated() / GiB,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / GiB,
            "peak_memory_kind": "torch.cuda.max_memory_allocated",
        }
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "peak_memory_gib": rss / GiB,
        "peak_reserved_gib": None,
        "peak_memory_kind": "process peak RSS since start (CPU dry run)",
    }


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def _write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def synthetic_corpus(path: Path, p: Profile) -> Path:
    """Documents of random lowercase words (seeded): enough distinct words for a byte-level BPE
    to reach the paper's 32000-token vocabulary."""
    rng = random.Random(p.seed)
    letters = string.ascii_lowercase
    words = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(p.corpus_words)]
    docs = (" ".join(rng.choices(words, k=p.doc_words)) for _ in range(p.corpus_docs))
    write_jsonl(path, ({"id": f"d{i}", "text": t} for i, t in enumerate(docs)))
    return path


def make_tokenizer(work: Path, corpus: Path, p: Profile) -> Path:
    from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer

    out = work / "tokenizer"
    prepare_tokenizer(
        {"source": "train", "vocab_size": p.tokenizer_vocab}, [str(corpus)], str(out), 0
    )
    n = len(load_tokenizer(str(out)))
    if n != p.tokenizer_vocab:
        raise RuntimeError(f"{out}: BPE reached {n} tokens, not {p.tokenizer_vocab}")
    return out


def build_random_model(arch: dict, vocab: int, tok_dir: Path, out: Path, p: Profile) -> int:
    """A random-weight model of `arch` built in bf16 directly on the device, saved with the
    tokenizer (vocab padded to `vocab` past the tokenizer's). Returns its parameter count."""
    from transformers import AutoModelForCausalLM

    from instruct_pt.data.tokenizer import load_tokenizer
    from instruct_pt.training.modeling import count_parameters, make_config

    tok = load_tokenizer(str(tok_dir))
    if vocab < len(tok):
        raise ValueError(f"model vocab {vocab} < tokenizer's {len(tok)}")
    config = make_config(arch, vocab, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    torch.manual_seed(p.seed)
    with torch.device(p.device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, p.model_dtype))
    model.to(p.device)  # a no-op where the device context placed it already
    n = count_parameters(model)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    _free(p)
    return n


# ----------------------------------------------------------------------------- training


def _plan_estimate(arch: dict, train: dict, seq_len: int, vocab: int) -> tuple[dict | None, str]:
    try:
        from instruct_pt.plan import estimate_training_memory
    except ImportError as e:
        return None, f"instruct_pt.plan.estimate_training_memory unavailable ({e})"
    try:
        est = estimate_training_memory(arch, train, seq_len, 1, vocab)
    except Exception as e:  # noqa: BLE001 - the check reports, it does not depend on the plan
        return None, f"estimate_training_memory failed: {type(e).__name__}: {e}"
    return dict(est), "instruct_pt.plan.estimate_training_memory(arch, train, seq_len, 1, vocab)"


def _steady_tokens_per_s(metrics: Path) -> tuple[float, list[float]]:
    """Mean tokens/s of the metrics log's windows after the first (CUDA warm-up, allocator)."""
    windows = [r["tokens_per_s"] for r in read_jsonl(str(metrics)) if r.get("tokens_per_s")]
    if not windows:
        raise RuntimeError(f"{metrics}: no tokens_per_s records")
    steady = windows[1:] or windows
    return sum(steady) / len(steady), windows


def _attempts(micro: int, gc_mode: str, configured: bool = False) -> list[tuple[int, bool]]:
    """(micro-batch, gradient checkpointing) tries, in order: the real micro-batch without and
    then with checkpointing ('auto'; only with it when config.yaml already turns it on), then
    halved micro-batches with the last setting."""
    if gc_mode == "auto" and configured:
        gc_mode = "on"
    gcs = {"auto": [False, True], "on": [True], "off": [False]}[gc_mode]
    tries = [(micro, g) for g in gcs]
    m = micro // 2
    while m >= 1:
        tries.append((m, gcs[-1]))
        m //= 2
    return tries


def train_section(size: str, p: Profile, data: dict, work: Path, gc_mode: str) -> dict:
    from instruct_pt.training.modeling import flops_per_token
    from instruct_pt.training.settings import TrainConfig, check_train
    from instruct_pt.training.stages import pretrain

    arch, seq_len, micro0 = p.train_arch[size], p.seq_len, p.micro_batch[size]
    vocab, steps = p.tokenizer_vocab, p.train_steps[size]
    known = set(TrainConfig.__dataclass_fields__)
    base = {k: v for k, v in p.train_base[size].items() if k in known and k != "tokens"}
    fpt = flops_per_token({**arch, "vocab_size": vocab}, seq_len)
    gpu_gib = torch.cuda.get_device_properties(0).total_memory / GiB if p.device == "cuda" else None
    attempts: list[dict] = []
    tries = _attempts(micro0, gc_mode, bool(base.get("gradient_checkpointing")))
    for i, (micro, ckpt) in enumerate(tries):
        train = {
            **base,
            "steps": steps,
            "batch_size": micro,  # one micro-batch per optimizer step (no accumulation)
            "micro_batch_size": micro,
            "warmup_steps": min(int(base.get("warmup_steps", 0)), steps),
            "gradient_checkpointing": ckpt,
            "checkpoint_every": 10**9,  # only the final checkpoint (pretrain always writes it)
            "log_every": p.log_every,
            "device": p.device,
            "peak_flops": PEAK_FLOPS,
            "wandb": {"mode": "disabled"},
        }
        est, est_note = _plan_estimate(arch, train, seq_len, vocab)
        tried = {"micro_batch_size": micro, "gradient_checkpointing": ckpt}
        est_total = (est or {}).get("total_gb")  # instruct_pt.plan's "GB" are GiB
        if i + 1 < len(tries) and gpu_gib and est_total and est_total > 1.1 * gpu_gib:
            # Saves a model build and a doomed first step; the next try is cheaper in memory.
            attempts.append(
                {**tried, "outcome": f"skipped: plan estimate {est_total:.0f} GiB > the GPU's"}
            )
            continue
        run_dir = work / f"train_{size}_try{i}"
        _free(p)
        t0 = time.perf_counter()
        try:
            summary = pretrain(
                data["packed"], str(run_dir / "model"), data["tokenizer"], train,
                str(run_dir / "ckpt"), p.seed, arch=arch,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001
            if not _is_oom(e):
                raise
            attempts.append({**tried, "outcome": "out of memory", "error": str(e)[:300]})
            oom = True
        else:
            oom = False
        if oom:  # outside the except block: the traceback (and the model) is gone
            shutil.rmtree(run_dir, ignore_errors=True)
            _free(p)
            continue
        wall = time.perf_counter() - t0
        memory = _peak_memory(p)
        timing = run_dir / "ckpt" / "timing.jsonl"  # tokens/s per log window (training)
        tps, windows = _steady_tokens_per_s(
            timing if timing.exists() else run_dir / "ckpt" / "metrics.jsonl"
        )
        attempts.append({**tried, "outcome": "ok"})
        settings = dataclasses.asdict(check_train(train, 1))
        settings.pop("wandb", None)
        shutil.rmtree(run_dir, ignore_errors=True)
        real_batch = int(p.train_base[size].get("batch_tokens", 0)) // p.paper_seq_len
        return {
            "what": f"instruct_pt.training.stages.pretrain, {size} arch from config.yaml, synthetic tokens",
            "arch": {**arch, "vocab_size": vocab},
            "parameters": summary["parameters"],
            "seq_len": seq_len,
            "micro_batch_size": micro,
            "config_micro_batch_size": micro0,
            "paper_batch_sequences": real_batch,
            "steps": summary["steps"],
            "dtype": "bf16 autocast, fp32 weights and AdamW states"
            if settings["precision"] == "bf16"
            else settings["precision"],
            "gradient_checkpointing": ckpt,
            "attempts": attempts,
            "train_settings": settings,
            "tokens_per_s": tps,
            "tokens_per_s_windows": windows,
            "tokens_per_s_note": f"mean of the metrics log's {p.log_every}-step windows after "
            "the first; the final checkpoint and export are outside them",
            "flops_per_token": fpt,
            "mfu": fpt * tps / PEAK_FLOPS,
            "mfu_formula": "flops_per_token * tokens_per_s / peak_flops (6N + 12LHT; "
            "checkpointing's recompute not counted)",
            "final_loss": summary["final_loss"],
            "pretrain_wall_s": wall,
            **memory,
            "plan_allocated_gib": (est or {}).get("allocated_gb"),
            "plan_total_gib": est_total,
            "plan_estimate": est,
            "plan_note": est_note,
        }
    raise RuntimeError(f"train_{size}: no micro-batch fits: {attempts}")


# ----------------------------------------------------------------------------- synthesis


def synthesis_section(p: Profile, data: dict, work: Path) -> dict:
    from instruct_pt.data.tokenizer import load_tokenizer
    from instruct_pt.synthesis.engines import load_engine
    from instruct_pt.synthesis.multi_round import synthesize_shard
    from instruct_pt.synthesis.protocol import build_prompt

    tok = load_tokenizer(data["tokenizer"])
    texts = []
    for rec in read_jsonl(data["corpus"]):
        ids = tok(rec["text"], add_special_tokens=False)["input_ids"][: p.synth_raw_tokens]
        texts.append(tok.decode(ids).strip())
        if len(texts) == p.synth_texts:
            break
    if len(texts) < p.synth_texts:
        raise RuntimeError(f"corpus has {len(texts)} texts, need {p.synth_texts}")
    raw_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    prompt_tokens = [
        len(tok(build_prompt(t), add_special_tokens=False)["input_ids"]) for t in texts
    ]
    shard = work / "shard.jsonl"
    write_jsonl(shard, ({"id": f"t{i}", "text": t} for i, t in enumerate(texts)))

    model_dir = work / "synth_model"
    n_params = build_random_model(
        p.synth_arch, p.synth_vocab, Path(data["tokenizer"]), model_dir, p
    )
    engine_cfg = {**p.engine_options, "device": p.device}
    t0 = time.perf_counter()
    engine = load_engine(str(model_dir), engine_cfg, p.max_model_len, p.seed)
    load_s = time.perf_counter() - t0
    engine.generate([build_prompt(texts[0])], 4)  # warm-up: kernels, allocator
    if p.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stats = synthesize_shard(
        str(shard), str(model_dir), str(work / "synth_out.jsonl"), p.synth_rounds, engine_cfg,
        p.max_new_tokens, p.max_model_len, str(work / "synth_ckpt"), p.seed, engine=engine,
    )  # fmt: skip
    memory = _peak_memory(p)
    engine.close()
    del engine
    _free(p)
    seconds = stats["seconds"]
    generated = stats["generated_tokens_per_s"] * seconds
    raw_tps = raw_tokens / seconds
    days = 1e9 / raw_tps / 86400
    return {
        "what": "instruct_pt.synthesis.multi_round.synthesize_shard, transformers engine, random weights",
        "arch": {**p.synth_arch, "vocab_size": p.synth_vocab},
        "parameters": n_params,
        "dtype": p.engine_options.get("dtype"),
        "engine": stats["engine"],
        "engine_options": engine_cfg,
        "texts": len(texts),
        "rounds": p.synth_rounds,
        "raw_tokens_per_text_mean": raw_tokens / len(texts),
        "prompt_tokens_mean": sum(prompt_tokens) / len(prompt_tokens),
        "max_new_tokens": p.max_new_tokens,
        "max_model_len": p.max_model_len,
        "generated_tokens": int(round(generated)),
        "generated_tokens_per_text_mean": generated / len(texts),
        "seconds": seconds,
        "model_load_s": load_s,
        "generated_tokens_per_s": stats["generated_tokens_per_s"],
        "texts_per_s": stats["texts_per_s"],
        "raw_tokens_per_s": raw_tps,
        "gpu_days_per_1b_raw_tokens": days,
        "gpu_days_formula": "1e9 / raw_tokens_per_s / 86400, raw_tokens_per_s = raw tokens of "
        "the shard's texts / synthesize_shard seconds",
        "paper_gpu_days_per_1b_raw_tokens": PAPER_SYNTH_GPU_DAYS_PER_1B,
        "paper_note": "about one day on one A100-80GB with vLLM [S2]",
        "plan_synthesis_tokens_per_s": p.plan_synthesis_tokens_per_s,
        "plan_note": "config.yaml compute.synthesis_tokens_per_s: the plan's assumed vLLM "
        "generated tokens/s per GPU for a 7B model (vLLM, not this engine)",
        "ratio_to_paper": days / PAPER_SYNTH_GPU_DAYS_PER_1B,
        "note": "random weights: no pairs parse, so no text is chained after an example (prompts "
        "are single texts) and generations run to max_new_tokens unless </s> comes up",
        **memory,
    }


# ----------------------------------------------------------------------------- evaluation


def evaluation_section(p: Profile, data: dict, work: Path) -> dict:
    from instruct_pt.evaluation.runner import evaluate
    from instruct_pt.evaluation.suites import build_suite

    model_dir = work / "eval_model"
    n_params = build_random_model(p.eval_arch, p.eval_vocab, Path(data["tokenizer"]), model_dir, p)
    suite_dir = work / "suite"
    spec = {"source": "world", "max_gen_toks": p.eval_max_gen_toks}
    meta = build_suite(p.eval_suite, spec, str(suite_dir), {"eval_per_task": p.eval_per_task})
    t0 = time.perf_counter()
    recs = evaluate(
        str(model_dir), str(suite_dir), str(work / "eval_out"), "random-llama3-8b-shape",
        p.eval_suite, batch_size=p.eval_batch_size, device=p.device, dtype=p.eval_dtype,
        seed=p.seed,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    memory = _peak_memory(p)
    _free(p)
    n = sum(r["n"] for r in recs)
    return {
        "what": "instruct_pt.evaluation.runner.evaluate (lm-eval, HF model) on a world suite, random "
        "weights",
        "arch": {**p.eval_arch, "vocab_size": p.eval_vocab},
        "parameters": n_params,
        "dtype": p.eval_dtype,
        "suite": f"world {p.eval_suite}",
        "batch_size": p.eval_batch_size,
        "output_types": sorted({t["output_type"] for t in meta["tasks"].values()}),
        "questions": n,
        "tasks": {
            r["task"]: {"metric": r["metric"], "value": r["value"], "n": r["n"]} for r in recs
        },
        "seconds": seconds,
        "seconds_note": "the evaluate call: lm-eval loading the model and the tasks, then scoring",
        "questions_per_s": n / seconds,
        **memory,
    }


# ----------------------------------------------------------------------------- main


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return ROOT / "results" / "gpu_check.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny dims on the CPU (< 1 min)")
    ap.add_argument(
        "--out", type=Path, default=None, help="default $OUT/gpu_check.json or results/"
    )
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    ap.add_argument("--train-steps", type=int, default=0, help="default 20 (500M), 15 (1.3B)")
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--gradient-checkpointing", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--synth-texts", type=int, default=0, help="default 64")
    ap.add_argument("--synth-raw-tokens", type=int, default=0, help="default 500")
    ap.add_argument("--synth-batch-size", type=int, default=0, help="default: config.yaml's")
    ap.add_argument("--eval-per-task", type=int, default=0, help="default 60 (x 5 tasks)")
    ap.add_argument(
        "--eval-batch-size",
        type=lambda v: v if v == "auto" else int(v),
        default=0,
        help="default 32 (config.yaml's 'auto' probes the full 8192 window first)",
    )
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    args = ap.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = args.sections
    if not args.cpu_dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; use --cpu-dry-run on a CPU machine", file=sys.stderr)
        return 2
    p = load_profile(args)
    if args.cpu_dry_run:
        torch.set_num_threads(1)  # tiny models: threads only add contention on a shared CPU
    out = args.out or default_out()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": p.mode,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["perf/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": _machine(p),
        "peak_flops": PEAK_FLOPS,
        "peak_flops_what": PEAK_FLOPS_WHAT,
        "sections": {},
    }
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        corpus = synthetic_corpus(work / "corpus.jsonl", p)
        data = {"corpus": str(corpus), "tokenizer": str(make_tokenizer(work, corpus, p))}
        if any(s.startswith("train_") for s in sections):
            from instruct_pt.data.packing import pack

            packed = work / "packed"
            meta = pack(str(corpus), data["tokenizer"], str(packed), p.seq_len, p.seed)
            data["packed"] = str(packed)
            report["data"] = {"packed_sequences": meta["n_sequences"], "seq_len": p.seq_len}
        report["setup_s"] = time.perf_counter() - t0
        for name in sections:
            print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
            sdir = work / name
            sdir.mkdir(exist_ok=True)
            t0 = time.perf_counter()
            try:
                if name.startswith("train_"):
                    res = train_section(
                        name[len("train_") :], p, data, sdir, args.gradient_checkpointing
                    )
                elif name == "synthesis":
                    res = synthesis_section(p, data, sdir)
                else:
                    res = evaluation_section(p, data, sdir)
                res = {"status": "ok", **res}
            except Exception as e:  # noqa: BLE001 - report it and go on with the next section
                res = {
                    "status": "failed",
                    "error": f"{type(e).__name__}: {e}"[:2000],
                    "traceback": traceback.format_exc()[-4000:],
                }
            res["wall_s"] = time.perf_counter() - t0
            report["sections"][name] = res
            report["wall_s"] = time.perf_counter() - started
            _write_report(report, out)
            shutil.rmtree(sdir, ignore_errors=True)  # models of tens of GB: free the disk
            _free(p)
            print(f"gpu_check: {name}: {res['status']} in {res['wall_s']:.0f} s", file=sys.stderr)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    report["wall_s"] = time.perf_counter() - started
    _write_report(report, out)
    print(f"gpu_check: wrote {out}", file=sys.stderr)
    print(json.dumps(summary_lines(report), indent=1))
    return 0 if all(s["status"] == "ok" for s in report["sections"].values()) else 1


def summary_lines(report: dict) -> dict:
    """The headline numbers, printed at the end (the JSON has everything)."""
    out = {}
    for name, s in report["sections"].items():
        if s["status"] != "ok":
            out[name] = s["status"] + ": " + s["error"][:200]
        elif name.startswith("train_"):
            est = s["plan_allocated_gib"]
            out[name] = (
                f"{s['tokens_per_s']:,.0f} tokens/s, MFU {s['mfu']:.1%}, peak "
                f"{s['peak_memory_gib']:.1f} GiB (plan {'n/a' if est is None else f'{est:.1f}'}),"
                f" micro-batch {s['micro_batch_size']} x {s['seq_len']}, gradient checkpointing "
                f"{s['gradient_checkpointing']}"
            )
        elif name == "synthesis":
            out[name] = (
                f"{s['generated_tokens_per_s']:,.0f} generated tokens/s, "
                f"{s['gpu_days_per_1b_raw_tokens']:.2f} GPU-days per 1B raw tokens (paper ~1)"
            )
        else:
            out[name] = f"{s['questions']} questions in {s['seconds']:.0f} s"
    return out


if __name__ == "__main__":
    sys.exit(main())
