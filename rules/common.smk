# Validation, wildcard constraints and input/param helpers. No rules live here.
import math
import os
import re
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
# Jobs (script: rules, also on cluster nodes) import the package from the checkout.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
)

from instruct_pt import config as cfg  # noqa: E402
from instruct_pt.prefetch import plan as prefetch_plan  # noqa: E402

# config.yaml, then each --configfile and --config: a data set entry there that names its `source`
# replaces the entry instead of merging into it (instruct_pt.config.overlay_config).
_CLI_FILES = list(workflow.overwrite_configfiles)
cfg.replace_switched_sources(
    config,
    [
        *map(cfg.read_layer, workflow.configfiles[len(_CLI_FILES) :] + _CLI_FILES),
        dict(workflow.config_settings.config),
    ],
)
cfg.validate_config(
    config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
)

RUN = config["run"]
SIZES = list(config["pretrain"]["sizes"])
DOMAINS = list(config["continual_pretrain"]["domains"])
SETTINGS = list(config["evaluation"]["settings"])
SUITES = list(config["evaluation"]["suites"])
N_SHARDS = config["synthesis"]["n_shards"]
COMPUTE = config["compute"]
PT_TOKENIZER = config["pretrain"]["tokenizer"]
CPT_TOKENIZER = config["continual_pretrain"]["tokenizer"]
# The synthesis engine decides the software environment of the synthesis rules.
SYNTHESIS_ENV = (
    f"../envs/{config['synthesis'].get('vllm_env', 'vllm')}.yaml"
    if config["synthesis"]["engine"] == "vllm"
    else "../envs/torch.yaml"
)
# What the synthesis engine is built from: its name and its own options.
ENGINE = {
    "engine": config["synthesis"]["engine"],
    **config["synthesis"]["engine_options"].get(config["synthesis"]["engine"], {}),
}


def _alt(values):
    return "|".join(re.escape(str(v)) for v in values)


wildcard_constraints:
    run=re.escape(RUN),
    dataset=_alt(config["datasets"]),
    tokenizer=_alt(config["tokenizers"]),
    base=_alt(config["base_models"]),
    size=_alt(SIZES),
    domain=_alt(cfg.DOMAINS),
    corpus=_alt(cfg.CORPORA),
    augvariant=_alt(cfg.AUGMENTED_VARIANTS),
    suite=_alt(SUITES),
    setting=_alt(SETTINGS),
    shard=r"\d+",
    seq_len=r"\d+",
    model=r"[A-Za-z0-9_.-]+",


# ----------------------------------------------------------------------------- resources


def gpus(stage):
    return COMPUTE["gpus"].get(stage, 0)


def threads(kind):
    return COMPUTE["threads"][kind]


def mem_mb(kind):
    return COMPUTE["mem_mb"][kind]


def runtime(kind):
    return COMPUTE["runtime_min"][kind]


def disk_mb(kind):
    return COMPUTE["disk_mb"][kind]


# Disk a training job writes, per parameter [ours]: up to 3 resumable checkpoints at once (the 2
# kept + the one being written), each fp32 weights + Adam's two fp32 moments (12 B), plus each
# saved model (4 B: fp32 at most). The vocabulary is unknown at plan time: Llama 3's (128256,
# the largest tokenizer here) bounds it.
CHECKPOINT_BYTES = 3 * 12
MODEL_BYTES = 4
MAX_VOCAB = 128256


def arch_params(arch, vocab=MAX_VOCAB):
    """Parameters of a Mistral-family arch (config `arch`): embeddings, attention, MLP, norms."""
    h, ff = arch["hidden_size"], arch["intermediate_size"]
    kv = h * arch["num_kv_heads"] // arch["num_heads"]
    layer = 2 * h * h + 2 * h * kv + 3 * h * ff + 2 * h
    embeddings = vocab * h * (1 if arch.get("tie_embeddings") else 2)
    return embeddings + arch["num_layers"] * layer + h


def base_params(name):
    """A base model's parameters: its `arch` (stand-ins) or `params` (hub), else None."""
    spec = config["base_models"][name]
    if spec.get("arch"):
        return arch_params(spec["arch"])
    return spec.get("params")


def train_disk_mb(params, saves=1):
    """disk_mb of a training job: checkpoints + `saves` saved models (compute.disk_mb.train
    when the parameter count is unknown)."""
    if not params:
        return disk_mb("train")
    return math.ceil(params * (CHECKPOINT_BYTES + saves * MODEL_BYTES) / 1e6)


def tokenizer_kind(wc):
    """A tokenizer trained here is a data job; a hub/local one is only saved (light)."""
    trained = config["tokenizers"][wc.tokenizer]["source"] == "train"
    return "data" if trained else "light"


