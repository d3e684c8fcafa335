"""build_model / save_model / load_model / count_parameters / flops_per_token."""

import hashlib
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, write_jsonl  # noqa: E402
from instruct_pt.data.tokenizer import prepare_tokenizer  # noqa: E402
from instruct_pt.training.modeling import (  # noqa: E402
    build_model,
    count_parameters,
    flops_per_token,
    load_model,
    save_model,
)

ARCH = {
    "family": "mistral",
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "tie_embeddings": True,
    "rope_theta": 10000.0,
}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("m")
    words = "the cat sat on a mat with another cat and a dog".split()
    write_jsonl(
        tmp / "c.jsonl", [{"id": str(i), "text": " ".join(words[i % 5 :])} for i in range(40)]
    )
    prepare_tokenizer(
        {"source": "train", "vocab_size": 300}, [str(tmp / "c.jsonl")], str(tmp / "tok"), 0
    )
    return str(tmp / "tok")


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_seeded_init_is_reproducible(tok_dir):
    a, b, c = (build_model(ARCH, tok_dir, s) for s in (7, 7, 8))
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(
        wa["model.layers.0.self_attn.q_proj.weight"], wc["model.layers.0.self_attn.q_proj.weight"]
    )


def test_build_model_does_not_touch_global_rng(tok_dir):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(ARCH, tok_dir, 0)
    assert torch.equal(torch.rand(3), expected)


def test_config_takes_ids_and_vocab_from_tokenizer(tok_dir):
    from transformers import AutoTokenizer, LlamaForCausalLM, MistralForCausalLM

    tok = AutoTokenizer.from_pretrained(tok_dir)
    m = build_model({**ARCH, "sliding_window": 16}, tok_dir, 0)
    assert isinstance(m, MistralForCausalLM)
    c = m.config
    assert (c.vocab_size, c.bos_token_id, c.eos_token_id, c.pad_token_id) == (len(tok), 1, 2, 3)
    assert c.sliding_window == 16 and c.num_key_value_heads == 2
    assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    llama = build_model({**ARCH, "family": "llama", "tie_embeddings": False}, tok_dir, 0)
    assert isinstance(llama, LlamaForCausalLM)
    assert llama.lm_head.weight.data_ptr() != llama.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize(
    "bad",
    [
        {k: v for k, v in ARCH.items() if k != "num_heads"},
        {**ARCH, "family": "gpt2"},
        {**ARCH, "num_heads": 3},
        {**ARCH, "num_kv_heads": 3},
    ],
)
def test_bad_arch_raises(tok_dir, bad):
    with pytest.raises(DataError):
        build_model(bad, tok_dir, 0)


def test_count_parameters_matches_the_architecture(tok_dir):
    m = build_model(ARCH, tok_dir, 0)
    v, h, f, layers = m.config.vocab_size, 32, 64, 2
    kv = 2 * (h // 4)  # 2 kv heads of head_dim 8
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * f + 2 * h  # q,o + k,v + mlp + 2 norms
    assert count_parameters(m) == v * h + layers * per_layer + h  # tied head counted once
    untied = build_model({**ARCH, "tie_embeddings": False}, tok_dir, 0)
    assert count_parameters(untied) == count_parameters(m) + v * h


def test_flops_per_token_is_6n_plus_attention(tok_dir):
    m = build_model(ARCH, tok_dir, 0)
    matmul = (
        sum(p.numel() for n, p in m.named_parameters() if "proj" in n) + m.lm_head.weight.numel()
    )
    assert flops_per_token(m.config, 64) == 6 * matmul + 12 * 2 * 32 * 64
    arch = {**ARCH, "vocab_size": m.config.vocab_size}
    assert flops_per_token(arch, 64) == flops_per_token(m.config, 64)
    assert flops_per_token(arch, 128) > flops_per_token(arch, 64)
    with pytest.raises(DataError):
        flops_per_token(ARCH, 64)  # an arch dict must say its vocab


def test_save_and_load_round_trip(tok_dir, tmp_path):
    m = build_model(ARCH, tok_dir, 3)
    out = tmp_path / "model"
    save_model(m, tok_dir, str(out), extra={"steps": 5})
    names = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_summary.json"} <= names
    assert read_json(out / "train_summary.json") == {"steps": 5}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # temp dir renamed away
    loaded = load_model(str(out))
    wa, wb = _weights(m), _weights(loaded)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    x = torch.tensor([[1, 5, 6, 7]])
    assert torch.equal(m(x).logits, loaded(x).logits)
    assert load_model(str(out), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_save_is_byte_deterministic_and_overwrites(tok_dir, tmp_path):
    digests = []
    for _ in range(2):
        save_model(build_model(ARCH, tok_dir, 1), tok_dir, str(tmp_path / "m"))
        digests.append(
            hashlib.sha256((tmp_path / "m" / "model.safetensors").read_bytes()).hexdigest()
        )
    assert digests[0] == digests[1]
    assert not (tmp_path / "m" / "train_summary.json").exists()


def test_save_in_bfloat16_writes_bf16_tensors_and_says_so(tok_dir, tmp_path):
    from safetensors import safe_open

    m = build_model(ARCH, tok_dir, 2)
    save_model(m, tok_dir, str(tmp_path / "bf16"), dtype="bfloat16")
    with safe_open(tmp_path / "bf16" / "model.safetensors", "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
        q = f.get_tensor("model.layers.0.self_attn.q_proj.weight")
    assert dtypes == {"BF16"}
    assert read_json(tmp_path / "bf16" / "config.json")["dtype"] == "bfloat16"
    assert torch.equal(q, m.model.layers[0].self_attn.q_proj.weight.detach().to(torch.bfloat16))
    assert m.dtype == torch.float32 and m.config.dtype in (None, "float32", torch.float32)
    loaded = load_model(str(tmp_path / "bf16"))  # the folder's own dtype when none is asked
    assert loaded.dtype == torch.bfloat16
    # the default keeps the training dtype
    save_model(m, tok_dir, str(tmp_path / "fp32"))
    assert read_json(tmp_path / "fp32" / "config.json")["dtype"] == "float32"
    with pytest.raises(DataError, match="export dtype"):
        save_model(m, tok_dir, str(tmp_path / "x"), dtype="int8")
