# Domain-adaptive continual pre-training of Llama3-8B (paper Tables 3-4): biomedicine and
# finance, Vanilla PT and Instruct PT (and the Table 4 ablations), each mixed 1:1 by tokens with
# general instructions, every variant on the same token budget.


rule continual_pretrain:
    input:
        base=base_dir(config["continual_pretrain"]["base_model"]),
        packed=lambda wc: packed_dir(
            CPT_TOKENIZER,
            f"{wc.domain}-{wc.variant}",
            config["continual_pretrain"]["seq_len"],
        ),
        tokenizer=tokenizer_dir(CPT_TOKENIZER),
    output:
        directory("results/{run}/models/cpt-{domain}-{variant}"),
    log:
        "logs/{run}/models/cpt-{domain}-{variant}.log",
    benchmark:
        "benchmarks/{run}/models/cpt-{domain}-{variant}.tsv"
    wildcard_constraints:
        variant="|".join(design.CPT_VARIANTS),
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("continual_pretrain"),
        disk_mb=train_disk_mb(base_params(config["continual_pretrain"]["base_model"])),
    params:
        train=cfg.train_settings(config, "continual_pretrain"),
        checkpoint_dir="results/{run}/checkpoints/cpt-{domain}-{variant}",
        seed=config["seed"],
    script:
        "../workflow/scripts/train_lm.py"
