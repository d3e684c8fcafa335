"""Rule report_released: the released checkpoints' scores beside the paper's (CSV + Markdown)."""

from instruct_pt.common import setup_logging
from instruct_pt.reports.released import report

setup_logging(snakemake.log[0])
report(
    snakemake.params.eval_dir,
    snakemake.params.rows,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
