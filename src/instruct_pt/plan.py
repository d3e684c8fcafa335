"""The plan, before anything runs: every job of the DAG with its GPUs, memory per GPU, time and disk.

Over 500 lines: about 150 of them are this docstring (the formulas, which docs/plan.md works
through); the rest is one estimate per resource and the DAG reading that feeds them.

`snakemake plan` (rules/plan.smk) writes ``results/<run>/plan.{json,md}`` from the DAG and the
config alone; nothing else runs and no input needs to exist. The job list is Snakemake's own: a
separate Python process (``python -m instruct_pt.plan``) builds the DAG of the plan's targets
(default ``all``) through Snakemake's API, dry, with every job forced (``forceall``) and no lock,
and reads each job's rule, wildcards, params (evaluated) and resources. The estimates below are
then pure functions of those records and the config. The plan fails (exit 1, naming the jobs)
when a job does not fit its GPU or fails the start-up check its script makes
(`instruct_pt.training.settings.check_train`).

Units: bytes; "GB" in keys and tables is GiB (2^30 bytes, what `nvidia-smi` and
``torch.cuda.max_memory_allocated`` report). docs/plan.md gives the formulas with worked numbers.

Training memory per GPU (FSDP2 full sharding over ``world`` processes, bf16 compute, fp32 master):

- state = 16 N / world: fp32 parameters (4) + fp32 gradients (4) + Adam m and v (4 + 4) per
  parameter, each sharded over the world.
- gathered = 2 (bf16) x (2 N_root + 3 N_layer): the root unit (embeddings, output head, final
  norm) stays unsharded through forward and backward (FSDP2 does not reshard the root after
  forward) with its bf16 gradients; one decoder layer computing, one prefetched, plus one layer's
  unsharded bf16 gradients before their reduce-scatter. fp32 training (``precision: fp32``): 4
  bytes instead of 2. One process (no FSDP): autocast's bf16 copy of every weight, 2 N.
- activations at T = micro_batch_size x seq_len tokens per process. Bytes a Llama/Mistral decoder
  layer keeps for backward, per token, in bf16 with SDPA/flash attention (no a.s^2 score matrix,
  unlike Korthikanti et al. 2022's 34 s.b.h + 5 a.s^2.b): two RMSNorms 2 x 6h (the fp32 input
  HF's RMSNorm upcasts, 4h, and its bf16 output, 2h), attention q 2h + k 2h_kv + v 2h_kv + output
  2h + o_proj input 2h, SwiGLU MLP gate 2f + silu(gate) 2f + up 2f + down_proj input 2f:
  ``a = 18 h + 4 h_kv + 8 f`` (x2 in fp32). Without checkpointing: L.T.a. With
  ``gradient_checkpointing: true``: each layer's input hidden state (2 h bytes/token) plus one
  layer's full activations during its recompute: L.T.2h + T.a.
- loss: 12 C V bytes, C = ``loss_chunk_tokens`` (0 or absent: the whole micro-batch, T): the
  logits in fp32, the softmax and the logits' gradient (3 x 4 bytes per token and vocab entry).
- overhead: ``compute.gpu_overhead_gb`` (CUDA context, NCCL buffers, allocator slack).

Inference memory per GPU: weights 2 N / GPUs (bf16; split by device_map or tensor parallel) plus
the KV cache (2 L h_kv x 2 bytes per token) and one forward's logits at batch 1; vLLM reserves
``gpu_memory_utilization`` of the GPU and fits when weights + one full-length sequence's KV cache
fit in it.

Time: training FLOPs = `modeling.flops_per_token` (6 N_matmul + 12 L h T) x tokens, GPU-seconds =
FLOPs / (peak_flops x MFU) (MFU of model FLOPs: ``compute.mfu``, or the median `mfu` logged in the
job's own metrics.jsonl when a run has been measured). Evaluation: 2 N x the suite's tokens at
``compute.eval_mfu`` (a model split over several GPUs runs one GPU at a time: GPU-hours = wall x
GPUs). Synthesis: texts x rounds x max_new_tokens generated tokens at
``compute.synthesis_tokens_per_s`` per GPU, beside the paper's "about one A100-day per 1B raw
tokens" [S2].

Disk: a trained model folder 4 N (fp32 safetensors; 2 N with ``export_dtype`` bf16), its checkpoints 12 N x keep_checkpoints (fp32
parameters + Adam m, v; gradients are not saved), hub weights 2 N (bf16), synthesis outputs and
packed tokens from the corpus sizes in config ``plan.corpora``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

GiB = 2**30

#: Architectures of the hub models the paper uses, from each model's config.json on the hub [P].
#: mlp "swiglu": gate/up/down (3 h f); "gelu": up/down (2 h f).
HUB_ARCHS: dict[str, dict] = {
    # mistralai/Mistral-7B-v0.1 config.json: 7.24B parameters
    "mistralai/Mistral-7B-v0.1": dict(
        family="mistral", vocab_size=32000, hidden_size=4096, num_layers=32, num_heads=32,
        num_kv_heads=8, intermediate_size=14336, tie_embeddings=False,
        max_position_embeddings=32768, mlp="swiglu",
    ),
    # meta-llama/Meta-Llama-3-8B config.json: 8.03B parameters
    "meta-llama/Meta-Llama-3-8B": dict(
        family="llama", vocab_size=128256, hidden_size=4096, num_layers=32, num_heads=32,
        num_kv_heads=8, intermediate_size=14336, tie_embeddings=False,
        max_position_embeddings=8192, mlp="swiglu",
    ),
    # meta-llama/Meta-Llama-3-70B config.json: 70.6B parameters
    "meta-llama/Meta-Llama-3-70B": dict(
        family="llama", vocab_size=128256, hidden_size=8192, num_layers=80, num_heads=64,
        num_kv_heads=8, intermediate_size=28672, tie_embeddings=False,
        max_position_embeddings=8192, mlp="swiglu",
    ),
    # EleutherAI/pythia-1b config.json (GPT-NeoX): 1.01B parameters
    "EleutherAI/pythia-1b": dict(
        family="gpt_neox", vocab_size=50304, hidden_size=2048, num_layers=16, num_heads=8,
        num_kv_heads=8, intermediate_size=8192, tie_embeddings=False,
        max_position_embeddings=2048, mlp="gelu",
    ),
    # bigscience/bloom-3b config.json (n_embed 2560, n_layer 30, n_head 32, 4h MLP, tied): 3.0B
    "bigscience/bloom-3b": dict(
        family="bloom", vocab_size=250880, hidden_size=2560, num_layers=30, num_heads=32,
        num_kv_heads=32, intermediate_size=10240, tie_embeddings=True,
        max_position_embeddings=2048, mlp="gelu",
    ),
}  # fmt: skip
# Fine-tunes of the architectures above [P] (model cards: their base models).
HUB_ARCHS["instruction-pretrain/instruction-synthesizer"] = HUB_ARCHS["mistralai/Mistral-7B-v0.1"]
HUB_ARCHS["instruction-pretrain/medicine-Llama3-8B"] = HUB_ARCHS["meta-llama/Meta-Llama-3-8B"]
HUB_ARCHS["instruction-pretrain/finance-Llama3-8B"] = HUB_ARCHS["meta-llama/Meta-Llama-3-8B"]

#: Vocabulary sizes of hub tokenizers (config.json vocab_size of the same repositories) [P].
HUB_VOCAB = {
    "mistralai/Mistral-7B-v0.1": 32000,
    "meta-llama/Meta-Llama-3-8B": 128256,
}

#: lm-eval tasks: (documents scored, answer choices, tokens per request at 0 shots). Documents:
#: the size of the split lm-eval scores (test or validation); tokens per request (context +
#: continuation): our rough estimate [ours]. An order-of-magnitude figure.
EVAL_TASKS = {
    "arc_easy": (2376, 4, 40),
    "arc_challenge": (1172, 4, 45),
    "boolq": (3270, 2, 150),
    "social_iqa": (1954, 3, 40),
    "winogrande": (1267, 2, 30),
    "piqa": (1838, 2, 50),
    "openbookqa": (500, 4, 25),
    "hellaswag": (10042, 4, 110),
    "mmlu": (14042, 4, 120),
}
#: Suites without a per-task table (AdaptLLM's domain tasks): total tokens scored [ours, rough].
EVAL_SUITE_TOKENS = {"adaptllm": 2.0e7, "world": 1.0e5}
#: Longest request an evaluation forward sees (batch 1); lm-eval's batch_size "auto" then fills
#: what remains of the GPU.
EVAL_MAX_TOKENS = 2048

TRAIN_RULE_KINDS = ("train",)
REPORT_NAMES = {
    "report_table1": "Table 1",
    "report_table2": "Table 2",
    "report_table3": "Table 3",
    "report_table4": "Table 4",
    "report_table5": "Table 5",
    "report_table6": "Table 6",
    "report_table9": "Table 9",
    "report_figure4": "Figure 4",
    "report_figure6": "Figure 6",
    "report_claims": "Claims",
    "report_released": "Released models",
}

DEFAULTS = {
    "gpu_memory_gb": 80.0,
    "gpu_overhead_gb": 3.0,
    "mfu": 0.4,
    "eval_mfu": 0.2,
    "synthesis_tokens_per_s": 5000.0,
    "peak_flops": 312e12,
}


class PlanError(ValueError):
    """A job the plan cannot estimate (unknown model, missing config); the message names it."""


# ----------------------------------------------------------------------------- model sizes


def param_counts(arch: dict) -> dict:
    """Parameters of a decoder-only LM: embeddings, output head (0 when tied), one decoder layer,
    the root FSDP unit (embeddings + head + final norm) and the total. Biases are ignored."""
    h, f, v = arch["hidden_size"], arch["intermediate_size"], arch["vocab_size"]
    kv = arch["num_kv_heads"] * (h // arch["num_heads"])
    attn = 2 * h * h + 2 * h * kv  # q, o + k, v
    mlp = (2 if arch.get("mlp", "swiglu") == "gelu" else 3) * h * f
    layer = attn + mlp + 2 * h  # + two norms
    embed = v * h
    head = 0 if arch.get("tie_embeddings") else v * h
    root = embed + head + h
    return {
        "embedding": embed,
        "head": head,
        "layer": layer,
        "root": root,
        "total": root + arch["num_layers"] * layer,
    }


def layer_activation_bytes_per_token(arch: dict, bytes_per_elem: int = 2) -> int:
    """Bytes one decoder layer keeps for backward per token: 18 h + 4 h_kv + 8 f in bf16 (module
    docstring); GELU MLPs keep 4 f instead of 8 f. Doubled for fp32 compute."""
    h, f = arch["hidden_size"], arch["intermediate_size"]
    kv = arch["num_kv_heads"] * (h // arch["num_heads"])
    mlp = 4 * f if arch.get("mlp", "swiglu") == "gelu" else 8 * f
    return (18 * h + 4 * kv + mlp) * bytes_per_elem // 2


def _train_dict(train) -> dict:
    return dataclasses.asdict(train) if dataclasses.is_dataclass(train) else dict(train)


def estimate_training_memory(
    arch: dict,
    train: dict,
    seq_len: int,
    world: int,
    vocab_size: int,
    overhead_gb: float = DEFAULTS["gpu_overhead_gb"],
) -> dict:
    """Peak memory per GPU of a training job (module docstring): a breakdown in bytes, its sum
    without the overhead (``allocated_gb``, comparable with torch.cuda.max_memory_allocated) and
    with it (``total_gb``). `train` is the job's settings as `check_train` resolves them (a dict or
    a TrainConfig): ``micro_batch_size`` per process, ``precision``, ``gradient_checkpointing``,
    ``loss_chunk_tokens``."""
    if world < 1:
        raise PlanError(f"estimate_training_memory: world {world} < 1")
    t = _train_dict(train)
    arch = {**arch, "vocab_size": vocab_size}
    n = param_counts(arch)
    wb = 4 if t.get("precision", "bf16") == "fp32" else 2  # compute dtype bytes
    tokens = int(t["micro_batch_size"]) * int(seq_len)
    a_layer = layer_activation_bytes_per_token(arch, wb)
    layers = arch["num_layers"]
    if t.get("gradient_checkpointing"):
        activations = layers * tokens * wb * arch["hidden_size"] + tokens * a_layer
    else:
        activations = layers * tokens * a_layer
    chunk = int(t.get("loss_chunk_tokens") or 0) or tokens
    chunk = min(chunk, tokens)
    if world > 1:
        gathered = wb * (2 * n["root"] + 3 * n["layer"])
    else:  # no FSDP: autocast keeps a bf16 copy of every weight through the forward
        gathered = 2 * n["total"] if wb == 2 else 0
    breakdown = {
        "params_grads_optimizer": 16 * n["total"] / world,
        "gathered_params_grads": float(gathered),
        "activations": float(activations),
        "loss": 12.0 * chunk * vocab_size,
    }
    allocated = sum(breakdown.values())
    breakdown["overhead"] = overhead_gb * GiB
    return {
        "bytes": breakdown,
        "parameters": n["total"],
        "tokens_per_micro_batch": tokens,
        "loss_chunk_tokens": chunk,
        "allocated_gb": allocated / GiB,
        "total_gb": (allocated + breakdown["overhead"]) / GiB,
    }


def kv_bytes_per_token(arch: dict, bytes_per_elem: int = 2) -> int:
    """K and V of every layer for one token."""
    kv = arch["num_kv_heads"] * (arch["hidden_size"] // arch["num_heads"])
    return 2 * arch["num_layers"] * kv * bytes_per_elem


def estimate_inference_memory(
    arch: dict,
    gpus: int,
    seq_tokens: int,
    batch: int = 1,
    dtype_bytes: int = 2,
    overhead_gb: float = DEFAULTS["gpu_overhead_gb"],
) -> dict:
    """A forward pass (lm-eval loglikelihood or transformers generation) with the weights split
    over `gpus`: weights / gpus + the KV cache of `batch` x `seq_tokens` tokens / gpus + one
    layer's transient activations and the last forward's logits (bf16 and fp32 log-softmax)."""
    g = max(1, gpus)
    n = param_counts(arch)["total"]
    tokens = batch * seq_tokens
    breakdown = {
        "weights": dtype_bytes * n / g,
        "kv_cache": kv_bytes_per_token(arch, dtype_bytes) * tokens / g,
        "activations": float(
            tokens * (4 * arch["hidden_size"] + 2 * arch["intermediate_size"]) * dtype_bytes
        ),
        "logits": float(tokens * arch["vocab_size"] * (dtype_bytes + 4)),
        "overhead": overhead_gb * GiB,
    }
    return {"bytes": breakdown, "parameters": n, "total_gb": sum(breakdown.values()) / GiB}


def estimate_vllm_memory(
    arch: dict,
    gpus: int,
    max_model_len: int,
    gpu_memory_gb: float,
    utilization: float,
    dtype_bytes: int = 2,
) -> dict:
    """vLLM reserves `utilization` of each GPU: the weights (tensor parallel over `gpus`), the
    rest KV cache. It fits when the weights plus one max_model_len sequence's KV cache do."""
    g = max(1, gpus)
    n = param_counts(arch)["total"]
    budget = utilization * gpu_memory_gb * GiB
    weights = dtype_bytes * n / g
    one_seq = kv_bytes_per_token(arch, dtype_bytes) * max_model_len / g
    return {
        "bytes": {"weights": weights, "kv_cache": max(0.0, budget - weights)},
        "parameters": n,
        "needs_gb": (weights + one_seq) / GiB,
        "total_gb": max(budget, weights + one_seq) / GiB,
        "fits": weights + one_seq <= budget,
    }


