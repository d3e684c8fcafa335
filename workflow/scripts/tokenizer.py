"""Rule tokenizer: a hub tokenizer (paper scale) or one trained on the world (miniature)."""

from instruct_pt.common import setup_logging
from instruct_pt.data.tokenizer import prepare_tokenizer

setup_logging(snakemake.log[0])
prepare_tokenizer(
    snakemake.params.spec, list(snakemake.input), snakemake.output[0], snakemake.params.seed
)
