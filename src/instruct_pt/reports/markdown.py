"""The one Markdown renderer of every report: our cells, then the paper's column group with tags.

A table's header says the run and scale (and, at miniature scale, that its numbers are not
comparable in magnitude with the paper's); its notes list each cell's note once, the floors'
and the ceiling's explanations when those rows are present.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from instruct_pt.common import write_text
from instruct_pt.reports.cells import (
    MINIATURE_NOTE,
    ORIENTATION,
    PAPER_NOTE,
    UNCONFIRMED_NOTE,
    Record,
)
from instruct_pt.reports.floors import CEILING_NOTE, CEILING_PREFIX, FLOOR_LABELS, FLOORS_NOTE


def _score(x: float) -> str:
    return f"{x:.1f}"


def md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _header_lines(title: str, run: str, scale: str, paper_title: str | None = None) -> list[str]:
    lines = [f"# {title}", "", f"Run: `{run}` · scale: {scale}", ""]
    if paper_title:
        lines += [f"Paper: {paper_title}", ""]
    if scale != "paper":
        lines += [MINIATURE_NOTE, ""]
    lines += [UNCONFIRMED_NOTE, ""]
    return lines


def write_markdown(
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
    lines.append("| " + " | ".join(md_escape(h) for h in head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = [ours(cell.get((row, c)), c) for c in columns]
        cells += [paper(cell.get((row, c)), c) for c in paper_cols]
        label = FLOOR_LABELS.get(row, row)
        lines.append("| " + " | ".join(md_escape(x) for x in [label] + cells) + " |")
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
        lines += ["", "Notes:", ""] + [f"- {md_escape(n)}" for n in list(extra) + notes]
    write_text(path, "\n".join(lines) + "\n")


def figure_line(
    out_md: str | os.PathLike, title: str, png: str | os.PathLike, pdf: str | os.PathLike
) -> str:
    """The Markdown line showing a figure (paths relative to the Markdown file's folder)."""
    folder = Path(out_md).resolve().parent
    rel = [os.path.relpath(Path(p).resolve(), folder) for p in (png, pdf)]
    return f"Figure: ![{title}]({rel[0]}) (PDF: {rel[1]})"
