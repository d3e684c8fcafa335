"""Rule mixture: one of the paper's pre-training mixtures, with its token manifest."""

from instruct_pt.common import setup_logging
from instruct_pt.data.mixtures import build_mixture

setup_logging(snakemake.log[0])
build_mixture(
    snakemake.wildcards.mixture,
    snakemake.params.components,
    snakemake.input.tokenizer,
    snakemake.output.texts,
    snakemake.output.manifest,
    snakemake.params.seed,
    num_workers=snakemake.threads,
)
