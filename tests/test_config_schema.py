"""The closed config schema and the start-up cross-key checks (issue #12, item 2).

A misspelt or misplaced key, a key its source would ignore, or settings that cannot work together
fail when the workflow starts (`snakemake -n` already), naming the full key path; every key the
shipped files use is declared, and every declared key is read by the code.
"""

import copy
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt import config as cfg

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
PRESETS = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
#: Every shipped combination (real-benchmarks overlays smoke: presets/real-benchmarks.yaml).
COMBINATIONS = [(), ("tiny",), ("smoke",), ("rehearsal",), ("smoke", "real-benchmarks")]


@functools.lru_cache
def _loaded(presets):
    return cfg.load_config(ROOT / "config.yaml", *(ROOT / "presets" / f"{p}.yaml" for p in presets))


def load(*presets):
    return copy.deepcopy(_loaded(presets))


def rejects(config, key):
    """validate_config fails naming `key` (the full dotted path)."""
    with pytest.raises(cfg.ConfigError, match=f"config key '{re.escape(key)}'") as info:
        cfg.validate_config(config, SCHEMA_PATH)
    return str(info.value)


def put(config, dotted, value):
    node = config
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[last] = value
    return config


def test_every_shipped_combination_is_listed():
    named = {p for combo in COMBINATIONS for p in combo}
    assert named == set(PRESETS), "a preset is missing from COMBINATIONS"


@pytest.mark.parametrize("presets", COMBINATIONS, ids="+".join)
def test_shipped_configs_validate(presets):
    cfg.validate_config(load(*presets), SCHEMA_PATH)


# ----------------------------------------------------------------------------- closed schema


@pytest.mark.parametrize(
    "dotted, near",
    [
        ("pretrain.train.tokenz", "tokens"),
        ("datasets.raw_biomedicine.max_doc", "max_docs"),
        ("pretrain.sizes.500m.arch.hidden", "hidden_size"),
        ("base_models.mistral_7b.train.warmup_step", "warmup_steps"),
        ("synthesis.engine_options.transformers.batchsize", "batch_size"),
        ("synthesis.corpora.general.round", "rounds"),
        ("synthesis.max_new_token", "max_new_tokens"),
        ("synthesizer.eval.n_example", "n_examples"),
        ("evaluation.settings.general.limt", "limit"),
        ("evaluation.table2_references.0.param", "params"),
        ("ablations.one_shot.round", "rounds"),
        ("analysis.quality.judge.temprature", "temperature"),
        ("compute.threads.trian", None),
        ("compute.gpus.pretrian", None),
        ("compute.wandb.projct", "project"),
        ("world.n_peeple", "n_people"),
        ("tokenizers.mistral.vocab", "vocab_size"),
        ("instruction_tuning.save_step", "save_steps"),
    ],
)
def test_a_misspelt_key_is_named_by_its_full_path(dotted, near):
    config = load("smoke") if dotted.startswith("base_models") else load()  # stand-ins train
    message = rejects(put(config, dotted, 1), dotted)
    if near:
        assert f"did you mean '{near}'" in message
    assert message.count("\n") == 1  # one line for the one problem


def test_every_problem_is_reported_at_once():
    config = put(put(load(), "pretrain.train.tokenz", 1), "datasets.raw_finance.pth", "x")
    message = rejects(config, "pretrain.train.tokenz")
    assert "'datasets.raw_finance.pth'" in message


def _open_nodes(node, path=()):
    """(path, schema) of every object schema that accepts keys it does not declare."""
    if isinstance(node, dict):
        types = node.get("type")
        is_object = (
            types == "object" or (isinstance(types, list) and "object" in types)
        ) or "properties" in node
        if is_object and node.get("additionalProperties", True) is True:
            yield path, node
        for key, value in node.items():
            yield from _open_nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _open_nodes(value, (*path, str(i)))


