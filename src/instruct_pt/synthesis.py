"""Multi-round instruction synthesis over sharded raw corpora (paper §2.2, Fig. 3; facts §1.3).

``split_corpus`` picks the raw texts to convert and spreads them over shards. ``synthesize_shard``
runs the paper's M-round inference on one shard: the shard's texts are cut into M equal chunks; in
round r, text i of chunk r is prompted after the chain of examples (text + synthesized pairs +
``</s>``) built at index i in earlier rounds, so a finished chain is an M-shot example. Decoding is
greedy (temperature 0, 400 new tokens at paper scale) through an :class:`Engine`: vLLM on GPUs,
plain transformers on CPU.

Synthesis is long, so it is resumable: generations are stored batch by batch under
``checkpoint_dir`` and a rerun after a crash redoes only missing batches and writes the same bytes
as an uninterrupted run.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from .common import (
    DataError,
    atomic_writer,
    dir_identity,
    iter_jsonl,
    iter_jsonl_offsets,
    read_json,
    sha256_file,
    stable_hash,
    write_json,
    write_jsonl,
)
from .dirlock import LOCK_NAME, FolderLock
from .inputs import escape_markers, unprepared
from .progress import eta_seconds, progress_line, quiet_progress_bars
from .protocol import EOS, build_prompt, format_example, parse_pairs

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- corpus split


def split_corpus(
    raw_path: str,
    fraction: float,
    n_shards: int,
    seed: int,
    shard_paths: list[str],
    rest_path: str,
) -> dict:
    """Choose ``fraction`` of the raw records to convert and deal them over ``n_shards`` shards.

    The paper converts 1/5 of the general corpus and all of a domain corpus. The chosen records
    keep their corpus order and are dealt round-robin, so shards differ in size by at most one;
    each gains ``"index"`` (its position in the shard). The others go, unchanged, to ``rest_path``.

    Two streaming passes, so memory does not grow with the corpus (the paper's general corpus
    has ~200M texts): the first validates and counts the records and checks that ids are unique
    (8 bytes per record); the second picks exactly ``round(fraction * n)`` records by selection
    sampling (Knuth's algorithm S, seeded) while writing every output at once.
    """
    import array

    import numpy as np

    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if n_shards < 1 or len(shard_paths) != n_shards:
        raise ValueError(
            f"need n_shards >= 1 shard paths, got n_shards={n_shards}, {len(shard_paths)} paths"
        )

    hashes = array.array("Q")
    for lineno, _, rec in iter_jsonl_offsets(raw_path, required=("id", "text")):
        if not isinstance(rec["text"], str):
            raise DataError(f"{raw_path}:{lineno}: 'text' must be a string")
        problem = unprepared(rec["text"])
        if problem:
            raise DataError(
                f"{raw_path}:{lineno}: {problem}; raw corpora come from prepare_dataset"
            )
        hashes.append(stable_hash(rec["id"]))
    n = len(hashes)
    if not n:
        raise DataError(f"{raw_path}: no texts to split (an empty raw corpus)")
    if n:
        ordered = np.sort(np.frombuffer(hashes, dtype=np.uint64))
        clash = np.flatnonzero(ordered[1:] == ordered[:-1])
        if clash.size:
            _raise_duplicate_id(raw_path, int(ordered[clash[0]]))
    del hashes

    k = round(fraction * n)
    rng = random.Random(seed)
    outputs = [atomic_writer(p) for p in [*shard_paths, rest_path]]
    sizes = [0] * n_shards
    n_chosen = n_rest = 0
    try:
        for i, rec in enumerate(iter_jsonl(raw_path)):
            if rng.random() * (n - i) < k - n_chosen:  # algorithm S: exactly k of n
                shard = n_chosen % n_shards
                rec = {**rec, "index": sizes[shard]}
                sizes[shard] += 1
                n_chosen += 1
                f = outputs[shard][1]
            else:
                n_rest += 1
                f = outputs[-1][1]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for path, f, tmp in outputs:
            f.close()
            os.replace(tmp, path)
    except BaseException:
        for _, f, tmp in outputs:
            f.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    stats = {
        "raw": n,
        "converted": n_chosen,
        "rest": n_rest,
        "fraction": fraction,
        "seed": seed,
        "shard_sizes": sizes,
    }
    log.info("split %s: %d of %d texts over %d shards", raw_path, n_chosen, n, n_shards)
    return stats


def _raise_duplicate_id(raw_path: str, clashing_hash: int) -> None:
    """Find the two records behind a repeated id hash (only on error) and name them."""
    first: dict[str, int] = {}
    for lineno, _, rec in iter_jsonl_offsets(raw_path):
        if stable_hash(rec["id"]) != clashing_hash:
            continue
        if rec["id"] in first:
            raise DataError(
                f"{raw_path}:{lineno}: duplicate id {rec['id']!r} (first at line {first[rec['id']]})"
            )
        first[rec["id"]] = lineno
    raise DataError(f"{raw_path}: two ids share a 64-bit hash ({sorted(first)}); rename one")


# ----------------------------------------------------------------------------- engines


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

        from .devices import resolve_device

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


# ----------------------------------------------------------------------------- multi-round synthesis


def _approx_len(text: str) -> float:
    """The reference code's cheap length estimate: words (split on spaces) x 1.5."""
    return len(text.split(" ")) * 1.5


def collection_positions(n: int, rounds: int) -> list[tuple[int, int]]:
    """``(position, slot)`` of each of a shard's ``n`` texts in the official final collections.

    The official loop (README of microsoft/LMOps ``instruction_pretrain``, ``get_dataset``) cuts
    the texts into rounds of ``size = ceil(n / rounds)``; text ``i`` of a round is appended to
    collection ``i``. When a round has fewer texts ``L`` than the one before, the collections
    ``L + j`` it leaves without a text are prepended to collection ``j`` (so leftover collection
    ``i >= L`` ends at position ``i - L``, before that collection's own entries). ``position`` is
    the index of the text's collection in the final list (templify seeds the collection with
    ``position + 12345``); ``slot`` is the text's index inside it: the leftover entries first, in
    round order, then the collection's own entries, in round order.

    Deliberate deviations where the official loop crashes (IndexError) and so has no answer:

    * more leftovers than texts in the short round (leftover ``i`` with ``i - L >= L``, e.g.
      n=10, rounds=4: rounds of 3, 3, 3, 1): such a collection keeps position ``i``, which no
      other collection takes (indices ``L .. 2L - 1`` are vacated by the merge);
    * rounds left empty after the texts run out (e.g. n=4, rounds=3: rounds of 2, 2, 0; or
      n=5, rounds=4: 2, 2, 1, 0): an empty round changes nothing.
    """
    if n < 0 or rounds < 1:
        raise ValueError(f"need n >= 0 and rounds >= 1, got n={n}, rounds={rounds}")
    if n == 0:
        return []
    size = math.ceil(n / rounds)
    full = n // size  # rounds with `size` texts; then one round of `short` < size texts, or none
    short = n - full * size
    out = []
    for s in range(n):
        rnd, i = divmod(s, size)
        if i < short:  # the collection continues through the short round
            lead = full if short + i < size else 0  # leftover collection short + i comes first
            out.append((i, lead + rnd))
        elif i < 2 * short:  # leftover, prepended to collection i - short
            out.append((i - short, rnd))
        else:  # no short round (short == 0), or the official crash case: keeps its index
            out.append((i, rnd))
    return out


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _truncate_to_fit(tokenizer, text: str, budget: int) -> str:
    """The longest head of ``text`` (whole tokens) whose bare prompt has at most ``budget`` tokens.

    Binary search over k, the number of the text's own tokens kept: the head is the text up to
    the end of token k (by the fast tokenizer's character offsets, so it is a true prefix of the
    text), or the decoded first k tokens for a slow tokenizer. Each candidate prompt is rebuilt
    with :func:`build_prompt` and re-tokenized, so the result is checked, not estimated.
    """
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
    ids = enc["input_ids"]

    def head(k: int) -> str:
        if fast:
            return text[: enc["offset_mapping"][k - 1][1]].rstrip()
        return tokenizer.decode(
            ids[:k], skip_special_tokens=False, clean_up_tokenization_spaces=False
        ).rstrip()

    lo, hi, best = 0, len(ids) + 1, ""  # head(lo) fits (or lo == 0); head(hi) does not or is none
    while hi - lo > 1:
        mid = (lo + hi) // 2
        cand = head(mid)
        if _n_tokens(tokenizer, build_prompt(cand)) <= budget:
            lo, best = mid, cand
        else:
            hi = mid
    if not best:
        raise ValueError(
            f"max_model_len - max_new_tokens = {budget} tokens cannot hold even one token of a "
            f"text inside the prompt framing {build_prompt('x')!r}"
        )
    return best


def _fit_prompts(
    tokenizer, texts: list[str], prompts: list[str], prefixed: list[bool], budget: int
) -> tuple[list[str], list[bool], list[bool], int]:
    """Make every prompt fit ``budget`` tokens; returns (prompts, prefixed, truncated, unchained).

    An over-long prompt first loses its chain prefix (the text then starts a new chain, as when
    the official word estimate is too long); if the bare prompt is still too long, the text is
    cut to its longest fitting head inside the intact ``<s> <CON> ... </CON>\\n\\n`` framing.
    Prompts are tokenized in slices, to bound memory on large rounds.
    """
    prompts, prefixed = list(prompts), list(prefixed)
    truncated = [False] * len(prompts)
    unchained = 0
    step = 1024
    for start in range(0, len(prompts), step):
        ids = tokenizer(prompts[start : start + step], add_special_tokens=False)["input_ids"]
        for j, tokens in enumerate(ids):
            k = start + j
            if len(tokens) <= budget:
                continue
            if prefixed[k]:
                prompts[k], prefixed[k] = build_prompt(texts[k]), False
                unchained += 1
                if _n_tokens(tokenizer, prompts[k]) <= budget:
                    continue
            prompts[k] = build_prompt(_truncate_to_fit(tokenizer, texts[k], budget))
            truncated[k] = True
    return prompts, prefixed, truncated, unchained


class _Checkpoint:
    """Generations stored batch by batch (atomic files) under a directory tied to one job, which
    holds the directory's lock (`instruct_pt.dirlock`) until `close`."""

    def __init__(self, directory: str, fingerprint: dict) -> None:
        self.dir = Path(directory)
        self.lock = FolderLock(self.dir, "synthesis")  # a second job on it fails here
        meta_path = self.dir / "meta.json"
        if meta_path.exists() and read_json(meta_path) != fingerprint:
            log.warning("checkpoint %s belongs to another job; starting afresh", self.dir)
            for entry in self.dir.iterdir():  # all but the lock file this job holds
                if entry.name == LOCK_NAME:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        if not meta_path.exists():
            write_json(meta_path, fingerprint)

    def close(self) -> None:
        self.lock.release()

    def _path(self, rnd: int, batch: int) -> Path:
        return self.dir / f"round{rnd}_batch{batch:06d}.jsonl"

    def load(self, rnd: int, batch: int) -> list[str] | None:
        path = self._path(rnd, batch)
        if not path.exists():
            return None
        return [r["generation"] for r in iter_jsonl(path, required=("generation",))]

    def save(self, rnd: int, batch: int, generations: list[str]) -> None:
        write_jsonl(self._path(rnd, batch), ({"generation": g} for g in generations))


def synthesize_shard(
    shard_path: str,
    model_dir: str,
    out_path: str,
    rounds: int,
    engine_cfg: dict,
    max_new_tokens: int,
    max_model_len: int,
    checkpoint_dir: str,
    seed: int,
    checkpoint_every: int = 256,
    engine: Engine | None = None,
) -> dict:
    """Synthesize instruction-response pairs for every text of a shard in ``rounds`` rounds.

    Output (one record per raw text, shard order): ``{"id", "text", "chain", "round",
    "position", "slot", "truncated", "pairs", "dropped", "generation"}``. ``chain`` is the shard
    position of the chain's first text; a text joins the chain it was prompted after only if it
    yields pairs (``inherit_from_prev`` in the reference code), otherwise it starts its own chain.
    ``position`` and ``slot`` place the text in the official final list of collections
    (:func:`collection_positions`). A chain is prepended only while the estimated length (words x
    1.5, as the reference code) stays within ``max_model_len - max_new_tokens``.

    Every prompt is then made to fit that budget in tokens (the engine's tokenizer, or the
    synthesizer's own when the engine is built here): an over-long prompt loses its chain prefix
    (the text starts a new chain; stats ``unchained_by_tokens``), and a text whose bare prompt is
    still too long is cut to its longest fitting head inside the intact ``<s> <CON> ... </CON>``
    framing (``"truncated": true``; stats ``truncated_texts``). The record keeps the full text.
    The reference code does neither: its vLLM call fails on an over-long prompt. An ``engine``
    without a ``tokenizer`` attribute (test fakes) skips this step.

    A text holding a protocol marker (``</s>``, ``<QUE>``, ...) is escaped
    (:func:`instruct_pt.inputs.escape_markers`) before it is prompted, and the record keeps the
    escaped text (stats ``escaped_marker_texts``); texts read through ``prepare_dataset``, the
    workflow's and the CLI's, arrive escaped already.

    ``engine`` (tests, or callers that reuse a loaded model) replaces the one ``engine_cfg`` would
    build. Greedy decoding uses no randomness; ``seed`` seeds torch and vLLM all the same.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    records = list(iter_jsonl(shard_path, required=("id", "text")))
    escaped_marker_texts = 0
    for lineno, rec in enumerate(records, 1):
        if not isinstance(rec["text"], str):
            raise DataError(f"{shard_path}:{lineno}: 'text' must be a string")
        rec["text"], n_markers = escape_markers(rec["text"])  # a no-op after prepare_dataset
        escaped_marker_texts += n_markers > 0
    n = len(records)
    chunk = math.ceil(n / rounds) if n else 0
    budget = max_model_len - max_new_tokens

    fingerprint = {
        "shard_sha256": sha256_file(shard_path),
        "model_dir": str(model_dir),
        "model": dir_identity(model_dir),  # a retrained synthesizer invalidates old generations
        "rounds": rounds,
        "max_new_tokens": max_new_tokens,
        "max_model_len": max_model_len,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "engine": {k: v for k, v in engine_cfg.items() if k != "batch_size"},
        # generations of the earlier left-cut prompts do not answer the fitted prompts
        "prompt_fitting": "tokens",
    }
    ckpt = _Checkpoint(checkpoint_dir, fingerprint)
    quiet_progress_bars()  # the progress lines below, not bars, in the job's log
    where = collection_positions(n, rounds)
    if engine is None:  # the engine is built only if a batch is missing; its tokenizer is this one
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    else:
        tokenizer = getattr(engine, "tokenizer", None)

    # Per chunk index i: the chain built so far, as (shard position, text, pairs) entries.
    chains: list[list[tuple[int, str, list[dict]]]] = []
    results: list[dict | None] = [None] * n
    resumed = generated = unchained_by_estimate = unchained_by_tokens = 0
    tokens_before = getattr(engine, "tokens_generated", 0)
    cut_before = getattr(engine, "left_truncated_prompts", 0)
    started = time.perf_counter()
    for rnd in range(rounds):
        positions = list(range(rnd * chunk, min(n, (rnd + 1) * chunk)))
        prompts, prefixed = [], []
        for i, pos in enumerate(positions):
            text = records[pos]["text"]
            prior = chains[i] if i < len(chains) else []
            chain_text = ""
            if prior and prior[-1][2]:  # the chain is continued only after an example with pairs
                chain_text = "".join(format_example(t, p) for _, t, p in prior)
            prompt = build_prompt(text, chain_text)
            if chain_text and _approx_len(prompt) > budget:
                prompt = build_prompt(text)
                chain_text = ""
                unchained_by_estimate += 1
            prompts.append(prompt)
            prefixed.append(bool(chain_text))
        truncated = [False] * len(prompts)
        if tokenizer is not None:
            texts = [records[pos]["text"] for pos in positions]
            prompts, prefixed, truncated, unchained = _fit_prompts(
                tokenizer, texts, prompts, prefixed, budget
            )
            unchained_by_tokens += unchained

        generations: list[str] = []
        for b, start in enumerate(range(0, len(prompts), checkpoint_every)):
            batch = prompts[start : start + checkpoint_every]
            cached = ckpt.load(rnd, b)
            if cached is not None and len(cached) == len(batch):
                generations += cached
                resumed += len(batch)
                continue
            if engine is None:
                engine = load_engine(model_dir, engine_cfg, max_model_len, seed)
            out = engine.generate(batch, max_new_tokens)
            if len(out) != len(batch):
                raise RuntimeError(
                    f"engine returned {len(out)} generations for {len(batch)} prompts"
                )
            ckpt.save(rnd, b, out)
            generations += out
            generated += len(batch)
            elapsed = time.perf_counter() - started
            done = rnd * chunk + start + len(batch)
            rate = f"{generated / elapsed if elapsed > 0 else 0.0:.2f} texts/s"
            eta = eta_seconds(generated, n - done, elapsed)
            log.info("%s", progress_line("synthesis", "texts", done, n, rate, eta))

        for i, (pos, gen) in enumerate(zip(positions, generations, strict=True)):
            pairs, dropped = parse_pairs(gen)
            text = records[pos]["text"]
            if prefixed[i] and pairs:
                chains[i].append((pos, text, pairs))
            elif i < len(chains):
                chains[i] = [(pos, text, pairs)]
            else:
                chains.append([(pos, text, pairs)])
            results[pos] = {
                "id": records[pos]["id"],
                "text": text,
                "chain": chains[i][0][0],
                "round": rnd + 1,
                "position": where[pos][0],
                "slot": where[pos][1],
                "truncated": truncated[i],
                "pairs": pairs,
                "dropped": dict(sorted(dropped.items())),
                "generation": gen,
            }
        log.info(
            "round %d/%d: %d texts (%d chained)", rnd + 1, rounds, len(positions), sum(prefixed)
        )

    write_jsonl(out_path, results)
    ckpt.close()
    elapsed = time.perf_counter() - started
    drop_total: Counter = Counter()
    for r in results:
        drop_total.update(r["dropped"])
    tokens = getattr(engine, "tokens_generated", 0) - tokens_before
    stats = {
        "texts": n,
        "rounds": rounds,
        "texts_with_pairs": sum(1 for r in results if r["pairs"]),
        "pairs": sum(len(r["pairs"]) for r in results),
        "chains": len({r["chain"] for r in results}),
        "chained_texts": sum(1 for pos, r in enumerate(results) if r["chain"] != pos),
        "dropped_pieces": dict(sorted(drop_total.items())),
        "unchained_by_estimate": unchained_by_estimate,
        "unchained_by_tokens": unchained_by_tokens,
        "truncated_texts": sum(1 for r in results if r["truncated"]),
        "escaped_marker_texts": escaped_marker_texts,
        "left_truncated_prompts": getattr(engine, "left_truncated_prompts", 0) - cut_before,
        "resumed_texts": resumed,
        "generated_texts": generated,
        "engine": getattr(engine, "name", engine_cfg.get("engine", "transformers")),
        "seconds": elapsed,
        "texts_per_s": generated / elapsed if elapsed > 0 else 0.0,
        "generated_tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
    }
    log.info("synthesis stats %s: %s", out_path, json.dumps(stats, sort_keys=True))
    return stats
