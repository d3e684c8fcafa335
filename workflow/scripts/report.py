"""Rules report_table* and report_figure*: one table or figure of the paper (CSV + Markdown, and
a figure's PNG + PDF) from result files, by its name in the reports' registry."""

from instruct_pt.common import setup_logging
from instruct_pt.reports.registry import make

setup_logging(snakemake.log[0])
figure = {
    f"out_{k}": getattr(snakemake.output, k) for k in ("png", "pdf") if hasattr(snakemake.output, k)
}
make(
    snakemake.params.report,
    **snakemake.params.kwargs,
    **figure,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
