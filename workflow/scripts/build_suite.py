"""Rule eval_tasks: one evaluation suite as lm-eval task definitions (+ data for the world)."""

from instruct_pt.common import setup_logging
from instruct_pt.evaluation.suites import build_suite

setup_logging(snakemake.log[0])
build_suite(
    snakemake.wildcards.suite,
    snakemake.params.spec,
    snakemake.output[0],
    world_cfg=snakemake.params.world,
)
