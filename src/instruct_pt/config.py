"""The workflow's configuration: validation with messages that name the key, the merge of its
layers, and the training settings of each stage (the experiment lists: instruct_pt.design).

`rules/common.smk` calls these; they are plain functions of the config dict so tests can
exercise them without Snakemake.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """A bad configuration value; the message names the key."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _error_lines(error: jsonschema.ValidationError) -> list[str]:
    """One line per problem; an unknown key is named by its full path, with the nearest known
    key when one is close (a misspelling)."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        unknown = [
            k
            for k in error.instance
            if k not in known and not any(re.search(p, k) for p in patterns)
        ]
        names = known + [p.strip("^$()").replace("|", ", ") for p in patterns]
        lines = []
        for key in unknown:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            lines.append(
                f"config key '{_key_path([*path, key])}': unknown key "
                f"(known here: {', '.join(names) or 'none'}){hint}"
            )
        if lines:
            return lines
    return [f"config key '{_key_path(path)}': {error.message}"]


@functools.lru_cache
def _validator(schema_path: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load(Path(schema_path).read_text()))


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema (closed: unknown keys are errors), then cross-references
    and cross-key rules; raise ConfigError naming every bad key by its full path."""
    validator = _validator(str(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [line for e in errors for line in _error_lines(e)][:10]
        n = sum(len(_error_lines(e)) for e in errors)
        more = f"\n... and {n - 10} more" if n > 10 else ""
        raise ConfigError("invalid configuration:\n" + "\n".join(lines) + more)
    _check_references(config)
    problems = [
        *_check_dataset_sources(config),
        *_check_tokenizer_sources(config),
        *_check_world(config),
        *_check_suites(config),
        *_check_synthesis(config),
        *_check_batches(config),
        *_check_archs(config),
    ]
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))


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


#: The keys each dataset source takes (instruct_pt.data.sources); any other key is an error, as it
#: would be ignored (a world source reads none of them) or misapplied.
DATASET_KEYS = {
    "hub": ("id", "config", "configs", "split", "revision", "streaming"),
    "local": ("path", "cache_dir"),
    "world": (),
}
_DATASET_COMMON = {
    "hub": ("max_docs", "filter", "fields"),
    "local": ("max_docs", "filter", "fields"),
    "world": (),
}
#: Sections whose entries switch wholesale with their source: an overlay (preset, --config) entry
#: that names `source` replaces config.yaml's entry instead of merging into it.
SOURCE_SECTIONS = ("datasets",)
#: Training stage -> its key in compute.gpus (one process per GPU, one without a GPU).
STAGE_GPUS = {
    "pretrain": "pretrain",
    "stand_in": "base_model",
    "continual_pretrain": "continual_pretrain",
    "synthesizer": "synthesizer_train",
    "instruction_tuning": "instruction_tune",
    "ceilings": "ceiling_tune",
}


