"""Packing: a mixture's texts -> fixed-length token sequences in one flat memmap.

Each document becomes BOS + ids + EOS; documents are concatenated in file order (the mixture is
already shuffled) and cut into `seq_len` rows; the incomplete tail is dropped and reported. This is
the standard GPT-style packing the paper's pre-training uses ("plain BOS/EOS only", facts §4.1).

The file is streamed: records are read and encoded `chunk_docs` at a time (optionally by a pool
of workers whose results come back in order, with at most 2 chunks per worker in flight), so the
corpus never sits in memory and the output bytes do not depend on `num_workers` or `chunk_docs`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path

import numpy as np

from instruct_pt.common import DataError, iter_jsonl_offsets, read_json, write_json
from instruct_pt.progress import iter_progress

log = logging.getLogger(__name__)


def encode_texts(tok, texts: list[str]) -> list[list[int]]:
    """Batched fast-tokenizer encoding without special tokens (a literal "<s>" still maps to BOS)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tok(texts, add_special_tokens=False)["input_ids"]


def count_tokens(tok, texts: list[str]) -> list[int]:
    """Token counts of ``encode_texts`` without building the id lists (``len`` of an encoding)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return [len(e) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return [len(ids) for ids in encode_texts(tok, texts)]


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size < 65536 else np.uint32)


def _iter_chunks(path: str, chunk_docs: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, texts) of up to ``chunk_docs`` records of a JSONL file, read lazily
    through :func:`instruct_pt.common.iter_jsonl_offsets`; a bad line names file:line."""
    records = iter_jsonl_offsets(path)
    while batch := list(islice(records, chunk_docs)):
        texts = []
        for lineno, _, rec in batch:
            text = rec.get("text")
            if not isinstance(text, str):
                raise DataError(f"{path}:{lineno}: expected an object with a string 'text'")
            texts.append(text)
        yield batch[0][0], texts


_WORKER_TOK = None


def _worker_init(tokenizer_dir: str) -> None:
    global _WORKER_TOK
    from instruct_pt.data.tokenizer import load_tokenizer

    _WORKER_TOK = load_tokenizer(tokenizer_dir)


def worker_tokenizer():
    """The tokenizer of this process if it is a :func:`worker_pool` worker (else None)."""
    return _WORKER_TOK


def _worker_encode(chunk: tuple[int, list[str]]) -> list[list[int]]:
    return encode_texts(_WORKER_TOK, chunk[1])


def worker_pool(tokenizer_dir: str, num_workers: int):
    """A spawn pool whose workers each load the tokenizer and encode on one thread (the pool
    is the parallelism; the `tokenizers` thread pool of each worker would only oversubscribe)."""
    return mp.get_context("spawn").Pool(num_workers, _worker_init_single, (tokenizer_dir,))


