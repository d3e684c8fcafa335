"""Rule report_figure6: task-category distribution of the synthesized data (paper Fig. 6)."""

from instruct_pt.common import setup_logging
from instruct_pt.reports import figure6

setup_logging(snakemake.log[0])
figure6(
    snakemake.params.quality_jsons,
    out_png=snakemake.output.png,
    out_pdf=snakemake.output.pdf,
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
