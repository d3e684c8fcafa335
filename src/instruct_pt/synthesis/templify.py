"""Templify: the shards' chains in official collection order -> texts (paper §2.3; facts §1.4).

Each multi-round chain becomes ONE pre-training text, assembled by
:func:`instruct_pt.synthesis.templates.cook_chain`. This module finds the chains and their seeds
and writes the texts, as the official README loop drives ``read_compre.cook_pt_entries``
(microsoft/LMOps):

* seeds: every chain of the collection at index position ``p`` (the README's ``idx``; synthesis
  records carry it as ``position``) is cooked with seed ``templify_seed + p`` (12345 + idx at
  paper scale), shared by all chains at that position; shards continue the numbering where the
  previous shard ended;
* order: per position, the chains by slot, each chain's augmented text, then its texts left raw.

The shards are read twice and the texts written as they are made, so memory does not grow with
the corpus beyond ~40 bytes per record (where each record is, its position and slot): a chain's
records lie a chunk apart in a synthesis shard, so they are gathered by seeking. Batches of chains
can be cooked by a pool of processes (``num_workers``) without changing the output.
"""

from __future__ import annotations

import array
import json
import logging
import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..common import (
    DataError,
    atomic_writer,
    iter_jsonl,
    iter_jsonl_offsets,
    read_jsonl_at,
    write_json,
)
from ..data.packing import ordered_map
from ..progress import Progress
from .templates import cook_chain

log = logging.getLogger(__name__)


def _new_stats(seed: int, include_context: bool) -> dict:
    return {
        "seed": seed,
        "include_context": include_context,
        "chains": 0,
        "augmented": 0,
        "augmented_texts_in_chains": 0,
        "raw": 0,
        "pairs": 0,
        "inverted": 0,
        "modes": Counter(),
        "formats": Counter(),
        "dropped_pairs": Counter(),
        "dropped_texts": Counter(),
    }


def _finish_stats(stats: dict) -> dict:
    for key in ("modes", "formats", "dropped_pairs", "dropped_texts"):
        stats[key] = dict(sorted(stats[key].items()))
    return stats


_CHAINS_PER_BATCH = 256
POOL_MIN_BYTES = 1 << 26  # smaller inputs are cooked in-process (``num_workers`` is ignored)


def _batches(
    chains: Iterable[tuple[int, list[dict]]], include_context: bool, source: str
) -> Iterator[tuple[list[tuple[int, list[dict]]], bool, str]]:
    """(seed, chain) items, ``_CHAINS_PER_BATCH`` at a time."""
    batch: list[tuple[int, list[dict]]] = []
    for item in chains:
        batch.append(item)
        if len(batch) >= _CHAINS_PER_BATCH:
            yield batch, include_context, source
            batch = []
    if batch:
        yield batch, include_context, source


def _cook_batch(
    job: tuple[list[tuple[int, list[dict]]], bool, str],
) -> tuple[list[dict], dict]:
    """The records of a batch of chains and the batch's own stats (merged by the caller)."""
    batch, include_context, source = job
    stats = _new_stats(0, include_context)
    records: list[dict] = []
    for chain_seed, entries in batch:
        records += cook_chain(entries, chain_seed, include_context, stats, source)
        stats["chains"] += 1
    return records, stats


def _merge_stats(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, Counter):
            into[key].update(value)
        elif key not in ("seed", "include_context"):
            into[key] += value


def _cook_all(
    chains: Iterable[tuple[int, list[dict]]],
    n_chains: int | None,
    out_path: str,
    seed: int,
    include_context: bool,
    stats_path: str | None,
    source: str = "augmented",
    num_workers: int = 1,
) -> dict:
    """Cook the (seed, chain) items and write each record as soon as it is made.

    Nothing but a batch of chains is held, so memory does not depend on the number of chains.
    ``num_workers > 1`` cooks batches in a pool of processes; results are written in chain order
    and every chain has its own seed, so the bytes do not depend on the number of workers.
    An output that ends empty is an error naming the counts (nothing is written then).
    """
    stats = _new_stats(seed, include_context)
    batches = _batches(chains, include_context, source)
    path, f, tmp = atomic_writer(out_path)
    pool = None
    n_written = 0
    try:
        if num_workers > 1:
            pool = mp.get_context("spawn").Pool(num_workers)
            cooked = ordered_map(pool, _cook_batch, batches, 2 * num_workers)
        else:
            cooked = map(_cook_batch, batches)
        with f, Progress("templify", "chains", n_chains) as bar:
            for records, part in cooked:
                for rec in records:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_written += len(records)
                _merge_stats(stats, part)
                bar.update(part["chains"])
        stats = _finish_stats(stats)
        if n_written == 0:
            raise DataError(
                f"templify -> {out_path}: no texts from {stats['chains']} chains (augmented "
                f"{stats['augmented']}, raw {stats['raw']}; dropped pairs "
                f"{stats['dropped_pairs'] or 'none'}, dropped texts {stats['dropped_texts'] or 'none'})"
                + (
                    ". Without the raw texts (include_context=false) only texts with parsable pairs "
                    "remain: the synthesizer produced none"
                    if stats["chains"] and not include_context
                    else ": the input has no records"
                )
            )
        os.replace(tmp, path)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if os.path.exists(tmp):
            os.unlink(tmp)
    if stats_path:
        write_json(stats_path, stats)
    log.info(
        "templify -> %s: %d augmented, %d raw texts from %d chains",
        out_path,
        stats["augmented"],
        stats["raw"],
        stats["chains"],
    )
    return stats


