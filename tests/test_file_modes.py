"""Results are readable by colleagues: every file the package writes atomically gets the mode the
process umask allows (0644 under umask 022), as a plain open() would, not tempfile's 0600."""

import os
import stat
from pathlib import Path

import pytest

from instruct_pt.common import atomic_writer, write_json, write_jsonl, write_text


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_follow_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask  # 0644 under 022, 0640 under 027
    write_json(tmp_path / "a.json", {"x": 1})
    write_jsonl(tmp_path / "sub" / "b.jsonl", [{"x": 1}, {"x": 2}])
    write_text(tmp_path / "c.md", "| a |\n")
    path, f, tmp = atomic_writer(tmp_path / "d.csv")
    with f:
        f.write("a,b\n")
    os.replace(tmp, path)
    for name in ("a.json", "sub/b.jsonl", "c.md", "d.csv"):
        assert _mode(tmp_path / name) == expected, name
    # and a plain open() agrees: the same mode as any other tool's output
    (tmp_path / "plain.txt").write_text("x")
    assert _mode(tmp_path / "plain.txt") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json", "c.md", "d.csv", "plain.txt", "sub"
    ]  # fmt: skip


def test_mode_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "scorecard.json", {"held": 3})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "scorecard.json") == 0o644


def test_rewriting_keeps_the_content_atomic_and_the_mode(tmp_path, umask):
    target = tmp_path / "t.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert target.read_text() == '{\n  "v": 2\n}\n'
    assert _mode(target) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary left behind


def test_temporary_names_never_collide(tmp_path):
    opened = [atomic_writer(tmp_path / "x.json") for _ in range(50)]
    assert len({tmp for _, _, tmp in opened}) == 50
    for _, f, tmp in opened:
        f.close()
        os.unlink(tmp)


def test_a_saved_model_folder_follows_the_umask(tmp_path_factory):
    """save_pretrained's safetensors file is written 0600 by the library; the folder the
    workflow publishes has every file readable as the umask allows (0644 under 022)."""
    from conftest import build_tiny_lm

    old = os.umask(0o022)
    try:
        folder = build_tiny_lm(tmp_path_factory)
    finally:
        os.umask(old)
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    assert any(p.name == "model.safetensors" for p in files)
    assert {p.name: _mode(p) for p in files} == {p.name: 0o644 for p in files}
