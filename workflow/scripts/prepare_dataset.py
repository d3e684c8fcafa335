"""Rule prepare_dataset: one data set from its configured source (hub, local file, or world)."""

from instruct_pt.common import setup_logging
from instruct_pt.data.sources import prepare_dataset

setup_logging(snakemake.log[0])
prepare_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.spec,
    snakemake.params.world,
    snakemake.output.data,  # stats go to snakemake.output.stats (the same path + .stats.json)
)
