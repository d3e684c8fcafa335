"""Pre-training mixtures with token accounting (Vanilla / Mix / Instruct PT, domain 1:1 mixing).

A mixture is a list of components, each a JSONL file of documents:

- Vanilla PT: raw texts.                 Mix PT: raw texts + the synthesizer's FT collection.
- Instruct PT: 1/5 instruction-augmented + 4/5 raw + the FT collection repeated x4 ([S], facts §2).
- Domain continual PT: augmented domain texts mixed 1:1 *by tokens* with general instructions,
  each formatted "{question} {response}" (one space, no chat template; [P], facts §4.1).

`head` keeps only a component's first n documents (the miniature mixes the first records of a
fine-tuning collection larger than its 3% share; the manifest records n beside the file's count);
`repeat` copies a component; `match` + `ratio` samples whole documents of a component (cycling
through fresh seeded permutations if one pass is not enough) until its tokens reach ratio x the
matched component's tokens (or the sum over several matched components, given as a list). Tokens are counted with the tokenizer, +2 per document for the BOS
and EOS that packing adds, so the manifest is what the model will actually see.

Only byte offsets and token counts are held in memory (about 40 bytes per document in all);
texts are re-read by seeking when the shuffled mixture is written, so the function scales to
corpora that do not fit in memory. Parsing and tokenizing, the costly part, can run in a pool of
worker processes (``num_workers``, the rule's threads) without changing a byte of the output.
"""

from __future__ import annotations

import array
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from instruct_pt.common import (
    DataError,
    iter_jsonl_lines,
    parse_jsonl_line,
    read_jsonl_at,
    sha256_file,
    stable_hash,
    write_json,
    write_jsonl,
)
from instruct_pt.data.packing import count_tokens, ordered_map, worker_pool, worker_tokenizer
from instruct_pt.progress import iter_progress

log = logging.getLogger(__name__)

FORMATS = ("text", "instruction")
_BATCH = 1024
_BATCH_BYTES = 1 << 22
POOL_MIN_BYTES = 1 << 26  # smaller inputs are scanned in-process: starting workers costs more


def _doc_text(rec: dict, fmt: str, where: str) -> str:
    """The pre-training text of one record: "text", or "{question} {response}" for instructions."""
    if fmt == "text":
        text = rec.get("text")
        if not isinstance(text, str):
            raise DataError(f"{where}: expected a string field 'text'")
        return text
    q, r = rec.get("question"), rec.get("response")
    if not isinstance(q, str) or not isinstance(r, str):
        raise DataError(f"{where}: expected string fields 'question' and 'response'")
    return f"{q} {r}"


class _Component:
    """One component's documents: byte offset of each kept line and its token count."""

    def __init__(self, spec: dict, index: int):
        where = f"components[{index}]"
        for key in ("name", "path", "format"):
            if key not in spec:
                raise DataError(f"{where}: missing key {key!r}")
        self.name: str = spec["name"]
        self.path: str = spec["path"]
        self.format: str = spec["format"]
        if self.format not in FORMATS:
            raise DataError(f"{where}: format must be one of {FORMATS}, got {self.format!r}")
        self.repeat = int(spec.get("repeat", 1))
        match = spec.get("match")
        self.match: tuple[str, ...] | None = (
            None if match is None else (match,) if isinstance(match, str) else tuple(match)
        )
        self.ratio = float(spec.get("ratio", 1.0))
        head = spec.get("head")
        if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 1):
            raise DataError(f"{where}: head must be a positive integer or null, got {head!r}")
        self.head: int | None = head
        if self.repeat < 1:
            raise DataError(f"{where}: repeat must be >= 1")
        if self.match is not None and self.repeat != 1:
            raise DataError(f"{where}: 'repeat' and 'match' cannot be combined")
        if self.ratio < 0:
            raise DataError(f"{where}: ratio must be >= 0")
        self.offsets = np.zeros(0, dtype=np.int64)
        self.tokens = np.zeros(0, dtype=np.int64)
        self.file_documents = 0  # usable documents in the file, before ``head``
        self.dropped: Counter[str] = Counter()

    def scan(self, tok, specials: int, pool=None, window: int = 1) -> None:
        """Read the file once: record offsets of usable lines and their token counts.

        Lines are parsed and tokenized ``_BATCH`` at a time, by ``pool``'s workers if given
        (results in file order, so the counts do not depend on the number of workers).
        """
        offsets = array.array("q")
        counts = array.array("q")
        chunks = _line_chunks(self.path, self.format)
        if pool is None:
            results = (_scan_chunk(chunk, tok) for chunk in chunks)
        else:
            results = ordered_map(pool, _scan_chunk_in_worker, chunks, window)
        for starts, n_tokens, n_empty in iter_progress(
            results, f"mixture scan {self.name}", "documents", weight=lambda r: len(r[1]) + r[2]
        ):
            offsets.extend(starts)
            counts.extend(n + specials for n in n_tokens)
            if n_empty:
                self.dropped["empty_text"] += n_empty
        self.offsets = np.frombuffer(offsets, dtype=np.int64).copy()
        self.tokens = np.frombuffer(counts, dtype=np.int64).astype(np.int32)
        self.file_documents = len(self.tokens)
        if self.head is not None:
            if self.head > self.file_documents:
                raise DataError(
                    f"{self.path}: component {self.name!r} asks for its first {self.head} "
                    f"documents (head) but the file has only {self.file_documents}"
                )
            self.offsets, self.tokens = self.offsets[: self.head], self.tokens[: self.head]

    def read(self, f, doc: int) -> dict:
        return read_jsonl_at(f, int(self.offsets[doc]), self.path)


