"""Fixtures shared by several test files."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def build_tiny_lm(tmp_path_factory, max_position_embeddings: int = 256) -> str:
    """A saved model folder as the workflow makes them: the package's byte-level BPE (vocab 300,
    <unk>=0 <s>=1 </s>=2 <pad>=3, BOS prepended) and a random 2-layer Mistral."""
    from instruct_pt.data.tokenizer import train_bpe
    from instruct_pt.training.modeling import build_model, save_model

    texts = [
        "Q: what colour is item 3?\nA: red",
        "Does A1 bind B1? yes",
        "<s> <CON> The cat sat on the mat. </CON>\n\n<QUE> What is the capital? <ANS> Paris </END></s>",
        "Birds fly south in winter.",
    ] * 20
    tok_dir = tmp_path_factory.mktemp("tok")
    train_bpe(iter(texts), vocab_size=300).save_pretrained(tok_dir)
    arch = {
        "family": "mistral", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": max_position_embeddings,
        "tie_embeddings": False, "rope_theta": 10000.0,
    }  # fmt: skip
    out = tmp_path_factory.mktemp("lm")
    save_model(build_model(arch, str(tok_dir), 0), str(tok_dir), str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> str:
    """The tiny model of :func:`build_tiny_lm` with a 256-token window."""
    return build_tiny_lm(tmp_path_factory)
