# Multi-round synthesis over sharded raw corpora (the paper's Fig. 3): choose the texts to convert,
# synthesize instruction-response pairs shard by shard (M rounds), templify into
# instruction-augmented pre-training texts.


rule split_corpus:
    input:
        "results/{run}/data/raw_{corpus}.jsonl",
    output:
        shards=expand(
            "results/{{run}}/synthesis/{{corpus}}/split/shard{shard}.jsonl",
            shard=range(N_SHARDS),
        ),
        rest="results/{run}/synthesis/{corpus}/split/rest.jsonl",
    log:
        "logs/{run}/synthesis/{corpus}/split.log",
    benchmark:
        "benchmarks/{run}/synthesis/{corpus}/split.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        fraction=lambda wc: config["synthesis"]["corpora"][wc.corpus]["fraction"],
        seed=config["seed"],
    script:
        "../workflow/scripts/split_corpus.py"


rule synthesize:
    input:
        shard="results/{run}/synthesis/{corpus}/split/shard{shard}.jsonl",
        synthesizer=synthesizer_dir(),
    output:
        "results/{run}/synthesis/{corpus}/{method}/shard{shard}.jsonl",
    log:
        "logs/{run}/synthesis/{corpus}/{method}/shard{shard}.log",
    benchmark:
        "benchmarks/{run}/synthesis/{corpus}/{method}/shard{shard}.tsv"
    wildcard_constraints:
        method="model|one_shot",
    conda:
        SYNTHESIS_ENV
    threads: threads("synthesis")
    resources:
        mem_mb=mem_mb("synthesis"),
        runtime=runtime("synthesis"),
        gpu=gpus("synthesis"),
        disk_mb=disk_mb("synthesis"),
    params:
        rounds=synthesis_rounds,
        engine=ENGINE,
        max_new_tokens=config["synthesis"]["max_new_tokens"],
        max_model_len=config["synthesis"]["max_model_len"],
        checkpoint_dir="results/{run}/checkpoints/synthesis/{corpus}/{method}/shard{shard}",
        seed=config["seed"],
    script:
        "../workflow/scripts/synthesize.py"


rule templify:
    input:
        augmented_shards,
    output:
        texts="results/{run}/synthesis/{corpus}/augmented/{augvariant}.jsonl",
        stats="results/{run}/synthesis/{corpus}/augmented/{augvariant}.stats.json",
    log:
        "logs/{run}/synthesis/{corpus}/augmented/{augvariant}.log",
    benchmark:
        "benchmarks/{run}/synthesis/{corpus}/augmented/{augvariant}.tsv"
    conda:
        "../envs/core.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        include_context=include_context,
        seed=config["synthesis"]["templify_seed"],
    script:
        "../workflow/scripts/templify.py"
