"""Rule oracle_synthesis (miniature ceiling): the world's true pairs, same output format."""

from instruct_pt.common import setup_logging
from instruct_pt.world.oracle import oracle_shard

setup_logging(snakemake.log[0])
oracle_shard(
    snakemake.input[0],
    snakemake.output[0],
    snakemake.params.seed,
    snakemake.params.pairs_per_text,
    snakemake.params.rounds,
)
