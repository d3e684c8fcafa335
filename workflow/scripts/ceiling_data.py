"""Rule ceiling_data: the task-format training split of one evaluation suite (ceilings)."""

from instruct_pt.common import setup_logging, write_json
from instruct_pt.world.ceiling import write_train_split

setup_logging(snakemake.log[0])
stats = write_train_split(
    snakemake.wildcards.suite,
    snakemake.params.world,
    int(snakemake.params.per_task),
    snakemake.output.data,
)
write_json(snakemake.output.stats, stats)