def judge_is_remote():
    """The quality judge is a remote endpoint (not this host): its job needs the network."""
    from urllib.parse import urlparse

    judge = config["analysis"]["quality"].get("judge") or {}
    host = urlparse(judge.get("base_url") or "").hostname
    return host is not None and host not in ("localhost", "127.0.0.1", "::1")


def base_model_resource(wc, key):
    """Resources of a base_model job: a stand-in pre-trains (train kind, its GPUs); a hub or
    local model is fetched or linked (download kind, no GPU)."""
    spec = config["base_models"][wc.base]
    if spec["source"] == "pretrain":
        return {
            "threads": threads("train"),
            "mem_mb": mem_mb("train"),
            "runtime": runtime("train"),
            "gpu": gpus("base_model"),
            "disk_mb": train_disk_mb(base_params(wc.base)),
        }[key]
    return {
        "threads": threads("download"),
        "mem_mb": mem_mb("download"),
        "runtime": runtime("download"),
        "gpu": 0,
        # links into the HF cache (filled by `snakemake prefetch`); `copy: true` copies bf16 weights
        "disk_mb": math.ceil((base_params(wc.base) or 0) * 2 / 1e6) + 100,
    }[key]


# ----------------------------------------------------------------------------- hub prefetch
# PREFETCH ({group: [hub artefact]}, what the config reads from the hub) is set in
# rules/prefetch.smk, once every helper here is defined.


def base_models_read():
    """The base models the paper's targets read: the synthesizer's base (and the released
    synthesizer when used), the continual pre-training start, the Table 2 / 3 references.
    (`snakemake released` fetches its models itself, through rule base_model.)"""
    names = {
        config["synthesizer"]["base_model"],
        config["continual_pretrain"]["base_model"],
    }
    if config["synthesizer"]["use"] == "released":
        names.add("released_synthesizer")
    names |= {
        row["model"].removeprefix("base-") for row in table2_rows() if not row["ours"]
    }
    names |= {
        m.removeprefix("base-")
        for row in table3_rows()
        for m in row["models"].values()
        if m.startswith("base-")
    }
    return names


def prefetched(group):
    """The record of a fetch_hub group a job reads, if the config has that group on the hub
    (ancient: fetching it again does not rerun its readers)."""
    if group not in PREFETCH:
        return []
    return ancient(f"results/{RUN}/prefetch/{group}.json")


# ----------------------------------------------------------------------------- paths


def data_path(name):
    return f"results/{RUN}/data/{name}.jsonl"


def base_dir(name):
    return f"results/{RUN}/models/base-{name}"


def synthesizer_dir():
    """The synthesizer the synthesis rules use: ours (fine-tuned here) or the released one."""
    if config["synthesizer"]["use"] == "released":
        return base_dir("released_synthesizer")
    return f"results/{RUN}/models/synthesizer"


def packed_dir(tokenizer, mixture, seq_len):
    return f"results/{RUN}/packed/{tokenizer}/{mixture}.L{seq_len}"


def tokenizer_dir(name):
    return f"results/{RUN}/tokenizers/{name}"


def model_dir(model):
    """The folder a rule declares for a model id (instruction-tuning steps live inside theirs)."""
    m = re.fullmatch(r"(it-.+)-step\d+", model)
    return f"results/{RUN}/models/{m.group(1) if m else model}"


def model_path(model):
    """The folder the model's weights are actually in."""
    m = re.fullmatch(r"(it-.+)-(step\d+)", model)
    if m:
        return f"results/{RUN}/models/{m.group(1)}/{m.group(2)}"
    return f"results/{RUN}/models/{model}"


def eval_add_bos(model):
    """BOS for lm-eval: the evaluation default, unless an external base model says otherwise
    (stand-ins pre-trained here always see BOS in training)."""
    default = config["evaluation"]["add_bos_token"]
    m = re.fullmatch(r"base-(.+)", model)
    spec = config["base_models"].get(m.group(1), {}) if m else {}
    if spec.get("source") in ("hub", "local") and spec.get("add_bos_token") is not None:
        return spec["add_bos_token"]
    return default


def eval_gpus(model):
    """GPUs of an evaluate job: an external base model's `eval_gpus` (Llama3-70B needs
    several), else compute.gpus.evaluate (also for miniature stand-ins trained here)."""
    m = re.fullmatch(r"base-(.+)", model)
    spec = config["base_models"].get(m.group(1), {}) if m else {}
    n = spec.get("eval_gpus") if spec.get("source") in ("hub", "local") else None
    return gpus("evaluate") if n is None else n


def eval_dirs(models, setting):
    return [f"results/{RUN}/eval/{m}/{setting}" for m in models]


# ----------------------------------------------------------------------------- data flow


