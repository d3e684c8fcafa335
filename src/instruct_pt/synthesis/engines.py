"""Generation engines for the synthesizer: greedy decoding through vLLM or plain transformers.

An :class:`Engine` turns prompts into the new text, cut at ``</s>``; :func:`load_engine` builds one
from a rule's ``engine`` settings (vLLM on GPUs, as the paper's released pipeline; batched
transformers ``generate`` on CPU or one GPU).
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Protocol

from tqdm import tqdm

from ..progress import quiet_progress_bars
from .protocol import EOS

log = logging.getLogger(__name__)


class Engine(Protocol):
    """Greedy generation. ``generate`` returns only the new text, cut at ``</s>``."""

    name: str
    tokens_generated: int  # running count, for throughput stats

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]: ...


def _cut_at_eos(text: str) -> str:
    return text.split(EOS, 1)[0]


def _left_cut(engine, ids: list[list[int]], limit: int) -> list[list[int]]:
    """The engines' last guard: keep the last ``limit`` tokens of an over-long prompt, with a
    warning, counted in ``engine.left_truncated_prompts``. ``synthesize_shard`` fits its prompts
    first, so this cut only meets direct callers (the Table 5 probes, engine checks)."""
    long = sum(1 for x in ids if len(x) > limit)
    if long:
        engine.left_truncated_prompts += long
        log.warning(
            "%s engine: %d prompt(s) over %d tokens lost their beginning (left cut)",
            engine.name,
            long,
            limit,
        )
    return [x[-limit:] for x in ids]


class TransformersEngine:
    """Batched greedy ``model.generate`` with KV cache and left padding (CPU or a single GPU).

    Prompts are tokenized with ``add_special_tokens=False`` (the prompt carries its own ``<s>``),
    left-truncated to ``max_model_len - max_new_tokens`` tokens (with a warning, counted in
    ``left_truncated_prompts``), and sorted by length into batches
    so that little padding is wasted; outputs come back in the prompts' order. ``device``:
    ``"auto"`` is CUDA when available (and ``gpus``, the job's GPUs, is not 0), else the CPU
    (:func:`instruct_pt.devices.resolve_device`).
    """

    name = "transformers"

    def __init__(
        self,
        model_dir: str,
        batch_size: int = 32,
        dtype: str = "float32",
        max_model_len: int = 4096,
        device: str = "auto",
        gpus: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..devices import resolve_device

        self.batch_size = batch_size
        self.max_model_len = max_model_len
        self.device = resolve_device(device, gpus)
        if gpus is not None and gpus > 1 and self.device.startswith("cuda"):
            log.warning("engine 'transformers' uses one GPU of the job's %d (vllm uses all)", gpus)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
        self.model.to(self.device).eval()
        self.eos_id = self.tokenizer.convert_tokens_to_ids(EOS)
        if self.eos_id is None or self.eos_id == self.tokenizer.unk_token_id:
            self.eos_id = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_id
        self.tokens_generated = 0
        self.left_truncated_prompts = 0

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        import torch

        limit = self.max_model_len - max_new_tokens
        if limit < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room in max_model_len={self.max_model_len}"
            )
        ids = _left_cut(
            self, [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts], limit
        )
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        out: list[str] = [""] * len(prompts)
        batches = range(0, len(order), self.batch_size)
        bar_off = len(batches) < 2 or not sys.stderr.isatty()  # no bars in log files
        for start in tqdm(batches, desc="generate", unit="batch", disable=bar_off):
            idx = order[start : start + self.batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(ids[i])
                if n:
                    input_ids[row, width - n :] = torch.tensor(ids[i])
                    mask[row, width - n :] = 1
            with torch.no_grad():
                gen = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=self.eos_id,
                    pad_token_id=self.pad_id,
                )
            for row, i in enumerate(idx):
                new = gen[row, width:].tolist()
                if self.eos_id in new:
                    new = new[: new.index(self.eos_id)]
                self.tokens_generated += len(new)
                out[i] = _cut_at_eos(self.tokenizer.decode(new, skip_special_tokens=True))
        return out

    def close(self) -> None:
        del self.model
        gc.collect()


class VLLMEngine:
    """vLLM, as the paper's released pipeline (``LLM(...)``, ``SamplingParams(temperature=0)``).

    Prompts are passed as token ids (tokenized with ``add_special_tokens=False`` and left-truncated
    to ``max_model_len - max_new_tokens``, with a warning, counted in ``left_truncated_prompts``)
    so vLLM neither adds a second BOS nor rejects an over-long prompt.
    """

    name = "vllm"

    def __init__(
        self,
        model_dir: str,
        max_model_len: int = 4096,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool = False,
        tensor_parallel_size: int = 1,
        seed: int = 0,
    ) -> None:
        try:
            import vllm
        except ImportError as e:
            raise ImportError(
                "engine 'vllm' needs the vllm package (pip install vllm, on a CUDA machine); "
                "use engine 'transformers' on CPU"
            ) from e
        self._vllm = vllm
        self.max_model_len = max_model_len
        self.llm = vllm.LLM(
            model=model_dir,
            max_model_len=max_model_len,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
            tensor_parallel_size=tensor_parallel_size,
            seed=seed,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.tokens_generated = 0
        self.left_truncated_prompts = 0

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        limit = self.max_model_len - max_new_tokens
        params = self._vllm.SamplingParams(temperature=0, max_tokens=max_new_tokens, stop=[EOS])
        ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        inputs = [{"prompt_token_ids": x} for x in _left_cut(self, ids, limit)]
        outputs = self.llm.generate(inputs, params, use_tqdm=sys.stderr.isatty())
        texts = []
        for o in outputs:
            self.tokens_generated += len(o.outputs[0].token_ids)
            texts.append(_cut_at_eos(o.outputs[0].text))
        return texts

    def close(self) -> None:
        del self.llm
        gc.collect()


def make_engine(cfg: dict) -> Engine:
    """Build an engine from ``{"engine": "transformers"|"vllm", "model_dir": ..., **kwargs}``."""
    cfg = dict(cfg)
    kind = cfg.pop("engine", "transformers")
    if kind == "transformers":
        return TransformersEngine(**cfg)
    if kind == "vllm":
        return VLLMEngine(**cfg)
    raise ValueError(f"unknown engine {kind!r} (expected 'transformers' or 'vllm')")


def load_engine(
    model_dir: str, engine_cfg: dict, max_model_len: int, seed: int, gpus: int | None = None
) -> Engine:
    """An engine for ``model_dir`` from ``engine_cfg`` (default transformers), seeded with ``seed``.

    ``gpus`` (optional) is what the job got, the rule's ``gpu`` resource: the transformers
    engine then runs on the CPU when it is 0; vLLM splits the model over them by tensor
    parallelism unless ``engine_cfg`` sets ``tensor_parallel_size``.
    """
    quiet_progress_bars()  # no "Loading weights" bar in a job's log file
    cfg = {"engine": "transformers", **engine_cfg, "model_dir": model_dir}
    cfg.setdefault("max_model_len", max_model_len)
    if cfg["engine"] == "vllm":
        cfg.setdefault("seed", seed)
        if gpus is not None and gpus > 1:
            cfg.setdefault("tensor_parallel_size", gpus)
    else:
        if gpus is not None and cfg["engine"] == "transformers":
            cfg.setdefault("gpus", gpus)
        import torch

        torch.manual_seed(seed)
    return make_engine(cfg)
