"""Rule templify: synthesized pairs -> instruction-augmented pre-training texts."""

from instruct_pt.common import setup_logging
from instruct_pt.synthesis.templify import templify

setup_logging(snakemake.log[0])
templify(
    list(snakemake.input),
    snakemake.output.texts,
    snakemake.params.seed,
    include_context=snakemake.params.include_context,
    stats_path=snakemake.output.stats,
    num_workers=snakemake.threads,
)
