"""External models: hub download, local copy, pre-trained stand-in, clear errors."""

import json

import pytest

from instruct_pt.common import DataError
from instruct_pt.training import base_models


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """snapshot_download into a fake cache: the snapshot's files link to blobs, as the hub's do."""
    calls = []

    def fake_snapshot(repo_id, revision, allow_patterns):
        calls.append({"repo_id": repo_id, "revision": revision})
        blobs, snap = tmp_path / "cache" / "blobs", tmp_path / "cache" / "snapshots" / "abc"
        for name, text in (("config.json", "{}"), ("model.safetensors", "weights")):
            (blobs / name).parent.mkdir(parents=True, exist_ok=True)
            (blobs / name).write_text(text)
            snap.mkdir(parents=True, exist_ok=True)
            if not (snap / name).is_symlink():
                (snap / name).symlink_to(blobs / name)
        return str(snap)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    return calls


@pytest.mark.parametrize("copy", [False, True])
def test_hub_model_is_linked_from_the_cache_or_copied(tmp_path, fake_cache, copy):
    spec = {"source": "hub", "id": "meta-llama/Meta-Llama-3-8B", "revision": "abc"}
    if copy:
        spec["copy"] = True
    out = tmp_path / "out"
    summary = base_models.prepare_base_model(spec, str(out))
    assert fake_cache == [{"repo_id": "meta-llama/Meta-Llama-3-8B", "revision": "abc"}]
    weights = out / "model.safetensors"
    assert weights.read_text() == "weights" and (out / "config.json").read_text() == "{}"
    assert weights.is_symlink() is not copy
    if not copy:  # the link points at the blob itself, not at the snapshot's own link
        assert weights.resolve() == tmp_path / "cache" / "blobs" / "model.safetensors"
    record = json.loads((out / "base_model.json").read_text())
    assert record["spec"] == spec and summary["files"] == 2 and summary["linked"] is not copy
    base_models.prepare_base_model(spec, str(out))  # a rerun over existing links is fine
    assert weights.read_text() == "weights"


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
        return {"steps": 3, **dict.fromkeys(stages.RUN_KEYS, 2)}

    from instruct_pt.training import stages

    monkeypatch.setattr(stages, "pretrain", fake_pretrain)
    spec = {"source": "pretrain", "arch": {"family": "llama"}, "tokenizer": "llama3"}
    out = tmp_path / "out"
    summary = base_models.prepare_base_model(
        spec, str(out), packed_dir="p", tokenizer_dir="t", train={"tokens": 1},
        checkpoint_dir="c", seed=5,
    )  # fmt: skip
    assert seen == {"packed": "p", "arch": {"family": "llama"}, "seed": 5}
    assert summary == {"source": "pretrain", "steps": 3, **dict.fromkeys(stages.RUN_KEYS, 2)}
    # base_model.json holds no facts of the attempt (a resumed run writes the same bytes)
    record = json.loads((out / "base_model.json").read_text())
    assert record["summary"] == {"source": "pretrain", "steps": 3}
    with pytest.raises(DataError, match="needs packed data"):
        base_models.prepare_base_model(spec, str(tmp_path / "o3"))


def test_unknown_source_is_named(tmp_path):
    with pytest.raises(DataError, match="'ftp'"):
        base_models.prepare_base_model({"source": "ftp"}, str(tmp_path / "o"))
