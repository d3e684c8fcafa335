"""The registry of the paper's tables and figures, and the one function that makes any of them.

``SPECS`` holds one :class:`~instruct_pt.reports.spec.ReportSpec` per report: how its cells are
computed (a build in :mod:`~instruct_pt.reports.tables` or :mod:`~instruct_pt.reports.figures`)
and how it is shown. :func:`make` runs a build and writes the report: the long-format CSV, the
Markdown table with the paper's column group and tags, and a figure's PNG and PDF.
"""

from __future__ import annotations

import os

from instruct_pt.reports import figures, plotting, tables
from instruct_pt.reports.cells import Record, check_scale, human_count, write_csv
from instruct_pt.reports.markdown import figure_line, write_markdown
from instruct_pt.reports.spec import ReportSpec
from instruct_pt.reports.titles import figure_title, table_title


def _whole(x: float) -> str:
    return f"{x:.0f}"


# Table 9's columns are counts of evaluation examples (not rates, not counts of pairs).
TABLE9_HEADERS = {
    "Contaminated": "contaminated examples (count)",
    "Total": "evaluation examples (count)",
}
TABLE5_NOTE = (
    "Each cell: mean ± standard error (n): response accuracy over n probes, pair quality "
    "over the n question-answer pairs parsed from the generations."
)
FIGURE6_NOTE = "Error bars: ±1 binomial standard error of the share, over n pairs."

SPECS: dict[str, ReportSpec] = {
    "table1": ReportSpec(tables.table1),
    "table2": ReportSpec(tables.table2, formatters={"Params": human_count, "Tokens": human_count}),
    "table3": ReportSpec(tables.table3),
    "table4": ReportSpec(tables.table4, row_header="Setting"),
    "table5": ReportSpec(tables.table5, show_n=True, notes=(TABLE5_NOTE,)),
    "table6": ReportSpec(
        tables.table6, row_header="Corpus", formatters={"Task categories": _whole}
    ),
    "table9": ReportSpec(
        tables.table9,
        row_header="Evaluation task",
        formatters={"Contaminated": _whole, "Total": _whole},
        headers=TABLE9_HEADERS,
    ),
    "figure4": ReportSpec(figures.figure4, figure="Figure 4", row_header="Curve"),
    "figure6": ReportSpec(
        figures.figure6, figure="Figure 6", row_header="Corpus", notes=(FIGURE6_NOTE,)
    ),
}


def make(
    name: str,
    *inputs,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    out_png: str | os.PathLike | None = None,
    out_pdf: str | os.PathLike | None = None,
    **options,
) -> list[Record]:
    """Make report ``name`` (a key of ``SPECS``) of run ``run`` at ``scale`` ("paper" or
    "miniature") from its inputs and options (those of its build: e.g.
    :func:`instruct_pt.reports.tables.table1`); a figure also writes ``out_png`` and
    ``out_pdf``. Returns the records as written to the CSV."""
    if name not in SPECS:
        raise ValueError(f"unknown report {name!r}; known: {', '.join(SPECS)}")
    spec = SPECS[name]
    check_scale(scale)
    if spec.figure and (out_png is None or out_pdf is None):
        raise ValueError(f"{name}: a figure needs out_png and out_pdf")
    built = spec.build(*inputs, scale=scale, **options)
    notes = list(spec.notes)
    paper_title = None
    if spec.figure:
        title = figure_title(spec.figure, run, scale, built.caption, built.what)
        fig, drawn = built.draw(plotting.suptitle(title, run, scale))
        plotting.save_and_close(fig, out_png, out_pdf)
        notes = [figure_line(out_md, title, out_png, out_pdf), *drawn, *notes]
    else:
        title, paper_title = table_title(name, run, scale, built.what)
    write_csv(out_csv, built.records)
    write_markdown(
        out_md,
        title,
        run,
        scale,
        built.records,
        row_header=spec.row_header,
        formatters=dict(spec.formatters),
        extra=notes,
        paper_title=paper_title,
        headers=dict(spec.headers),
        show_n=spec.show_n,
    )
    return built.records
