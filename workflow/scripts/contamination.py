"""Rule contamination (paper Table 9): n-gram overlap of synthesized pairs with eval sets."""

from instruct_pt.analysis.contamination import suite_contamination
from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])
suite_contamination(
    list(snakemake.input.synthesized),
    list(snakemake.input.suites),
    snakemake.output[0],
    n=snakemake.params.ngram,
)
