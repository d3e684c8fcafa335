# Hub artefacts into the shared Hugging Face caches, on the submitting host (a login node, where
# the network is): compute nodes are often offline. `snakemake prefetch` fetches everything the
# config reads from the hub (data sets, tokenizers, models, evaluation data) and writes
# results/<run>/prefetch/manifest.json; the jobs that read a data set, tokenizer or suite wait for
# their group's record (ancient: fetching again does not rerun them). Nothing on the hub
# (miniature scale): an empty manifest.
PREFETCH = prefetch_plan(config, design.base_models_read(config))


# A base model from the hub is a download: where every one is (paper scale), rule base_model runs
# on the submitting host with the network, not on an offline GPU node (stand-ins train on GPUs).
if all(s["source"] != "pretrain" for s in config["base_models"].values()):

    localrules:
        base_model,


rule fetch_hub:
    output:
        "results/{run}/prefetch/{group}.json",
    log:
        "logs/{run}/prefetch/{group}.log",
    benchmark:
        "benchmarks/{run}/prefetch/{group}.tsv"
    wildcard_constraints:
        group=_alt(PREFETCH) if PREFETCH else "(?!)",
    localrule: True
    conda:
        "../envs/eval.yaml"
    threads: threads("download")
    resources:
        mem_mb=mem_mb("download"),
        runtime=runtime("download"),
        disk_mb=disk_mb("download"),
    params:
        artefacts=lambda wc: PREFETCH[wc.group],
    script:
        "../workflow/scripts/prefetch.py"


rule prefetch:
    input:
        expand("results/{run}/prefetch/{group}.json", run=RUN, group=sorted(PREFETCH)),
    output:
        f"results/{RUN}/prefetch/manifest.json",
    log:
        f"logs/{RUN}/prefetch/manifest.log",
    localrule: True
    conda:
        "../envs/eval.yaml"  # the script of fetch_hub (one env for both)
    params:
        run=RUN,
    script:
        "../workflow/scripts/prefetch.py"
