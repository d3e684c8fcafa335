# Validation, wildcard constraints, resources and paths. No rules live here; the experimental
# design (which mixtures, models, rows, curves) is instruct_pt.design, called here with `config`.
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
from instruct_pt import design  # noqa: E402
from instruct_pt.data.prefetch import plan as prefetch_plan  # noqa: E402

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
    domain=_alt(design.DOMAINS),
    corpus=_alt(design.CORPORA),
    augvariant=_alt(design.AUGMENTED_VARIANTS),
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
    return expand(
        "results/{run}/synthesis/{corpus}/{method}/shard{shard}.jsonl",
        run=RUN,
        corpus=wildcards.corpus,
        method=design.augmented_method(wildcards.augvariant),
        shard=range(N_SHARDS),
    )


def synthesis_rounds(wildcards):
    return design.synthesis_rounds(config, wildcards.corpus, wildcards.method)


def include_context(wildcards):
    return design.include_context(config, wildcards.augvariant)


def source_path(source):
    """The file of a mixture's source (instruct_pt.design.Source)."""
    kind, *args = source
    if kind == "data":
        return data_path(*args)
    if kind == "augmented":
        corpus, variant = args
        return f"results/{RUN}/synthesis/{corpus}/augmented/{variant}.jsonl"
    (corpus,) = args  # "rest": the texts synthesis left raw
    return f"results/{RUN}/synthesis/{corpus}/split/rest.jsonl"


def mixture_components(mixture):
    return design.mixture_components(config, mixture, source_path)


def mixture_inputs(wildcards):
    return [c["path"] for c in mixture_components(wildcards.mixture)]


# Stand-ins whose training would compute the same weights as an earlier one's: trained once, the
# others take those weights under their own config (instruct_pt.design.stand_in_twins).
STAND_IN_TWINS = design.stand_in_twins(config)


def base_model_inputs(wildcards):
    spec = config["base_models"][wildcards.base]
    if spec["source"] != "pretrain":
        return {}
    if wildcards.base in STAND_IN_TWINS:
        return {
            "twin": model_dir(f"base-{STAND_IN_TWINS[wildcards.base]}"),
            "tokenizer": tokenizer_dir(spec["tokenizer"]),
        }
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
    return design.table1_rows(config)


def table2_rows():
    return design.table2_rows(config, model_path)


def table3_rows():
    return design.table3_rows(config)


def table4_rows():
    return design.table4_rows(config)


def rows_eval_dirs(rows):
    return [
        f"results/{RUN}/eval/{model}/{domain}"
        for row in rows
        for domain, model in row["models"].items()
    ]


def figure4_curves():
    return design.figure4_curves(config)


def figure4_eval_dirs():
    models = design.it_models(config)
    return eval_dirs(models, "probe_zeroshot") + eval_dirs(models, "probe_fewshot")


def probe_task():
    return design.probe_task(config)


REPORTS = list(design.REPORTS)
FIGURES = list(design.FIGURES)


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
CEILING_SUITES = design.ceiling_suites(config)  # checks them against evaluation.suites
# pre-trained on the oracle's true pairs (rule ceiling_pretrain); the others are fine-tuned
ORACLE_CEILINGS = design.oracle_ceiling_suites(config)
TUNED_CEILINGS = [s for s in CEILING_SUITES if s not in ORACLE_CEILINGS]


def ceiling_suites():
    return CEILING_SUITES


def oracle_size(suite):
    return CEILINGS["suites"][suite]["oracle"]


def _never(values):
    """A wildcard pattern of `values`, or one that matches nothing when there are none."""
    return _alt(values) if values else "(?!)"


def ceiling_row(suites):
    return design.ceiling_row(config, suites)


def ceiling_eval_dirs(suites):
    return [
        f"results/{RUN}/eval/ceiling-{s}/{s}" for s in suites if s in ceiling_suites()
    ]
