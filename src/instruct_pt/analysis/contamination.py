"""Contamination of the evaluation sets by the synthesized pairs (paper Table 9): word n-gram overlap.

An evaluation example is contaminated when one of its segments (query, a choice, the answer) shares
a word n-gram (``n`` words, :func:`instruct_pt.analysis.grader.words`) with a synthesized question
or answer that reaches the pre-training corpora. The (small) evaluation sets are indexed; the
synthesized pairs stream past them once. An n-gram never spans two segments. Examples with no
segment of ``n`` words cannot match and are counted as ``too_short``.

:func:`suite_contamination` (rule ``contamination``) takes the evaluated documents of every suite
as lm-eval renders them (:func:`instruct_pt.evaluation.render_examples`); a task whose data cannot
be loaded is reported under ``unavailable``, not skipped silently.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm import tqdm

from instruct_pt.analysis.grader import words
from instruct_pt.analysis.synthesized import iter_synthesized
from instruct_pt.common import DataError, read_json, write_json
from instruct_pt.evaluation.render import render_examples


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _eval_segments(rec: dict) -> list[str]:
    """The texts of one evaluation example: query, each choice, and the answer."""
    segs = [str(rec["query"])]
    segs += [str(c) for c in rec.get("choices") or []]
    if rec.get("answer") is not None:
        segs.append(str(rec["answer"]))
    return segs


def contamination(
    synth_paths: list[str],
    eval_sets: Mapping[str, Iterable[dict]],
    out_json: str | os.PathLike,
    n: int = 13,
    unavailable: Mapping[str, str] | None = None,
    paper_names: Mapping[str, str] | None = None,
) -> dict:
    """Evaluation examples (``{task: [{"query", "choices"?, "answer"?}]}``) sharing a word n-gram
    with any synthesized question or answer of the shards ``synth_paths``.

    Writes and returns ``{"n", "n_synth_texts", "n_synth_pairs", "tasks": {task: {"contaminated",
    "total", "percent", "too_short"}}, "unavailable": {task: reason}, "paper_names": {task: name}}``
    (tasks whose data could not be read, and the paper's name of each task, passed through).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    index: dict[tuple[str, ...], list[tuple[str, int]]] = {}
    totals: dict[str, int] = {}
    too_short: Counter = Counter()
    for task, records in eval_sets.items():
        totals[task] = 0
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or "query" not in rec:
                raise DataError(f"evaluation task {task!r}: example {i} has no 'query'")
            totals[task] += 1
            grams = set().union(*(_ngrams(words(s), n) for s in _eval_segments(rec)))
            if not grams:
                too_short[task] += 1
            for g in grams:
                index.setdefault(g, []).append((task, i))

    hit: set[tuple[str, int]] = set()
    n_texts = n_pairs = 0
    for rec in tqdm(
        iter_synthesized(list(synth_paths)), desc="contamination", unit="text", disable=None
    ):
        n_texts += 1
        for pair in rec["pairs"]:
            n_pairs += 1
            for seg in (str(pair.get("question", "")), str(pair.get("answer", ""))):
                for g in _ngrams(words(seg), n):
                    hit.update(index.get(g, ()))

    per_task = Counter(task for task, _ in hit)
    result = {
        "n": n,
        "n_synth_texts": n_texts,
        "n_synth_pairs": n_pairs,
        "tasks": {
            task: {
                "contaminated": per_task[task],
                "total": total,
                "percent": round(100 * per_task[task] / total, 4) if total else 0.0,
                "too_short": too_short[task],
            }
            for task, total in totals.items()
        },
        "unavailable": dict(sorted((unavailable or {}).items())),
        "paper_names": dict(sorted((paper_names or {}).items())),
    }
    write_json(out_json, result)
    return result


def suite_contamination(
    synth_paths: list[str],
    suite_dirs: list[str],
    out_json: str | os.PathLike,
    n: int = 13,
) -> dict:
    """:func:`contamination` of every task of the built suites ``suite_dirs`` (keys
    ``"{suite}/{task}"``, suite = the folder's name), from the documents lm-eval renders."""
    eval_sets: dict[str, list[dict]] = {}
    unavailable: dict[str, str] = {}
    paper_names: dict[str, str] = {}
    for d in suite_dirs:
        suite = Path(d).name
        tasks = read_json(Path(d) / "suite.json")["tasks"]
        examples, missing = render_examples(d)
        for task, why in missing.items():
            unavailable[f"{suite}/{task}"] = why
        for task, recs in examples.items():
            eval_sets[f"{suite}/{task}"] = recs
            paper_names[f"{suite}/{task}"] = tasks[task]["paper_name"]
    return contamination(synth_paths, eval_sets, out_json, n, unavailable, paper_names)
