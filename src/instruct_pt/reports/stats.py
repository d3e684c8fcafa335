"""Uncertainty of the reported numbers: bootstrap over evaluation questions (and world seeds).

A *cell* of a report table is one task's score or the mean of several tasks' scores (the
tables' "Avg" columns). Its uncertainty here comes from which questions were asked: the
per-document items that `instruct_pt.evaluation.runner.evaluate` writes beside each task JSON
(`{task}.docs.jsonl`, aggregated by the JSON's `aggregation`) are resampled with replacement,
within each task, and the cell is recomputed on each resample.

The API takes a cell as a LIST of runs, one per world seed, each run a list of `TaskItems`
(the cell's tasks in that run). With more than one seed the bootstrap is hierarchical: each
resample draws seeds with replacement, then documents within each drawn seed, and the cell is
the mean over the drawn seeds. One seed is the list of one; its interval then covers question
sampling only, not seed-to-seed variation.

A comparison of two cells (`effect`) is paired when both sides hold the same documents (the
same tasks, document ids and order, run for run): each resample draws the same seeds and the
same documents for both sides, so what both models get right or wrong together cancels.
Intervals are percentile intervals (default 95%, 2000 resamples) from a `numpy` Generator
seeded by the caller: the same inputs and seed give the same interval. Numbers are in points
(x100), like the task JSONs' values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from instruct_pt.common import DataError, iter_jsonl, read_json
from instruct_pt.evaluation.hooks import AGGREGATIONS, aggregate_items

DEFAULT_BOOT = 2000
DEFAULT_LEVEL = 0.95
# Resampled document indices are drawn this many at a time (rows x documents), to bound memory.
_CHUNK = 2_000_000


@dataclass(frozen=True)
class TaskItems:
    """One task's per-document items in one run: what a task score is recomputed from."""

    task: str
    aggregation: str
    docs: tuple
    items: tuple

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise DataError(
                f"task {self.task!r}: unknown aggregation {self.aggregation!r} "
                f"(known: {sorted(AGGREGATIONS)})"
            )
        if len(self.docs) != len(self.items) or not self.items:
            raise DataError(
                f"task {self.task!r}: {len(self.docs)} document ids for {len(self.items)} items "
                "(need the same number, at least one)"
            )

    def score(self) -> float:
        """The task's value in points, from all its items."""
        return 100.0 * aggregate_items(self.aggregation, list(self.items))