def tokenizer_corpora(wildcards):
    """A trained tokenizer (miniature) reads the world's corpora; a hub tokenizer reads nothing."""
    if config["tokenizers"][wildcards.tokenizer]["source"] != "train":
        return []
    return [data_path(name) for name in config["datasets"]]


def augmented_shards(wildcards):
    method, _ = cfg.AUGMENTED_VARIANTS[wildcards.augvariant]
    return expand(
        "results/{run}/synthesis/{corpus}/{method}/shard{shard}.jsonl",
        run=RUN,
        corpus=wildcards.corpus,
        method=method,
        shard=range(N_SHARDS),
    )


def synthesis_rounds(wildcards):
    if wildcards.method == "one_shot":
        return config["ablations"]["one_shot"]["rounds"]
    return config["synthesis"]["corpora"][wildcards.corpus]["rounds"]


def include_context(wildcards):
    if wildcards.augvariant == "wo_corpora":
        return config["ablations"]["wo_corpora"]["include_context"]
    return True


def mixture_components(mixture):
    """The paper's mixtures as data (manifests record what each one holds).

    general-vanilla:  all raw texts                                  (Vanilla PT)
    general-mix:      all raw texts + fine-tuning collection x4      (Mix PT)
    general-instruct: 1/5 augmented (M=2) + 4/5 raw + collection x4  (Instruct PT)
    {domain}-vanilla: raw domain texts + general instructions 1:1 by tokens
    {domain}-{v}:     augmented domain texts (v = instruct or an ablation) + instructions 1:1
    """
    group, variant = mixture.split("-", 1)
    ft = {
        "name": "ft_collection",
        "path": data_path("synth_ft.templified"),
        "format": "text",
        "repeat": config["pretrain"]["ft_repeat"],
    }
    if config["pretrain"].get("ft_records") is not None:
        # miniature: the mixtures take the collection's first ft_records records (docs/deviations.md)
        ft["head"] = config["pretrain"]["ft_records"]
    if group == "general":
        if variant == "vanilla":
            return [{"name": "raw", "path": data_path("raw_general"), "format": "text"}]
        if variant == "mix":
            return [
                {"name": "raw", "path": data_path("raw_general"), "format": "text"},
                ft,
            ]
        return [
            {
                "name": "augmented",
                "path": f"results/{RUN}/synthesis/general/augmented/instruct.jsonl",
                "format": "text",
            },
            {
                "name": "raw",
                "path": f"results/{RUN}/synthesis/general/split/rest.jsonl",
                "format": "text",
            },
            ft,
        ]
    if variant == "vanilla":
        corpus = [
            {"name": "domain", "path": data_path(f"raw_{group}"), "format": "text"}
        ]
    else:
        corpus = [
            {
                "name": "domain",
                "path": f"results/{RUN}/synthesis/{group}/augmented/{variant}.jsonl",
                "format": "text",
            },
            {
                "name": "domain_raw",
                "path": f"results/{RUN}/synthesis/{group}/split/rest.jsonl",
                "format": "text",
            },
        ]
    instructions = {
        "name": "general_instructions",
        "path": data_path("general_instructions"),
        "format": "instruction",
        "match": [c["name"] for c in corpus],
        "ratio": config["continual_pretrain"]["instruction_ratio"],
    }
    return corpus + [instructions]


def mixture_inputs(wildcards):
    return [c["path"] for c in mixture_components(wildcards.mixture)]


def base_model_inputs(wildcards):
    spec = config["base_models"][wildcards.base]
    if spec["source"] != "pretrain":
        return {}
    st = config["stand_in_training"]
    return {
        "packed": packed_dir(spec["tokenizer"], st["mixture"], st["seq_len"]),
        "tokenizer": tokenizer_dir(spec["tokenizer"]),
    }


def suite_dir(setting):
    suite = config["evaluation"]["settings"][setting]["suite"]
    return f"results/{RUN}/eval/tasks/{suite}"


# ----------------------------------------------------------------------------- report inputs


def table1_rows():
    labels = {"vanilla": "Vanilla PT", "mix": "Mix PT", "instruct": "Instruct PT"}
    return [
        {"label": f"{size.upper()} {labels[v]}", "model": f"scratch-{size}-{v}"}
        for size, spec in config["pretrain"]["sizes"].items()
        for v in spec["variants"]
    ]


def table2_rows():
    """Ours (Instruct PT per size) and the reference models. Models trained in this run (ours,
    and miniature stand-ins of the references) report what was trained (`model_dir`); hub
    references report the paper's parameter and token counts from config."""
    rows = []
    for size, spec in config["pretrain"]["sizes"].items():
        if "instruct" in spec["variants"]:
            model = f"scratch-{size}-instruct"
            rows.append(
                {
                    "label": f"Instruct PT {size.upper()}",
                    "model": model,
                    "params": None,
                    "tokens": None,
                    "model_dir": model_path(model),
                    "ours": True,
                }
            )
    for ref in config["evaluation"]["table2_references"]:
        row = {"label": ref["label"], "model": f"base-{ref['model']}", "ours": False}
        if config["base_models"][ref["model"]]["source"] == "pretrain":
            row.update(params=None, tokens=None, model_dir=base_dir(ref["model"]))
        else:
            row.update(params=ref["params"], tokens=ref["tokens"])
        rows.append(row)
    return rows


