# The plan, before anything runs (`snakemake plan`): every job of the DAG of plan.targets (default
# `all`) with its GPUs, memory per GPU, GPU-hours and disk -> results/<run>/plan.{json,md}
# (docs/plan.md). It needs no input and runs no other job; it fails, naming the jobs, when one
# does not fit its GPUs or fails its start-up check. The DAG is Snakemake's own, built dry in a
# separate process (instruct_pt.plan) from this run's config and --set-resources. A changed
# config replans (param config_digest); after editing rules, force it: `snakemake -f plan`.
from instruct_pt import plan as planner


rule plan:
    output:
        json=f"results/{RUN}/plan.json",
        md=f"results/{RUN}/plan.md",
    log:
        f"logs/{RUN}/plan.log",
    benchmark:
        f"benchmarks/{RUN}/plan.tsv"
    localrule: True
    params:
        targets=config.get("plan", {}).get("targets", ["all"]),
        config_digest=planner.config_digest(config),
    run:
        planner.run_nested(
            workflow, config, params.targets, output.json, output.md, log[0]
        )