def _line_chunks(path: str, fmt: str) -> Iterator[tuple[str, str, list[tuple[int, int, bytes]]]]:
    """(path, format, [(line number, byte offset, line)]) of up to ``_BATCH`` non-blank lines
    (fewer once they reach ``_BATCH_BYTES``: the token encodings of a batch take many times
    its bytes, so long documents must not make batches large). Lines are parsed where they are
    tokenized (in the workers, if any)."""
    chunk: list[tuple[int, int, bytes]] = []
    size = 0
    for line in iter_jsonl_lines(path):
        chunk.append(line)
        size += len(line[2])
        if len(chunk) >= _BATCH or size >= _BATCH_BYTES:
            yield path, fmt, chunk
            chunk, size = [], 0
    if chunk:
        yield path, fmt, chunk


def _scan_chunk(
    chunk: tuple[str, str, list[tuple[int, int, bytes]]], tok
) -> tuple[list[int], list[int], int]:
    """(offsets of the usable lines, their token counts without specials, empty texts)."""
    path, fmt, lines = chunk
    starts, texts, n_empty = [], [], 0
    for lineno, start, raw in lines:
        rec = parse_jsonl_line(raw, path, lineno, required=("id",))
        text = _doc_text(rec, fmt, f"{path}:{lineno}")
        if not text.strip():
            n_empty += 1
            continue
        starts.append(start)
        texts.append(text)
    return starts, count_tokens(tok, texts) if texts else [], n_empty


def _scan_chunk_in_worker(chunk):
    return _scan_chunk(chunk, worker_tokenizer())