def test_the_schema_is_closed_except_where_it_says_why():
    open_nodes = list(_open_nodes(SCHEMA))
    for path, node in open_nodes:
        assert "open by design" in node.get("description", ""), "/".join(path)
    # the two free-form mappings: vLLM's own options and a filter's source field names
    assert sorted(p[-1] for p, _ in open_nodes) == ["vllm"]
    assert (
        "open by design"
        in SCHEMA["definitions"]["dataset_spec"]["properties"]["filter"]["description"]
    )


def _resolve(node):
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _child(node, key):
    """The schema of `key` inside `node`; None when the schema does not declare it."""
    node = _resolve(node)
    if key in node.get("properties", {}):
        return node["properties"][key]
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, key):
            return sub
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    if extra is True:
        return {"additionalProperties": True}
    return None


def _undeclared(data, node, path=()):
    if not isinstance(data, dict) or _resolve(node).get("additionalProperties") is True:
        return
    for key, value in data.items():
        sub = _child(node, key)
        if sub is None:
            yield ".".join(map(str, (*path, key)))
        else:
            yield from _undeclared(value, sub, (*path, key))
    for i, value in enumerate(data) if isinstance(data, list) else ():
        yield from _undeclared(value, _resolve(node).get("items", {}), (*path, i))


@pytest.mark.parametrize("name", ["config", *PRESETS])
def test_every_key_in_the_shipped_files_is_declared(name):
    path = ROOT / ("config.yaml" if name == "config" else f"presets/{name}.yaml")
    data = yaml.safe_load(path.read_text())
    assert list(_undeclared(data, SCHEMA)) == []
    # the walker does find an undeclared key (it can fail)
    assert list(_undeclared({"pretrain": {"train": {"tokenz": 1}}}, SCHEMA)) == [
        "pretrain.train.tokenz"
    ]


def _declared_names(node):
    if isinstance(node, dict):
        if node.get("additionalProperties") is True:
            return
        for key, value in (node.get("properties") or {}).items():
            yield key
            yield from _declared_names(value)
        for pattern, value in (node.get("patternProperties") or {}).items():
            yield from pattern.strip("^$()").split("|")
            yield from _declared_names(value)
        for key, value in node.items():
            if key not in ("properties", "patternProperties"):
                yield from _declared_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _declared_names(value)


def _code_files():
    return [
        *ROOT.glob("src/instruct_pt/**/*.py"),
        *ROOT.glob("rules/*.smk"),
        ROOT / "Snakefile",
        *ROOT.glob("workflow/scripts/*.py"),
    ]


