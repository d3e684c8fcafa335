"""Models: build a seeded Mistral / Llama from an arch dict, save and load them, count FLOPs.

The paper's from-scratch models are Mistral-architecture (500M, 1.3B) and its continual
pre-training starts from Llama3-8B; at miniature scale the same two families are built tiny. Every
model folder is a plain Hugging Face `save_pretrained` folder (safetensors + config + tokenizer) so
that lm-eval, vLLM and `transformers` all load it without custom code.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from instruct_pt.common import DataError, follow_umask, write_json

log = logging.getLogger(__name__)

# Floating dtypes a trained model may be exported in (train.export_dtype).
EXPORT_DTYPES = ("float32", "bfloat16", "float16")

ARCH_KEYS = (
    "family",
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "intermediate_size",
    "max_position_embeddings",
    "tie_embeddings",
    "rope_theta",
)


def make_config(arch: dict, vocab_size: int, bos_id: int, eos_id: int, pad_id: int | None):
    """A MistralConfig / LlamaConfig from our arch dict (names follow docs/configs, not HF)."""
    from transformers import LlamaConfig, MistralConfig

    missing = [k for k in ARCH_KEYS if k not in arch]
    if missing:
        raise DataError(f"arch: missing key(s) {', '.join(missing)}")
    family = arch["family"]
    if family not in ("mistral", "llama"):
        raise DataError(f"arch: key 'family' must be mistral|llama, got {family!r}")
    if arch["hidden_size"] % arch["num_heads"] or arch["num_heads"] % arch["num_kv_heads"]:
        raise DataError("arch: hidden_size % num_heads and num_heads % num_kv_heads must be 0")
    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["num_layers"],
        num_attention_heads=arch["num_heads"],
        num_key_value_heads=arch["num_kv_heads"],
        max_position_embeddings=arch["max_position_embeddings"],
        tie_word_embeddings=bool(arch["tie_embeddings"]),
        rope_theta=float(arch["rope_theta"]),
        attention_dropout=float(arch.get("attention_dropout", 0.0)),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    if family == "mistral":
        return MistralConfig(sliding_window=arch.get("sliding_window"), **common)
    return LlamaConfig(**common)


def build_model(arch: dict, tokenizer_dir: str, seed: int):
    """A freshly initialised causal LM; vocab and special ids come from the tokenizer.

    Initialisation draws from a forked torch RNG seeded with `seed`, so the same arch + tokenizer
    + seed gives bit-identical weights and the caller's RNG stream is left untouched.
    """
    from transformers import AutoModelForCausalLM

    from instruct_pt.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    config = make_config(arch, len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    log.info(
        "built %s: %.2fM parameters (vocab %d)",
        arch["family"],
        count_parameters(model) / 1e6,
        config.vocab_size,
    )
    return model


def load_model(model_dir: str, dtype: torch.dtype | str | None = None):
    """AutoModelForCausalLM.from_pretrained(model_dir) (a local folder or, at paper scale, a hub id)."""
    from transformers import AutoModelForCausalLM

    kwargs = {} if dtype is None else {"dtype": dtype}
    return AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)


def empty_model(model_dir: str, dtype: torch.dtype = torch.float32):
    """The model of model_dir's config.json with its parameters and buffers on the meta device
    (no memory, no values): the other ranks' copy when rank 0 alone reads the weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def save_model(
    model,
    tokenizer_dir: str,
    out_dir: str,
    extra: dict | None = None,
    state_dict: dict | None = None,
    dtype: str | None = None,
) -> None:
    """Write a complete model folder atomically: safetensors + config + tokenizer (+ train_summary.json).

    The folder is assembled next to out_dir and renamed into place, so a crash never leaves a
    half-written model that a later rule would take for a finished one. `state_dict` overrides the
    model's own tensors (a full state dict gathered from FSDP shards). `dtype` (one of
    EXPORT_DTYPES) casts every floating tensor on the way out and says so in config.json's
    `dtype`; None keeps the tensors as they are.
    """
    from instruct_pt.data.tokenizer import load_tokenizer, save_tokenizer

    if dtype is not None and dtype not in EXPORT_DTYPES:
        raise DataError(f"export dtype must be one of {', '.join(EXPORT_DTYPES)}, got {dtype!r}")

    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    if dtype is not None:
        target = getattr(torch, dtype)
        tensors = model.state_dict() if state_dict is None else state_dict
        state_dict = {
            k: v.to(target) if torch.is_floating_point(v) else v for k, v in tensors.items()
        }
    model.save_pretrained(tmp, state_dict=state_dict)
    if dtype is not None:
        # save_pretrained writes the dtype of the in-memory parameters; the file holds `dtype`.
        config = copy.deepcopy(model.config)
        config.dtype = dtype
        config.save_pretrained(tmp)
    save_tokenizer(load_tokenizer(tokenizer_dir), tmp)
    if extra is not None:
        write_json(tmp / "train_summary.json", extra)
    follow_umask(tmp)  # safetensors writes its file 0600
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def count_parameters(model) -> int:
    """Unique trainable parameters (tied embeddings count once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _arch_numbers(arch_or_config) -> tuple[int, int, int, int, int, int]:
    """(vocab, hidden, layers, heads, kv_heads, ffn) from an arch dict or an HF config."""
    if isinstance(arch_or_config, dict):
        a = arch_or_config
        if "vocab_size" not in a:
            raise DataError("flops_per_token: arch dict needs 'vocab_size'")
        return (
            a["vocab_size"],
            a["hidden_size"],
            a["num_layers"],
            a["num_heads"],
            a["num_kv_heads"],
            a["intermediate_size"],
        )
    c = arch_or_config
    return (
        c.vocab_size,
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.intermediate_size,
    )


def flops_per_token(arch_or_config, seq_len: int) -> float:
    """Training FLOPs per token: 6 N + 12 L H T (PaLM's MFU formula, App. B of Chowdhery et al.).

    N counts the parameters that take part in matrix multiplies (attention and MLP projections and
    the output head; the input embedding is a lookup). 12 L H T is attention's QK^T and AV for a
    full (non-causal-discounted) context of T tokens, forward + backward.
    """
    vocab, hidden, layers, heads, kv_heads, ffn = _arch_numbers(arch_or_config)
    head_dim = hidden // heads
    attn = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim  # q, o + k, v
    mlp = 3 * hidden * ffn  # gate, up, down (SwiGLU)
    n_matmul = layers * (attn + mlp) + vocab * hidden
    return float(6 * n_matmul + 12 * layers * hidden * seq_len)
