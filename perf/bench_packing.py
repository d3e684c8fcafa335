"""Packing throughput vs plain batched `tokenizers` encoding of the same texts.

Packing streams JSONL from disk, encodes in batches, adds BOS/EOS, cuts fixed-length sequences and
writes a memory-mapped token file; the baseline only encodes texts already in memory. Prints both
times from this one run and the overhead of packing. Usage:
    python perf/bench_packing.py [--copies 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: E402

from instruct_pt.data.packing import pack  # noqa: E402
from instruct_pt.data.tokenizer import load_tokenizer  # noqa: E402


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=20, help="repeat the world's raw texts")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        corpus = common.world_corpus(work, copies=a.copies)
        tok_dir = common.tokenizer(work, corpus)
        texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
        backend = load_tokenizer(str(tok_dir)).backend_tokenizer
        n_chars = sum(map(len, texts))

        def encode():
            backend.encode_batch_fast(texts, add_special_tokens=False)

        def packing():
            pack(str(corpus), str(tok_dir), str(work / "packed"), a.seq_len, 0)

        t_enc = best_of(a.repeats, encode)
        t_pack = best_of(a.repeats, packing)
    print(f"machine: {common.machine()}")
    print(f"corpus: {len(texts):,} documents, {n_chars / 1e6:.1f} M characters")
    print(f"plain batched encoding (in memory): {t_enc:.3f} s")
    print(f"pack (stream, encode, BOS/EOS, cut, memmap): {t_pack:.3f} s")
    print(f"packing overhead: {100 * (t_pack / t_enc - 1):.1f}%")


if __name__ == "__main__":
    main()
