"""The authors' released checkpoints, evaluated: our score beside the paper's number.

``snakemake released`` evaluates the models of config section ``released`` (InstructLM-500M and
-1.3B on the general suite, medicine-/finance-Llama3-8B on their domain suites) with the same
rules as every other model (``base_model`` fetches the hub weights, ``evaluate`` scores them),
then :func:`report` writes ``paper_figures/<run>/released.{csv,md}``: one line per (model,
task) and one per average, each beside the paper's cell of the table and row the config names
(Table 1 "Instruct PT" rows, Table 3 "Instruct PT-8B"). Anyone with one GPU can so check the
paper's Tables 1 and 3 without training.

Paper values come only through :mod:`instruct_pt.reports.paper` (an UNCONFIRMED cell keeps its tag and
never a number). Averages are computed as the paper computes them: the plain mean of the task
scores (Table 1 "Avg": the 9 general tasks; Table 3: the 5 tasks of the domain); an average over
another set of tasks is marked as not the paper's.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from instruct_pt.common import DataError, write_text
from instruct_pt.config import ConfigError
from instruct_pt.reports.cells import (
    MINIATURE_NOTE,
    ORIENTATION,
    check_scale,
    column_name,
    fmt_number,
    load_result,
    mean_cell,
    paper_fields,
    paper_name,
    task_cell,
    task_names,
)
from instruct_pt.reports.markdown import md_escape
from instruct_pt.reports.paper import paper_table
from instruct_pt.reports.tables import DOMAIN_AVG

#: Paper tables a released model can be compared with, and how the row's average column is found.
TABLES = ("table1", "table3")
TABLE_LABEL = {"table1": "Table 1", "table3": "Table 3"}
FIELDS = (
    "model",
    "label",
    "setting",
    "task",
    "metric",
    "ours",
    "ours_stderr",
    "n",
    "paper_table",
    "paper_row",
    "paper_column",
    "paper",
    "paper_tag",
    "note",
)
TITLE = "The authors' released checkpoints, evaluated here, beside the paper's numbers"


# ----------------------------------------------------------------------------- config -> rows


def average_column(table: str, suite: str) -> str:
    """The paper's column holding the average of a suite's tasks in ``table``."""
    if table == "table1":
        return "Avg"
    if table == "table3":
        if suite not in DOMAIN_AVG:
            raise ConfigError(
                f"Table 3 has averages for the suites {sorted(DOMAIN_AVG)} only, not {suite!r}"
            )
        return DOMAIN_AVG[suite]
    raise ConfigError(f"unknown paper table {table!r} (released models compare with {TABLES})")


def paper_tasks(table: str, avg_column: str) -> list[str]:
    """The paper's task columns averaged into ``avg_column``: the columns before it, back to the
    previous average column (Table 3 holds the biomedicine group, then the finance group)."""
    columns = list(paper_table(table).columns)
    end = columns.index(avg_column)
    start = max(
        (i + 1 for i, c in enumerate(columns[:end]) if c.lower().endswith("avg")), default=0
    )
    return columns[start:end]


def plan(config: dict) -> list[dict]:
    """The evaluations the ``released`` target asks for, one row per (model, setting), checked.

    Returns ``[{"name", "model", "label", "setting", "suite", "paper"}]`` where ``model`` is the
    evaluated model id (``base-<name>``) and ``paper`` is ``None`` or ``{"table", "row",
    "avg_column"}``. Errors name the config key.
    """
    section = config.get("released") or {}
    bases = config["base_models"]
    settings = config["evaluation"]["settings"]
    rows, problems = [], []
    for name, spec in section.items():
        key = f"released.{name}"
        if name not in bases:
            problems.append(f"config key '{key}': '{name}' is not in base_models")
            continue
        for setting, paper in (spec.get("settings") or {}).items():
            skey = f"{key}.settings.{setting}"
            if setting not in settings:
                problems.append(f"config key '{skey}': '{setting}' is not in evaluation.settings")
                continue
            suite = settings[setting]["suite"]
            if paper is not None:
                try:
                    avg = average_column(paper["table"], suite)
                except ConfigError as e:
                    problems.append(f"config key '{skey}.table': {e}")
                    continue
                if paper["row"] not in paper_table(paper["table"]).rows:
                    known = ", ".join(paper_table(paper["table"]).rows)
                    problems.append(
                        f"config key '{skey}.row': {paper['row']!r} is not a row of "
                        f"{paper['table']} (rows: {known})"
                    )
                    continue
                paper = {"table": paper["table"], "row": paper["row"], "avg_column": avg}
            rows.append(
                {
                    "name": name,
                    "model": f"base-{name}",
                    "label": spec.get("label") or name,
                    "setting": setting,
                    "suite": suite,
                    "paper": paper,
                }
            )
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))
    return rows


def eval_dirs(eval_dir: str, rows: list[dict]) -> list[str]:
    """The evaluation folders the report reads (the ``released`` target's evaluate jobs)."""
    return [f"{eval_dir}/{r['model']}/{r['setting']}" for r in rows]


# ----------------------------------------------------------------------------- the report


def _line(
    row: dict,
    task: str,
    metric: str,
    cell: dict,
    column: str,
    scale: str,
    summary: bool,
    remarks: list[str] = (),
) -> dict:
    """One CSV line. ``remarks`` (the paper's notes, comparability) also reach the Markdown notes;
    the key ``_remarks`` is not written to the CSV."""
    paper = row["paper"]
    line = {
        "model": row["model"],
        "label": row["label"],
        "setting": row["setting"],
        "task": task,
        "metric": metric,
        "ours": fmt_number(cell.get("ours")),
        "ours_stderr": fmt_number(cell.get("stderr")),
        "n": fmt_number(cell.get("n")),
        "paper_table": paper["table"] if paper else "",
        "paper_row": paper["row"] if paper else "",
        "paper_column": column if paper and column in paper_table(paper["table"]).columns else "",
        "paper": "",
        "paper_tag": "",
    }
    remarks = list(remarks)
    orientation = []
    if paper:
        value, tag, paper_notes = paper_fields(paper["table"], paper["row"], column, scale, summary)
        line.update(paper=value, paper_tag=tag)
        orientation = [n for n in paper_notes if n == ORIENTATION]
        remarks += [n for n in paper_notes if n != ORIENTATION]
    line["note"] = "; ".join(([cell["note"]] if cell.get("note") else []) + orientation + remarks)
    line["_remarks"] = remarks
    return line


def _model_lines(eval_dir, row: dict, scale: str) -> list[dict]:
    """Lines of one (model, setting): its tasks (in the paper's column order, then the rest by
    name), then their average."""
    model, setting, paper = row["model"], row["setting"], row["paper"]
    cells: dict[str, tuple[dict, dict]] = {}
    for task in task_names(eval_dir, [model], setting):
        path = Path(eval_dir) / model / setting / f"{task}.json"
        res = load_result(path, f"released model {row['label']!r}, setting {setting!r}")
        column = column_name(res, scale)
        if column in cells:
            raise DataError(f"{path}: column {column!r} appears twice for model {model!r}")
        cells[column] = (res, task_cell(res, scale))
    group = paper_tasks(paper["table"], paper["avg_column"]) if paper else []
    rank = {c: i for i, c in enumerate(group)}
    order = sorted(cells, key=lambda c: (rank.get(paper_name(cells[c][0]), len(rank)), c))
    lines = [
        _line(row, str(res["task"]), str(res["metric"]), cell, c, scale, False)
        for c in order
        for res, cell in [cells[c]]
    ]
    avg = mean_cell([cells[c][1] for c in order])
    avg_column = paper["avg_column"] if paper else "Avg"
    remarks = []
    if paper and scale == "paper":
        ours = {paper_name(cells[c][0]) for c in order}
        if ours != set(group):
            missing, extra = sorted(set(group) - ours), sorted(ours - set(group))
            remarks.append(
                f"not the paper's average (the paper's: mean of {', '.join(group)}"
                + (f"; not evaluated here: {', '.join(missing)}" if missing else "")
                + (f"; not among the paper's: {', '.join(extra)}" if extra else "")
                + ")"
            )
    lines.append(_line(row, avg_column, "mean", avg, avg_column, scale, True, remarks))
    return lines


def _write_csv(path, lines: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(lines)
    write_text(path, buf.getvalue())


def _write_markdown(path, run: str, scale: str, lines: list[dict]) -> None:
    paper_label = "paper [tag]" if scale == "paper" else ORIENTATION
    out = [f"# {TITLE}", "", f"Run: `{run}` · scale: {scale}", ""]
    if scale != "paper":
        out += [MINIATURE_NOTE, ""]
    out += [
        "Our score (± its standard error where the harness gives one) on each task, and the "
        "mean of the tasks as the paper averages them, beside the paper's cell of the table "
        "and row named in the last column. Paper values carry their evidence tag ([P] primary, "
        "[S] one secondary summary, [S2] two or more agree); UNCONFIRMED cells show no number; "
        "— : the paper has no such cell.",
        "",
        f"| Model | Setting | Task | Metric | Ours | n | {paper_label} | Paper cell |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ln in lines:
        ours = "—"
        if ln["ours"]:
            ours = f"{float(ln['ours']):.1f}"
            if ln["ours_stderr"]:
                ours += f" ± {float(ln['ours_stderr']):.1f}"
        if not ln["paper_tag"]:
            paper = "—"
        elif not ln["paper"]:
            paper = "UNCONFIRMED"
        else:
            paper = f"{float(ln['paper']):.1f} {ln['paper_tag']}"
        where = "—"
        if ln["paper_table"]:
            parts = [TABLE_LABEL[ln["paper_table"]], ln["paper_row"], ln["paper_column"]]
            where = ", ".join(p for p in parts if p)
        task = f"**{ln['task']}**" if ln["metric"] == "mean" else ln["task"]
        cells = [ln["label"], ln["setting"], task, ln["metric"], ours, ln["n"] or "—", paper, where]
        out.append("| " + " | ".join(md_escape(str(c)) for c in cells) + " |")
    notes = [f"{ln['label']} {ln['task']}: {r}" for ln in lines for r in ln["_remarks"]]
    if notes:
        out += ["", "Notes:", ""] + [f"- {md_escape(n)}" for n in notes]
    write_text(path, "\n".join(out) + "\n")


def report(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
) -> list[dict]:
    """Write the released-checkpoints table (CSV: ``FIELDS``, one line per cell; Markdown).

    ``rows``: :func:`plan`'s output. A missing result file is an error that names it.
    """
    check_scale(scale)
    if not rows:
        raise ConfigError("config key 'released': no released model to report")
    lines = [ln for row in rows for ln in _model_lines(eval_dir, row, scale)]
    _write_csv(out_csv, lines)
    _write_markdown(out_md, run, scale, lines)
    return [{k: ln[k] for k in FIELDS} for ln in lines]
