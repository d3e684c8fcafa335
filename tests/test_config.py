"""The configuration: schema validation names the key; presets overlay sizes; derived settings."""

import copy
from pathlib import Path

import pytest

from instruct_pt import config as cfg

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load(*presets):
    return cfg.load_config(ROOT / "config.yaml", *(ROOT / "presets" / f"{p}.yaml" for p in presets))


@pytest.mark.parametrize("presets", [(), ("tiny",), ("smoke",)])
def test_shipped_configs_are_valid(presets):
    cfg.validate_config(load(*presets), SCHEMA)


@pytest.mark.parametrize(
    "path, value, key",
    [
        (("pretrain", "sizes", "500m", "train", "lr"), 5, "pretrain.sizes.500m.train.lr"),
        (("synthesis", "corpora", "general", "rounds"), 0, "synthesis.corpora.general.rounds"),
        (("datasets", "raw_general", "source"), "ftp", "datasets.raw_general.source"),
        (("scale",), "huge", "scale"),
        (("evaluation", "batch_size"), "many", "evaluation.batch_size"),
    ],
)
def test_bad_value_names_the_key(path, value, key):
    c = load()
    node = c
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(cfg.ConfigError, match=f"'{key}'"):
        cfg.validate_config(c, SCHEMA)


def test_unknown_top_level_key_is_rejected():
    c = load()
    c["pretrian"] = {}
    with pytest.raises(cfg.ConfigError, match="pretrian"):
        cfg.validate_config(c, SCHEMA)


def test_cross_references_are_checked():
    c = load()
    c["continual_pretrain"]["base_model"] = "llama9"
    with pytest.raises(cfg.ConfigError, match="continual_pretrain.base_model"):
        cfg.validate_config(c, SCHEMA)
    c = load()
    c["instruction_tuning"]["variants"] = ["mix"]
    c["pretrain"]["sizes"]["500m"]["variants"] = ["vanilla", "instruct"]
    with pytest.raises(cfg.ConfigError, match="instruction_tuning.variants"):
        cfg.validate_config(c, SCHEMA)


def test_presets_overlay_without_touching_the_paper_defaults():
    paper, tiny = load(), load("tiny")
    # Facts that are not sizes stay the paper's.
    assert tiny["synthesis"]["corpora"] == paper["synthesis"]["corpora"]
    assert tiny["pretrain"]["ft_repeat"] == paper["pretrain"]["ft_repeat"] == 4
    assert tiny["continual_pretrain"]["instruction_ratio"] == 1.0
    assert tiny["run"] != paper["run"]


def test_train_settings_derive_batch_and_steps():
    from instruct_pt.training.settings import TrainConfig

    c = load()
    t = cfg.train_settings(c, "pretrain", "500m")
    assert t["batch_size"] == 524288 // 2048 and t["lr"] == 3e-4
    assert t["batch_size"] % t["micro_batch_size"] == 0
    # the steps the training job runs: ceil(tokens / (batch_size x seq_len))
    assert TrainConfig.from_dict(t).total_steps(0, 2048) == -(-100_000_000_000 // (256 * 2048))
    t = cfg.train_settings(c, "continual_pretrain")
    assert t["lr"] == 1e-5 and t["batch_size"] == 64
    seq_len = c["continual_pretrain"]["seq_len"]
    assert TrainConfig.from_dict(t).total_steps(0, seq_len) == 3815  # ~4K steps [S]
    assert t["peak_flops"] == 312e12  # MFU is logged at paper scale ...
    assert "peak_flops" not in cfg.train_settings(
        load("tiny"), "pretrain", "500m"
    )  # ... not on CPU


@pytest.mark.parametrize(
    "stage, size, gpus, batch, micro",
    [  # config.yaml: batch_tokens / seq_len sequences over compute.gpus processes, by hand
        ("pretrain", "500m", 8, 256, 32),  # 524288 / 2048 = 256; 32 per GPU < micro 64
        ("pretrain", "1.3b", 8, 512, 64),  # 1048576 / 2048 = 512; 64 per GPU = micro 64
        ("synthesizer", None, 4, 4, 1),  # 16384 / 4096 = 4; 1 per GPU
        ("continual_pretrain", None, 4, 64, 16),  # 262144 / 4096 = 64; 16 per GPU = micro 16
        ("instruction_tuning", None, 8, 64, 8),  # 131072 / 2048 = 64; 8 per GPU < micro 16
    ],
)
def test_paper_training_jobs_pass_their_start_up_check(stage, size, gpus, batch, micro):
    """Each paper-scale training job on its GPUs: the per-GPU micro-batch the job runs. (Before
    micro_batch_size was per process, 500M, the synthesizer and instruction tuning aborted.)"""
    from instruct_pt.training.settings import check_train

    c = load()
    key = {"synthesizer": "synthesizer_train", "instruction_tuning": "instruction_tune"}.get(
        stage, stage
    )
    assert c["compute"]["gpus"][key] == gpus
    run = check_train(cfg.train_settings(c, stage, size), gpus)
    assert (run.batch_size, run.micro_batch_size) == (batch, micro)


def test_deep_merge_matches_snakemake_semantics():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    out = cfg.deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert out == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert copy.deepcopy(out) == out
