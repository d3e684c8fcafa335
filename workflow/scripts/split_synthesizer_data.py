"""Rule split_synthesizer_data: hold out seen-dataset examples and all unseen task types."""

from instruct_pt.analysis.synthesizer_eval import split_heldout
from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])
split_heldout(
    snakemake.input[0],
    snakemake.output.train,
    snakemake.output.heldout,
    snakemake.params.heldout_fraction,
    snakemake.params.seed,
)