# ----------------------------------------------------------------------------- time


def training_gpu_seconds(flops: float, peak_flops: float, mfu: float) -> float:
    """GPU-seconds to do `flops` model FLOPs at `mfu` of `peak_flops` per GPU."""
    return flops / (peak_flops * mfu)


def trained_tokens(train: dict, seq_len: int) -> int | None:
    """Tokens a run processes: steps x batch_size x seq_len (steps as `TrainConfig.total_steps`);
    None when only epochs are given (the row count is known only once the data exists)."""
    t = _train_dict(train)
    if t.get("steps") is not None:
        steps = int(t["steps"])
    elif t.get("tokens") is not None:
        steps = math.ceil(t["tokens"] / (t["batch_size"] * seq_len))
    else:
        return None
    return steps * t["batch_size"] * seq_len


def measured_mfu(checkpoint_dir: str | None) -> float | None:
    """The median `mfu` of a run's timing.jsonl (past its first 10% of records), if measured
    (metrics.jsonl of runs from before the timing log was split from it)."""
    from instruct_pt.common import iter_log_jsonl

    if not checkpoint_dir:
        return None
    path = Path(checkpoint_dir) / "timing.jsonl"
    if not path.is_file():
        path = Path(checkpoint_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    values = [
        float(rec["mfu"])
        for _, rec in iter_log_jsonl(path)
        if isinstance(rec.get("mfu"), int | float) and rec["mfu"] > 0
    ]
    if not values:
        return None
    return statistics.median(values[len(values) // 10 :])


def eval_tokens(setting: dict, suite: dict) -> float:
    """Tokens an evaluation setting scores (order of magnitude; EVAL_TASKS)."""
    if suite["source"] != "lm_eval":
        return EVAL_SUITE_TOKENS.get(suite["source"], EVAL_SUITE_TOKENS["adaptllm"])
    tasks = suite.get("tasks") or {}
    names = setting.get("tasks") or list(tasks)
    total = 0.0
    for name in names:
        spec = tasks.get(name, {})
        lm_task = spec.get("lm_eval_task", name)
        docs, choices, length = EVAL_TASKS.get(lm_task, (1000, 4, 100))
        if setting.get("limit"):
            docs = min(docs, int(setting["limit"]))
        shots = setting.get("num_fewshot", spec.get("num_fewshot", 0)) or 0
        total += docs * choices * length * (1 + shots)
    return total


# ----------------------------------------------------------------------------- models of jobs


def hf_config_arch(path: Path) -> dict:
    """Our arch dict from a Hugging Face config.json (Llama/Mistral, GPT-NeoX, BLOOM)."""
    c = json.loads(path.read_text(encoding="utf-8"))
    h = c.get("hidden_size", c.get("n_embed"))
    heads = c.get("num_attention_heads", c.get("n_head"))
    gelu = c.get("model_type") in ("gpt_neox", "bloom", "gpt2")
    return {
        "family": c.get("model_type", "unknown"),
        "vocab_size": c["vocab_size"],
        "hidden_size": h,
        "num_layers": c.get("num_hidden_layers", c.get("n_layer")),
        "num_heads": heads,
        "num_kv_heads": c.get("num_key_value_heads", heads),
        "intermediate_size": c.get("intermediate_size") or 4 * h,
        "tie_embeddings": bool(c.get("tie_word_embeddings", c.get("model_type") == "bloom")),
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "mlp": "gelu" if gelu else "swiglu",
    }


def tokenizer_vocab(config: dict, name: str) -> int:
    spec = config["tokenizers"][name]
    if spec.get("vocab_size"):
        return int(spec["vocab_size"])
    if spec.get("id") in HUB_VOCAB:
        return HUB_VOCAB[spec["id"]]
    raise PlanError(
        f"config key 'tokenizers.{name}': vocabulary size unknown (add vocab_size, or the id to "
        "instruct_pt.plan.HUB_VOCAB)"
    )


def model_arch(model: str, config: dict) -> dict:
    """The architecture (with vocab_size) of a model id of the workflow: base-<name>,
    scratch-<size>-<v>, it-<size>-<v>[-stepN], cpt-<domain>-<v>, synthesizer."""
    run = config["run"]
    m = re.fullmatch(r"(?:scratch|it)-(.+?)-[a-z_]+(?:-step\d+)?", model)
    if m and m.group(1) in config["pretrain"]["sizes"]:
        arch = config["pretrain"]["sizes"][m.group(1)]["arch"]
        return {**arch, "vocab_size": tokenizer_vocab(config, config["pretrain"]["tokenizer"])}
    if model.startswith("cpt-"):
        return model_arch(f"base-{config['continual_pretrain']['base_model']}", config)
    if model == "synthesizer":
        return model_arch(f"base-{config['synthesizer']['base_model']}", config)
    m = re.fullmatch(r"base-(.+)", model)
    if not m or m.group(1) not in config["base_models"]:
        raise PlanError(f"model {model!r}: not a model of this workflow")
    name = m.group(1)
    spec = config["base_models"][name]
    if spec["source"] == "pretrain":
        return {**spec["arch"], "vocab_size": tokenizer_vocab(config, spec["tokenizer"])}
    local = Path(spec["path"] if spec["source"] == "local" else f"results/{run}/models/{model}")
    if (local / "config.json").is_file():
        return hf_config_arch(local / "config.json")
    if spec.get("id") in HUB_ARCHS:
        return dict(HUB_ARCHS[spec["id"]])
    raise PlanError(
        f"config key 'base_models.{name}': architecture of {spec.get('id') or spec.get('path')!r} "
        "unknown (no config.json yet; add it to instruct_pt.plan.HUB_ARCHS)"
    )


def _model_in(paths, run: str) -> str | None:
    for p in paths:
        m = re.fullmatch(rf"results/{re.escape(run)}/models/([^/]+)(?:/.*)?", str(p))
        if m:
            return m.group(1)
    return None


def _seq_len(job: dict) -> int | None:
    if job["params"].get("seq_len"):
        return int(job["params"]["seq_len"])
    for p in job["input"]:
        m = re.search(r"\.L(\d+)$", str(p))
        if m:
            return int(m.group(1))
    return None


# ----------------------------------------------------------------------------- one job


def job_kind(job: dict) -> str:
    """train | generate | evaluate | cpu | unknown, from what the job's params hold."""
    p, gpus = job["params"], int(job["resources"].get("gpu", 0) or 0)
    if isinstance(p.get("train"), dict):
        return "train"
    if gpus == 0:
        return "cpu"
    if isinstance(p.get("engine"), dict):
        return "generate"
    if "model_path" in p:
        return "evaluate"
    return "unknown"


def _settings(config: dict) -> dict:
    compute = config.get("compute", {})
    s = {k: compute.get(k, v) for k, v in DEFAULTS.items()}
    s["peak_flops"] = compute.get("peak_flops") or DEFAULTS["peak_flops"]
    return s


def _corpus(config: dict, corpus: str) -> dict | None:
    """plan.corpora.<corpus> ({texts, tokens}): the paper's corpora, so only at paper scale."""
    if config.get("scale", "paper") != "paper":
        return None
    return (config.get("plan") or {}).get("corpora", {}).get(corpus)


def plan_job(job: dict, config: dict) -> dict:
    """One job's record: kind, GPUs, processes, memory per GPU (breakdown), fits, start-up check,
    GPU-hours, disk. Raises nothing for a bad job: the record says why it fails."""
    from instruct_pt.training.modeling import flops_per_token

    s = _settings(config)
    gpus = int(job["resources"].get("gpu", 0) or 0)
    kind = job_kind(job)
    rec = {
        "name": job["name"],
        "rule": job["rule"],
        "wildcards": job["wildcards"],
        "kind": kind,
        "gpus": gpus,
        "processes": 1,
        "model": None,
        "parameters": None,
        "memory_gb_per_gpu": 0.0,
        "memory_breakdown_gb": {},
        "fits": True,
        "check": "ok",
        "gpu_hours": 0.0,
        "wall_hours": 0.0,
        "time_basis": None,
        "disk_gb": 0.0,
        "problems": [],
    }
    try:
        if kind == "train":
            _plan_train(job, rec, config, s, gpus, flops_per_token)
        elif kind == "evaluate":
            _plan_evaluate(job, rec, config, s, gpus)
        elif kind == "generate":
            _plan_generate(job, rec, config, s, gpus)
        elif kind == "unknown":
            rec["problems"].append("GPU job of a kind the plan does not estimate")
        else:
            _plan_cpu(job, rec, config)
    except PlanError as e:
        rec["problems"].append(str(e))
    if rec["problems"]:
        rec["fits"] = False
    if rec["gpus"] and rec["memory_gb_per_gpu"] > s["gpu_memory_gb"]:
        rec["fits"] = False
        rec["problems"].append(
            f"needs {rec['memory_gb_per_gpu']:.1f} GB per GPU > compute.gpu_memory_gb "
            f"{s['gpu_memory_gb']:g}"
        )
    return rec


def _gb(breakdown: dict) -> dict:
    return {k: round(v / GiB, 3) for k, v in breakdown.items()}


def _plan_train(job, rec, config, s, gpus, flops_per_token) -> None:
    from instruct_pt.common import DataError
    from instruct_pt.training.settings import check_train

    world = gpus or 1
    rec["processes"] = world
    try:
        cfg = check_train(job["params"]["train"], world=world)
    except DataError as e:
        rec["check"] = str(e)
        rec["problems"].append(f"start-up check: {e}")
        return
    model = _model_in(job["output"], config["run"])
    if model is None:
        raise PlanError("no model folder among the outputs")
    rec["model"] = model
    arch = model_arch(model, config)
    seq_len = _seq_len(job)
    if seq_len is None:
        raise PlanError("sequence length unknown (no params.seq_len, no packed .L<n> input)")
    train = dataclasses.asdict(cfg)
    mem = estimate_training_memory(
        arch, train, seq_len, world, arch["vocab_size"], overhead_gb=s["gpu_overhead_gb"]
    )
    rec["parameters"] = mem["parameters"]
    rec["memory_gb_per_gpu"] = round(mem["total_gb"], 2)
    rec["memory_breakdown_gb"] = _gb(mem["bytes"])
    rec["micro_batch_tokens"] = mem["tokens_per_micro_batch"]
    tokens = trained_tokens(train, seq_len)
    mfu, basis = s["mfu"], "compute.mfu"
    measured = measured_mfu(job["params"].get("checkpoint_dir"))
    if measured:
        mfu, basis = measured, f"measured mfu in {job['params']['checkpoint_dir']}/metrics.jsonl"
    if not gpus:
        rec["time_basis"] = "no GPU: runs on the CPU (memory is host memory)"
    elif tokens is not None:
        flops = flops_per_token(arch, seq_len) * tokens
        gpu_s = training_gpu_seconds(flops, s["peak_flops"], mfu)
        rec["gpu_hours"] = gpu_s / 3600
        rec["wall_hours"] = gpu_s / 3600 / world
        rec["time_basis"] = f"{tokens:.3g} tokens, {flops:.3g} FLOPs at MFU {mfu:.2f} ({basis})"
    else:
        rec["time_basis"] = "epochs only: tokens unknown before the data exists"
    n = mem["parameters"]
    keep = int(train.get("keep_checkpoints", 2))
    export = 4 if train.get("export_dtype", "float32") == "float32" else 2
    # instruction_tune keeps each saved step twice (checkpoint exports and the model folder)
    steps = job["params"].get("save_steps")
    copies = 2 * (len(steps) + 1) if steps is not None else 1
    rec["disk_gb"] = round((export * n * copies + 12 * n * keep) / GiB, 2)


def _plan_evaluate(job, rec, config, s, gpus) -> None:
    model = job["wildcards"].get("model") or _model_in(job["input"], config["run"])
    rec["model"] = model
    arch = model_arch(model, config)
    dtype = 4 if str(job["params"].get("dtype", "bfloat16")) in ("float32", "fp32") else 2
    length = min(int(arch.get("max_position_embeddings", EVAL_MAX_TOKENS)), EVAL_MAX_TOKENS)
    batch = job["params"].get("batch_size")
    batch = int(batch) if isinstance(batch, int) or str(batch).isdigit() else 1
    mem = estimate_inference_memory(arch, gpus, length, batch, dtype, s["gpu_overhead_gb"])
    rec["parameters"] = mem["parameters"]
    rec["memory_gb_per_gpu"] = round(mem["total_gb"], 2)
    rec["memory_breakdown_gb"] = _gb(mem["bytes"])
    setting = job["params"]["setting"]
    suite = config["evaluation"]["suites"][setting["suite"]]
    tokens = eval_tokens(setting, suite)
    wall = 2 * mem["parameters"] * tokens / (s["peak_flops"] * s["eval_mfu"])
    rec["wall_hours"] = wall / 3600
    rec["gpu_hours"] = wall * gpus / 3600
    rec["time_basis"] = f"~{tokens:.2g} tokens scored at eval MFU {s['eval_mfu']:.2f}"


def _plan_generate(job, rec, config, s, gpus) -> None:
    model = _model_in(job["input"], config["run"])
    if model is None:
        raise PlanError("no model folder among the inputs")
    rec["model"] = model
    arch = model_arch(model, config)
    p = job["params"]
    engine = p["engine"]
    max_len = int(p.get("max_model_len", 4096))
    if engine.get("engine") == "vllm":
        rec["processes"] = max(1, gpus)  # one vLLM worker per GPU (tensor parallel)
        util = float(engine.get("gpu_memory_utilization", 0.9))
        mem = estimate_vllm_memory(arch, gpus, max_len, s["gpu_memory_gb"], util)
        if not mem["fits"]:
            rec["problems"].append(
                f"vLLM: weights + one {max_len}-token sequence need {mem['needs_gb']:.1f} GB "
                f"> gpu_memory_utilization {util} x {s['gpu_memory_gb']:g} GB"
            )
    else:
        dtype = 4 if str(engine.get("dtype", "bfloat16")) in ("float32", "fp32") else 2
        batch = int(engine.get("batch_size", 1))
        mem = estimate_inference_memory(arch, gpus, max_len, batch, dtype, s["gpu_overhead_gb"])
    rec["parameters"] = mem["parameters"]
    rec["memory_gb_per_gpu"] = round(mem["total_gb"], 2)
    rec["memory_breakdown_gb"] = _gb(mem["bytes"])
    new = int(p.get("max_new_tokens", 400))
    corpus = job["wildcards"].get("corpus")
    size = _corpus(config, corpus) if corpus else None
    if corpus and "rounds" in p:
        if size is None:
            rec["time_basis"] = f"config plan.corpora.{corpus} missing: time unknown"
            return
        fraction = config["synthesis"]["corpora"][corpus]["fraction"]
        shards = config["synthesis"]["n_shards"]
        texts = size["texts"] * fraction / shards
        raw = size["tokens"] * fraction / shards
        generated = texts * int(p["rounds"]) * new
        rec["paper_gpu_hours"] = 24 * raw / 1e9  # about one A100-day per 1B raw tokens [S2]
        rec["disk_gb"] = round((raw + generated) * 4 / GiB, 3)  # ~4 bytes of text per token
    else:
        generated = int(p.get("n_examples", 1)) * 2 * new  # held-out seen + unseen splits
    gpu_s = generated / s["synthesis_tokens_per_s"]
    rec["gpu_hours"] = gpu_s / 3600
    rec["wall_hours"] = gpu_s / 3600 / max(1, gpus)
    rec["time_basis"] = (
        f"<= {generated:.3g} generated tokens at {s['synthesis_tokens_per_s']:g} tokens/s per GPU"
    )


def _plan_cpu(job, rec, config) -> None:
    """CPU jobs take no GPU time; the bulky ones get a disk estimate."""
    rule, p = job["rule"], job["params"]
    if (
        rule == "base_model"
        and isinstance(p.get("spec"), dict)
        and p["spec"].get("source") == "hub"
    ):
        model = _model_in(job["output"], config["run"])
        rec["model"] = model
        arch = model_arch(model, config)
        n = param_counts(arch)["total"]
        rec["parameters"] = n
        rec["disk_gb"] = round(2 * n / GiB, 2)  # bf16 weights, once in the HF cache
        return
    if rule == "pack":
        mixture = job["wildcards"].get("mixture", "")
        tokens = _mixture_tokens(mixture, config)
        if tokens:
            vocab = tokenizer_vocab(config, job["wildcards"]["tokenizer"])
            rec["disk_gb"] = round(tokens * (2 if vocab < 65536 else 4) / GiB, 2)


def _mixture_tokens(mixture: str, config: dict) -> float | None:
    group, _, _ = mixture.partition("-")
    size = _corpus(config, group)
    if size is None:
        return None
    if group == "general":
        return float(size["tokens"])
    return float(size["tokens"]) * (1 + config["continual_pretrain"]["instruction_ratio"])


# ----------------------------------------------------------------------------- the whole plan


def job_name(rule: str, wildcards: dict) -> str:
    wc = {k: v for k, v in wildcards.items() if k != "run"}
    return rule + ("[" + ",".join(f"{k}={v}" for k, v in wc.items()) + "]" if wc else "")


def make_plan(jobs: list[dict], config: dict, targets: list[str]) -> dict:
    """The plan of a job list (`dag_jobs` records): one record per job, totals per rule, per
    table / figure (every job upstream of its report job, so a shared job counts in each) and the
    failures (jobs that do not fit or fail their start-up check)."""
    s = _settings(config)
    records = [plan_job(j, config) for j in jobs]
    by_name = {r["name"]: r for r in records}
    upstream = _upstream({j["name"]: j["deps"] for j in jobs})
    tables = {}
    for j in jobs:
        label = REPORT_NAMES.get(j["rule"])
        if label is None:
            continue
        names = sorted(upstream[j["name"]] | {j["name"]})
        tables[label] = {
            "report_job": j["name"],
            "jobs": len(names),
            "gpu_hours": round(sum(by_name[n]["gpu_hours"] for n in names), 1),
            "gpu_hours_by_kind": _by_kind(by_name[n] for n in names),
        }
    for r in records:
        r["tables"] = sorted(
            label for label, t in tables.items()
            if r["name"] == t["report_job"] or r["name"] in upstream[t["report_job"]]
        )  # fmt: skip
        r["gpu_hours"] = round(r["gpu_hours"], 3)
        r["wall_hours"] = round(r["wall_hours"], 3)
    failures = [{"name": r["name"], "problems": r["problems"]} for r in records if not r["fits"]]
    return {
        "run": config["run"],
        "targets": list(targets),
        "assumptions": {
            **s,
            "corpora": (config.get("plan") or {}).get("corpora"),
            "gb": "GiB (2^30 bytes)",
        },
        "totals": {
            "jobs": len(records),
            "jobs_by_rule": dict(sorted(Counter(r["rule"] for r in records).items())),
            "gpu_jobs": sum(1 for r in records if r["gpus"]),
            "gpu_hours": round(sum(r["gpu_hours"] for r in records), 1),
            "gpu_hours_by_kind": _by_kind(records),
            "disk_gb": round(sum(r["disk_gb"] for r in records), 1),
            "max_memory_gb_per_gpu": max((r["memory_gb_per_gpu"] for r in records), default=0),
            "tables": tables,
        },
        "failures": failures,
        "jobs": records,
    }


def _by_kind(records) -> dict:
    out: dict[str, float] = defaultdict(float)
    for r in records:
        out[r["kind"]] += r["gpu_hours"]
    return {k: round(v, 1) for k, v in sorted(out.items()) if round(v, 1)}


def _upstream(deps: dict[str, list[str]]) -> dict[str, set[str]]:
    """Every job's transitive dependencies."""
    memo: dict[str, set[str]] = {}

    def visit(name: str) -> set[str]:
        if name not in memo:
            memo[name] = set()
            acc: set[str] = set()
            for d in deps.get(name, ()):
                acc |= {d} | visit(d)
            memo[name] = acc
        return memo[name]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for name in deps:
        visit(name)
    return memo


def render_md(plan: dict) -> str:
    """plan.md: assumptions, totals per table / figure, GPU jobs (grouped), failures."""
    a, t = plan["assumptions"], plan["totals"]
    lines = [
        f"# Plan of run `{plan['run']}` (targets: {', '.join(plan['targets'])})",
        "",
        f"{t['jobs']} jobs ({t['gpu_jobs']} on GPUs); {t['gpu_hours']:,.0f} GPU-hours in all "
        f"({', '.join(f'{k} {v:,.0f}' for k, v in t['gpu_hours_by_kind'].items())}); "
        f"~{t['disk_gb']:,.0f} GB of disk; the largest job needs "
        f"{t['max_memory_gb_per_gpu']:.1f} GB per GPU of {a['gpu_memory_gb']:g}.",
        "",
        f"Assumptions: peak {a['peak_flops']:.3g} FLOP/s per GPU, training MFU {a['mfu']}, "
        f"evaluation MFU {a['eval_mfu']}, synthesis {a['synthesis_tokens_per_s']:g} generated "
        f"tokens/s per GPU, {a['gpu_overhead_gb']:g} GB overhead per GPU; GB = GiB. Formulas: "
        "docs/plan.md.",
        "",
        "## GPU-hours per table and figure",
        "",
        "Every job upstream of a table counts in it: a job shared by several tables (the "
        "synthesizer, the synthesis, the base models, a model evaluated in two tables) is "
        "counted in each, so the rows do not add up to the total.",
        "",
        "| table / figure | jobs | GPU-hours | of which |",
        "|---|---:|---:|---|",
    ]
    for label, tt in plan["totals"]["tables"].items():
        kinds = ", ".join(f"{k} {v:,.0f}" for k, v in tt["gpu_hours_by_kind"].items())
        lines.append(f"| {label} | {tt['jobs']} | {tt['gpu_hours']:,.0f} | {kinds} |")
    lines += [
        "",
        "## GPU jobs",
        "",
        "Jobs of one rule with the same estimate are one row (e.g. the synthesis shards).",
        "",
        "| job | GPUs | GB per GPU | fits | GPU-hours | disk GB | memory (GB) | time basis |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in plan["jobs"]:
        if r["gpus"] or r["kind"] == "train":
            key = (r["rule"], r["gpus"], r["memory_gb_per_gpu"], r["gpu_hours"], r["fits"])
            groups[key].append(r)
    for rs in groups.values():
        r = rs[0]
        name = r["name"] if len(rs) == 1 else f"{r['rule']} x {len(rs)} (e.g. {r['name']})"
        mem = ", ".join(f"{k} {v:.1f}" for k, v in r["memory_breakdown_gb"].items())
        lines.append(
            f"| {name} | {r['gpus']} | {r['memory_gb_per_gpu']:.1f} | "
            f"{'yes' if r['fits'] else '**NO**'} | {r['gpu_hours'] * len(rs):,.1f} | "
            f"{r['disk_gb'] * len(rs):,.1f} | {mem} | {r['time_basis'] or ''} |"
        )
    synth = [r for r in plan["jobs"] if "paper_gpu_hours" in r]
    if synth:
        ours = sum(r["gpu_hours"] for r in synth)
        paper = sum(r["paper_gpu_hours"] for r in synth)
        lines += [
            "",
            f"Synthesis: {ours:,.0f} GPU-hours here vs {paper:,.0f} at the paper's 'about one "
            "A100-day per 1B raw tokens' [S2] for the same raw tokens (ours counts every "
            "round's full max_new_tokens: an upper bound).",
        ]
    lines += ["", "## Jobs per rule", "", "| rule | jobs |", "|---|---:|"]
    lines += [f"| `{k}` | {v} |" for k, v in t["jobs_by_rule"].items()]
    lines += ["", "## Failures", ""]
    if plan["failures"]:
        for f in plan["failures"]:
            lines.append(f"- **{f['name']}**: {'; '.join(f['problems'])}")
    else:
        lines.append("None: every job fits its GPUs and passes its start-up check.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the DAG


def dag_jobs(
    snakefile: str | Path,
    config: dict,
    targets: list[str],
    workdir: str | Path = ".",
    overwrite_resources: dict | None = None,
) -> list[dict]:
    """Every job Snakemake would run for `targets` with this config, as plain records: name,
    rule, wildcards, params (evaluated), resources, threads, input, output, deps (job names).

    Snakemake's API in this process, dry: the DAG is built with every job forced (as if nothing
    existed yet), without a lock and without a log file, so an outer run's .snakemake state is
    not touched (its folders are only created if missing). `config` is the outer run's merged
    config (it replaces config.yaml's values key by key); `overwrite_resources` the outer run's
    --set-resources.
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    out = OutputSettings(dryrun=True, enable_file_logging=False, quiet={Quietness.ALL})
    with SnakemakeApi(out) as api:
        wapi = api.workflow(
            resource_settings=ResourceSettings(
                cores=1 << 16, overwrite_resources=overwrite_resources or {}
            ),
            config_settings=ConfigSettings(config=config),
            snakefile=Path(snakefile).absolute(),
            workdir=Path(workdir).absolute(),
        )
        dag_api = wapi.dag(DAGSettings(targets=frozenset(targets), forceall=True))
        workflow = dag_api.workflow_api._workflow
        # As Workflow.printdag does it, with no lock (an outer run may hold one).
        workflow._prepare_dag(
            forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True
        )
        workflow._build_dag()
        dag = workflow.dag
        names = {job: job_name(job.rule.name, dict(job.wildcards)) for job in dag.jobs}
        records = []
        for job in dag.jobs:
            resources = {k: v for k, v in dict(job.resources).items() if not k.startswith("_")}
            records.append(
                {
                    "name": names[job],
                    "rule": job.rule.name,
                    "wildcards": dict(job.wildcards),
                    "params": _plain(dict(job.params)),
                    "resources": _plain(resources),
                    "threads": job.threads,
                    "input": [str(f) for f in job.input],
                    "output": [str(f) for f in job.output],
                    "deps": sorted(names[d] for d in dag.dependencies[job]),
                }
            )
    return sorted(records, key=lambda r: r["name"])


def _plain(obj):
    """JSON-safe copy (Snakemake's Namedlists and Maps become lists and dicts)."""
    return json.loads(json.dumps(obj, default=lambda o: dict(o) if hasattr(o, "items") else str(o)))


def config_digest(config: dict) -> str:
    """A digest of the merged config: rule `plan`'s param, so that a changed config replans."""
    import hashlib

    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_plan(plan: dict) -> list[str]:
    """Failure lines naming each job that does not fit or fails its start-up check."""
    return [f"{f['name']}: {'; '.join(f['problems'])}" for f in plan["failures"]]


def _resource_overrides(workflow) -> dict:
    """The outer run's --set-resources (profile `set-resources`) as plain JSON values."""
    out: dict[str, dict] = {}
    raw = getattr(workflow.resource_settings, "overwrite_resources", None) or {}
    for rule, mapping in dict(raw).items():
        values = {}
        for key, value in dict(mapping).items():
            value = getattr(value, "value", value)  # a snakemake.resources.Resource
            if isinstance(value, int | float | str) or value is None:
                values[key] = value
        out[rule] = values
    return out


def run_nested(workflow, config: dict, targets, json_out: str, md_out: str, log_path: str):
    """Rule `plan`'s body: `python -m instruct_pt.plan` in a fresh process (this job already
    runs inside Snakemake's event loop, where its API cannot build a second DAG), with this run's
    Snakefile, merged config and resource overrides; its output goes to the log. Raises, naming
    the failing jobs, when the plan fails."""
    import os
    import subprocess
    import tempfile

    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path, res_path = Path(tmp) / "config.json", Path(tmp) / "resources.json"
        cfg_path.write_text(json.dumps(config, default=str), encoding="utf-8")
        res_path.write_text(json.dumps(_resource_overrides(workflow)), encoding="utf-8")
        cmd = [
            sys.executable, "-m", "instruct_pt.plan", "--snakefile", workflow.main_snakefile,
            "--config-json", str(cfg_path), "--resources-json", str(res_path),
            "--json", json_out, "--md", md_out, "--targets", *targets,
        ]  # fmt: skip
        with open(log_path, "w", encoding="utf-8") as log:
            rc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), check=False
            ).returncode
    if rc:
        text = Path(log_path).read_text(encoding="utf-8")
        tail = text[text.rfind("plan FAILED") :] if "plan FAILED" in text else text[-3000:]
        raise RuntimeError(f"{tail.strip()}\n(full plan in {log_path})")


def main(argv: list[str] | None = None) -> int:
    """`python -m instruct_pt.plan`: plan a workflow's DAG; exit 1 when a job fails the plan."""
    from instruct_pt.common import write_json
    from instruct_pt.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snakefile", default="Snakefile")
    ap.add_argument("--configfile", nargs="+", help="config files (merged in order)")
    ap.add_argument("--config-json", help="the outer run's merged config as JSON")
    ap.add_argument("--resources-json", help="the outer run's --set-resources as JSON")
    ap.add_argument("--targets", nargs="+", default=None)
    ap.add_argument("--json", required=True, dest="json_out")
    ap.add_argument("--md", required=True)
    args = ap.parse_args(argv)
    if args.config_json:
        config = json.loads(Path(args.config_json).read_text(encoding="utf-8"))
    else:
        config = load_config(*(args.configfile or ["config.yaml"]))
    resources = (
        json.loads(Path(args.resources_json).read_text(encoding="utf-8"))
        if args.resources_json
        else None
    )
    targets = args.targets or (config.get("plan") or {}).get("targets") or ["all"]
    jobs = dag_jobs(args.snakefile, config, targets, overwrite_resources=resources)
    plan = make_plan(jobs, config, targets)
    md = render_md(plan)
    write_json(args.json_out, plan)
    Path(args.md).write_text(md, encoding="utf-8")
    print(md)
    problems = check_plan(plan)
    if problems:
        print(
            f"plan FAILED: {len(problems)} job(s) do not fit or fail their start-up check:\n"
            + "\n".join(problems),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
