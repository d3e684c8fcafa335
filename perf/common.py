"""Shared set-up for the benchmarks: a miniature-world corpus, its tokenizer, packed data."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from instruct_pt.common import write_jsonl
from instruct_pt.data.packing import pack
from instruct_pt.data.tokenizer import prepare_tokenizer
from instruct_pt.world import generate_dataset


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )


def world_corpus(work: Path, copies: int = 1) -> Path:
    """The world's general + domain raw texts (repeated `copies` times) as one JSONL."""
    texts = []
    for name in ("raw_general", "raw_biomedicine", "raw_finance"):
        texts += [r["text"] for r in generate_dataset(name, {"seed": 7})]
    path = work / "corpus.jsonl"
    write_jsonl(path, ({"id": f"d{i}", "text": t} for i, t in enumerate(texts * copies)))
    return path


def tokenizer(work: Path, corpus: Path, vocab_size: int = 2048) -> Path:
    out = work / "tok"
    prepare_tokenizer({"source": "train", "vocab_size": vocab_size}, [str(corpus)], str(out), 0)
    return out


def packed(work: Path, corpus: Path, tok: Path, seq_len: int) -> Path:
    out = work / f"packed.L{seq_len}"
    pack(str(corpus), str(tok), str(out), seq_len, 0)
    return out
