"""Rule templify_ft_collection: the synthesizer's fine-tuning collection as pre-training texts."""

from instruct_pt.common import setup_logging
from instruct_pt.synthesis.templify import templify_ft_collection

setup_logging(snakemake.log[0])
templify_ft_collection(
    snakemake.input[0],
    snakemake.output[0],
    snakemake.params.seed,
    num_workers=snakemake.threads,
)
