"""The corpus split: which raw texts are converted, dealt over synthesis shards (paper §2.2).

The paper converts 1/5 of the general corpus and all of a domain corpus; :func:`split_corpus`
chooses that fraction (seeded, exactly ``round(fraction * n)`` texts) in two streaming passes, so
memory does not grow with the corpus, and leaves the rest raw.
"""

from __future__ import annotations

import json
import logging
import os
import random

from ..common import DataError, atomic_writer, iter_jsonl, iter_jsonl_offsets, stable_hash
from ..data.inputs import unprepared

log = logging.getLogger(__name__)


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