def domain_rows(variants_labels):
    return [
        {"label": label, "models": {d: model.format(domain=d) for d in DOMAINS}}
        for label, model in variants_labels
    ]


def table3_rows():
    base = config["continual_pretrain"]["base_model"]
    return domain_rows(
        [
            ("Llama3-8B", f"base-{base}"),
            ("Vanilla PT-8B", "cpt-{domain}-vanilla"),
            ("Instruct PT-8B", "cpt-{domain}-instruct"),
            ("Llama3-70B", "base-llama3_70b"),
        ]
    )


def table4_rows():
    return domain_rows(
        [
            ("Instruct PT", "cpt-{domain}-instruct"),
            ("w/o Corpora", "cpt-{domain}-wo_corpora"),
            ("Rule-based", "cpt-{domain}-rule_based"),
            ("1-shot", "cpt-{domain}-one_shot"),
        ]
    )


def rows_eval_dirs(rows):
    return [
        f"results/{RUN}/eval/{model}/{domain}"
        for row in rows
        for domain, model in row["models"].items()
    ]


def figure4_curves():
    it = config["instruction_tuning"]
    return [
        {
            "label": {
                "vanilla": "Vanilla PT",
                "instruct": "Instruct PT",
                "mix": "Mix PT",
            }[v],
            "variant": v,
            "steps": {
                s: f"it-{it['size']}-{v}-step{s}" for s in sorted(it["save_steps"])
            },
        }
        for v in it["variants"]
    ]


def figure4_eval_dirs():
    models = cfg.it_models(config)
    return eval_dirs(models, "probe_zeroshot") + eval_dirs(models, "probe_fewshot")


def probe_task():
    tasks = config["evaluation"]["settings"]["probe_zeroshot"].get("tasks") or []
    return tasks[0] if tasks else None


REPORTS = ["table1", "table2", "table3", "table4", "table5", "table6", "table9"]
FIGURES = ["figure4", "figure6"]


def report_files():
    files = expand(
        "paper_figures/{run}/{name}.{ext}", run=RUN, name=REPORTS, ext=["csv", "md"]
    )
    files += expand(
        "paper_figures/{run}/{name}.{ext}",
        run=RUN,
        name=FIGURES,
        ext=["csv", "md", "png", "pdf"],
    )
    files += expand("paper_figures/{run}/claims.{ext}", run=RUN, ext=["json", "md"])
    return files


def html_pages():
    """The report's HTML pages (rules/reports.smk, report_html): `snakemake --report` shows them."""
    names = REPORTS + FIGURES + ["claims", "timing", "config"]
    return expand("paper_figures/{run}/html/{name}.html", run=RUN, name=names)


def report_target(name):
    """The files of one table / figure (targets in the Snakefile)."""
    return [f for f in report_files() if Path(f).stem == name]


def ablation_target(ablation):
    """One Table 4 ablation: its continual pre-training per domain, evaluated, and Table 4."""
    return [
        f"results/{RUN}/eval/cpt-{d}-{ablation}/{d}" for d in DOMAINS
    ] + report_target("table4")


# ----------------------------------------------------------------------------- ceilings (rules/ceilings.smk)

CEILINGS = config.get("ceilings") or {}
for _suite in CEILINGS.get("suites") or {}:
    if _suite not in SUITES:
        raise cfg.ConfigError(
            f"config key 'ceilings.suites.{_suite}': not an evaluation suite "
            f"(evaluation.suites: {', '.join(SUITES)})"
        )


def ceiling_suites():
    return list(CEILINGS.get("suites") or {})


def ceiling_row(suites):
    """The ceiling row of a report over `suites` (Table 1/2: general; 3/4: the domains), or
    None when the run has no ceiling for them."""
    specs = {s: CEILINGS["suites"][s] for s in suites if s in ceiling_suites()}
    if not specs:
        return None
    labels = list(dict.fromkeys(spec["label"] for spec in specs.values()))
    label = "ceiling: " + " / ".join(labels)
    if suites == ["general"]:
        return {"label": label, "model": "ceiling-general"}
    return {"label": label, "models": {s: f"ceiling-{s}" for s in specs}}


def ceiling_eval_dirs(suites):
    return [
        f"results/{RUN}/eval/ceiling-{s}/{s}" for s in suites if s in ceiling_suites()
    ]
