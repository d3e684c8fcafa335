# Table 4 ablations of the domain-adaptive Instruct PT (each = one continual pre-training per
# domain, evaluated on that domain's suite; targets ablation_<name> in the Snakefile):
#   w/o Corpora: the synthesized pairs without their raw texts (templify, include_context=false)
#   Rule-based:  pairs mined from raw text by patterns instead of the synthesizer (below)
#   1-shot:      single-round synthesis, M = ablations.one_shot.rounds (rule synthesize, method one_shot)
# Changing an ablation's parameter in config reruns only that ablation and its tables.


rule rule_based_synthesis:
    input:
        "results/{run}/synthesis/{corpus}/split/shard{shard}.jsonl",
    output:
        "results/{run}/synthesis/{corpus}/rule_based/shard{shard}.jsonl",
    log:
        "logs/{run}/synthesis/{corpus}/rule_based/shard{shard}.log",
    benchmark:
        "benchmarks/{run}/synthesis/{corpus}/rule_based/shard{shard}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        seed=config["ablations"]["rule_based"]["seed"],
    script:
        "../workflow/scripts/rule_based_synthesis.py"
