# External models: the synthesizer's base (Mistral-7B), Llama3-8B/70B, the Table 2 references.
# Paper scale downloads hub weights (run this rule where the network is: a login node);
# miniature scale pre-trains small stand-ins on the world's general corpus.


rule base_model:
    input:
        unpack(base_model_inputs),
    output:
        directory("results/{run}/models/base-{base}"),
    log:
        "logs/{run}/models/base-{base}.log",
    benchmark:
        "benchmarks/{run}/models/base-{base}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=lambda wc: (
            gpus("base_model")
            if config["base_models"][wc.base]["source"] == "pretrain"
            else 0
        ),
    params:
        spec=lambda wc: config["base_models"][wc.base],
        train=lambda wc: (
            cfg.train_settings(config, "stand_in", base=wc.base)
            if config["base_models"][wc.base]["source"] == "pretrain"
            else None
        ),
        checkpoint_dir="results/{run}/checkpoints/base-{base}",
        seed=config["seed"],
    script:
        "../workflow/scripts/base_model.py"
