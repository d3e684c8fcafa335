# The paper's pre-training mixtures with token accounting (manifest.json per mixture), then
# tokenization and packing into fixed-length sequences (memory-mapped token files).


rule mixture:
    input:
        components=mixture_inputs,
        tokenizer="results/{run}/tokenizers/{tokenizer}",
    output:
        texts="results/{run}/mixtures/{tokenizer}/{mixture}/texts.jsonl",
        manifest="results/{run}/mixtures/{tokenizer}/{mixture}/manifest.json",
    log:
        "logs/{run}/mixtures/{tokenizer}/{mixture}.log",
    benchmark:
        "benchmarks/{run}/mixtures/{tokenizer}/{mixture}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        components=lambda wc: mixture_components(wc.mixture),
        seed=config["seed"],
    script:
        "../workflow/scripts/mixture.py"


rule pack:
    input:
        texts="results/{run}/mixtures/{tokenizer}/{mixture}/texts.jsonl",
        tokenizer="results/{run}/tokenizers/{tokenizer}",
    output:
        directory("results/{run}/packed/{tokenizer}/{mixture}.L{seq_len}"),
    log:
        "logs/{run}/packed/{tokenizer}/{mixture}.L{seq_len}.log",
    benchmark:
        "benchmarks/{run}/packed/{tokenizer}/{mixture}.L{seq_len}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: threads("data")
    resources:
        mem_mb=mem_mb("data"),
        runtime=runtime("data"),
        disk_mb=disk_mb("data"),
    params:
        seed=config["seed"],
    script:
        "../workflow/scripts/pack.py"
