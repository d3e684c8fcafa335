"""Rule data_quality (Table 6, Fig. 6): relevance, accuracy and task categories of a corpus."""

from instruct_pt.analysis.quality import data_quality
from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])
data_quality(
    list(snakemake.input.synthesized),
    snakemake.input.raw,
    snakemake.wildcards.corpus,
    snakemake.output[0],
    n_samples=snakemake.params.n_samples,
    seed=snakemake.params.seed,
    judge=snakemake.params.judge,
    checkpoint_dir=snakemake.params.checkpoint_dir,
)
