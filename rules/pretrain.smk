# General pre-training from scratch (paper Tables 1-2): Vanilla PT, Mix PT and Instruct PT
# at 500M and 1.3B (Mistral architecture), every variant on the same token budget.


rule pretrain_from_scratch:
    input:
        packed=lambda wc: packed_dir(
            PT_TOKENIZER, f"general-{wc.variant}", config["pretrain"]["seq_len"]
        ),
        tokenizer=tokenizer_dir(PT_TOKENIZER),
    output:
        directory("results/{run}/models/scratch-{size}-{variant}"),
    log:
        "logs/{run}/models/scratch-{size}-{variant}.log",
    benchmark:
        "benchmarks/{run}/models/scratch-{size}-{variant}.tsv"
    wildcard_constraints:
        variant="vanilla|mix|instruct",
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("pretrain"),
        disk_mb=lambda wc: train_disk_mb(
            arch_params(config["pretrain"]["sizes"][wc.size]["arch"])
        ),
    params:
        arch=lambda wc: config["pretrain"]["sizes"][wc.size]["arch"],
        train=lambda wc: cfg.train_settings(config, "pretrain", wc.size),
        checkpoint_dir="results/{run}/checkpoints/scratch-{size}-{variant}",
        seed=config["seed"],
    script:
        "../workflow/scripts/train_lm.py"
