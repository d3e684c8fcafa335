"""The paper's tables and figures, regenerated from this run's result files.

Each function writes one long-format CSV (``CSV_FIELDS``; one line per cell, the input of the
claims scorecard) and one Markdown table for people (+ PNG and PDF for figures). Inputs are the
evaluation result JSONs ``{eval_dir}/{model}/{setting}/{task}.json`` (docs/architecture.md)
and the analysis JSONs of ``synthesizer_eval`` (Table 5) and ``quality`` (Table 6, Fig. 6).

Paper values come only from :mod:`instruct_pt.paper`, with their evidence tags. A column is
comparable with the paper only at ``scale="paper"``; at miniature scale the paper's number is
shown only for summary columns (averages, corpus-level metrics), labelled "for orientation".
A missing input file is an error that names the file, never a silent blank.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from instruct_pt.common import DataError, read_json, write_text
from instruct_pt.paper import load_tables, paper_entry, paper_table

log = logging.getLogger(__name__)

# "sources": the result JSONs a cell was computed from, ";"-separated (paths as given to the
# table function); the claims scorecard bootstraps from the docs files beside them.
CSV_FIELDS = (
    "table",
    "row",
    "column",
    "ours",
    "ours_stderr",
    "n",
    "paper",
    "paper_tag",
    "note",
    "sources",
)
SCALES = ("paper", "miniature")
RESULT_KEYS = ("model", "task", "paper_name", "metric", "value", "stderr", "n")
MINIATURE_NOTE = "Miniature-scale numbers: not comparable in magnitude with the paper's."
ORIENTATION = "paper (full scale, for orientation)"
# A note fragment about the paper's value (not ours): the Markdown notes list it as "column (paper)".
PAPER_NOTE = "paper: "
UNCONFIRMED_NOTE = (
    "Paper values carry their evidence tag ([P] primary, [S] one secondary summary, "
    "[S2] two or more agree); UNCONFIRMED cells are left empty, and a paper column with no "
    "confirmed value is left out."
)
DOMAIN_AVG = {"biomedicine": "Biomed avg", "finance": "Finance avg"}
DOMAIN_ORDER = ("biomedicine", "finance")
CORPUS_ROW = {"general": "General", "biomedicine": "Biomedicine", "finance": "Finance"}
# Names an evaluation helper might use for a paper task (HF config names) -> the paper's name.
PAPER_ALIASES = {"FiQA_SA": "FiQA SA", "MedQs": "MQP", "Winogrande": "WinoGrande"}

Record = dict[str, str]


# ----------------------------------------------------------------------------- small helpers


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def fmt_number(x: float | int | None) -> str:
    """CSV number: '' for missing, integers without a decimal point, else at most 4 decimals."""
    if x is None:
        return ""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _human_count(x: float) -> str:
    """5e8 -> '0.5B', 1.23e6 -> '1.23M' (Table 2's parameters and tokens)."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= size or (unit == "B" and abs(x) >= 1e8):
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def _score(x: float) -> str:
    return f"{x:.1f}"


def load_result(path: str | os.PathLike, what: str = "") -> dict:
    """One evaluation result JSON, checked; a missing file raises FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: result file missing{f' ({what})' if what else ''}")
    res = read_json(path)
    if not isinstance(res, dict):
        raise DataError(f"{path}: expected a JSON object")
    missing = [k for k in RESULT_KEYS if k not in res]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    if not isinstance(res["value"], int | float):
        raise DataError(f"{path}: 'value' must be a number, got {res['value']!r}")
    return res


def _suite_dir(eval_dir: str | os.PathLike, model: str, setting: str) -> Path:
    d = Path(eval_dir) / model / setting
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no results for model {model!r}, setting {setting!r}")
    return d


def _task_names(eval_dir: str | os.PathLike, models: Iterable[str], setting: str) -> list[str]:
    """The union of the tasks evaluated for these models (file stems); every model must have all."""
    names: set[str] = set()
    for model in models:
        d = _suite_dir(eval_dir, model, setting)
        names.update(p.stem for p in d.glob("*.json") if not p.name.startswith(("_", ".")))
    if not names:
        raise FileNotFoundError(f"{Path(eval_dir)}: no result files for setting {setting!r}")
    return sorted(names)


def _paper_name(res: dict) -> str:
    name = str(res.get("paper_name") or "")
    return PAPER_ALIASES.get(name, name)


def _column_name(res: dict, scale: str) -> str:
    """The paper's task name at paper scale (the task IS the paper's); our task name otherwise."""
    name = _paper_name(res)
    return name if scale == "paper" and name else str(res["task"])


def _ordered(
    columns: Iterable[str], paper_columns: Sequence[str], aliases: dict[str, str] | None = None
) -> list[str]:
    """Paper's column order first, the rest alphabetical. ``aliases`` maps a column to the paper
    column it stands for (a miniature task named after its paper task: pubmedqa_like -> PubMedQA)."""
    rank = {c: i for i, c in enumerate(paper_columns)}
    aliases = aliases or {}
    return sorted(set(columns), key=lambda c: (rank.get(aliases.get(c, c), len(rank)), c))


def _paper_names(eval_dir, models: Iterable[str], setting: str, scale: str) -> dict[str, str]:
    """Column -> the paper task it stands for, from the result files' ``paper_name``."""
    names = {}
    for model in models:
        for path in sorted(_suite_dir(eval_dir, model, setting).glob("*.json")):
            if not path.name.startswith(("_", ".")):
                res = read_json(path)
                if _paper_name(res):
                    names[_column_name(res, scale)] = _paper_name(res)
    return names


def _mean_cell(cells: list[dict]) -> dict:
    """Average of task cells; its stderr assumes independent tasks: sqrt(sum se^2) / k."""
    values = [c["ours"] for c in cells]
    ses = [c.get("stderr") for c in cells]
    se = math.sqrt(sum(s * s for s in ses)) / len(ses) if all(s is not None for s in ses) else None
    return {
        "ours": sum(values) / len(values),
        "stderr": se,
        "n": None,
        "note": f"mean of {len(values)} task{'s' if len(values) != 1 else ''}",
        "sources": [s for c in cells for s in c.get("sources", [])],
    }


def _paper_fields(
    table: str, paper_row: str, column: str, scale: str, summary: bool
) -> tuple[str, str, list[str]]:
    """(paper, paper_tag, notes) for one cell. UNCONFIRMED cells keep their tag, never a number."""
    if (scale != "paper" and not summary) or table not in load_tables():
        return "", "", []
    entry = paper_entry(table, paper_row, column)
    if entry is None:
        return "", "", []
    notes = [ORIENTATION] if scale != "paper" else []
    if entry.value is None:
        return "", "UNCONFIRMED", notes
    if entry.note:
        notes += [f"{PAPER_NOTE}{fragment}" for fragment in entry.note.split("; ")]
    if entry.conflict:
        notes.append(f"paper value conflicts: {entry.conflict}")
    return fmt_number(entry.value), entry.tag, notes


def _record(
    table: str,
    row: str,
    column: str,
    cell: dict | None,
    paper_row: str,
    scale: str,
    summary: bool,
) -> Record:
    cell = cell or {}
    paper, tag, paper_notes = _paper_fields(table, paper_row, column, scale, summary)
    notes = ([cell["note"]] if cell.get("note") else []) + paper_notes
    return {
        "table": table,
        "row": row,
        "column": column,
        "ours": fmt_number(cell.get("ours")),
        "ours_stderr": fmt_number(cell.get("stderr")),
        "n": fmt_number(cell.get("n")),
        "paper": paper,
        "paper_tag": tag,
        "note": "; ".join(notes),
        "sources": _sources(cell.get("sources", [])),
    }


