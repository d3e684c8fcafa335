# Instruction tuning of the from-scratch Vanilla PT and Instruct PT models (paper Fig. 4):
# loss on responses only; a checkpoint at each configured step, each evaluated (rules/evaluation.smk).


rule instruction_tune:
    input:
        base="results/{run}/models/scratch-{size}-{variant}",
        data="results/{run}/data/instruction_tuning.jsonl",
    output:
        directory("results/{run}/models/it-{size}-{variant}"),
    log:
        "logs/{run}/models/it-{size}-{variant}.log",
    benchmark:
        "benchmarks/{run}/models/it-{size}-{variant}.tsv"
    wildcard_constraints:
        variant="vanilla|mix|instruct",
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("instruction_tune"),
        disk_mb=lambda wc: train_disk_mb(
            arch_params(config["pretrain"]["sizes"][wc.size]["arch"]),
            saves=len(config["instruction_tuning"]["save_steps"]),
        ),
    params:
        train=cfg.train_settings(config, "instruction_tuning"),
        save_steps=sorted(config["instruction_tuning"]["save_steps"]),
        seq_len=config["instruction_tuning"]["seq_len"],
        checkpoint_dir="results/{run}/checkpoints/it-{size}-{variant}",
        seed=config["seed"],
    script:
        "../workflow/scripts/finetune.py"
