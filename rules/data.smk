# Data: every data set behind one loader (hub at paper scale, the built-in world at miniature
# scale), tokenizers, and the evaluation suites as lm-eval task definitions.


rule prepare_dataset:
    input:
        lambda wc: prefetched(f"dataset-{wc.dataset}"),
    output:
        data="results/{run}/data/{dataset}.jsonl",
        stats="results/{run}/data/{dataset}.jsonl.stats.json",
    log:
        "logs/{run}/data/{dataset}.log",
    benchmark:
        "benchmarks/{run}/data/{dataset}.tsv"
    conda:
        "../envs/core.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        world=lambda wc: (
            config.get("world", {})
            if config["datasets"][wc.dataset]["source"] == "world"
            else None
        ),
    script:
        "../workflow/scripts/prepare_dataset.py"


rule templify_ft_collection:
    input:
        "results/{run}/data/synth_ft.jsonl",
    output:
        "results/{run}/data/synth_ft.templified.jsonl",
    log:
        "logs/{run}/data/synth_ft.templified.log",
    benchmark:
        "benchmarks/{run}/data/templified/synth_ft.tsv"
    conda:
        "../envs/core.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        seed=config["synthesis"]["templify_seed"],
    script:
        "../workflow/scripts/templify_ft_collection.py"


rule tokenizer:
    input:
        tokenizer_corpora,
        lambda wc: prefetched(f"tokenizer-{wc.tokenizer}"),
    output:
        directory("results/{run}/tokenizers/{tokenizer}"),
    log:
        "logs/{run}/tokenizers/{tokenizer}.log",
    benchmark:
        "benchmarks/{run}/tokenizers/{tokenizer}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: lambda wc: threads(tokenizer_kind(wc))
    resources:
        mem_mb=lambda wc: mem_mb(tokenizer_kind(wc)),
        runtime=lambda wc: runtime(tokenizer_kind(wc)),
    params:
        spec=lambda wc: config["tokenizers"][wc.tokenizer],
        seed=config["seed"],
    script:
        "../workflow/scripts/tokenizer.py"


rule eval_tasks:
    input:
        lambda wc: prefetched(f"suite-{wc.suite}"),
    output:
        directory("results/{run}/eval/tasks/{suite}"),
    log:
        "logs/{run}/eval/tasks/{suite}.log",
    benchmark:
        "benchmarks/{run}/eval_tasks/{suite}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: threads("light")
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    params:
        spec=lambda wc: config["evaluation"]["suites"][wc.suite],
        world=lambda wc: (
            config.get("world", {})
            if config["evaluation"]["suites"][wc.suite]["source"] == "world"
            else None
        ),
    script:
        "../workflow/scripts/build_suite.py"
