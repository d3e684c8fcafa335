# Ceilings beside the compared models (miniature, issue #11): per evaluation suite, a model of
# the compared size fine-tuned on the suite's task-format training split (the world's
# train_records: the evaluation's query and answer format, never an evaluation query or an
# evaluated closed-book fact), then scored by rule evaluate as model ceiling-{suite}.
# config `ceilings: null` (paper scale): no ceiling rows. Rows: instruct_pt.design (ceiling_row).


rule ceiling_data:
    output:
        data="results/{run}/data/ceiling_{suite}.jsonl",
        stats="results/{run}/data/ceiling_{suite}.jsonl.stats.json",
    log:
        "logs/{run}/data/ceiling_{suite}.log",
    benchmark:
        "benchmarks/{run}/data/ceiling_{suite}.tsv"
    conda:
        "../envs/core.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        world=config.get("world", {}),
        per_task=CEILINGS.get("per_task"),
    script:
        "../workflow/scripts/ceiling_data.py"


rule ceiling_tune:
    input:
        base=lambda wc: model_dir(CEILINGS["suites"][wc.suite]["model"]),
        data="results/{run}/data/ceiling_{suite}.jsonl",
    output:
        directory("results/{run}/models/ceiling-{suite}"),
    log:
        "logs/{run}/models/ceiling-{suite}.log",
    benchmark:
        "benchmarks/{run}/models/ceiling-{suite}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("ceiling_tune"),
        disk_mb=disk_mb("train"),
    params:
        train=lambda wc: cfg.train_settings(config, "ceilings"),
        seq_len=CEILINGS.get("seq_len"),
        checkpoint_dir="results/{run}/checkpoints/ceiling-{suite}",
        seed=config["seed"],
    script:
        "../workflow/scripts/finetune.py"