def _sources(paths: Iterable[str | os.PathLike]) -> str:
    texts = [str(p) for p in paths]
    bad = [t for t in texts if ";" in t]
    if bad:
        raise DataError(f"{bad[0]}: a result path with ';' cannot be listed in a report CSV")
    return ";".join(texts)


def _task_cell(res: dict, scale: str, source: str | os.PathLike | None = None) -> dict:
    """A cell from one result (read from `source`); at miniature scale the note names the paper
    task it stands in for."""
    paper_name = _paper_name(res)
    note = f"{res['metric']}, task {res['task']}"
    if scale != "paper" and paper_name:
        note += f", analogue of {paper_name}"
    return {
        "ours": float(res["value"]),
        "stderr": None if res.get("stderr") is None else float(res["stderr"]),
        "n": res.get("n"),
        "note": note,
        "sources": [] if source is None else [source],
    }


def _write_csv(
    path: str | os.PathLike, records: list[Record], fields: Sequence[str] = CSV_FIELDS
) -> None:
    """Write the records; their "sources" become paths relative to the CSV's folder (so the
    CSV, and the claims that read it, do not depend on the working directory). ``fields``: the
    columns (the multi-seed tables add interval columns, :mod:`instruct_pt.seeds`)."""
    folder = os.path.abspath(Path(path).parent)
    for rec in records:
        rec.setdefault("sources", "")
        if rec["sources"]:
            rec["sources"] = ";".join(
                Path(os.path.relpath(os.path.abspath(p), folder)).as_posix()
                for p in rec["sources"].split(";")
            )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    write_text(path, buf.getvalue())


