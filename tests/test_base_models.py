"""External models: hub download, local copy, pre-trained stand-in, clear errors."""

import json

import pytest

from instruct_pt import base_models
from instruct_pt.common import DataError


def test_hub_model_is_downloaded_into_the_rule_output(tmp_path, monkeypatch):
    calls = {}

    def fake_snapshot(repo_id, revision, local_dir, allow_patterns):
        calls.update(repo_id=repo_id, revision=revision, local_dir=local_dir)
        (tmp_path / "out" / "config.json").write_text("{}")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    (tmp_path / "out").mkdir()
    spec = {"source": "hub", "id": "meta-llama/Meta-Llama-3-8B", "revision": "abc"}
    summary = base_models.prepare_base_model(spec, str(tmp_path / "out"))
    assert calls == {
        "repo_id": "meta-llama/Meta-Llama-3-8B",
        "revision": "abc",
        "local_dir": str(tmp_path / "out"),
    }
    record = json.loads((tmp_path / "out" / "base_model.json").read_text())
    assert record["spec"] == spec and summary["id"] == spec["id"]


def test_local_model_is_copied_and_a_missing_one_named(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / "config.json").write_text('{"a": 1}')
    base_models.prepare_base_model({"source": "local", "path": str(src)}, str(tmp_path / "out"))
    assert (tmp_path / "out" / "config.json").read_text() == '{"a": 1}'
    with pytest.raises(DataError, match="nowhere"):
        base_models.prepare_base_model(
            {"source": "local", "path": str(tmp_path / "nowhere")}, str(tmp_path / "o2")
        )


def test_stand_in_is_pretrained_with_its_arch(tmp_path, monkeypatch):
    seen = {}

    def fake_pretrain(packed, out, tok, train, ckpt, seed, arch=None, threads=None):
        seen.update(packed=packed, arch=arch, seed=seed)
        return {"steps": 3}

    from instruct_pt import training

    monkeypatch.setattr(training, "pretrain", fake_pretrain)
    spec = {"source": "pretrain", "arch": {"family": "llama"}, "tokenizer": "llama3"}
    out = tmp_path / "out"
    summary = base_models.prepare_base_model(
        spec, str(out), packed_dir="p", tokenizer_dir="t", train={"tokens": 1},
        checkpoint_dir="c", seed=5,
    )  # fmt: skip
    assert seen == {"packed": "p", "arch": {"family": "llama"}, "seed": 5}
    assert summary == {"source": "pretrain", "steps": 3}
    with pytest.raises(DataError, match="needs packed data"):
        base_models.prepare_base_model(spec, str(tmp_path / "o3"))


def test_unknown_source_is_named(tmp_path):
    with pytest.raises(DataError, match="'ftp'"):
        base_models.prepare_base_model({"source": "ftp"}, str(tmp_path / "o"))