def test_every_declared_key_is_read_by_the_code():
    """A key the code never mentions (as a string, a keyword or a field) would be silently
    ignored: the schema must not declare it."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in _code_files())
    mentioned = set(re.findall(r"""["']([A-Za-z_][\w.]*)["']""", code))
    mentioned |= set(re.findall(r"\b([A-Za-z_]\w*)\s*[=:]", code))
    names = sorted(set(_declared_names(SCHEMA)))
    assert len(names) > 150
    assert [n for n in names if n not in mentioned] == []
    assert "tokenz" not in mentioned  # the check can fail


def test_train_keys_are_the_training_jobs_keys():
    """Every train key passes training.TrainConfig (batch_tokens becomes batch_size)."""
    from instruct_pt.training.settings import TrainConfig

    declared = set(SCHEMA["definitions"]["train"]["properties"])
    assert declared - {"batch_tokens"} <= set(TrainConfig.__dataclass_fields__)


def test_world_keys_are_the_worlds():
    from instruct_pt.world.config import DEFAULT_WORLD

    assert set(SCHEMA["properties"]["world"]["properties"]) == set(DEFAULT_WORLD)


# ----------------------------------------------------------------------------- source overlays


def test_a_key_its_source_ignores_is_rejected():
    config = load()
    config["datasets"]["raw_biomedicine"] = {"source": "local", "path": "x.jsonl", "split": "t"}
    message = rejects(config, "datasets.raw_biomedicine.split")
    assert "not a setting of source local" in message
    config["datasets"]["raw_biomedicine"] = {"source": "world", "filter": {"a": 1}}
    rejects(config, "datasets.raw_biomedicine.filter")
    config["datasets"]["raw_biomedicine"] = {"source": "world", "max_docs": 5}
    rejects(config, "datasets.raw_biomedicine.max_docs")
    # what a source does take passes: a local mirror of The Pile keeps its filter
    config["datasets"]["raw_biomedicine"] = {
        "source": "local",
        "path": "pile.jsonl",
        "filter": {"meta.pile_set_name": "PubMed Abstracts"},
        "max_docs": 5,
        "min_kept_fraction": 0.1,
    }
    cfg.validate_config(config, SCHEMA_PATH)


def test_config_and_configs_together_are_rejected():
    config = load()
    config["datasets"]["synth_ft"]["config"] = "squad"
    rejects(config, "datasets.synth_ft.configs")


def test_an_unknown_field_mapping_is_rejected():
    config = load()
    config["datasets"]["raw_general"]["fields"] = {"txt": "content"}
    rejects(config, "datasets.raw_general.fields.txt")
    config["datasets"]["raw_general"]["fields"] = {"text": "content"}
    cfg.validate_config(config, SCHEMA_PATH)


def test_a_preset_switching_the_source_replaces_the_entry(tmp_path):
    """The issue's case: a local file for raw_biomedicine kept config.yaml's hub-only filter."""
    preset = tmp_path / "local.yaml"
    preset.write_text("datasets:\n  raw_biomedicine: { source: local, path: pubmed.jsonl }\n")
    config = cfg.load_config(ROOT / "config.yaml", preset)
    assert config["datasets"]["raw_biomedicine"] == {"source": "local", "path": "pubmed.jsonl"}
    cfg.validate_config(config, SCHEMA_PATH)
    # an entry that does not name its source still merges key by key
    preset.write_text("datasets:\n  raw_biomedicine: { max_docs: 10 }\n")
    config = cfg.load_config(ROOT / "config.yaml", preset)
    assert config["datasets"]["raw_biomedicine"]["filter"] == {
        "meta.pile_set_name": "PubMed Abstracts"
    }
    assert config["datasets"]["raw_biomedicine"]["max_docs"] == 10


def test_each_layer_applies_the_rule_in_turn():
    """config.yaml named again among the --configfile files (tests/test_released.py does) changes
    nothing; a later layer without `source` merges into the entry an earlier one replaced."""
    smoke = ROOT / "presets" / "smoke.yaml"
    assert cfg.load_config(ROOT / "config.yaml", ROOT / "config.yaml", smoke) == load("smoke")
    layers = [
        {"datasets": {"raw_general": {"source": "hub", "id": "a", "split": "s"}}},
        {"datasets": {"raw_general": {"source": "local", "path": "p"}}},
        {"datasets": {"raw_general": {"max_docs": 3}}},
    ]
    merged = cfg.merge_layers(layers)
    assert merged["datasets"]["raw_general"] == {"source": "local", "path": "p", "max_docs": 3}
    plain = cfg.deep_merge(cfg.deep_merge(layers[0], layers[1]), layers[2])
    cfg.replace_switched_sources(plain, layers)  # what rules/common.smk does to Snakemake's merge
    assert plain == merged


def test_the_shipped_presets_keep_nothing_of_the_hub_entries():
    for presets in COMBINATIONS[1:]:
        for name, spec in load(*presets)["datasets"].items():
            if spec["source"] == "world":
                assert spec == {"source": "world"}, (presets, name)


_keys = st.sampled_from(["source", "id", "path", "filter", "max_docs", "split"])
_values = st.one_of(st.integers(0, 3), st.sampled_from(["hub", "local", "world"]))
_entries = st.dictionaries(
    _keys, st.one_of(_values, st.dictionaries(st.sampled_from("ab"), _values)), max_size=4
)
_sections = st.dictionaries(st.sampled_from(["raw_general", "synth_ft"]), _entries, max_size=2)


@settings(max_examples=100, deadline=None)
@given(base=_sections, overlay=_sections, other=st.dictionaries(st.sampled_from("xy"), _entries))
def test_overlay_rule_property(base, overlay, other):
    """Entries naming `source` replace; all else merges as Snakemake merges; inputs untouched."""
    before = copy.deepcopy((base, overlay))
    out = cfg.overlay_config({"datasets": base, "tokenizers": other}, {"datasets": overlay})
    assert (base, overlay) == before
    assert out["tokenizers"] == other
    for name in set(base) | set(overlay):
        entry = overlay.get(name)
        if isinstance(entry, dict) and "source" in entry:
            assert out["datasets"][name] == entry
        else:
            assert (
                out["datasets"][name]
                == cfg.deep_merge(
                    {"e": base.get(name, {})}, {"e": entry} if name in overlay else {}
                )["e"]
            )


# ----------------------------------------------------------------------------- cross-key checks


def test_max_new_tokens_must_leave_room_in_max_model_len():
    config = load("smoke")
    config["synthesis"]["max_new_tokens"] = config["synthesis"]["max_model_len"]
    message = rejects(config, "synthesis.max_new_tokens")
    assert "synthesis.max_model_len (512)" in message
    config["synthesis"]["max_new_tokens"] = 511
    cfg.validate_config(config, SCHEMA_PATH)


def test_batch_tokens_must_be_whole_sequences():
    config = put(load(), "pretrain.sizes.500m.train.batch_tokens", 524288 + 1000)
    message = rejects(config, "pretrain.sizes.500m.train.batch_tokens")
    assert "pretrain.seq_len (2048)" in message
    config = put(load("smoke"), "stand_in_training.train.batch_tokens", 1000)
    rejects(config, "stand_in_training.train.batch_tokens")
    config = put(load("smoke"), "ceilings.train.batch_tokens", 1000)
    rejects(config, "ceilings.train.batch_tokens")


def test_the_batch_must_split_over_the_stages_gpus():
    config = put(load(), "compute.gpus.pretrain", 3)
    message = rejects(config, "pretrain.sizes.500m.train.batch_tokens")
    assert "compute.gpus.pretrain = 3" in message
    config = load()
    config["instruction_tuning"]["train"].update(batch_tokens=24 * 2048, micro_batch_size=8)
    config["compute"]["gpus"]["instruction_tune"] = 2
    message = rejects(config, "instruction_tuning.train.micro_batch_size")
    assert "24 / 2 = 12" in message


@settings(max_examples=100, deadline=None)
@given(
    batch=st.integers(1, 96), micro=st.integers(1, 96), world=st.integers(0, 8), mult=st.booleans()
)
def test_start_up_batch_check_agrees_with_the_jobs_check(batch, micro, world, mult):
    """The start-up check rejects exactly what the training job's own check would reject."""
    from instruct_pt.common import DataError
    from instruct_pt.training.settings import check_train

    config = load()
    seq_len = config["continual_pretrain"]["seq_len"]
    tokens = batch * seq_len + (0 if mult else 7)
    config["continual_pretrain"]["train"].update(batch_tokens=tokens, micro_batch_size=micro)
    config["compute"]["gpus"]["continual_pretrain"] = world
    problems = [p for p in cfg._check_batches(config) if "continual_pretrain" in p]
    if not mult:
        assert problems and "is not a multiple of continual_pretrain.seq_len" in problems[0]
        return
    try:
        check_train(cfg.train_settings(config, "continual_pretrain"), max(1, world))
        job_fails = False
    except DataError:
        job_fails = True
    assert bool(problems) == job_fails


def test_a_training_stage_without_a_token_budget_is_named():
    config = load("smoke")
    del config["base_models"]["llama3_8b"]["train"]["tokens"]
    rejects(config, "stand_in_training.train.tokens")


def test_head_arithmetic_is_checked():
    rejects(
        put(load(), "pretrain.sizes.500m.arch.num_heads", 7), "pretrain.sizes.500m.arch.num_heads"
    )
    config = put(load("smoke"), "base_models.llama3_8b.arch.num_kv_heads", 3)
    rejects(config, "base_models.llama3_8b.arch.num_kv_heads")


def test_tokenizer_sources_need_their_key():
    config = load("smoke")
    config["tokenizers"]["mistral"] = {"source": "train"}
    rejects(config, "tokenizers.mistral.vocab_size")
    config["tokenizers"]["mistral"] = {"source": "local"}
    rejects(config, "tokenizers.mistral.path")


def test_world_values_are_checked_at_start_up():
    config = load("smoke")
    config["world"]["docs_per_entity"] = {"general": 2}
    message = rejects(config, "world")
    assert "docs_per_entity" in message


def test_an_adaptllm_suite_names_its_data_set():
    config = put(load(), "evaluation.suites.biomedicine.id", "someone/other-tasks")
    message = rejects(config, "evaluation.suites.biomedicine.id")
    assert "AdaptLLM/medicine-tasks" in message


# ----------------------------------------------------------------------------- the workflow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def dry_run(*configfiles):
    args = [
        str(Path(sys.executable).parent / "snakemake"),
        "-n",
        "--quiet",
        "rules",
        "--cores",
        "1",
    ]
    if configfiles:
        args += ["--configfile", *map(str, configfiles)]
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("presets", COMBINATIONS[1:], ids="+".join)
def test_every_preset_plans(presets):
    result = dry_run(*(ROOT / "presets" / f"{p}.yaml" for p in presets))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_the_workflow_refuses_a_bad_config_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pretrain:\n  train: { tokenz: 5 }\ndatasets:\n  raw_biomedicine: { max_doc: 3 }\n"
    )
    result = dry_run(ROOT / "presets/smoke.yaml", bad)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config key 'pretrain.train.tokenz'" in out
    assert "config key 'datasets.raw_biomedicine.max_doc'" in out
    assert "ConfigError" in out and "Building DAG" not in out


