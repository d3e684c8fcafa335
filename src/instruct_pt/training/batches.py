"""Training rows and which of them make up each step's batch.

Every training differs only in what a row is: `PackedSource` (packed fixed-length sequences,
next-token loss on every token) or `ExampleSource` (variable-length rows of token ids + labels,
IGNORE = no loss, padded per batch). `BatchPlan` says which rows form the global batch of step s:
a pure function of (seed, s), epochs of seeded permutations back to back, so a checkpoint only
needs the step to resume the data where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np
import torch

from instruct_pt.common import DataError, stable_hash

IGNORE = -100  # the label of a token that is not trained on


class Source:
    """Rows of a training set. `get(rows)` -> (input_ids, labels) int64 tensors [len(rows), T]."""

    n: int
    seq_len: int
    pad_id: int
    fingerprint: str

    def get(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def tokens(self, rows: np.ndarray) -> int:
        """Real (non-padding) tokens in these rows, for throughput accounting."""
        raise NotImplementedError


class PackedSource(Source):
    """Packed pre-training sequences; every token is a target."""

    def __init__(self, packed_dir: str):
        from instruct_pt.data.packing import PackedDataset

        self.ds = PackedDataset(packed_dir)
        self.n, self.seq_len = len(self.ds), self.ds.seq_len
        self.pad_id = 0
        self.vocab_size = int(self.ds.meta["vocab_size"])
        self.fingerprint = str(stable_hash(json.dumps(self.ds.meta, sort_keys=True)))

    def get(self, rows):
        x = torch.from_numpy(self.ds.data[rows].astype(np.int64))
        return x, x

    def tokens(self, rows):
        return len(rows) * self.seq_len


class ExampleSource(Source):
    """Variable-length rows (ids, labels) padded on the right to the longest row of each batch."""

    def __init__(self, rows: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int):
        self.rows = [
            (np.asarray(i, dtype=np.int64), np.asarray(lab, dtype=np.int64)) for i, lab in rows
        ]
        self.n, self.seq_len, self.pad_id = len(rows), seq_len, pad_id
        h = hashlib.sha256()
        for ids, lab in self.rows:
            h.update(np.int64(len(ids)).tobytes() + ids.tobytes() + lab.tobytes())
        self.fingerprint = h.hexdigest()

    def get(self, rows):
        width = max(len(self.rows[r][0]) for r in rows)
        x = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        y = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for b, r in enumerate(rows):
            ids, lab = self.rows[r]
            x[b, : len(ids)] = torch.from_numpy(ids)
            y[b, : len(lab)] = torch.from_numpy(lab)
        return x, y

    def tokens(self, rows):
        return int(sum(len(self.rows[r][0]) for r in rows))


class BatchPlan:
    """Which rows make up the global batch of step s: epochs of seeded permutations, back to back."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n == 0:
            raise DataError("training data has no rows")
        self.n, self.batch_size, self.seed = n, batch_size, seed

    @lru_cache(maxsize=4)  # noqa: B019 - a handful of plans per process
    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def rows(self, step: int) -> np.ndarray:
        pos = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        epochs, offsets = pos // self.n, pos % self.n
        return np.array([self.permutation(int(e))[o] for e, o in zip(epochs, offsets, strict=True)])

    def position(self, step: int) -> dict:
        pos = step * self.batch_size
        return {"epoch": pos // self.n, "offset": pos % self.n, "rows_seen": pos}
