"""The workflow's configuration: validation with messages that name the key, and the derived
settings every rule needs (experiment lists, training settings per stage).

`rules/common.smk` calls these; they are plain functions of the config dict so tests can
exercise them without Snakemake.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DOMAINS = ("biomedicine", "finance")
CORPORA = ("general", *DOMAINS)
ABLATIONS = ("wo_corpora", "rule_based", "one_shot")
#: Table 4 rows, in the paper's order; "instruct" is the full method.
CPT_VARIANTS = ("vanilla", "instruct", *ABLATIONS)
#: Which synthesis output each augmented variant is templified from, and whether the raw text stays.
AUGMENTED_VARIANTS = {
    "instruct": ("model", True),
    "wo_corpora": ("model", False),
    "one_shot": ("one_shot", True),
    "rule_based": ("rule_based", True),
}


class ConfigError(ValueError):
    """A bad configuration value; the message names the key."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema, then cross-references; raise ConfigError naming keys."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"config key '{_key_path(e.absolute_path)}': {e.message}" for e in errors[:10]]
        more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError("invalid configuration:\n" + "\n".join(lines) + more)
    _check_references(config)


def _check_references(config: dict) -> None:
    problems = []
    bases = config["base_models"]
    toks = config["tokenizers"]

    def need_base(key: str, name: str) -> None:
        if name not in bases:
            problems.append(f"config key '{key}': base model '{name}' is not in base_models")

    need_base("synthesizer.base_model", config["synthesizer"]["base_model"])
    need_base("continual_pretrain.base_model", config["continual_pretrain"]["base_model"])
    if config["synthesizer"]["use"] == "released":
        need_base("synthesizer.use", "released_synthesizer")
    for i, ref in enumerate(config["evaluation"]["table2_references"]):
        need_base(f"evaluation.table2_references.{i}.model", ref["model"])
    for key in ("pretrain.tokenizer", "continual_pretrain.tokenizer"):
        section, field = key.split(".")
        if config[section][field] not in toks:
            problems.append(
                f"config key '{key}': tokenizer '{config[section][field]}' is not in tokenizers"
            )
    for name, spec in bases.items():
        if spec["source"] == "pretrain":
            for field in ("arch", "train", "tokenizer"):
                if field not in spec:
                    problems.append(
                        f"config key 'base_models.{name}.{field}': required when source is pretrain"
                    )
            if "stand_in_training" not in config:
                problems.append(
                    f"config key 'stand_in_training': required because base_models.{name}.source is pretrain"
                )
            if spec.get("tokenizer") not in toks:
                problems.append(f"config key 'base_models.{name}.tokenizer': not in tokenizers")
        elif spec["source"] == "hub" and "id" not in spec:
            problems.append(f"config key 'base_models.{name}.id': required when source is hub")
        elif spec["source"] == "local" and "path" not in spec:
            problems.append(f"config key 'base_models.{name}.path': required when source is local")
    for name, spec in config["datasets"].items():
        if spec["source"] == "hub" and "id" not in spec:
            problems.append(f"config key 'datasets.{name}.id': required when source is hub")
        if spec["source"] == "local" and "path" not in spec:
            problems.append(f"config key 'datasets.{name}.path': required when source is local")
    it = config["instruction_tuning"]
    sizes = config["pretrain"]["sizes"]
    if it["size"] not in sizes:
        problems.append(
            f"config key 'instruction_tuning.size': '{it['size']}' is not in pretrain.sizes"
        )
    else:
        missing = set(it["variants"]) - set(sizes[it["size"]]["variants"])
        if missing:
            problems.append(
                f"config key 'instruction_tuning.variants': {sorted(missing)} not pre-trained at size {it['size']}"
            )
    suites = config["evaluation"]["suites"]
    for name, setting in config["evaluation"]["settings"].items():
        if setting["suite"] not in suites:
            problems.append(
                f"config key 'evaluation.settings.{name}.suite': '{setting['suite']}' is not a suite"
            )
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))


# ----------------------------------------------------------------------------- derived settings


def train_settings(
    config: dict, stage: str, size: str | None = None, base: str | None = None
) -> dict:
    """The full training settings of one stage: stage defaults, then size / stand-in overrides,
    then the run-wide compute settings. `batch_size` (sequences) is derived from `batch_tokens`."""
    if stage == "pretrain":
        section = config["pretrain"]
        train = copy.deepcopy(section["train"])
        train.update(section["sizes"][size]["train"])
        seq_len = section["seq_len"]
    elif stage == "stand_in":
        section = config["stand_in_training"]
        train = copy.deepcopy(section["train"])
        train.update(config["base_models"][base].get("train", {}))
        seq_len = section["seq_len"]
    elif stage in ("continual_pretrain", "synthesizer", "instruction_tuning", "ceilings"):
        section = config[stage]
        train = copy.deepcopy(section["train"])
        seq_len = section["seq_len"]
    else:
        raise ConfigError(f"unknown training stage '{stage}'")
    batch_tokens = train.pop("batch_tokens", seq_len)
    train["batch_size"] = max(1, batch_tokens // seq_len)
    # Gradient accumulation: micro-batches of at most micro_batch_size sequences.
    micro = min(int(train.get("micro_batch_size", train["batch_size"])), train["batch_size"])
    while train["batch_size"] % micro:
        micro -= 1
    train["micro_batch_size"] = micro
    train["tokens"] = int(train["tokens"])
    compute = config["compute"]
    train.setdefault("checkpoint_every", compute["checkpoint_every"])
    train.setdefault("log_every", compute["log_every"])
    train.setdefault("wandb", dict(compute["wandb"]))
    if compute.get("peak_flops"):
        train.setdefault("peak_flops", float(compute["peak_flops"]))
    return train


def planned_steps(
    config: dict, stage: str, size: str | None = None, base: str | None = None
) -> int:
    """Optimizer steps of a stage: ceil(tokens / (batch_size x seq_len))."""
    train = train_settings(config, stage, size, base)
    seq_len = _stage_seq_len(config, stage)
    return math.ceil(train["tokens"] / (train["batch_size"] * seq_len))


def _stage_seq_len(config: dict, stage: str) -> int:
    section = {"stand_in": "stand_in_training"}.get(stage, stage)
    return config[section]["seq_len"]


def scratch_models(config: dict) -> list[str]:
    """Table 1: scratch-{size}-{variant}."""
    return [
        f"scratch-{size}-{variant}"
        for size, spec in config["pretrain"]["sizes"].items()
        for variant in spec["variants"]
    ]


def cpt_models(config: dict, variants: tuple[str, ...] | None = None) -> list[str]:
    """Table 3 (vanilla, instruct) and Table 4 (ablations): cpt-{domain}-{variant}."""
    variants = variants or tuple(config["continual_pretrain"]["variants"])
    return [f"cpt-{d}-{v}" for d in config["continual_pretrain"]["domains"] for v in variants]


def it_models(config: dict) -> list[str]:
    """Fig. 4: it-{size}-{variant}-step{N}, one per saved instruction-tuning checkpoint."""
    it = config["instruction_tuning"]
    return [
        f"it-{it['size']}-{v}-step{s}" for v in it["variants"] for s in sorted(it["save_steps"])
    ]


def base_model_ids(config: dict) -> list[str]:
    return [f"base-{name}" for name in config["base_models"]]


def deep_merge(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile semantics: nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(*paths: str | Path) -> dict[str, Any]:
    """config.yaml followed by presets, merged as Snakemake merges --configfile."""
    config: dict = {}
    for p in paths:
        config = deep_merge(config, yaml.safe_load(Path(p).read_text()) or {})
    return config
