"""Rule split_corpus: choose the texts to convert and shard them; the rest stays raw."""

from instruct_pt.common import setup_logging
from instruct_pt.synthesis.corpus_split import split_corpus

setup_logging(snakemake.log[0])
split_corpus(
    snakemake.input[0],
    snakemake.params.fraction,
    len(snakemake.output.shards),
    snakemake.params.seed,
    list(snakemake.output.shards),
    snakemake.output.rest,
)