def _sample_to_target(comp: _Component, target: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole documents of comp, in seeded permutations (a fresh one per pass), until >= target tokens.

    Returns (document indices, pass number of each) — the pass number tells copies apart.
    """
    n = len(comp.tokens)
    if target <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n == 0:
        raise DataError(f"component {comp.name!r}: no documents to match {target:.0f} tokens")
    rng = np.random.default_rng([seed, stable_hash("mixture-match", comp.name) % 2**32])
    docs, passes = [], []
    total, p = 0, 0
    while total < target:
        perm = rng.permutation(n)
        cum = np.cumsum(comp.tokens[perm])
        need = target - total
        k = int(np.searchsorted(cum, need, side="left")) + 1  # first prefix reaching `need`
        k = min(k, n)
        docs.append(perm[:k])
        passes.append(np.full(k, p, dtype=np.int64))
        total += int(cum[k - 1])
        p += 1
    return np.concatenate(docs), np.concatenate(passes)


def build_mixture(
    name: str,
    components: list[dict],
    tokenizer_dir: str,
    out_texts: str,
    out_manifest: str,
    seed: int,
    num_workers: int = 1,
) -> dict:
    """Write the shuffled mixture (`{"id","text","source"}` per line) and its manifest; return it.

    Output ids are "{component}/{original id}", with "#{k}" added to the k-th extra copy of a
    document (k >= 1), so every line's id is unique. ``num_workers > 1`` parses and tokenizes the
    components in a pool of that many processes (if they total ``POOL_MIN_BYTES`` or more); the
    output bytes are the same either way.
    """
    from instruct_pt.data.tokenizer import load_tokenizer

    if not components:
        raise DataError(f"mixture {name!r}: no components")
    comps = [_Component(spec, i) for i, spec in enumerate(components)]
    by_name = {c.name: c for c in comps}
    if len(by_name) != len(comps):
        raise DataError(f"mixture {name!r}: component names must be unique")
    for c in comps:
        for m in c.match or ():
            if m not in by_name:
                raise DataError(f"mixture {name!r}: component {c.name!r} matches unknown {m!r}")

    tok = load_tokenizer(tokenizer_dir)
    specials = int(tok.bos_token_id is not None) + int(tok.eos_token_id is not None)
    big = sum(os.path.getsize(c.path) for c in comps) >= POOL_MIN_BYTES
    pool = worker_pool(tokenizer_dir, num_workers) if num_workers > 1 and big else None
    try:
        for c in comps:
            c.scan(tok, specials, pool, window=2 * num_workers)
    finally:
        if pool is not None:
            pool.close()
            pool.join()

    # Resolve each component to (doc indices, copy numbers); matched ones after their targets.
    chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pending = list(comps)
    while pending:
        progressed = False
        for c in list(pending):
            if c.match is None:
                n = len(c.tokens)
                chosen[c.name] = (
                    np.tile(np.arange(n), c.repeat),
                    np.repeat(np.arange(c.repeat), n),
                )
            elif all(m in chosen for m in c.match):
                ref_tokens = sum(int(by_name[m].tokens[chosen[m][0]].sum()) for m in c.match)
                chosen[c.name] = _sample_to_target(c, c.ratio * ref_tokens, seed)
            else:
                continue
            pending.remove(c)
            progressed = True
        if not progressed:
            raise DataError(f"mixture {name!r}: 'match' references form a cycle")

    if not any(len(chosen[c.name][0]) for c in comps):
        empty = ", ".join(f"{c.name} ({c.path})" for c in comps)
        raise DataError(
            f"mixture {name!r} has no documents: every component is empty: {empty}. For an "
            "augmented corpus this means the synthesizer produced no parsable pair for any text."
        )

    # One flat plan of (component, doc, copy), shuffled with the seed.
    # Per planned document: 8 bytes of shuffled order, 8 of document index, 2 + 4 of component
    # and copy number (plus 12 per available document): the one O(documents) state, no texts.
    comp_idx = np.concatenate(
        [np.full(len(chosen[c.name][0]), i, dtype=np.int16) for i, c in enumerate(comps)]
    )
    doc_idx = np.concatenate([chosen[c.name][0] for c in comps])
    copy_idx = np.concatenate([chosen[c.name][1] for c in comps]).astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(doc_idx))

    handles = [open(c.path, "rb") for c in comps]  # noqa: SIM115 - closed in finally

    def records():
        for j in iter_progress(order, f"mixture {name}", "documents", total=len(order)):
            ci, di, k = int(comp_idx[j]), int(doc_idx[j]), int(copy_idx[j])
            c = comps[ci]
            rec = c.read(handles[ci], di)
            rid = f"{c.name}/{rec['id']}" + (f"#{k}" if k else "")
            yield {"id": rid, "text": _doc_text(rec, c.format, c.path), "source": c.name}

    try:
        n_written = write_jsonl(out_texts, records())
    finally:
        for h in handles:
            h.close()

    sources = {}
    for c in comps:
        docs = chosen[c.name][0]
        sources[c.name] = {
            "documents": int(len(docs)),
            "tokens": int(c.tokens[docs].sum()),
            "repeat": c.repeat,
            "unique_documents": int(len(np.unique(docs))),
            "available_documents": int(c.file_documents),
            "head": c.head,
            "match": list(c.match) if c.match is not None else None,
            "ratio": c.ratio if c.match is not None else None,
            "dropped": dict(sorted(c.dropped.items())),
        }
    tj = Path(tokenizer_dir) / "tokenizer.json"
    manifest = {
        "mixture": name,
        "seed": seed,
        "tokenizer": {
            "vocab_size": len(tok),
            "sha256": sha256_file(tj) if tj.exists() else None,
            "specials_per_document": specials,
        },
        "sources": sources,
        "total_tokens": int(sum(s["tokens"] for s in sources.values())),
        "total_documents": n_written,
    }
    write_json(out_manifest, manifest)
    log.info(
        "mixture %s: %d documents, %d tokens (%s)",
        name,
        n_written,
        manifest["total_tokens"],
        ", ".join(f"{k}={v['tokens']}" for k, v in sources.items()),
    )
    return manifest