def _int_field(rec: dict, key: str, where: str) -> int:
    value = rec[key]
    if not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise DataError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


@dataclass
class _Plan:
    """Pass 1's result: where each record is, its collection and chain, and the cooking order."""

    files: np.ndarray  # int32 shard index per record, file order
    offsets: np.ndarray  # int64 byte offset per record
    positions: np.ndarray  # int64 collection position per record, numbered across the shards
    chains: np.ndarray  # int64 ``chain`` field per record
    order: np.ndarray  # record indices by (position, slot)
    n_chains: int


SYNTH_KEYS = ("id", "text", "chain", "round", "position", "slot", "pairs")


def _chain_plan(synth_paths: list[str]) -> _Plan:
    """Pass 1 over the shards: where each record is, its collection position and slot.

    A shard's positions (the official README's ``idx``) continue where the previous shard's
    ended, so every collection of the corpus has its own seed; with one shard they are exactly
    the official ones. Records are cooked by (position, slot); a chain is a run of records of one
    position with one ``chain`` value. About 40 bytes per record are kept; no text.
    """
    files, slots = array.array("i"), array.array("q")
    offsets, positions, chains = (array.array("q") for _ in range(3))
    base = 0
    for fi, path in enumerate(synth_paths):
        top = -1
        for lineno, offset, rec in iter_jsonl_offsets(path, SYNTH_KEYS):
            where = f"{path}:{lineno}"
            _check_pairs(rec["pairs"], where)
            chains.append(_int_field(rec, "chain", where))
            _int_field(rec, "round", where)
            position = _int_field(rec, "position", where)
            slot = _int_field(rec, "slot", where)
            if position < 0 or slot < 0 or position >= 2**40:
                raise DataError(f"{where}: 'position' and 'slot' must be in [0, 2**40)")
            positions.append(base + position)
            slots.append(slot)
            offsets.append(offset)
            files.append(fi)
            top = max(top, position)
        base += top + 1

    def as_np(a: array.array, dtype) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype=dtype)

    pos, slot, chain = as_np(positions, np.int64), as_np(slots, np.int64), as_np(chains, np.int64)
    f = as_np(files, np.int32)
    order = np.lexsort((slot, pos)) if len(pos) else np.zeros(0, dtype=np.int64)
    n_chains = 0
    if len(order):
        p_sorted, s_sorted, c_sorted = pos[order], slot[order], chain[order]
        same_place = (p_sorted[1:] == p_sorted[:-1]) & (s_sorted[1:] == s_sorted[:-1])
        if same_place.any():
            i = int(order[int(np.argmax(same_place)) + 1])
            raise DataError(
                f"{synth_paths[int(f[i])]}: two records have the same position and slot "
                f"(position {int(pos[i])} across shards, slot {int(slot[i])}): not one synthesis shard"
            )
        new_chain = (p_sorted[1:] != p_sorted[:-1]) | (c_sorted[1:] != c_sorted[:-1])
        n_chains = 1 + int(new_chain.sum())
        del p_sorted, s_sorted, c_sorted, same_place, new_chain
    return _Plan(f, as_np(offsets, np.int64), pos, chain, order, n_chains)


_READ_AHEAD = 4096  # records whose places are turned into Python ints at a time


