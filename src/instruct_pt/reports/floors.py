"""The reference rows beside the compared models: each task's floors and the ceiling's check.

Floors: what a model gets without reading the question ("floor: chance", a uniform guess among
the options) and by always giving the most frequent gold answer ("floor: majority"), both in the
task's own metric, computed from the suite's task data ({tasks_dir}/{suite}/{task}.jsonl, what
lm-eval reads for world suites). Hub suites' documents are not on disk in that form: their
floors are empty cells with a note ("n/a").

Ceiling (miniature runs): a model of the compared models' size fine-tuned on its suite's
task-format training split, or (general) Instruct PT on the world's true pairs
(rules/ceilings.smk), evaluated on the same questions: what each task allows at this size. A row
like the models' (``{"label", "model"}`` or ``{"label", "models": {domain: model}}``), placed
after them; its label starts with "ceiling: ".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from instruct_pt.common import DataError
from instruct_pt.reports.cells import Record, clauses, column_name, fmt_number, load_result, record

FLOOR_CHANCE, FLOOR_MAJORITY = "floor: chance", "floor: majority"
FLOOR_LABELS = {FLOOR_CHANCE: "chance", FLOOR_MAJORITY: "majority answer"}
FLOOR_CANDIDATES = 5  # generation: constant answers tried (the most frequent gold answers)
FLOORS_NOTE = (
    "Floors: 'chance' is the expected accuracy of a uniform guess among each document's options "
    "(mean of 1/len(choices); 0 for generation); 'majority answer' is the task's metric for "
    "always giving the most frequent gold answer (generation: the best of the "
    f"{FLOOR_CANDIDATES} most frequent gold answers), from the suite's own task data."
)
_MC_ACCURACY = ("acc", "acc_norm", "accuracy")


def _forced(k: int, pred: int) -> list[tuple[float, bool, int]]:
    """Choice results (loglikelihood, is_greedy, n_tokens) under which option `pred` wins."""
    return [(0.0 if i == pred else -10.0, i == pred, 1) for i in range(k)]


def _aggregate(E, metric: str, items: list) -> float:
    agg = getattr(E, f"lm_agg_{metric}", None)
    return float(agg(items)) if agg is not None else sum(items) / len(items)


def _mc_floors(E, path: Path, docs: list[dict], metric: str) -> tuple[dict, dict]:
    for lineno, doc in enumerate(docs, 1):
        if not isinstance(doc.get("choices"), list) or not doc["choices"]:
            raise DataError(f"{path}:{lineno}: 'choices' must be a non-empty list")
        if not (isinstance(doc.get("gold"), int) and 0 <= doc["gold"] < len(doc["choices"])):
            raise DataError(
                f"{path}:{lineno}: gold {doc.get('gold')!r} is not an index into choices"
            )
    n = len(docs)
    chance = {"ours": 100.0 * sum(1 / len(d["choices"]) for d in docs) / n, "n": n}
    golds = [str(d["choices"][d["gold"]]) for d in docs]
    counts: dict[str, int] = {}
    for g in golds:
        counts[g] = counts.get(g, 0) + 1
    top = min(counts, key=lambda g: (-counts[g], g))  # ties: the first in text order
    # Always answer `top`; where it is not offered, a wrong option (the answer cannot be given).
    preds = [
        d["choices"].index(top) if top in d["choices"] else (d["gold"] + 1) % len(d["choices"])
        for d in docs
    ]
    if metric in _MC_ACCURACY:
        value = sum(p == d["gold"] for p, d in zip(preds, docs, strict=True)) / n
    else:
        hook = getattr(E, f"lm_mc_{metric}", None)
        if hook is None:
            return chance, {"note": f"n/a: no majority floor for metric {metric}"}
        items = [
            hook(d, _forced(len(d["choices"]), p))[metric] for p, d in zip(preds, docs, strict=True)
        ]
        value = _aggregate(E, metric, items)
    note = f"always '{top}' ({counts[top]}/{n} gold), {metric}"
    return chance, {"ours": 100.0 * value, "n": n, "note": note}


def _gen_floors(E, path: Path, docs: list[dict], metric: str) -> tuple[dict, dict]:
    n = len(docs)
    chance = {"ours": 0.0, "n": n, "note": "generation: no options to guess among"}
    hook = getattr(E, f"lm_gen_{metric}", None)
    if hook is None:
        return chance, {"note": f"n/a: no majority floor for metric {metric}"}
    counts: dict[str, int] = {}
    for lineno, doc in enumerate(docs, 1):
        if "answer" not in doc:
            raise DataError(f"{path}:{lineno}: missing key 'answer'")
        counts[str(doc["answer"])] = counts.get(str(doc["answer"]), 0) + 1
    candidates = sorted(counts, key=lambda a: (-counts[a], a))[:FLOOR_CANDIDATES]
    scored = [
        (_aggregate(E, metric, [hook(d, [answer])[metric] for d in docs]), answer)
        for answer in candidates
    ]
    value, answer = max(scored, key=lambda s: s[0])  # first of ties: the more frequent answer
    note = f"constant answer '{answer}', {metric}"
    return chance, {"ours": 100.0 * value, "n": n, "note": note}


def task_floors(
    tasks_dir: str | os.PathLike, suite: str, task: str, metric: str
) -> dict[str, dict]:
    """{FLOOR_CHANCE: cell, FLOOR_MAJORITY: cell} of one task, from its suite's task data."""
    from instruct_pt.common import read_jsonl
    from instruct_pt.evaluation import hooks as E

    path = Path(tasks_dir) / suite / f"{task}.jsonl"
    if not path.is_file():
        # A hub suite: lm-eval reads its documents from the hub, not from this folder.
        na = {"note": f"n/a: no task data {suite}/{task}.jsonl in the suites' folder"}
        return {FLOOR_CHANCE: dict(na), FLOOR_MAJORITY: dict(na)}
    docs = read_jsonl(path)
    if not docs:
        raise DataError(f"{path}: no evaluation records")
    floors = _mc_floors if "choices" in docs[0] else _gen_floors
    chance, majority = floors(E, path, docs, metric)
    distinct = len({json.dumps(d.get("query"), sort_keys=True) for d in docs})
    if distinct < len(docs):  # repeated questions: lm-eval's stderr counts them as independent
        repeats = f"{distinct} distinct questions in {len(docs)} documents"
        chance["note"] = clauses(chance.get("note", ""), repeats)
    return {FLOOR_CHANCE: chance, FLOOR_MAJORITY: majority}


