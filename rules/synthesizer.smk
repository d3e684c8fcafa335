# The instruction synthesizer (paper Table 5): fine-tune a base model on the
# context-based task collection (loss only on instruction-response pairs), then measure it:
# one generation job per model (base, synthesizer; each engine in its own process), then scoring.


rule split_synthesizer_data:
    input:
        "results/{run}/data/synth_ft.jsonl",
    output:
        train="results/{run}/synthesizer/train.jsonl",
        heldout="results/{run}/synthesizer/heldout.jsonl",
    log:
        "logs/{run}/synthesizer/split.log",
    benchmark:
        "benchmarks/{run}/synthesizer/split.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        heldout_fraction=config["synthesizer"]["heldout_fraction"],
        seed=config["seed"],
    script:
        "../workflow/scripts/split_synthesizer_data.py"


rule finetune_synthesizer:
    input:
        base=base_dir(config["synthesizer"]["base_model"]),
        data="results/{run}/synthesizer/train.jsonl",
    output:
        directory("results/{run}/models/synthesizer"),
    log:
        "logs/{run}/models/synthesizer.log",
    benchmark:
        "benchmarks/{run}/models/synthesizer.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads("train")
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=gpus("synthesizer_train"),
        disk_mb=train_disk_mb(base_params(config["synthesizer"]["base_model"])),
    params:
        train=cfg.train_settings(config, "synthesizer"),
        max_per_dataset=config["synthesizer"]["max_per_dataset"],
        seq_len=config["synthesizer"]["seq_len"],
        checkpoint_dir="results/{run}/checkpoints/synthesizer",
        seed=config["seed"],
    script:
        "../workflow/scripts/finetune.py"


rule synthesizer_generations:
    input:
        model=lambda wc: (
            synthesizer_dir()
            if wc.which == "synthesizer"
            else base_dir(config["synthesizer"]["base_model"])
        ),
        heldout="results/{run}/synthesizer/heldout.jsonl",
    output:
        "results/{run}/synthesizer/generations/{which}.jsonl",
    log:
        "logs/{run}/synthesizer/generations/{which}.log",
    benchmark:
        "benchmarks/{run}/synthesizer/generations/{which}.tsv"
    wildcard_constraints:
        which="base|synthesizer",
    conda:
        SYNTHESIS_ENV
    threads: threads("synthesis")
    resources:
        mem_mb=mem_mb("synthesis"),
        runtime=runtime("synthesis"),
        gpu=gpus("synthesis"),
    params:
        n_examples=config["synthesizer"]["eval"]["n_examples"],
        shots=config["synthesizer"]["eval"]["shots"],
        engine=ENGINE,
        max_new_tokens=config["synthesis"]["max_new_tokens"],
        max_model_len=config["synthesis"]["max_model_len"],
        seed=config["seed"],
    script:
        "../workflow/scripts/synthesizer_generations.py"


rule evaluate_synthesizer:
    input:
        base="results/{run}/synthesizer/generations/base.jsonl",
        synthesizer="results/{run}/synthesizer/generations/synthesizer.jsonl",
        heldout="results/{run}/synthesizer/heldout.jsonl",
    output:
        "results/{run}/synthesizer/eval.json",
    log:
        "logs/{run}/synthesizer/eval.log",
    benchmark:
        "benchmarks/{run}/synthesizer/eval.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
    params:
        n_examples=config["synthesizer"]["eval"]["n_examples"],
        shots=config["synthesizer"]["eval"]["shots"],
        max_new_tokens=config["synthesis"]["max_new_tokens"],
        max_model_len=config["synthesis"]["max_model_len"],
        seed=config["seed"],
    script:
        "../workflow/scripts/evaluate_synthesizer.py"
