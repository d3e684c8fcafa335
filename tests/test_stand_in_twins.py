"""Stand-ins trained once (instruct_pt.design.stand_in_twins): which recipes count as the same,
why the family and window names may differ (Mistral and Llama compute the same network), and the
twin's folder: the first stand-in's weights under the twin's own config and tokenizer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from instruct_pt import design
from instruct_pt.common import write_json
from instruct_pt.config import load_config
from instruct_pt.data.tokenizer import train_bpe
from instruct_pt.training.base_models import prepare_base_model
from instruct_pt.training.modeling import build_model, load_model, make_config, save_model

ROOT = Path(__file__).resolve().parents[1]
ARCH = {
    "family": "mistral", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
    "intermediate_size": 64, "max_position_embeddings": 64, "tie_embeddings": True,
    "rope_theta": 10000.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    return load_config(ROOT / "config.yaml", ROOT / "presets/tiny.yaml")


def test_the_tiny_preset_trains_three_stand_ins_for_five(tiny_config):
    # Measured before this sharing (session 7, seed 7): base-llama3_8b and base-mistral_7b held
    # byte-identical model.safetensors, and so did base-pythia_1b and base-llama3_70b.
    assert design.stand_in_twins(tiny_config) == {
        "llama3_8b": "mistral_7b",
        "pythia_1b": "llama3_70b",
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["base_models"]["pythia_1b"]["train"].update(tokens=700_000),
        lambda c: c["base_models"]["pythia_1b"]["arch"].update(hidden_size=192),
        lambda c: c["base_models"]["pythia_1b"]["arch"].update(max_position_embeddings=128),
        lambda c: c["tokenizers"]["mistral"].update(vocab_size=1024),
        lambda c: c["base_models"].pop("llama3_70b"),
    ],
    ids=["tokens", "width", "window-below-seq-len", "tokenizer-spec", "no-first"],
)
def test_a_recipe_that_differs_in_what_training_computes_is_trained_again(tiny_config, change):
    config = copy.deepcopy(tiny_config)
    change(config)
    assert "pythia_1b" not in design.stand_in_twins(config)


def test_a_mistral_with_a_binding_sliding_window_is_not_a_llama(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["base_models"]["mistral_7b"]["arch"]["sliding_window"] = 128  # < seq_len 256
    assert "llama3_8b" not in design.stand_in_twins(config)
    config["base_models"]["mistral_7b"]["arch"]["sliding_window"] = 256
    assert design.stand_in_twins(config)["llama3_8b"] == "mistral_7b"


def test_hub_models_have_no_twins():
    assert design.stand_in_twins(load_config(ROOT / "config.yaml")) == {}


def test_mistral_and_llama_build_the_same_network_from_one_seed():
    models = []
    for family, window in (("mistral", 64), ("llama", 128)):
        config = make_config(
            {**ARCH, "family": family, "max_position_embeddings": window}, 100, 1, 2, None
        )
        torch.manual_seed(0)
        from transformers import AutoModelForCausalLM

        models.append(AutoModelForCausalLM.from_config(config))
    a, b = (m.state_dict() for m in models)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randint(0, 100, (2, 48))
    assert torch.equal(models[0](x).logits, models[1](x).logits)


def test_a_twin_takes_the_trained_weights_under_its_own_config(tmp_path):
    tok = tmp_path / "tok"
    train_bpe(
        iter(["Alden Ashdown was born in Dorvik. He studied law."] * 30), vocab_size=280
    ).save_pretrained(tok)
    first = tmp_path / "base-first"
    model = build_model(ARCH, str(tok), seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # "trained": not what a fresh build gives
    summary = {"kind": "pretrain", "steps": 7, "tokens_trained": 1234, "parameters": 1}
    save_model(model, str(tok), str(first), extra=summary, dtype="float32")
    write_json(first / "metrics.jsonl", {"step": 7, "loss": 1.5})
    twin = tmp_path / "base-twin"
    spec = {
        "source": "pretrain",
        "arch": {**ARCH, "family": "llama", "max_position_embeddings": 128},
    }
    out = prepare_base_model(
        spec,
        str(twin),
        tokenizer_dir=str(tok),
        train={"export_dtype": "float32"},
        twin_dir=str(first),
    )
    assert out["weights_of"] == "base-first" and out["steps"] == 7
    loaded = load_model(str(twin))
    assert loaded.config.model_type == "llama" and loaded.config.max_position_embeddings == 128
    x = torch.randint(0, 280, (2, 20))
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, load_model(str(first))(x).logits)
    kept = json.loads((twin / "train_summary.json").read_text())
    assert kept == {**summary, "weights_of": "base-first"}
    assert (twin / "metrics.jsonl").read_text() == (first / "metrics.jsonl").read_text()
    record = json.loads((twin / "base_model.json").read_text())
    assert record["summary"]["weights_of"] == "base-first"
