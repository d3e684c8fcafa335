# Analyses of the synthesized data (paper §5.2): quality per corpus (Table 6, Fig. 6) and the
# contamination check against the evaluation sets (paper Table 9).


rule data_quality:
    input:
        synthesized=lambda wc: expand(
            "results/{run}/synthesis/{corpus}/model/shard{shard}.jsonl",
            run=RUN,
            corpus=wc.corpus,
            shard=range(N_SHARDS),
        ),
        raw="results/{run}/data/raw_{corpus}.jsonl",
    output:
        "results/{run}/analysis/quality/{corpus}.json",
    log:
        "logs/{run}/analysis/quality/{corpus}.log",
    benchmark:
        "benchmarks/{run}/analysis/quality/{corpus}.tsv"
    # a remote judge (GPT-4) needs the network: run on the submitting host (compute nodes are
    # often offline); it is I/O-bound (HTTP requests)
    localrule: judge_is_remote()
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        n_samples=config["analysis"]["quality"]["n_samples"],
        judge=config["analysis"]["quality"].get("judge"),
        checkpoint_dir="results/{run}/checkpoints/quality/{corpus}",
        seed=config["seed"],
    script:
        "../workflow/scripts/data_quality.py"


rule contamination:
    input:
        synthesized=expand(
            "results/{{run}}/synthesis/{corpus}/model/shard{shard}.jsonl",
            corpus=["general"] + DOMAINS,
            shard=range(N_SHARDS),
        ),
        suites=expand("results/{{run}}/eval/tasks/{suite}", suite=SUITES),
    output:
        "results/{run}/analysis/contamination.json",
    log:
        "logs/{run}/analysis/contamination.log",
    benchmark:
        "benchmarks/{run}/analysis/contamination.tsv"
    conda:
        "../envs/eval.yaml"  # lm-eval renders the evaluated documents
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        ngram=config["analysis"]["contamination"]["ngram"],
    script:
        "../workflow/scripts/contamination.py"
