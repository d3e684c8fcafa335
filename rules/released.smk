# The authors' released checkpoints (config section `released`: InstructLM-500M/1.3B,
# medicine-/finance-Llama3-8B) on the paper's suites, our score beside the paper's number:
# `snakemake released`. Nothing is trained: rule base_model fetches the hub weights, rule
# evaluate scores them, and this report puts them beside Tables 1 and 3.
from instruct_pt.reports import released as rel

RELEASED = rel.plan(config)


rule report_released:
    input:
        rel.eval_dirs(f"results/{RUN}/eval", RELEASED),
    output:
        csv="paper_figures/{run}/released.csv",
        md="paper_figures/{run}/released.md",
    log:
        "logs/{run}/reports/released.log",
    benchmark:
        "benchmarks/{run}/reports/released.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        eval_dir=lambda wc: f"results/{RUN}/eval",
        rows=RELEASED,
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/released.py"