def _mean_floor(cells: list[dict]) -> dict:
    """A floor of an average column: the mean of its tasks' floors (n/a if one is n/a)."""
    if any(c.get("ours") is None for c in cells):
        return {"note": "n/a: a task's floor is not available"}
    k = len(cells)
    return {"ours": sum(c["ours"] for c in cells) / k, "note": f"mean of {k} task floors"}


def floor_records(table: str, floors: dict[str, dict[str, dict]]) -> list[Record]:
    """The two floor rows; ``floors``: {column: {FLOOR_CHANCE: cell, FLOOR_MAJORITY: cell}}."""
    return [
        {
            "table": table,
            "row": row,
            "column": column,
            "ours": fmt_number(cells[row].get("ours")),
            "ours_stderr": "",
            "n": fmt_number(cells[row].get("n")),
            "paper": "",
            "paper_tag": "",
            "note": cells[row].get("note", ""),
            "sources": "",  # not computed from result JSONs (the scorecard reads those)
        }
        for row in FLOOR_LABELS
        for column, cells in floors.items()
    ]


def row_floors(
    tasks_dir, eval_dir, model: str, setting: str, tasks: list[str], scale: str, avg_col: str
) -> dict[str, dict[str, dict]]:
    """{column: floors} for the tasks of one model's results on a setting, then the average."""
    out: dict[str, dict[str, dict]] = {}
    for task in tasks:
        path = Path(eval_dir) / model / setting / f"{task}.json"
        res = load_result(path, f"model {model!r}, setting {setting!r}, task {task!r}")
        suite = str(res.get("suite") or setting)
        out[column_name(res, scale)] = task_floors(
            tasks_dir, suite, str(res["task"]), res["metric"]
        )
    out[avg_col] = {row: _mean_floor([f[row] for f in out.values()]) for row in FLOOR_LABELS}
    return out


CEILING_PREFIX = "ceiling: "
CEILING_NOTE = (
    "Ceiling: a model of the compared models' size fine-tuned on its suite's task-format "
    "training split (the same query and answer format; other entities, or closed-book facts no "
    "evaluation question asks), or, where its label says so, Instruct PT from scratch with the "
    "world's true pairs in place of the synthesizer's (the oracle synthesizer), evaluated on the "
    "same questions. A ceiling cell not clearly above its floors (by more than twice its "
    "standard error) says so in its note."
)


def check_ceiling(row: dict | None) -> None:
    if row is not None and not str(row.get("label", "")).startswith(CEILING_PREFIX):
        raise DataError(f"ceiling row {row!r}: its label must start with {CEILING_PREFIX!r}")


def ceiling_vs_floors(cell: dict | None, floors: dict[str, dict] | None) -> dict | None:
    """The ceiling's cell, its note saying when it is not clearly above the higher floor."""
    if not cell or cell.get("ours") is None or not floors:
        return cell
    values = [f["ours"] for f in floors.values() if f.get("ours") is not None]
    if not values:
        return cell
    margin = cell["ours"] - max(values)
    se = cell.get("stderr") or 0.0
    if margin > 2 * se:
        return cell
    note = f"ceiling not clearly above the floors ({cell['ours']:.1f} vs {max(values):.1f})"
    return {**cell, "note": clauses(cell.get("note", ""), note)}


def ceiling_records(
    table: str,
    ceiling: dict,
    columns: list[str],
    cells: dict[str, dict],
    floors: dict[str, dict[str, dict]],
    scale: str,
) -> list[Record]:
    """The ceiling row's records: its cell in each of ``columns``, checked against that
    column's floors (``floors``: {column: {FLOOR_CHANCE: cell, FLOOR_MAJORITY: cell}})."""
    label = ceiling["label"]
    return [
        record(table, label, c, ceiling_vs_floors(cells.get(c), floors.get(c)), label, scale, False)
        for c in columns
    ]