def _check_dataset_sources(config: dict) -> list[str]:
    problems = []
    for name, spec in config["datasets"].items():
        source = spec["source"]
        allowed = {"source", "min_kept_fraction", *DATASET_KEYS[source], *_DATASET_COMMON[source]}
        for key in sorted(set(spec) - allowed):
            problems.append(
                f"config key 'datasets.{name}.{key}': not a setting of source {source} "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
        if spec.get("config") is not None and spec.get("configs") is not None:
            problems.append(
                f"config key 'datasets.{name}.configs': give either config or configs, not both"
            )
        if spec.get("fields"):
            from instruct_pt.data.records import DEFAULT_FIELDS  # our fields per data set

            known = DEFAULT_FIELDS.get(name, {})
            for ours in sorted(set(spec["fields"]) - set(known)):
                problems.append(
                    f"config key 'datasets.{name}.fields.{ours}': not a field of {name} "
                    f"(known: {', '.join(known)})"
                )
    return problems


def _check_tokenizer_sources(config: dict) -> list[str]:
    need = {"hub": "id", "local": "path", "train": "vocab_size"}
    return [
        f"config key 'tokenizers.{name}.{need[spec['source']]}': required when source is "
        f"{spec['source']}"
        for name, spec in config["tokenizers"].items()
        if need[spec["source"]] not in spec
    ]


def _check_archs(config: dict) -> list[str]:
    """Head arithmetic every model build checks (training.modeling.make_config), now."""
    archs = [
        (f"pretrain.sizes.{k}.arch", v["arch"]) for k, v in config["pretrain"]["sizes"].items()
    ]
    archs += [
        (f"base_models.{k}.arch", v["arch"])
        for k, v in config["base_models"].items()
        if "arch" in v
    ]
    problems = []
    for key, arch in archs:
        h, heads, kv = arch["hidden_size"], arch["num_heads"], arch["num_kv_heads"]
        if h % heads:
            problems.append(
                f"config key '{key}.num_heads': {heads} does not divide hidden_size {h}"
            )
        if heads % kv:
            problems.append(
                f"config key '{key}.num_kv_heads': {kv} does not divide num_heads {heads}"
            )
    return problems


def _check_world(config: dict) -> list[str]:
    """The world's own checks (instruct_pt.world.config.resolve_config), now, not in a job."""
    from instruct_pt.common import DataError
    from instruct_pt.world.config import resolve_config

    try:
        resolve_config(config.get("world") or {})
    except DataError as e:
        return [f"config key 'world': {e}"]
    return []


def _check_suites(config: dict) -> list[str]:
    from instruct_pt.evaluation.suites import ADAPTLLM_DATASETS

    problems = []
    for name, spec in config["evaluation"]["suites"].items():
        if spec["source"] != "adaptllm":
            continue
        if name not in ADAPTLLM_DATASETS:
            problems.append(
                f"config key 'evaluation.suites.{name}.source': AdaptLLM suites exist for "
                f"{', '.join(sorted(ADAPTLLM_DATASETS))}"
            )
        elif spec.get("id", ADAPTLLM_DATASETS[name]) != ADAPTLLM_DATASETS[name]:
            problems.append(
                f"config key 'evaluation.suites.{name}.id': the {name} task tables are built for "
                f"{ADAPTLLM_DATASETS[name]}, got {spec['id']!r}"
            )
    return problems


def _check_synthesis(config: dict) -> list[str]:
    syn = config["synthesis"]
    if syn["max_new_tokens"] >= syn["max_model_len"]:
        return [
            f"config key 'synthesis.max_new_tokens': {syn['max_new_tokens']} leaves no room for "
            f"the prompt in synthesis.max_model_len ({syn['max_model_len']}); it must be smaller"
        ]
    return []


def _train_key(config: dict, stage: str, key: str, size: str | None, base: str | None) -> str:
    """The key path a stage's train setting comes from (the override where there is one)."""
    if stage == "pretrain" and key in config["pretrain"]["sizes"][size]["train"]:
        return f"pretrain.sizes.{size}.train.{key}"
    if stage == "stand_in" and key in config["base_models"][base].get("train", {}):
        return f"base_models.{base}.train.{key}"
    section = {"stand_in": "stand_in_training"}.get(stage, stage)
    return f"{section}.train.{key}"


def training_jobs(config: dict) -> list[tuple[str, str | None, str | None]]:
    """(stage, size, base) of every kind of training job the config defines."""
    jobs: list[tuple[str, str | None, str | None]] = [
        ("pretrain", size, None) for size in config["pretrain"]["sizes"]
    ]
    jobs += [
        ("stand_in", None, name)
        for name, spec in config["base_models"].items()
        if spec["source"] == "pretrain"
    ]
    jobs += [("continual_pretrain", None, None), ("synthesizer", None, None)]
    jobs.append(("instruction_tuning", None, None))
    if config.get("ceilings"):
        jobs.append(("ceilings", None, None))
    return jobs


def _check_batches(config: dict) -> list[str]:
    """The batch arithmetic of every training job, as its start-up check (training.check_train)
    will do it on its GPUs: whole sequences per batch, equal per-process shares."""
    problems = []
    for stage, size, base in training_jobs(config):
        if stage == "stand_in" and "stand_in_training" not in config:
            continue  # named by _check_references
        section = {"stand_in": "stand_in_training"}.get(stage, stage)
        seq_len = config[section]["seq_len"]
        raw = _stage_train(config, stage, size, base)
        if "tokens" not in raw:
            key = _train_key(config, stage, "tokens", size, base)
            problems.append(f"config key '{key}': required (the job's token budget)")
            continue
        batch_tokens = raw.get("batch_tokens", seq_len)
        key = _train_key(config, stage, "batch_tokens", size, base)
        if batch_tokens % seq_len:
            problems.append(
                f"config key '{key}': {batch_tokens} is not a multiple of {section}.seq_len "
                f"({seq_len}); a batch is whole sequences"
            )
            continue
        merged = train_settings(config, stage, size, base)
        gpus_key = STAGE_GPUS[stage]
        world = max(1, int(config["compute"]["gpus"].get(gpus_key, 0)))
        batch = merged["batch_size"]
        if batch % world:
            problems.append(
                f"config key '{key}': {batch} sequences ({batch_tokens} / {seq_len}) do not split "
                f"over compute.gpus.{gpus_key} = {world} processes"
            )
            continue
        local = batch // world
        micro = min(merged["micro_batch_size"], local)
        if local % micro:
            problems.append(
                f"config key '{_train_key(config, stage, 'micro_batch_size', size, base)}': the "
                f"per-process batch ({batch} / {world} = {local} sequences) is not a multiple "
                f"of micro_batch_size {micro}"
            )
    return problems


# ----------------------------------------------------------------------------- derived settings


def train_settings(
    config: dict, stage: str, size: str | None = None, base: str | None = None
) -> dict:
    """The full training settings of one stage: stage defaults, then size / stand-in overrides,
    then the run-wide compute settings. `batch_size` (sequences) is derived from `batch_tokens`."""
    train = _stage_train(config, stage, size, base)
    seq_len = _stage_seq_len(config, stage)
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


def _stage_train(config: dict, stage: str, size: str | None, base: str | None) -> dict:
    """A stage's `train` block as configured: stage defaults, then size / stand-in overrides."""
    if stage == "pretrain":
        train = copy.deepcopy(config["pretrain"]["train"])
        train.update(config["pretrain"]["sizes"][size]["train"])
    elif stage == "stand_in":
        train = copy.deepcopy(config["stand_in_training"]["train"])
        train.update(config["base_models"][base].get("train", {}))
    elif stage in ("continual_pretrain", "synthesizer", "instruction_tuning", "ceilings"):
        train = copy.deepcopy(config[stage]["train"])
    else:
        raise ConfigError(f"unknown training stage '{stage}'")
    return train


def _stage_seq_len(config: dict, stage: str) -> int:
    section = {"stand_in": "stand_in_training"}.get(stage, stage)
    return config[section]["seq_len"]


def deep_merge(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile semantics: nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def overlay_config(base: dict, overlay: dict) -> dict:
    """`base` with one more config layer (a preset, --config), as the workflow sees it: nested
    dicts merge and everything else replaces (Snakemake's semantics), except that an entry of
    SOURCE_SECTIONS naming `source` replaces the entry whole, so nothing of the entry for another
    source (a hub filter, split, id) survives a switch to a local file or the world."""
    config = deep_merge(base, overlay)
    for section in SOURCE_SECTIONS:
        entries = overlay.get(section)
        if not isinstance(entries, dict) or not isinstance(config.get(section), dict):
            continue
        for name, entry in entries.items():
            if isinstance(entry, dict) and "source" in entry:
                config[section][name] = copy.deepcopy(entry)
    return config


def merge_layers(layers: list[dict]) -> dict:
    """config.yaml, then each preset and --config in turn (overlay_config)."""
    config: dict = {}
    for layer in layers:
        config = overlay_config(config, layer or {})
    return config


def replace_switched_sources(config: dict, layers: list[dict]) -> None:
    """Give `config` (Snakemake's plain merge of `layers`) the source rule of overlay_config."""
    merged = merge_layers(layers)
    for section in SOURCE_SECTIONS:
        if isinstance(merged.get(section), dict):
            config[section] = merged[section]


def read_layer(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def load_config(*paths: str | Path) -> dict[str, Any]:
    """config.yaml followed by presets, merged as the workflow merges `--configfile` files."""
    return merge_layers([read_layer(p) for p in paths])
