"""Rule report_figure4: MMLU-probe score across instruction-tuning steps (paper Fig. 4)."""

from instruct_pt.common import setup_logging
from instruct_pt.reports import figure4

setup_logging(snakemake.log[0])
figure4(
    snakemake.params.eval_dir,
    snakemake.params.curves,
    snakemake.params.settings,
    snakemake.params.task,
    out_png=snakemake.output.png,
    out_pdf=snakemake.output.pdf,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