def _worker_init_single(tokenizer_dir: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_init(tokenizer_dir)


def ordered_map(pool, fn, items: Iterable, window: int) -> Iterator:
    """``pool.imap(fn, items)`` with at most ``window`` items in flight.

    ``imap`` reads its whole input ahead into the task queue, so a fast reader and slow workers
    would hold the corpus in memory; here the next item is only read when a result is taken.
    Results come in input order, so the output never depends on the number of workers.
    """
    pending: deque = deque()
    for item in items:
        pending.append(pool.apply_async(fn, (item,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def pack(
    texts_path: str,
    tokenizer_dir: str,
    out_dir: str,
    seq_len: int,
    seed: int,
    add_bos: bool = True,
    add_eos: bool = True,
    num_workers: int = 1,
    chunk_docs: int = 2048,
) -> dict:
    """Write out_dir/tokens.bin ([n_sequences * seq_len] flat) and out_dir/meta.json; return meta.

    Packing has no random choices (order is the mixture's); `seed` is recorded for provenance.
    Empty texts are dropped and counted under meta["dropped"]["empty_text"].
    """
    from instruct_pt.data.tokenizer import load_tokenizer

    if seq_len < 2:
        raise DataError(f"pack: seq_len must be >= 2, got {seq_len}")
    tok = load_tokenizer(tokenizer_dir)
    vocab_size = len(tok)
    dtype = token_dtype(vocab_size)
    bos, eos = tok.bos_token_id, tok.eos_token_id
    if (add_bos and bos is None) or (add_eos and eos is None):
        raise DataError(f"{tokenizer_dir}: tokenizer lacks the BOS/EOS token packing needs")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp_bin = out / ".tokens.bin.tmp"
    head = [bos] if add_bos else []
    tail = [eos] if add_eos else []
    carry = np.zeros(0, dtype=np.int64)
    n_docs = n_seqs = 0
    dropped: Counter[str] = Counter()

    chunks = _iter_chunks(texts_path, chunk_docs)
    pool = None
    if num_workers > 1:
        pool = worker_pool(tokenizer_dir, num_workers)
        encoded_chunks = ordered_map(pool, _worker_encode, chunks, 2 * num_workers)
    else:
        encoded_chunks = (encode_texts(tok, texts) for _, texts in chunks)
    try:
        with open(tmp_bin, "wb") as f:
            for ids_list in iter_progress(
                encoded_chunks, f"pack {Path(texts_path).name}", "texts", weight=len
            ):
                docs = []
                for ids in ids_list:
                    if not ids:
                        dropped["empty_text"] += 1
                        continue
                    docs.append(head + ids + tail)
                n_docs += len(docs)
                flat = np.fromiter(chain.from_iterable(docs), dtype=np.int64)
                if flat.size and int(flat.max()) >= vocab_size:
                    raise DataError(
                        f"{texts_path}: token id {int(flat.max())} >= vocab {vocab_size}"
                    )
                buf = np.concatenate([carry, flat])
                n_full = buf.size // seq_len
                if n_full:
                    f.write(buf[: n_full * seq_len].astype(dtype).tobytes())
                    n_seqs += n_full
                carry = buf[n_full * seq_len :]
        os.replace(tmp_bin, out / "tokens.bin")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if tmp_bin.exists():
            tmp_bin.unlink()

    meta = {
        "seq_len": seq_len,
        "n_sequences": n_seqs,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "tokens": n_seqs * seq_len,
        "documents": n_docs,
        "dropped_tail_tokens": int(carry.size),
        "bos_id": bos,
        "eos_id": eos,
        "add_bos": add_bos,
        "add_eos": add_eos,
        "dropped": dict(sorted(dropped.items())),
        "seed": seed,
    }
    write_json(out / "meta.json", meta)
    log.info(
        "packed %d documents into %d x %d tokens (%d tail tokens dropped)",
        n_docs,
        n_seqs,
        seq_len,
        carry.size,
    )
    if n_seqs == 0:
        log.warning("%s: fewer than seq_len=%d tokens; no sequence written", texts_path, seq_len)
    return meta


class PackedDataset:
    """Read-only view of a packed folder: `data` is an np.memmap of shape [n_sequences, seq_len]."""

    def __init__(self, packed_dir: str):
        self.dir = Path(packed_dir)
        self.meta = read_json(self.dir / "meta.json")
        for key in ("seq_len", "n_sequences", "dtype", "vocab_size"):
            if key not in self.meta:
                raise DataError(f"{self.dir / 'meta.json'}: missing key {key}")
        self.seq_len = int(self.meta["seq_len"])
        n = int(self.meta["n_sequences"])
        path = self.dir / "tokens.bin"
        expected = n * self.seq_len * np.dtype(self.meta["dtype"]).itemsize
        if path.stat().st_size != expected:
            raise DataError(f"{path}: {path.stat().st_size} bytes, meta.json implies {expected}")
        if n == 0:
            self.data = np.zeros((0, self.seq_len), dtype=self.meta["dtype"])
        else:
            self.data = np.memmap(path, dtype=self.meta["dtype"], mode="r", shape=(n, self.seq_len))

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, idx):
        return self.data[idx]
