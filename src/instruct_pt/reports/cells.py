"""The report cell: one long-format CSV record per table cell, how it is computed from a result.

Every table and figure writes one long-format CSV (``CSV_FIELDS``; one line per cell, the input
of the claims scorecard). Inputs are the evaluation result JSONs
``{eval_dir}/{model}/{setting}/{task}.json`` (docs/architecture.md). Paper values come only
from :mod:`instruct_pt.reports.paper`, with their evidence tags. A column is comparable with the
paper only at ``scale="paper"``; at miniature scale the paper's number is shown only for summary
columns (averages, corpus-level metrics), labelled "for orientation". A missing input file is an
error that names the file, never a silent blank.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from instruct_pt.common import DataError, read_json, write_text
from instruct_pt.reports.paper import load_tables, paper_entry

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
# Names an evaluation helper might use for a paper task (HF config names) -> the paper's name.
PAPER_ALIASES = {"FiQA_SA": "FiQA SA", "MedQs": "MQP", "Winogrande": "WinoGrande"}

Record = dict[str, str]


def check_scale(scale: str) -> None:
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


def human_count(x: float) -> str:
    """5e8 -> '0.5B', 1.23e6 -> '1.23M' (Table 2's parameters and tokens)."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= size or (unit == "B" and abs(x) >= 1e8):
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


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


def task_names(eval_dir: str | os.PathLike, models: Iterable[str], setting: str) -> list[str]:
    """The union of the tasks evaluated for these models (file stems); every model must have all."""
    names: set[str] = set()
    for model in models:
        d = _suite_dir(eval_dir, model, setting)
        names.update(p.stem for p in d.glob("*.json") if not p.name.startswith(("_", ".")))
    if not names:
        raise FileNotFoundError(f"{Path(eval_dir)}: no result files for setting {setting!r}")
    return sorted(names)


def paper_name(res: dict) -> str:
    name = str(res.get("paper_name") or "")
    return PAPER_ALIASES.get(name, name)


def column_name(res: dict, scale: str) -> str:
    """The paper's task name at paper scale (the task IS the paper's); our task name otherwise."""
    name = paper_name(res)
    return name if scale == "paper" and name else str(res["task"])


def ordered(
    columns: Iterable[str], paper_columns: Sequence[str], aliases: dict[str, str] | None = None
) -> list[str]:
    """Paper's column order first, the rest alphabetical. ``aliases`` maps a column to the paper
    column it stands for (a miniature task named after its paper task: pubmedqa_like -> PubMedQA)."""
    rank = {c: i for i, c in enumerate(paper_columns)}
    aliases = aliases or {}
    return sorted(set(columns), key=lambda c: (rank.get(aliases.get(c, c), len(rank)), c))


def paper_names(eval_dir, models: Iterable[str], setting: str, scale: str) -> dict[str, str]:
    """Column -> the paper task it stands for, from the result files' ``paper_name``."""
    names = {}
    for model in models:
        for path in sorted(_suite_dir(eval_dir, model, setting).glob("*.json")):
            if not path.name.startswith(("_", ".")):
                res = read_json(path)
                if paper_name(res):
                    names[column_name(res, scale)] = paper_name(res)
    return names


def mean_cell(cells: list[dict]) -> dict:
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


def paper_fields(
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


def record(
    table: str,
    row: str,
    column: str,
    cell: dict | None,
    paper_row: str,
    scale: str,
    summary: bool,
) -> Record:
    cell = cell or {}
    paper, tag, paper_notes = paper_fields(table, paper_row, column, scale, summary)
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


def task_cell(res: dict, scale: str, source: str | os.PathLike | None = None) -> dict:
    """A cell from one result (read from `source`); at miniature scale the note names the paper
    task it stands in for."""
    name = paper_name(res)
    note = f"{res['metric']}, task {res['task']}"
    if scale != "paper" and name:
        note += f", analogue of {name}"
    return {
        "ours": float(res["value"]),
        "stderr": None if res.get("stderr") is None else float(res["stderr"]),
        "n": res.get("n"),
        "note": note,
        "sources": [] if source is None else [source],
    }


def write_csv(
    path: str | os.PathLike, records: list[Record], fields: Sequence[str] = CSV_FIELDS
) -> None:
    """Write the records; their "sources" become paths relative to the CSV's folder (so the
    CSV, and the claims that read it, do not depend on the working directory). ``fields``: the
    columns (the multi-seed tables add interval columns, :mod:`instruct_pt.reports.seeds`)."""
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


def clauses(*parts: str) -> str:
    """The non-empty parts, joined by '; ' (a title's or a note's clauses)."""
    return "; ".join(p for p in parts if p)


def read_input(path: str | os.PathLike, missing: str) -> object:
    """An input JSON of a report; a missing file raises FileNotFoundError "{path}: {missing}"."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    return read_json(path)
