"""Rules report_table*: one table of the paper (CSV + Markdown) from result files."""

from instruct_pt import reports
from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])
make = getattr(reports, snakemake.params.table)
make(
    **snakemake.params.kwargs,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
