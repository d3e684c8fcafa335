"""Rule rule_based_synthesis (Table 4 "Rule-based"): pattern-mined tasks, same output format."""

from instruct_pt.common import setup_logging
from instruct_pt.synthesis.rule_based import rule_based_shard

setup_logging(snakemake.log[0])
rule_based_shard(snakemake.input[0], snakemake.output[0], snakemake.params.seed)