def load_task_items(result_json: str | os.PathLike) -> TaskItems:
    """The items of one task result: `{task}.json` and `{task}.docs.jsonl` beside it.

    A result without an aggregation (written before docs files existed, or not recomputable)
    or without its docs file raises DataError / FileNotFoundError naming the file; a docs file
    whose count differs from the JSON's `n` is a DataError.
    """
    path = Path(result_json)
    res = read_json(path)
    if not isinstance(res, dict):
        raise DataError(f"{path}: expected a JSON object")
    aggregation = res.get("aggregation")
    if not aggregation:
        raise DataError(f"{path}: no 'aggregation' (its value cannot be recomputed from items)")
    docs_path = path.with_name(f"{path.name.removesuffix('.json')}.docs.jsonl")
    if not docs_path.is_file():
        raise FileNotFoundError(f"{docs_path}: per-document items missing")
    docs, items = [], []
    for rec in iter_jsonl(docs_path, required=("doc", "item")):
        docs.append(rec["doc"])
        items.append(rec["item"])
    if res.get("n") is not None and int(res["n"]) != len(items):
        raise DataError(f"{docs_path}: {len(items)} documents, but {path} says n={res['n']}")
    return TaskItems(str(res.get("task", path.stem)), str(aggregation), tuple(docs), tuple(items))


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval, in points."""

    estimate: float
    low: float
    high: float
    level: float
    method: str  # "bootstrap", "paired bootstrap", "normal" or "exact"
    n_boot: int = 0
    n_seeds: int = 0

    def shifted(self, by: float) -> Interval:
        return Interval(
            self.estimate + by,
            self.low + by,
            self.high + by,
            self.level,
            self.method,
            self.n_boot,
            self.n_seeds,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "ci": [self.low, self.high],
            "level": self.level,
            "method": self.method,
            "n_boot": self.n_boot,
            "n_seeds": self.n_seeds,
        }


Run = Sequence[TaskItems]
Cell = Sequence[Run]


# ----------------------------------------------------------------------------- scoring


class _Scorer:
    """Scores one task on rows of resampled document indices.

    The corpus-level F1 variants are computed from resampled counts (numpy) rather than by
    calling the metric on every resample: for classification items, from the counts of each
    distinct (sub-question, gold, prediction) item; for entity items, from per-document TP, FP
    and FN. Both give what `instruct_pt.evaluation.metrics` gives on the resampled items (tested); anything
    else (multi-label items) calls the aggregation itself on each resample.
    """

    def __init__(self, t: TaskItems):
        self.t = t
        agg = t.aggregation
        items = [_tuples(i) for i in t.items] if agg != "mean" else None
        self.kind = "call"
        if agg == "mean":
            self.kind, self.values = "mean", np.asarray(t.items, dtype=float)
        elif agg in ("lm_agg_entity_f1", "lm_agg_entity_f1_doc"):
            self._entities(items, agg)
        elif agg in _CLASSIFICATION and all(not isinstance(x, tuple) for i in items for x in i):
            self._classification(items, agg)
        if self.kind == "call":
            self.items, self.fn = items, AGGREGATIONS[agg]

    def _entities(self, items: list, agg: str) -> None:
        counts = []
        for g, p in items:
            gs, ps = set(g), set(p)
            counts.append((len(gs & ps), len(ps - gs), len(gs - ps), not gs and not ps))
        tp, fp, fn, empty = (np.asarray(c, dtype=float) for c in zip(*counts, strict=True))
        self.tp, self.fp, self.fn_ = tp, fp, fn
        if agg == "lm_agg_entity_f1_doc":
            denom = 2 * tp + fp + fn
            f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
            self.kind, self.values = "mean", np.where(empty > 0, 1.0, f1)
        else:
            self.kind = "entity_micro"

    def _classification(self, items: list, agg: str) -> None:
        keyed = [(None, *i) if agg != "lm_agg_mean_weighted_f1" else tuple(i) for i in items]
        uniq = sorted(set(keyed), key=repr)
        code = {k: n for n, k in enumerate(uniq)}
        self.codes = np.array([code[k] for k in keyed], dtype=np.int64)
        classes = sorted({(sub, c) for sub, g, p in uniq for c in (g, p)}, key=repr)
        cls = {c: n for n, c in enumerate(classes)}
        subs = sorted({sub for sub, _, _ in uniq}, key=repr)
        k, m = len(uniq), len(classes)
        self.a_tp, self.a_fp, self.a_fn = np.zeros((k, m)), np.zeros((k, m)), np.zeros((k, m))
        for n, (sub, g, p) in enumerate(uniq):
            if g == p:
                self.a_tp[n, cls[(sub, g)]] = 1
            else:
                self.a_fp[n, cls[(sub, p)]] = 1
                self.a_fn[n, cls[(sub, g)]] = 1
        self.sub_of = np.zeros((m, len(subs)))
        for (sub, _), n in cls.items():
            self.sub_of[n, subs.index(sub)] = 1
        self.kind = "micro" if agg == "lm_agg_micro_f1" else "weighted"

    def point(self) -> float:
        return self.t.score()

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Scores (points) of each row of `idx` (rows x documents)."""
        if self.kind == "mean":
            return 100.0 * self.values[idx].mean(axis=1)
        if self.kind == "entity_micro":
            tp, fp, fn = self.tp[idx].sum(1), self.fp[idx].sum(1), self.fn_[idx].sum(1)
            return 100.0 * _f1(tp, fp, fn)
        if self.kind == "call":
            return np.array([100.0 * float(self.fn([self.items[i] for i in row])) for row in idx])
        k = self.a_tp.shape[0]
        flat = (np.arange(idx.shape[0])[:, None] * k + self.codes[idx]).ravel()
        counts = np.bincount(flat, minlength=idx.shape[0] * k).reshape(idx.shape[0], k)
        tp, fp, fn = counts @ self.a_tp, counts @ self.a_fp, counts @ self.a_fn
        if self.kind == "micro":
            return 100.0 * _f1(tp.sum(1), fp.sum(1), fn.sum(1))
        support = tp + fn
        weighted = (support * _f1(tp, fp, fn)) @ self.sub_of  # rows x sub-questions
        total = support @ self.sub_of
        present = total > 0
        per_sub = np.divide(weighted, total, out=np.zeros_like(weighted), where=present)
        return 100.0 * per_sub.sum(1) / present.sum(1)