def read_report_csv(path: str | os.PathLike, fields: Sequence[str] = CSV_FIELDS) -> list[Record]:
    """Read a CSV written here, checking its header (used by the claims scorecard)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: report CSV missing")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != tuple(fields):
            raise DataError(f"{path}:1: expected columns {','.join(fields)}")
        return list(reader)


# ----------------------------------------------------------------------------- Markdown


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _header_lines(title: str, run: str, scale: str, paper_title: str | None = None) -> list[str]:
    lines = [f"# {title}", "", f"Run: `{run}` · scale: {scale}", ""]
    if paper_title:
        lines += [f"Paper: {paper_title}", ""]
    if scale != "paper":
        lines += [MINIATURE_NOTE, ""]
    lines += [UNCONFIRMED_NOTE, ""]
    return lines


def _write_markdown(
    path: str | os.PathLike,
    title: str,
    run: str,
    scale: str,
    records: list[Record],
    row_header: str = "Model",
    formatters: dict[str, Callable[[float], str]] | None = None,
    extra: Sequence[str] = (),
    paper_title: str | None = None,
    headers: dict[str, str] | None = None,
    show_n: bool = False,
) -> None:
    """A wide table: our cells first, then a column group with the paper's values and tags.
    Floor rows (FLOOR_LABELS) are shown under their short labels. A paper column is shown only
    when the paper has a confirmed value in it; UNCONFIRMED cells are empty. ``headers``: a
    column's header where it is not the CSV's column name; ``show_n``: each cell says its n."""
    formatters = formatters or {}
    headers = headers or {}
    rows = list(dict.fromkeys(r["row"] for r in records))
    columns = list(dict.fromkeys(r["column"] for r in records))
    cell = {(r["row"], r["column"]): r for r in records}
    paper_cols = [c for c in columns if any(r["paper"] for r in records if r["column"] == c)]
    unconfirmed = [
        c
        for c in columns
        if c not in paper_cols and any(r["paper_tag"] for r in records if r["column"] == c)
    ]
    if unconfirmed:
        extra = [*extra, f"The paper's values of {', '.join(unconfirmed)}: UNCONFIRMED (left out)."]
    paper_label = "paper [tag]" if scale == "paper" else ORIENTATION

    def ours(r: Record | None, column: str) -> str:
        if r is None or not r["ours"]:
            return "—"
        fmt = formatters.get(column, _score)
        text = fmt(float(r["ours"]))
        if r.get("ci_low") and r.get("ci_high"):  # multi-seed tables: mean [lo, hi]
            text = f"{text} [{fmt(float(r['ci_low']))}, {fmt(float(r['ci_high']))}]"
        elif r["ours_stderr"]:
            text += f" ± {float(r['ours_stderr']):.1f}"
        return text + (f" (n={r['n']})" if show_n and r.get("n") else "")

    def paper(r: Record | None, column: str) -> str:
        if r is None or not r["paper_tag"]:
            return "—"
        if not r["paper"]:
            return ""  # UNCONFIRMED: the header says these cells are empty
        return f"{formatters.get(column, _score)(float(r['paper']))} {r['paper_tag']}"

    shown = [headers.get(c, c) for c in columns]
    head = [row_header] + shown + [f"{paper_label}: {headers.get(c, c)}" for c in paper_cols]
    lines = _header_lines(title, run, scale, paper_title)
    lines.append("| " + " | ".join(_md_escape(h) for h in head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = [ours(cell.get((row, c)), c) for c in columns]
        cells += [paper(cell.get((row, c)), c) for c in paper_cols]
        label = FLOOR_LABELS.get(row, row)
        lines.append("| " + " | ".join(_md_escape(x) for x in [label] + cells) + " |")
    if any(r["row"] in FLOOR_LABELS for r in records):
        extra = [*extra, FLOORS_NOTE]
    if any(r["row"].startswith(CEILING_PREFIX) for r in records):
        extra = [*extra, CEILING_NOTE]
    notes = sorted(
        {
            f"{headers.get(r['column'], r['column'])}"
            + (f" ({FLOOR_LABELS[r['row']]})" if r["row"] in FLOOR_LABELS else "")
            + (
                f" (paper): {fragment.removeprefix(PAPER_NOTE)}"
                if fragment.startswith(PAPER_NOTE)
                else f": {fragment}"
            )
            for r in records
            for fragment in r["note"].split("; ")
            if fragment and fragment != ORIENTATION
        }
    )
    if notes or extra:
        lines += ["", "Notes:", ""] + [f"- {_md_escape(n)}" for n in list(extra) + notes]
    write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- titles
# At paper scale a report carries the paper's title. At miniature scale its title says what this
# run is (sizes and token counts from the models' train_summary.json, question counts from the
# result files, the quality method from its JSON); the paper's title becomes a "Paper:" line.

KIND_WORDS = {
    "pretrain": "pre-trained",
    "continual_pretrain": "continually pre-trained",
    "instruction_tune": "instruction-tuned",
    "finetune_synthesizer": "fine-tuned (synthesizer)",
}


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _counts(values: Iterable[float], unit: str) -> str:
    """[8e5, 1.6e6, 8e5] -> '0.8M and 1.6M parameters' (distinct values, ascending)."""
    texts = list(dict.fromkeys(_human_count(v) for v in sorted(values)))
    return f"{_join(texts)} {unit}" if texts else ""


def _summary_path(models_dir: str | os.PathLike, model: str) -> Path:
    """train_summary.json of a model id (an instruction-tuning step's lives in its run folder)."""
    parts = model.rsplit("-step", 1)
    folder = parts[0] if model.startswith("it-") and len(parts) == 2 else model
    return Path(models_dir) / folder / "train_summary.json"


def _trained(models_dir: str | os.PathLike, models: Iterable[str]) -> dict[str, dict]:
    """model -> its train_summary.json: what this run trained. A model without one (a reference
    checkpoint evaluated as it is) is left out, with a log line naming the file looked for."""
    out = {}
    for model in dict.fromkeys(models):
        path = _summary_path(models_dir, model)
        if not path.is_file():
            log.info("%s: no training summary (not trained in this run?); not in the title", path)
            continue
        summary = read_json(path)
        if not isinstance(summary, dict) or not isinstance(summary.get("parameters"), int | float):
            raise DataError(f"{path}: expected a JSON object with a numeric 'parameters'")
        out[model] = summary
    return out


def _summary_tokens(summary: dict) -> float | None:
    tokens = summary.get("tokens")
    if tokens is not None:
        return tokens
    # tokens_trained: every step's tokens, resumed or not (older summaries: tokens_this_run)
    return summary.get("tokens_trained", summary.get("tokens_this_run"))


def _models_phrase(summaries: dict[str, dict]) -> str:
    """'pre-trained here: 0.8M and 1.6M parameters, 0.6M tokens', one clause per training kind."""
    by_kind: dict[str, list[dict]] = {}
    for summary in summaries.values():
        by_kind.setdefault(str(summary.get("kind", "trained")), []).append(summary)
    clauses = []
    for kind, group in by_kind.items():
        params = _counts((s["parameters"] for s in group), "parameters")
        tokens = [t for t in (_summary_tokens(s) for s in group) if t is not None]
        what = ", ".join(x for x in (params, _counts(tokens, "tokens")) if x)
        clauses.append(f"{KIND_WORDS.get(kind, kind)} here: {what}")
    return "; ".join(clauses) if clauses else "no model trained in this run"


def _n_phrase(ns: Iterable[int | float | None], unit: str = "questions per task") -> str:
    """'500 questions per task', or '40-500 questions per task' when tasks differ."""
    values = sorted({int(n) for n in ns if n is not None})
    if not values:
        return ""
    return f"{values[0]}{'' if len(values) == 1 else f'-{values[-1]}'} {unit}"


def _clauses(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _title(name: str, run: str, scale: str, what: str) -> tuple[str, str | None]:
    """(title, paper title for a "Paper:" line): the paper's own title at paper scale."""
    paper_title = paper_table(name).title
    if scale == "paper":
        return paper_title, None
    label = paper_title.split(":", 1)[0]
    return f"{label} (miniature run `{run}`): {what}", paper_title


# ----------------------------------------------------------------------------- floors
# Beside every task: what a model gets without reading the question ("floor: chance", a uniform
# guess among the options) and by always giving the most frequent gold answer ("floor:
# majority"), both in the task's own metric, computed from the suite's task data
# ({tasks_dir}/{suite}/{task}.jsonl, what lm-eval reads for world suites). Hub suites' documents
# are not on disk in that form: their floors are empty cells with a note ("n/a").

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
    from instruct_pt import evaluation as E
    from instruct_pt.common import read_jsonl

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
        chance["note"] = _clauses(chance.get("note", ""), repeats)
    return {FLOOR_CHANCE: chance, FLOOR_MAJORITY: majority}


def _mean_floor(cells: list[dict]) -> dict:
    """A floor of an average column: the mean of its tasks' floors (n/a if one is n/a)."""
    if any(c.get("ours") is None for c in cells):
        return {"note": "n/a: a task's floor is not available"}
    k = len(cells)
    return {"ours": sum(c["ours"] for c in cells) / k, "note": f"mean of {k} task floors"}


def _floor_records(table: str, floors: dict[str, dict[str, dict]]) -> list[Record]:
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


def _row_floors(
    tasks_dir, eval_dir, model: str, setting: str, tasks: list[str], scale: str, avg_col: str
) -> dict[str, dict[str, dict]]:
    """{column: floors} for the tasks of one model's results on a setting, then the average."""
    out: dict[str, dict[str, dict]] = {}
    for task in tasks:
        path = Path(eval_dir) / model / setting / f"{task}.json"
        res = load_result(path, f"model {model!r}, setting {setting!r}, task {task!r}")
        suite = str(res.get("suite") or setting)
        out[_column_name(res, scale)] = task_floors(
            tasks_dir, suite, str(res["task"]), res["metric"]
        )
    out[avg_col] = {row: _mean_floor([f[row] for f in out.values()]) for row in FLOOR_LABELS}
    return out


# ----------------------------------------------------------------------------- ceilings
# Beside the compared models (miniature runs): a model of their size fine-tuned on its suite's
# task-format training split (rules/ceilings.smk), evaluated on the same questions: what each
# task allows at this size. A row like the models' (``{"label", "model"}`` or ``{"label",
# "models": {domain: model}}``), placed after them; its label starts with "ceiling: ".

CEILING_PREFIX = "ceiling: "
CEILING_NOTE = (
    "Ceiling: a model of the compared models' size fine-tuned on its suite's task-format "
    "training split (the same query and answer format; other entities, or closed-book facts no "
    "evaluation question asks), evaluated on the same questions. A ceiling cell not clearly above "
    "its floors (by more than twice its standard error) says so in its note."
)


def _check_ceiling(row: dict | None) -> None:
    if row is not None and not str(row.get("label", "")).startswith(CEILING_PREFIX):
        raise DataError(f"ceiling row {row!r}: its label must start with {CEILING_PREFIX!r}")


def _ceiling_vs_floors(cell: dict | None, floors: dict[str, dict] | None) -> dict | None:
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
    return {**cell, "note": _clauses(cell.get("note", ""), note)}


# ----------------------------------------------------------------------------- tables


def _run_dirs(eval_dir, tasks_dir, models_dir) -> tuple[Path, Path]:
    """The suites' task data and the models' folders: results/{run}/eval/tasks and
    results/{run}/models beside ``eval_dir`` (results/{run}/eval) unless given."""
    tasks_dir = Path(eval_dir) / "tasks" if tasks_dir is None else Path(tasks_dir)
    models_dir = Path(eval_dir).parent / "models" if models_dir is None else Path(models_dir)
    return tasks_dir, models_dir


def _general_row(
    eval_dir, model: str, setting: str, tasks: list[str], scale: str
) -> dict[str, dict]:
    """Cells of one model on a suite: {column: cell} for every task, then 'Avg'."""
    cells: dict[str, dict] = {}
    for task in tasks:
        path = Path(eval_dir) / model / setting / f"{task}.json"
        res = load_result(path, f"model {model!r}, setting {setting!r}, task {task!r}")
        column = _column_name(res, scale)
        if column in cells:
            raise DataError(f"{path}: column {column!r} appears twice for model {model!r}")
        cells[column] = _task_cell(res, scale, path)
    cells["Avg"] = _mean_cell(list(cells.values()))
    return cells


def table1(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    setting: str = "general",
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> list[Record]:
    """Table 1: per-task general scores and their mean ("Avg") for each pre-trained model,
    then the ceiling row if given (``{"label": "ceiling: ...", "model"}``), then the two floor
    rows (chance, majority answer) of every task.

    ``rows``: ``[{"label", "model", "paper_row"?}]``; ``paper_row`` (default: label) is the
    paper's row name ("500M Instruct PT", ...), used to look up the paper's values.
    ``tasks_dir`` (the suites' task data, default ``{eval_dir}/tasks``) gives the floors;
    ``models_dir`` (default ``{eval_dir}/../models``) the sizes in a miniature run's title.
    """
    _check_scale(scale)
    tasks_dir, models_dir = _run_dirs(eval_dir, tasks_dir, models_dir)
    tasks = _task_names(eval_dir, [r["model"] for r in rows], setting)
    per_row = [(r, _general_row(eval_dir, r["model"], setting, tasks, scale)) for r in rows]
    order = _ordered({c for _, cells in per_row for c in cells}, paper_table("table1").columns)
    order = [c for c in order if c != "Avg"] + ["Avg"]
    records = [
        _record(
            "table1", r["label"], c, cells.get(c), r.get("paper_row", r["label"]), scale, c == "Avg"
        )
        for r, cells in per_row
        for c in order
    ]
    floors = _row_floors(tasks_dir, eval_dir, rows[0]["model"], setting, tasks, scale, "Avg")
    _check_ceiling(ceiling)
    if ceiling is not None:
        cells = _general_row(eval_dir, ceiling["model"], setting, tasks, scale)
        records += [
            _record(
                "table1",
                ceiling["label"],
                c,
                _ceiling_vs_floors(cells.get(c), floors.get(c)),
                ceiling["label"],
                scale,
                False,
            )
            for c in order
        ]
    records += _floor_records("table1", {c: floors[c] for c in order})
    trained = _trained(models_dir, [r["model"] for r in rows])
    ns = [cell.get("n") for _, cells in per_row for c, cell in cells.items() if c != "Avg"]
    what = (
        "general performance of models pre-trained from scratch "
        f"({_clauses(_models_phrase(trained), _n_phrase(ns))})"
    )
    title, paper_title = _title("table1", run, scale, what)
    _write_csv(out_csv, records)
    _write_markdown(out_md, title, run, scale, records, paper_title=paper_title)
    return records


def table2(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    setting: str = "general",
    tasks_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> list[Record]:
    """Table 2: parameters, training tokens and general average, ours vs reference models;
    then the ceiling's average if given (as in :func:`table1`) and the floors of the average
    (``tasks_dir`` as in :func:`table1`).

    ``rows``: ``[{"label", "model", "params", "tokens", "ours": bool, "model_dir"?, "paper_row"?}]``;
    ``ours`` marks models trained by this workflow (vs reference checkpoints evaluated here).
    A row with ``model_dir`` and no params/tokens (a model trained in this run, a miniature
    stand-in included) takes them from that folder's ``train_summary.json``: what was trained.
    """
    _check_scale(scale)
    tasks_dir, _ = _run_dirs(eval_dir, tasks_dir, None)
    tasks = _task_names(eval_dir, [r["model"] for r in rows], setting)
    records = []
    ns = []
    for r in rows:
        cells = _general_row(eval_dir, r["model"], setting, tasks, scale)
        ns += [cell.get("n") for c, cell in cells.items() if c != "Avg"]
        avg = cells["Avg"]
        kind = "trained in this run" if r.get("ours") else "reference model"
        params, tokens = r.get("params"), r.get("tokens")
        if r.get("model_dir") and (params is None or tokens is None):
            path = Path(r["model_dir"]) / "train_summary.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: training summary missing ({r['label']})")
            summary = read_json(path)
            params = summary["parameters"] if params is None else params
            tokens = summary["tokens"] if tokens is None else tokens
            kind += ", as trained here"
        paper_row = r.get("paper_row", r["label"])
        for column, cell in (
            ("Params", {"ours": params, "note": kind}),
            ("Tokens", {"ours": tokens, "note": kind}),
            ("Avg", avg),
        ):
            records.append(
                _record("table2", r["label"], column, cell, paper_row, scale, column == "Avg")
            )
    floors = _row_floors(tasks_dir, eval_dir, rows[0]["model"], setting, tasks, scale, "Avg")
    _check_ceiling(ceiling)
    if ceiling is not None:
        avg = _general_row(eval_dir, ceiling["model"], setting, tasks, scale)["Avg"]
        cell = _ceiling_vs_floors(avg, floors["Avg"])
        records.append(
            _record("table2", ceiling["label"], "Avg", cell, ceiling["label"], scale, False)
        )
    records += _floor_records("table2", {"Avg": floors["Avg"]})
    what = (
        "data efficiency: parameters and training tokens as trained or used in this run, "
        f"general average ({_clauses(f'{len(tasks)} tasks', _n_phrase(ns))})"
    )
    title, paper_title = _title("table2", run, scale, what)
    _write_csv(out_csv, records)
    _write_markdown(
        out_md,
        title,
        run,
        scale,
        records,
        formatters={"Params": _human_count, "Tokens": _human_count},
        paper_title=paper_title,
    )
    return records


def _domain_cells(
    eval_dir,
    models: dict[str, str],
    settings: dict[str, str],
    scale: str,
    tasks: dict[str, list[str]],
) -> dict[str, dict[str, dict]]:
    """One row's cells per domain: {domain: {column: cell}}, every task, then the domain's average."""
    out: dict[str, dict[str, dict]] = {}
    for domain, task_names in tasks.items():
        avg_col = DOMAIN_AVG.get(domain, f"{domain} avg")
        if domain not in models:
            out[domain] = {avg_col: {"note": f"no {domain} model in this run"}}
            continue
        cells = _general_row(
            eval_dir, models[domain], settings.get(domain, domain), task_names, scale
        )
        cells[avg_col] = cells.pop("Avg")
        out[domain] = cells
    return out


def _domain_table(
    name: str,
    eval_dir,
    rows: list[dict],
    settings: dict[str, str] | None,
    scale: str,
    with_tasks: bool,
    tasks_dir: Path,
    ceiling: dict | None = None,
) -> tuple[list[Record], list]:
    """Records of Table 3 (tasks + averages) or Table 4 (averages only), then the ceiling row
    (``{"label": "ceiling: ...", "models": {domain: model}}``) if given, then the floor rows;
    and the task cells' numbers of questions (for the title)."""
    settings = settings or {}
    rank = {d: i for i, d in enumerate(DOMAIN_ORDER)}
    domains = sorted(
        {d for r in rows for d in r["models"]}, key=lambda d: (rank.get(d, len(rank)), d)
    )
    tasks = {
        d: _task_names(
            eval_dir, [r["models"][d] for r in rows if d in r["models"]], settings.get(d, d)
        )
        for d in domains
    }
    per_row = [(r, _domain_cells(eval_dir, r["models"], settings, scale, tasks)) for r in rows]
    avg_cols = {DOMAIN_AVG.get(d, f"{d} avg") for d in domains}
    order: list[str] = []
    for d in domains:
        avg_col = DOMAIN_AVG.get(d, f"{d} avg")
        if with_tasks:
            task_cols = {c for _, cells in per_row for c in cells[d] if c != avg_col}
            models = [r["models"][d] for r in rows if d in r["models"]]
            aliases = _paper_names(eval_dir, models, settings.get(d, d), scale)
            order += _ordered(task_cols, paper_table("table3").columns, aliases)
        order.append(avg_col)
    records = []
    for r, cells in per_row:
        merged = {c: cell for domain_cells in cells.values() for c, cell in domain_cells.items()}
        paper_row = r.get("paper_row", r["label"])
        for c in order:
            if c in merged or c in avg_cols:
                records.append(
                    _record(name, r["label"], c, merged.get(c), paper_row, scale, c in avg_cols)
                )
    floors: dict[str, dict[str, dict]] = {}
    for d in domains:
        model = next(r["models"][d] for r in rows if d in r["models"])
        avg_col = DOMAIN_AVG.get(d, f"{d} avg")
        floors.update(
            _row_floors(tasks_dir, eval_dir, model, settings.get(d, d), tasks[d], scale, avg_col)
        )
    _check_ceiling(ceiling)
    if ceiling is not None:
        models = {d: m for d, m in ceiling["models"].items() if d in tasks}
        cells = _domain_cells(eval_dir, models, settings, scale, tasks)
        merged = {c: cell for domain_cells in cells.values() for c, cell in domain_cells.items()}
        records += [
            _record(
                name,
                ceiling["label"],
                c,
                _ceiling_vs_floors(merged.get(c), floors.get(c)),
                ceiling["label"],
                scale,
                False,
            )
            for c in order
            if c in merged or c in avg_cols
        ]
    records += _floor_records(name, {c: floors[c] for c in order if c in floors})
    ns = [
        cell.get("n")
        for _, cells in per_row
        for domain_cells in cells.values()
        for c, cell in domain_cells.items()
        if c not in avg_cols
    ]
    return records, ns


def _domain_title(name: str, rows, models_dir, ns, run: str, scale: str, what: str):
    """A miniature Table 3/4 title: what was trained (by kind) and the questions per task."""
    models = [m for r in rows for m in r["models"].values()]
    trained = _trained(models_dir, models)
    return _title(name, run, scale, f"{what} ({_clauses(_models_phrase(trained), _n_phrase(ns))})")


def table3(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    settings: dict[str, str] | None = None,
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> list[Record]:
    """Table 3: the five biomedicine and five finance tasks, and each domain's mean; then the
    floor rows.

    ``rows``: ``[{"label", "models": {"biomedicine": model, "finance": model}, "paper_row"?}]``;
    ``settings`` maps a domain to its evaluation setting (default: the domain's name);
    ``tasks_dir`` and ``models_dir`` as in :func:`table1`; ``ceiling``: a row like ``rows``'
    whose label starts with "ceiling: ", placed before the floors.
    """
    _check_scale(scale)
    tasks_dir, models_dir = _run_dirs(eval_dir, tasks_dir, models_dir)
    records, ns = _domain_table(
        "table3",
        eval_dir,
        rows,
        settings,
        scale,
        with_tasks=True,
        tasks_dir=tasks_dir,
        ceiling=ceiling,
    )
    title, paper_title = _domain_title(
        "table3", rows, models_dir, ns, run, scale, "domain-specific performance"
    )
    _write_csv(out_csv, records)
    _write_markdown(out_md, title, run, scale, records, paper_title=paper_title)
    return records


def table4(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    settings: dict[str, str] | None = None,
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> list[Record]:
    """Table 4: domain averages of the ablations ("Instruct PT", "w/o Corpora", "Rule-based",
    "1-shot"), then the floors of those averages (``tasks_dir``, ``models_dir``: :func:`table1`)."""
    _check_scale(scale)
    tasks_dir, models_dir = _run_dirs(eval_dir, tasks_dir, models_dir)
    records, ns = _domain_table(
        "table4",
        eval_dir,
        rows,
        settings,
        scale,
        with_tasks=False,
        tasks_dir=tasks_dir,
        ceiling=ceiling,
    )
    title, paper_title = _domain_title(
        "table4", rows, models_dir, ns, run, scale, "ablations, domain averages"
    )
    _write_csv(out_csv, records)
    _write_markdown(
        out_md, title, run, scale, records, row_header="Setting", paper_title=paper_title
    )
    return records


DEFAULT_TABLE5_LABELS = {"base": "Base model", "synthesizer": "Instruction synthesizer"}


def _shots_label(shots: object) -> str:
    text = str(shots).strip().lower()
    if text in ("0", "zero", "zero-shot", "zero_shot"):
        return "zero-shot"
    if text.startswith("few") or (text.isdigit() and int(text) > 0):
        return "few-shot"
    raise DataError(f"unknown shots setting {shots!r} (expected 0, k > 0, 'zero' or 'few')")


def table5(
    synth_eval_json: str | os.PathLike,
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    row_labels: dict[str, str] | None = None,
    models_dir: str | os.PathLike | None = None,
) -> list[Record]:
    """Table 5: response accuracy and pair quality of base vs synthesizer, seen/unseen x 0/few-shot.

    Input ``{"settings": [{"model","split","shots","response_accuracy","pair_quality","n"}]}``.
    ``row_labels`` maps the ``model`` field to a row label (default: base / synthesizer ->
    the paper's "Base model" / "Instruction synthesizer"). The paper's numbers are all UNCONFIRMED.
    A miniature title gives the synthesizer's size from ``{models_dir}/synthesizer``
    (default: results/{run}/models beside results/{run}/synthesizer/eval.json).
    """
    _check_scale(scale)
    labels = {**DEFAULT_TABLE5_LABELS, **(row_labels or {})}
    path = Path(synth_eval_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: synthesizer evaluation JSON missing")
    data = read_json(path)
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, list):
        raise DataError(f"{path}: expected {{'settings': [...]}}")
    cells: dict[tuple[str, str], dict] = {}
    rows: list[str] = []
    for i, s in enumerate(settings):
        missing = [
            k
            for k in ("model", "split", "shots", "response_accuracy", "pair_quality", "n")
            if k not in s
        ]
        if missing:
            raise DataError(f"{path}: settings[{i}]: missing key(s) {', '.join(missing)}")
        row = labels.get(s["model"], s["model"])
        prefix = f"{str(s['split']).lower()} {_shots_label(s['shots'])}"
        for metric in ("response_accuracy", "pair_quality"):
            column = f"{prefix} {metric.replace('_', ' ')}"
            if (row, column) in cells:
                raise DataError(f"{path}: settings[{i}]: duplicate setting {row!r} / {column!r}")
            value = s[metric]
            # Pair quality is a mean over the pairs parsed from the generations, not the probes.
            n = s.get("n_pairs", s["n"]) if metric == "pair_quality" else s["n"]
            stderr = s.get(f"{metric}_stderr")
            note = f"shots={s['shots']}" + ("" if value is not None else "; not measured")
            if value is not None and stderr is None:
                note += "; standard error not recorded" if n and n > 1 else "; no standard error"
            cells[(row, column)] = {"ours": value, "stderr": stderr, "n": n, "note": note}
        if row not in rows:
            rows.append(row)
    columns = _ordered({c for _, c in cells}, paper_table("table5").columns)
    records = [
        _record("table5", row, c, cells.get((row, c)), row, scale, True)
        for row in rows
        for c in columns
        if (row, c) in cells
    ]
    if models_dir is None:
        models_dir = path.resolve().parent.parent / "models"
    trained = _trained(models_dir, ["synthesizer"])
    ns = [s["n"] for s in settings]
    what = (
        "instruction synthesizer vs its base model "
        f"({_clauses(_models_phrase(trained), _n_phrase(ns, 'examples per setting'))})"
    )
    title, paper_title = _title("table5", run, scale, what)
    _write_csv(out_csv, records)
    n_note = (
        "Each cell: mean ± standard error (n): response accuracy over n probes, pair quality "
        "over the n question-answer pairs parsed from the generations."
    )
    _write_markdown(
        out_md, title, run, scale, records, paper_title=paper_title, extra=[n_note], show_n=True
    )
    return records


def _load_quality(path: str | os.PathLike, corpus: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data-quality JSON missing (corpus {corpus!r})")
    q = read_json(path)
    missing = [
        k
        for k in ("context_relevance", "response_accuracy", "n_categories", "categories", "n_pairs")
        if k not in q
    ]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    return q


def _rate_cell(value: float | None, n: int | None, method: str) -> dict:
    """A percentage and its binomial standard error (in points)."""
    if value is None:
        return {"note": f"{method}; no pair could be checked"}
    se = math.sqrt(value * (100 - value) / n) if n else None
    return {"ours": value, "stderr": se, "n": n, "note": method}


def _method_words(method: str) -> str:
    """The quality JSON's ``method`` in words (a miniature title says who judged)."""
    if method == "world-ground-truth":
        return "world ground truth (not an LLM judge)"
    if method.startswith("llm-judge:"):
        return f"LLM judge {method.split(':', 1)[1]}"
    return method or "method not recorded"


def _quality_what(methods: list[str], n_texts: list[int | None]) -> str:
    judged = _join([_method_words(m) for m in dict.fromkeys(methods)])
    counts = _n_phrase(n_texts, "texts per corpus")
    return f"quality of the instruction-augmented corpora ({_clauses(judged, counts)})"


def table6(
    quality_jsons: dict[str, str | os.PathLike],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
) -> list[Record]:
    """Table 6: context relevance, response accuracy and task categories of each augmented corpus."""
    _check_scale(scale)
    records = []
    methods: list[str] = []
    n_texts: list[int | None] = []
    for corpus, path in quality_jsons.items():
        q = _load_quality(path, corpus)
        row = CORPUS_ROW.get(corpus, corpus)
        method = str(q.get("method", ""))
        for column, cell in (
            ("Context relevance", _rate_cell(q["context_relevance"], q["n_pairs"], method)),
            (
                "Response accuracy",
                _rate_cell(q["response_accuracy"], q.get("n_fact_pairs", q["n_pairs"]), method),
            ),
            ("Task categories", {"ours": q["n_categories"], "n": q["n_pairs"], "note": method}),
        ):
            records.append(_record("table6", row, column, cell, row, scale, True))
        methods.append(method)
        n_texts.append(q.get("n_texts"))
    title, paper_title = _title("table6", run, scale, _quality_what(methods, n_texts))
    _write_csv(out_csv, records)
    _write_markdown(
        out_md,
        title,
        run,
        scale,
        records,
        row_header="Corpus",
        formatters={"Task categories": lambda x: f"{x:.0f}"},
        paper_title=paper_title,
    )
    return records


# Table 9's columns are counts of evaluation examples (not rates, not counts of pairs).
TABLE9_HEADERS = {
    "Contaminated": "contaminated examples (count)",
    "Total": "evaluation examples (count)",
}


def table9(
    contamination_json: str | os.PathLike,
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
) -> list[Record]:
    """Table 9 (appendix): evaluation examples sharing an n-gram with the synthesized pairs."""
    _check_scale(scale)
    path = Path(contamination_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: contamination result missing")
    data = read_json(path)
    records = []
    names = data.get("paper_names", {})
    rows = [(task, t, None) for task, t in data["tasks"].items()]
    rows += [(task, None, why) for task, why in data.get("unavailable", {}).items()]
    for task, t, why in rows:
        # Only a task that IS the paper's (paper scale) gets the paper's row.
        paper_row = names.get(task, task.split("/")[-1]) if scale == "paper" else ""
        for column in ("Contaminated", "Total"):
            if t is None:  # its data could not be read where the rule ran
                cell = {"note": f"not available: {why}"}
            else:
                if column == "Contaminated":
                    note = (
                        f"examples sharing a {data['n']}-gram with the "
                        f"{data['n_synth_pairs']} synthesized pairs"
                    )
                    cell = {"ours": t["contaminated"], "n": t["total"], "note": note}
                else:
                    cell = {"ours": t["total"], "n": t["total"], "note": "evaluation examples"}
            records.append(_record("table9", task, column, cell, paper_row, scale, False))
    what = (
        f"evaluation examples sharing {data['n']}-grams with the "
        f"{data['n_synth_pairs']} pairs synthesized in this run"
    )
    title, paper_title = _title("table9", run, scale, what)
    _write_csv(out_csv, records)
    _write_markdown(
        out_md,
        title,
        run,
        scale,
        records,
        row_header="Evaluation task",
        formatters={"Contaminated": lambda x: f"{x:.0f}", "Total": lambda x: f"{x:.0f}"},
        paper_title=paper_title,
        headers=TABLE9_HEADERS,
    )
    return records


# ----------------------------------------------------------------------------- figures


def _pyplot():
    """matplotlib with the Agg backend and settings that make files byte-reproducible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.hashsalt": "instruct_pt", "font.family": "DejaVu Sans", "font.size": 9}
    )
    return plt


def _save_figure(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike) -> None:
    """Write PNG and PDF atomically, with no timestamps or version stamps in their metadata."""
    for path, fmt, meta in (
        (Path(out_png), "png", {"Software": None}),
        (Path(out_pdf), "pdf", {"Creator": None, "Producer": None, "CreationDate": None}),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
        os.replace(tmp, path)


def _figure_markdown(
    out_md,
    title,
    run,
    scale,
    records,
    images: Sequence[str | os.PathLike],
    row_header,
    extra: Sequence[str] = (),
):
    rel = [os.path.relpath(Path(p).resolve(), Path(out_md).resolve().parent) for p in images]
    figure = [f"Figure: ![{title}]({rel[0]}) (PDF: {rel[1]})"] if rel else []
    _write_markdown(
        out_md, title, run, scale, records, row_header=row_header, extra=[*figure, *extra]
    )


def _figure_title(label: str, run: str, scale: str, paper_what: str, what: str) -> str:
    """The paper's caption at paper scale; at miniature scale what this run's figure shows."""
    if scale == "paper":
        return f"{label}: {paper_what}"
    return f"{label} (miniature run `{run}`): {what}"


def _suptitle(title: str, run: str, scale: str) -> str:
    """A figure's suptitle: the run and scale at paper scale, else the (wrapped) title."""
    import textwrap

    return f"Run {run} ({scale} scale)" if scale == "paper" else textwrap.fill(title, 100)


def figure4(
    eval_dir: str | os.PathLike,
    curves: list[dict],
    settings: dict[str, str],
    task: str,
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    out_png: str | os.PathLike,
    out_pdf: str | os.PathLike,
    run: str,
    scale: str,
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
) -> list[Record]:
    """Fig. 4: score on ``task`` vs instruction-tuning step, one panel per setting, one line per curve.

    ``curves``: ``[{"label", "variant", "steps": {step: model}}]``; ``settings``:
    ``{"zero-shot": setting, "few-shot": setting}``. Besides ``"{panel} step {k}"`` the CSV has
    ``"{panel} final"`` (the last step), which the claims scorecard compares, and the task's
    floors under the ``"{panel} final"`` columns (dashed lines in the panels). ``tasks_dir``
    and ``models_dir`` as in :func:`table1`.
    """
    _check_scale(scale)
    tasks_dir, models_dir = _run_dirs(eval_dir, tasks_dir, models_dir)
    records: list[Record] = []
    floors: dict[str, dict[str, dict]] = {}
    ns: list = []
    points: dict[tuple[str, str], list[tuple[int, float, float | None]]] = {}
    panel_info: dict[str, dict] = {}  # panel -> metric, shots and n of its results
    for curve in curves:
        steps = sorted((int(k), m) for k, m in curve["steps"].items())
        if not steps:
            raise DataError(f"figure4: curve {curve['label']!r} has no steps")
        for panel, setting in settings.items():
            line = []
            for step, model in steps:
                path = Path(eval_dir) / model / setting / f"{task}.json"
                res = load_result(path, f"curve {curve['label']!r}, step {step}, {panel}")
                cell = _task_cell(res, scale, path)
                line.append((step, cell["ours"], cell["stderr"]))
                ns.append(res.get("n"))
                info = panel_info.setdefault(panel, {"metric": set(), "shots": set(), "n": set()})
                info["metric"].add(str(res["metric"]))
                info["shots"].add(res.get("num_fewshot"))
                info["n"].add(res.get("n"))
                if f"{panel} final" not in floors:
                    suite = str(res.get("suite") or setting)
                    floors[f"{panel} final"] = task_floors(
                        tasks_dir, suite, str(res["task"]), res["metric"]
                    )
                records.append(
                    _record(
                        "figure4",
                        curve["label"],
                        f"{panel} step {step}",
                        cell,
                        curve["label"],
                        scale,
                        False,
                    )
                )
            final = {**cell, "note": f"value at the last step ({steps[-1][0]})"}
            records.append(
                _record(
                    "figure4", curve["label"], f"{panel} final", final, curve["label"], scale, False
                )
            )
            points[(curve["label"], panel)] = line
    records += _floor_records("figure4", floors)
    trained = _trained(models_dir, [m for c in curves for m in c["steps"].values()])
    title = _figure_title(
        "Figure 4",
        run,
        scale,
        f"{task} vs instruction-tuning steps",
        f"{task} vs instruction-tuning steps "
        f"({_clauses(_models_phrase(trained), _n_phrase(ns, 'questions'))})",
    )

    offset = _plot_figure4(points, panel_info, floors, curves, settings, task, title, run, scale)
    _save_figure(offset["fig"], out_png, out_pdf)
    _pyplot().close(offset["fig"])

    _write_csv(out_csv, records)
    _figure_markdown(
        out_md,
        title,
        run,
        scale,
        records,
        (out_png, out_pdf),
        "Curve",
        extra=[offset["note"]] if offset["note"] else [],
    )
    return records


def _set_words(values: set, unit: str = "") -> str:
    """{3} -> '3'; {3, 5} -> '3/5'; {None} -> '?' (a figure's shots or n)."""
    known = sorted(v for v in values if v is not None)
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in known) or "?"


def _plot_figure4(points, panel_info, floors, curves, settings, task, title, run, scale) -> dict:
    """Figure 4's panels from one run's results: standard errors as error bars."""
    panels = {}
    for panel in settings:
        info = panel_info[panel]
        panels[panel] = {
            "points": {
                c["label"]: [
                    (x, y, se or 0.0, se or 0.0) for x, y, se in points[(c["label"], panel)]
                ]
                for c in curves
            },
            "floors": {
                row: floors.get(f"{panel} final", {}).get(row, {}).get("ours")
                for row in (FLOOR_CHANCE, FLOOR_MAJORITY)
            },
            "title": step_panel_title(task, panel, info["shots"], info["n"]),
            "ylabel": step_panel_ylabel(task, info["metric"]),
        }
    return plot_step_panels(
        panels, curves, _suptitle(title, run, scale) + "\nerror bars: ±1 standard error"
    )


def step_panel_title(task: str, panel: str, shots: set, n: set) -> str:
    """A Figure 4 panel's title: task, setting, shots and n ('mmlu, zero-shot (0 shots), n=80
    questions')."""
    return f"{task}, {panel} ({_set_words(shots)} shots), n={_set_words(n)} questions"


def step_panel_ylabel(task: str, metrics: set) -> str:
    """A Figure 4 panel's y axis: the task and its metric ('mmlu: acc_norm (%)')."""
    return f"{task}: {_set_words(metrics)} (%)"


def plot_step_panels(panels: dict[str, dict], curves: Sequence[dict], suptitle: str) -> dict:
    """Figure 4's drawing, for one run and for the aggregate over world seeds: one panel per
    setting, one line per curve with its error bars, each curve shifted a little along x (and
    drawn with its own marker and line style) so that equal curves stay visible; the floors as
    grey lines (chance dashed, majority dotted).

    ``panels``: ``{panel: {"points": {curve label: [(x, y, err_low, err_high)]}, "floors":
    {FLOOR_CHANCE/FLOOR_MAJORITY: value or None}, "title", "ylabel"}}``; ``curves``: ``[{"label",
    "variant"}]`` in drawing order (the variant picks the colour). A curve without points in a
    panel is not drawn there. Returns {"fig", "note"} (the note says the shift, if any)."""
    plt = _pyplot()
    variants = sorted({c["variant"] for c in curves})
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    markers, styles = "osD^v", ("-", "--", "-.", ":")
    steps = sorted(
        {p[0] for pan in panels.values() for line in pan["points"].values() for p in line}
    )
    span = (steps[-1] - steps[0]) if len(steps) > 1 else 1
    k = len(curves)
    shift = {c["label"]: 0.012 * span * (i - (k - 1) / 2) for i, c in enumerate(curves)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.4), squeeze=False)
    for ax, pan in zip(axes[0], panels.values(), strict=True):
        for i, curve in enumerate(curves):
            line = pan["points"].get(curve["label"]) or []
            if not line:
                continue
            xs, ys, lows, highs = zip(*line, strict=True)
            if not (any(lows) or any(highs)):
                yerr = None
            elif lows == highs:
                yerr = list(lows)
            else:
                yerr = [list(lows), list(highs)]
            ax.errorbar(
                [x + shift[curve["label"]] for x in xs],
                ys,
                yerr=yerr,
                marker=markers[i % len(markers)],
                linestyle=styles[i % len(styles)],
                color=colors[curve["variant"]],
                alpha=0.85,
                capsize=3,
                markersize=5,
                label=curve["label"],
            )
        for row, style in ((FLOOR_CHANCE, "--"), (FLOOR_MAJORITY, ":")):
            floor = pan["floors"].get(row)
            if floor is not None:
                ax.axhline(floor, color="grey", linestyle=style, label=FLOOR_LABELS[row])
        ax.set_title(pan["title"])
        ax.set_xlabel("instruction-tuning step")
        ax.set_ylabel(pan["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(suptitle)
    fig.tight_layout()
    moved = max(abs(v) for v in shift.values()) if shift else 0.0
    note = (
        f"In the figure, the curves are shifted by up to {moved:.3g} steps along x so that equal "
        "curves do not hide one another; the table has the true steps."
        if moved
        else ""
    )
    return {"fig": fig, "note": note}


def figure6(
    quality_jsons: dict[str, str | os.PathLike],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    out_png: str | os.PathLike,
    out_pdf: str | os.PathLike,
    run: str,
    scale: str,
) -> list[Record]:
    """Fig. 6: the distribution of synthesized pairs over task categories (% of pairs), per corpus."""
    _check_scale(scale)
    dists: dict[str, dict[str, float]] = {}
    records: list[Record] = []
    methods: list[str] = []
    n_pairs: list[int | None] = []
    for corpus, path in quality_jsons.items():
        q = _load_quality(path, corpus)
        row = CORPUS_ROW.get(corpus, corpus)
        methods.append(str(q.get("method", "")))
        n_pairs.append(q["n_pairs"])
        dists[row] = {name: 100.0 * float(share) for name, share in q["categories"].items()}
        for name, pct in dists[row].items():
            records.append(
                _record(
                    "figure6",
                    row,
                    name,
                    {"ours": pct, "n": q["n_pairs"], "note": "% of pairs"},
                    row,
                    scale,
                    False,
                )
            )

    judged = _join([_method_words(m) for m in dict.fromkeys(methods)])
    title = _figure_title(
        "Figure 6",
        run,
        scale,
        "task-category distribution",
        "task-category distribution of the synthesized pairs "
        f"({_clauses(_n_phrase(n_pairs, 'pairs per corpus'), f'categories by {judged}')})",
    )
    ns = {CORPUS_ROW.get(c, c): n for c, n in zip(quality_jsons, n_pairs, strict=True)}
    fig, empty = _plot_figure6(dists, ns, title, run, scale)
    _save_figure(fig, out_png, out_pdf)
    _pyplot().close(fig)
    dropped = (
        f"Categories with no pair in any corpus, not plotted: {', '.join(empty)}."
        if empty
        else "Every category has pairs in some corpus (none left out of the figure)."
    )
    _write_csv(out_csv, records)
    _figure_markdown(
        out_md,
        title,
        run,
        scale,
        records,
        (out_png, out_pdf),
        "Corpus",
        extra=[dropped, "Error bars: ±1 binomial standard error of the share, over n pairs."],
    )
    return records


def _plot_figure6(dists: dict[str, dict[str, float]], ns: dict[str, int | None], title, run, scale):
    """Figure 6's panels from one run: binomial standard errors of the shares."""
    bars = {
        row: {
            c: (v, err, err)
            for c, v in dist.items()
            for err in [math.sqrt(v * (100 - v) / ns[row]) if ns.get(row) else 0.0]
        }
        for row, dist in dists.items()
    }
    words = {row: "?" if ns.get(row) is None else str(ns[row]) for row in dists}
    return plot_category_panels(bars, words, _suptitle(title, run, scale))


def plot_category_panels(
    bars: dict[str, dict[str, tuple[float, float, float]]], ns: dict[str, str], suptitle: str
):
    """Figure 6's drawing, for one run and for the aggregate over world seeds: one panel per
    corpus (one shared x scale, n in each title), bars of the categories that some corpus has
    (a category at 0 in every corpus is left out) with their error bars.

    ``bars``: ``{corpus: {category: (% of pairs, err_low, err_high)}}``; ``ns``: ``{corpus: n
    as words}``. Returns (fig, the categories left out)."""
    plt = _pyplot()
    every = list(dict.fromkeys(c for d in bars.values() for c in d))
    categories = [c for c in every if any(d.get(c, (0.0,))[0] > 0 for d in bars.values())]
    empty = [c for c in every if c not in categories]
    cells = [d.get(c, (0.0, 0.0, 0.0)) for d in bars.values() for c in categories]
    top = max((v for v, _, _ in cells), default=0.0)
    reach = max((v + hi for v, _, hi in cells), default=0.0)
    fig, axes = plt.subplots(
        1,
        len(bars),
        figsize=(3.6 * len(bars), 0.3 * max(len(categories), 1) + 1.4),
        squeeze=False,
        sharey=True,
        sharex=True,
    )
    for ax, (row, dist) in zip(axes[0], bars.items(), strict=True):
        cell = [dist.get(c, (0.0, 0.0, 0.0)) for c in categories]
        values, lows, highs = ([x[k] for x in cell] for k in range(3))
        errs = lows if lows == highs else [lows, highs]
        ax.barh(range(len(categories)), values, xerr=errs, color="C0", capsize=2)
        ax.set_yticks(range(len(categories)), categories)
        ax.set_title(f"{row} (n={ns.get(row, '?')} pairs)")
        ax.set_xlabel("% of pairs")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # shared y: once
    # Room for the largest bar and its error bar (the bar's end + 15% + 1 point, as before).
    right = max(top * 1.15 + 1, reach + 1) if top else 100.0
    axes[0][0].set_xlim(0, min(100.0, right))
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig, empty


# ----------------------------------------------------------------------------- HTML pages
# Snakemake's report (`snakemake --report`, rules/reports.smk) shows HTML and images in the
# browser but offers Markdown only as a download: each table's Markdown becomes one standalone
# HTML page (its figure, if any, embedded), which the report shows under its category.

PAGE_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #bbb;padding:3px 6px;text-align:right;vertical-align:top}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}code{background:#f4f4f4;padding:0 2px}"
)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.(?:png|jpe?g|svg))\)")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_IMAGE_TYPES[".svg"] = "image/svg+xml"


def markdown_page(md_path: str | os.PathLike, out_html: str | os.PathLike) -> None:
    """One report Markdown file as a standalone HTML page: tables, notes and its images, which
    are embedded (data URIs) so that the page needs no file beside it. A missing image is an
    error naming it."""
    import base64
    import html

    from markdown_it import MarkdownIt

    md_path = Path(md_path)
    if not md_path.is_file():
        raise FileNotFoundError(f"{md_path}: report Markdown missing")
    text = md_path.read_text(encoding="utf-8")

    def embed(m: re.Match) -> str:
        image = md_path.parent / m.group(2)
        if not image.is_file():
            raise FileNotFoundError(f"{image}: image of {md_path} missing")
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        mime = _IMAGE_TYPES[image.suffix.lower()]
        return f"![{m.group(1)}](data:{mime};base64,{data})"

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(_IMAGE.sub(embed, text))
    first = next((ln for ln in text.splitlines() if ln.startswith("# ")), f"# {md_path.stem}")
    title = html.escape(first[2:].strip())
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
    write_text(out_html, page)


def config_page(config: dict, configfiles: Sequence[str], out_html: str | os.PathLike) -> None:
    """The run's configuration as the workflow saw it (config.yaml with the presets and
    --config overlays applied), as one HTML page, and the files it came from."""
    import html

    import yaml

    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    files = "".join(f"<li><code>{html.escape(str(f))}</code></li>" for f in configfiles)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Configuration of run {html.escape(str(config.get('run', '?')))}</title>\n"
        f"<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>Configuration of run <code>{html.escape(str(config.get('run', '?')))}</code></h1>\n"
        "<p>Config files: the workflow's config.yaml, extended by the files given with "
        f"--configfile and by --config values:</p>\n<ul>{files}</ul>\n"
        f"<p>The resulting configuration:</p>\n<pre>{html.escape(text)}</pre>\n</body>\n</html>\n"
    )
    write_text(out_html, page)


# ----------------------------------------------------------------------------- scorecard summary


def claims_summary(claims_json: str | os.PathLike) -> str:
    """The scorecard in a few lines (the end of `make demo`): how many claims held, were
    refuted, inconclusive or not evaluated, then one line per claim."""
    path = Path(claims_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: claims scorecard missing (run the workflow first)")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise DataError(f"{path}: expected a JSON object with a 'claims' list")
    claims = data["claims"]
    counts: dict[str, int] = {}
    for i, claim in enumerate(claims):
        for key in ("id", "verdict"):
            if key not in claim:
                raise DataError(f"{path}: claims[{i}]: missing key {key!r}")
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    order = ["held", "refuted", "inconclusive", "not evaluated"]
    order += sorted(v for v in counts if v not in order)
    seeds = data.get("seeds")
    where = f"run {data.get('run', '?')}, {data.get('scale', '?')} scale" + (
        f", world seeds {', '.join(map(str, seeds))}" if seeds else ""
    )
    lines = [
        f"Claims scorecard ({where}): "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in order)
        + f" of {len(claims)}"
    ]
    width = max((len(c["verdict"]) for c in claims), default=0)
    for claim in claims:
        lines.append(f"  {claim['verdict']:<{width}}  {claim['id']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m instruct_pt.reports summary CLAIMS_JSON`` | ``page MD HTML``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m instruct_pt.reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="print the claims scorecard's summary")
    summary.add_argument("claims_json")
    page = sub.add_parser("page", help="one report Markdown file as a standalone HTML page")
    page.add_argument("md")
    page.add_argument("html")
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            print(claims_summary(args.claims_json))
        else:
            markdown_page(args.md, args.html)
    except (FileNotFoundError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
