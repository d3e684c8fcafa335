"""Multi-round synthesis of one shard, resumable (paper §2.2, Fig. 3; facts §1.3).

:func:`synthesize_shard` runs the paper's M-round inference on one shard (made by
:func:`instruct_pt.synthesis.corpus_split.split_corpus`): the shard's texts are cut into M equal
chunks; in round r, text i of chunk r is prompted after the chain of examples (text + synthesized
pairs + ``</s>``) built at index i in earlier rounds, so a finished chain is an M-shot example.
Decoding is greedy (temperature 0, 400 new tokens at paper scale) through an
:class:`~instruct_pt.synthesis.engines.Engine`: vLLM on GPUs, plain transformers on CPU.
:func:`collection_positions` places each text in the official final collections.

Synthesis is long, so it is resumable: generations are stored batch by batch under
``checkpoint_dir`` and a rerun after a crash redoes only missing batches and writes the same bytes
as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..common import (
    DataError,
    dir_identity,
    iter_jsonl,
    read_json,
    sha256_file,
    write_json,
    write_jsonl,
)
from ..data.inputs import escape_markers
from ..progress import eta_seconds, iter_progress, progress_line, quiet_progress_bars
from ..training.dirlock import LOCK_NAME, FolderLock
from .engines import Engine, load_engine
from .protocol import EOS, build_prompt, format_example, format_pairs, parse_pairs

log = logging.getLogger(__name__)


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
    holds the directory's lock (`instruct_pt.training.dirlock`) until `close`."""

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
    (:func:`instruct_pt.data.inputs.escape_markers`) before it is prompted, and the record keeps the
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


def shard_records(
    shard_path: str,
    out_path: str,
    make_pairs: Callable[[dict, str], list[dict]],
    engine: str,
    rounds: int = 1,
) -> dict:
    """Write one record per text of a shard, its pairs from ``make_pairs(record, where)``
    (``where``: ``file:line`` for errors), laid out as ``synthesize_shard`` lays out ``rounds``
    rounds: text ``pos`` is text ``i`` of round ``pos // ceil(n / rounds)``, continues chain ``i``
    when the chain's last text and its own have pairs (else starts its own chain, as an unchained
    prompt does), and sits at ``collection_positions(n, rounds)[pos]``. Returns the stats."""
    records = []
    for lineno, rec in enumerate(
        iter_progress(iter_jsonl(shard_path, required=("id", "text")), engine, "texts"), 1
    ):
        if not isinstance(rec["text"], str):
            raise DataError(f"{shard_path}:{lineno}: 'text' must be a string")
        records.append((rec, make_pairs(rec, f"{shard_path}:{lineno}")))
    n = len(records)
    where = collection_positions(n, rounds)
    size = math.ceil(n / rounds) if n else 1
    chains: dict[int, tuple[int, bool]] = {}  # index in the round -> (chain, last had pairs)
    out = []
    for pos, (rec, pairs) in enumerate(records):
        rnd, i = divmod(pos, size)
        chain, chained = chains.get(i, (pos, False))
        chain = chain if chained and pairs else pos
        chains[i] = (chain, bool(pairs))
        out.append(
            {
                "id": rec["id"],
                "text": rec["text"],
                "chain": chain,
                "round": rnd + 1,
                "position": where[pos][0],
                "slot": where[pos][1],
                "truncated": False,
                "pairs": pairs,
                "dropped": {},
                "generation": format_pairs(pairs) + (EOS if pairs else ""),
            }
        )
    write_jsonl(out_path, out)
    return {
        "texts": n,
        "texts_with_pairs": sum(1 for r in out if r["pairs"]),
        "texts_without_pairs": sum(1 for r in out if not r["pairs"]),
        "pairs": sum(len(r["pairs"]) for r in out),
    }
