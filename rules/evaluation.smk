# Evaluation through lm-evaluation-harness: one job per (model, setting); one JSON per task.
# Settings (config evaluation.settings): the general suite, the two domain suites, and the
# zero-/few-shot probes of Fig. 4. GPUs per model (eval_gpus): > 1 splits the model over them.


rule evaluate:
    input:
        model=lambda wc: model_dir(wc.model),
        suite=lambda wc: suite_dir(wc.setting),
    output:
        directory("results/{run}/eval/{model}/{setting}"),
    log:
        "logs/{run}/eval/{model}/{setting}.log",
    benchmark:
        "benchmarks/{run}/eval/{model}/{setting}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: threads("evaluate")
    resources:
        mem_mb=mem_mb("evaluate"),
        runtime=runtime("evaluate"),
        gpu=lambda wc: eval_gpus(wc.model),
    params:
        model_path=lambda wc: model_path(wc.model),
        setting=lambda wc: config["evaluation"]["settings"][wc.setting],
        batch_size=config["evaluation"]["batch_size"],
        dtype=config["evaluation"]["dtype"],
        add_bos_token=lambda wc: eval_add_bos(wc.model),
        seed=config["seed"],
    script:
        "../workflow/scripts/evaluate.py"