def _planned_chains(
    synth_paths: list[str], plan: _Plan, seed: int
) -> Iterator[tuple[int, list[dict]]]:
    """Pass 2: (seed + position, chain) for each chain, reading its records by seeking."""
    handles = [open(p, "rb") for p in synth_paths]  # noqa: SIM115 - closed in finally
    try:
        chain: list[dict] = []
        current = None
        for start in range(0, len(plan.order), _READ_AHEAD):
            idx = plan.order[start : start + _READ_AHEAD]
            places = zip(
                plan.files[idx].tolist(),
                plan.offsets[idx].tolist(),
                plan.positions[idx].tolist(),
                plan.chains[idx].tolist(),
                strict=True,
            )
            for fi, off, position, chain_id in places:
                if (position, chain_id) != current and chain:
                    yield seed + current[0], chain
                    chain = []
                current = (position, chain_id)
                rec = read_jsonl_at(handles[fi], off, synth_paths[fi])
                chain.append({"id": rec["id"], "text": rec["text"], "pairs": rec["pairs"]})
        if chain:
            yield seed + current[0], chain
    finally:
        for h in handles:
            h.close()


def iter_chains(synth_paths: list[str], seed: int) -> Iterator[tuple[int, list[dict]]]:
    """Every chain of the synthesis shards, in output order, with the seed it is cooked with.

    Yields ``(seed + position, [{"id", "text", "pairs"}, ...])``: the official
    ``cook_pt_entries(read_collection, random_seed=idx + 12345)`` seeds, ``seed`` playing 12345.
    """
    return _planned_chains(synth_paths, _chain_plan(synth_paths), seed)


def _check_pairs(pairs: object, where: str) -> None:
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("question"), str)
        and isinstance(p.get("answer"), str)
        for p in pairs
    ):
        raise DataError(f"{where}: 'pairs' must be a list of {{'question': str, 'answer': str}}")


def templify(
    synth_paths: list[str],
    out_path: str,
    seed: int,
    include_context: bool = True,
    stats_path: str | None = None,
    num_workers: int = 1,
) -> dict:
    """Write ``{"id", "text", "source"}`` pre-training texts, one per chain of the synthesis shards.

    Chains are cooked by collection position (the seed is ``seed + position``), their records by
    slot; see the module docstring for what matches the official code. A text without valid
    pairs stays raw (``source: "raw"``). ``include_context=False`` drops the raw texts and keeps
    only the templified pairs (texts without pairs are then dropped and counted): this is OUR
    definition of Table 4's "w/o Corpora" ablation; the paper's exact definition is UNCONFIRMED
    (facts §4.5).
    """
    plan = _chain_plan(synth_paths)
    chains = _planned_chains(synth_paths, plan, seed)
    if sum(os.path.getsize(p) for p in synth_paths) < POOL_MIN_BYTES:
        num_workers = 1  # starting workers would cost more than they save
    return _cook_all(
        chains, plan.n_chains, out_path, seed, include_context, stats_path, num_workers=num_workers
    )


def templify_ft_collection(
    ft_path: str,
    out_path: str,
    seed: int,
    shots: int = 1,
    stats_path: str | None = None,
    num_workers: int = 1,
) -> dict:
    """Pre-training texts from the synthesizer's fine-tuning collection (``synth_ft`` records).

    Each record's context and gold pairs are templified like a synthesized text (``source:
    "synth_ft"``; used by Mix PT and
    Instruct PT, which mix the collection into pre-training). ``shots > 1`` joins up to ``shots``
    consecutive records of the same dataset into one few-shot text, as the synthesizer's tuning
    sequences do.
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if os.path.getsize(ft_path) < POOL_MIN_BYTES:
        num_workers = 1
    return _cook_all(
        ((seed + k, group) for k, group in enumerate(_ft_groups(ft_path, shots))),
        None,
        out_path,
        seed,
        True,
        stats_path,
        source="synth_ft",
        num_workers=num_workers,
    )


def _ft_groups(ft_path: str, shots: int) -> Iterator[list[dict]]:
    """Runs of up to ``shots`` consecutive records of one dataset, yielded as they complete."""
    group: list[dict] = []
    last_dataset = None
    for lineno, rec in enumerate(
        iter_jsonl(ft_path, required=("id", "dataset", "context", "pairs")), 1
    ):
        _check_pairs(rec["pairs"], f"{ft_path}:{lineno}")
        entry = {"id": rec["id"], "text": rec["context"], "pairs": rec["pairs"]}
        if group and rec["dataset"] == last_dataset and len(group) < shots:
            group.append(entry)
        else:
            if group:
                yield group
            group = [entry]
        last_dataset = rec["dataset"]
    if group:
        yield group
