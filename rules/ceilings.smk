# Ceilings beside the compared models (miniature, issue #11), scored by rule evaluate as model
# ceiling-{suite}, per evaluation suite one of:
#   model: SOME_MODEL  that compared model fine-tuned on the suite's task-format training split
#                      (the world's train_records: the evaluation's query and answer format,
#                      never an evaluation query or an evaluated closed-book fact; ceiling_tune);
#   oracle: SIZE       (general only) Instruct PT from scratch at SIZE, its pairs the world's
#                      ground truth instead of the synthesizer's (oracle_synthesis, mixture
#                      general-oracle, ceiling_pretrain): what Instruct PT reaches with perfect
#                      pairs at the compared size.
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
    wildcard_constraints:
        suite=_never(TUNED_CEILINGS),
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


rule oracle_synthesis:
    input:
        "results/{run}/synthesis/{corpus}/split/shard{shard}.jsonl",
    output:
        "results/{run}/synthesis/{corpus}/oracle/shard{shard}.jsonl",
    log:
        "logs/{run}/synthesis/{corpus}/oracle/shard{shard}.log",
    benchmark:
        "benchmarks/{run}/synthesis/{corpus}/oracle/shard{shard}.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        pairs_per_text=CEILINGS.get("oracle_pairs_per_text"),
        # the synthesizer's rounds M: the same chains as Instruct PT's, only the pairs differ
        rounds=lambda wc: design.synthesis_rounds(config, wc.corpus, "model"),
        seed=config["seed"],
    script:
        "../workflow/scripts/oracle_synthesis.py"


rule ceiling_pretrain:
    input:
        packed=packed_dir(PT_TOKENIZER, "general-oracle", config["pretrain"]["seq_len"]),
        tokenizer=tokenizer_dir(PT_TOKENIZER),
    output:
        directory("results/{run}/models/ceiling-{suite}"),
    log:
        "logs/{run}/models/ceiling-{suite}.log",
    benchmark:
        "benchmarks/{run}/models/oracle-ceiling-{suite}.tsv"
    wildcard_constraints:
        suite=_never(ORACLE_CEILINGS),
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("pretrain"),
        disk_mb=lambda wc: train_disk_mb(
            arch_params(config["pretrain"]["sizes"][oracle_size(wc.suite)]["arch"])
        ),
    params:
        arch=lambda wc: config["pretrain"]["sizes"][oracle_size(wc.suite)]["arch"],
        train=lambda wc: cfg.train_settings(config, "pretrain", oracle_size(wc.suite)),
        checkpoint_dir="results/{run}/checkpoints/ceiling-{suite}",
        seed=config["seed"],
    script:
        "../workflow/scripts/train_lm.py"
