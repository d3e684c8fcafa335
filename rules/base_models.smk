# External models: the synthesizer's base (Mistral-7B), Llama3-8B/70B, the Table 2 references.
# Paper scale downloads hub weights (run this rule where the network is: a login node);
# miniature scale pre-trains small stand-ins on the world's general corpus (a stand-in whose
# recipe repeats an earlier one's takes that one's weights: STAND_IN_TWINS, rules/common.smk).


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
    threads: lambda wc: base_model_resource(wc, "threads")
    resources:
        mem_mb=lambda wc: base_model_resource(wc, "mem_mb"),
        runtime=lambda wc: base_model_resource(wc, "runtime"),
        gpu=lambda wc: base_model_resource(wc, "gpu"),
        disk_mb=lambda wc: base_model_resource(wc, "disk_mb"),
    params:
        spec=lambda wc: config["base_models"][wc.base],
        train=lambda wc: (
            cfg.train_settings(config, "stand_in", base=wc.base)
            if config["base_models"][wc.base]["source"] == "pretrain"
            else None
        ),
        checkpoint_dir="results/{run}/checkpoints/base-{base}",
        seed=config["seed"],
        twin=lambda wc: STAND_IN_TWINS.get(wc.base),
    script:
        "../workflow/scripts/base_model.py"