_CLASSIFICATION = ("lm_agg_micro_f1", "lm_agg_weighted_f1", "lm_agg_mean_weighted_f1")


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 from counts, 0 where there is nothing to match (as instruct_pt.evaluation.metrics)."""
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(np.shape(tp)), where=denom > 0)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def _check_cell(cell: Cell, what: str) -> list[list[_Scorer]]:
    if isinstance(cell, TaskItems) or not cell:
        raise DataError(f"{what}: a cell is a non-empty list of runs (one per world seed)")
    out = []
    for s, run in enumerate(cell):
        if isinstance(run, TaskItems) or not run:
            raise DataError(f"{what}: run {s} must be a non-empty list of TaskItems")
        names = [t.task for t in run]
        if len(set(names)) != len(names):
            raise DataError(f"{what}: run {s} lists a task twice: {names}")
        out.append([_Scorer(t) for t in run])
    return out


def same_documents(left: Cell, right: Cell) -> bool:
    """True when both cells hold the same seeds, tasks and documents (in order): pairable."""
    return len(left) == len(right) and all(
        [(t.task, t.docs) for t in a] == [(t.task, t.docs) for t in b]
        for a, b in zip(left, right, strict=True)
    )


def _point(cell: list[list[_Scorer]]) -> float:
    return float(np.mean([np.mean([sc.point() for sc in run]) for run in cell]))


def _draws(rng: np.random.Generator, cells: list[list[list[_Scorer]]], n_boot: int) -> np.ndarray:
    """Bootstrap distribution of each cell (cells x n_boot), drawing seeds and documents once
    for all cells (which must then hold the same documents: the paired case)."""
    n_seeds = len(cells[0])
    # Stage 1: seeds with replacement (a single seed is always itself).
    if n_seeds > 1:
        seed_draw = rng.integers(n_seeds, size=(n_boot, n_seeds))
    else:
        seed_draw = np.zeros((n_boot, 1), dtype=np.int64)
    totals = np.zeros((len(cells), n_boot, n_seeds))
    # Stage 2: documents within each drawn seed, independently per slot of the seed draw.
    for slot in range(n_seeds):
        for s in range(n_seeds):
            rows = np.flatnonzero(seed_draw[:, slot] == s)
            if rows.size == 0:
                continue
            n_tasks = len(cells[0][s])
            for t in range(n_tasks):
                n_docs = len(cells[0][s][t].t.items)
                step = max(1, _CHUNK // n_docs)
                for start in range(0, rows.size, step):
                    chunk = rows[start : start + step]
                    idx = rng.integers(n_docs, size=(chunk.size, n_docs))
                    for c, cell in enumerate(cells):
                        totals[c, chunk, slot] += cell[s][t].rows(idx)
            for c, cell in enumerate(cells):
                totals[c, rows, slot] /= len(cell[s])
    return totals.mean(axis=2)


def _percentile(dist: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(dist, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _check_args(n_boot: int, level: float) -> None:
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def cell_interval(
    cell: Cell, *, seed: int, n_boot: int = DEFAULT_BOOT, level: float = DEFAULT_LEVEL
) -> Interval:
    """One cell's score (mean over seeds of the mean over its tasks) and its percentile CI."""
    _check_args(n_boot, level)
    scored = _check_cell(cell, "cell")
    dist = _draws(np.random.default_rng(seed), [scored], n_boot)[0]
    low, high = _percentile(dist, level)
    return Interval(_point(scored), low, high, level, "bootstrap", n_boot, len(scored))


def effect(
    left: Cell,
    right: Cell,
    *,
    seed: int,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    paired: bool | None = None,
) -> Interval:
    """left - right (points) and its percentile CI.

    `paired` (default: when `same_documents`) resamples seeds and documents jointly for both
    sides; unpaired, each side is resampled on its own (two bootstrap distributions from one
    Generator, subtracted). Asking for a paired bootstrap of cells with different documents is
    a DataError.
    """
    _check_args(n_boot, level)
    lc, rc = _check_cell(left, "left cell"), _check_cell(right, "right cell")
    same = same_documents(left, right)
    if paired is None:
        paired = same
    elif paired and not same:
        raise DataError(
            "a paired bootstrap needs the same seeds, tasks and documents on both sides"
        )
    rng = np.random.default_rng(seed)
    if paired:
        dl, dr = _draws(rng, [lc, rc], n_boot)
    else:
        dl, dr = _draws(rng, [lc], n_boot)[0], _draws(rng, [rc], n_boot)[0]
    low, high = _percentile(dl - dr, level)
    n_seeds = max(len(lc), len(rc))
    method = "paired bootstrap" if paired else "bootstrap"
    return Interval(_point(lc) - _point(rc), low, high, level, method, n_boot, n_seeds)


def normal_effect(
    left: float,
    left_stderr: float | None,
    right: float,
    right_stderr: float | None,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """left - right with a normal-approximation CI from two independent standard errors (a
    constant side has stderr 0). Both stderrs must be known."""
    if left_stderr is None or right_stderr is None:
        raise ValueError("normal_effect needs both standard errors")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    half = z * math.sqrt(left_stderr**2 + right_stderr**2)
    d = left - right
    method = "exact" if half == 0 else "normal"
    return Interval(d, d - half, d + half, level, method)