def test_the_workflow_switches_a_data_set_to_a_local_file(tmp_path):
    """config.yaml's hub entry for raw_biomedicine (id, split, filter) is not kept: were it,
    the start-up check would name datasets.raw_biomedicine.filter and the dry run fail."""
    preset = tmp_path / "local.yaml"
    preset.write_text("datasets:\n  raw_biomedicine: { source: local, path: pubmed.jsonl }\n")
    result = dry_run(ROOT / "presets/smoke.yaml", preset)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def _read_in_section(code: str, section: str, key: str) -> bool:
    """The code reads `section.key` itself: config["section"]["key"] (or .get), through an alias
    (`it = config["section"]`, then it["key"]), or through a computed section
    (config[stage]["key"])."""
    direct = (
        rf'\["{section}"\]\["{key}"\]',
        rf'\["{section}"\]\.get\("{key}"',
        rf'\.get\("{section}"\) or \{{\}}\)\.get\("{key}"',
        rf"config\[[a-z_]+\]\[\"{key}\"\]",
    )
    if any(re.search(p, code) for p in direct):
        return True
    aliases = re.findall(rf'\b(\w+) = (?:\w+\.)?config\["{section}"\]', code)
    return any(re.search(rf'\b{a}\["{key}"\]|\b{a}\.get\("{key}"', code) for a in aliases)


def test_a_key_shared_by_several_sections_is_read_in_each():
    """The name-based check above passes a key whose name the code reads only in another
    section (continual_pretrain.variants was declared and set while only pretrain.sizes'
    variants reached the DAG): such a key must be read under its own section."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in _code_files())
    sections: dict[str, list[str]] = {}
    for section, node in SCHEMA["properties"].items():
        for key in _resolve(node).get("properties") or {}:
            sections.setdefault(key, []).append(section)
    shared = [(s, k) for k, secs in sections.items() if len(secs) > 1 for s in secs]
    assert len(shared) > 10
    assert [f"{s}.{k}" for s, k in shared if not _read_in_section(code, s, k)] == []
    assert not _read_in_section(code, "continual_pretrain", "save_steps")  # the check can fail
