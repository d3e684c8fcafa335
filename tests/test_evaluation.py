"""Suite building and real, offline lm-eval runs on a tiny random Mistral.

The world module is replaced by a small fake that writes the same record formats
(instruct_pt.world contract), so these tests do not depend on it.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, read_jsonl, write_jsonl  # noqa: E402
from instruct_pt.evaluation import hooks as H  # noqa: E402
from instruct_pt.evaluation import runner as R  # noqa: E402
from instruct_pt.evaluation import suites as S  # noqa: E402
from instruct_pt.evaluation import task_yaml as TY  # noqa: E402

N_DOCS = 6


def _fake_write_eval_suite(suite: str, world_cfg: dict | None, out_dir: str) -> dict:
    out = Path(out_dir)
    colours = ["red", "green", "blue"]
    write_jsonl(
        out / "colour.jsonl",
        [
            {
                "id": f"c{i}",
                "query": f"Q: what colour is item {i}?\nA:",
                "choices": colours,
                "gold": i % 3,
            }
            for i in range(N_DOCS)
        ],
    )
    write_jsonl(
        out / "sums.jsonl",
        [
            {"id": f"s{i}", "query": f"Q: {i} plus {i}?\nA:", "answer": str(2 * i)}
            for i in range(N_DOCS)
        ],
    )
    write_jsonl(
        out / "relation.jsonl",
        [
            {
                "id": f"r{i}",
                "query": f"Does A{i} bind B{i}?",
                "choices": ["yes", "no"],
                "gold": i % 2,
            }
            for i in range(N_DOCS)
        ],
    )
    return {
        "colour": {
            "type": "multiple_choice",
            "metric": "acc_norm",
            "paper_name": "Colour",
            "description": "mc",
        },
        "sums": {
            "type": "generate",
            "metric": "numeric_em",
            "paper_name": "Sums",
            "description": "gen",
        },
        "relation": {
            "type": "multiple_choice",
            "metric": "micro_f1",
            "paper_name": "Rel",
            "description": "f1",
        },
    }


@pytest.fixture
def fake_world(monkeypatch):
    module = types.ModuleType("instruct_pt.world")
    module.write_eval_suite = _fake_write_eval_suite
    monkeypatch.setitem(sys.modules, "instruct_pt.world", module)
    return module


SPEC = {"source": "world", "num_fewshot": 1, "max_gen_toks": 6}


@pytest.fixture(scope="module")
def tiny_model(tiny_lm) -> str:
    return tiny_lm


# ---------------------------------------------------------------------------- build_suite


def test_build_world_suite(tmp_path, fake_world):
    meta = S.build_suite("general", SPEC, str(tmp_path / "s"), {})
    assert meta == read_json(tmp_path / "s" / "suite.json")
    assert list(meta["tasks"]) == ["colour", "relation", "sums"]
    assert meta["tasks"]["sums"] == {
        "lm_eval_task": "ipt_general_sums",
        "metric": "numeric_em",
        "num_fewshot": 1,
        "paper_name": "Sums",
        "output_type": "generate_until",
    }
    cfg = TY.load_task_yaml_plain((tmp_path / "s" / "ipt_general_relation.yaml").read_text())
    data = Path(cfg["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and data == (tmp_path / "s" / "relation.jsonl").resolve()
    assert cfg["process_results"] == "instruct_pt.evaluation.hooks.lm_mc_micro_f1"
    assert cfg["class"] == "instruct_pt.evaluation.lm_tasks.DomainTask"  # mean-NLL choice scoring
    colour = TY.load_task_yaml_plain((tmp_path / "s" / "ipt_general_colour.yaml").read_text())
    assert "class" not in colour and "process_results" not in colour  # lm-eval's acc/acc_norm
    assert "max_length" not in meta
    gen = TY.load_task_yaml_plain((tmp_path / "s" / "ipt_general_sums.yaml").read_text())
    assert gen["generation_kwargs"] == {"until": ["\n"], "max_gen_toks": 6, "do_sample": False}


def test_yaml_hooks_resolve_through_lm_eval(tmp_path, fake_world):
    """lm-eval's own YAML loader imports our `!function` hooks by dotted name."""
    from lm_eval.tasks._yaml_loader import load_yaml

    S.build_suite("general", SPEC, str(tmp_path), {})
    cfg = load_yaml(tmp_path / "ipt_general_relation.yaml", resolve_func=True)
    assert cfg["process_results"] is H.lm_mc_micro_f1
    assert cfg["metric_list"][0]["aggregation"] is H.lm_agg_micro_f1


def test_task_hash_stable_across_builds_and_tracks_data(tmp_path, fake_world):
    a, b = tmp_path / "a", tmp_path / "b"
    S.build_suite("general", SPEC, str(a), {})
    S.build_suite("general", SPEC, str(b), {})
    name = "ipt_general_colour"
    ha = R.task_hash(a.resolve(), name, [], local=True)
    assert ha == R.task_hash(b.resolve(), name, [], local=True)
    with open(b / "colour.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "x", "query": "q", "choices": ["a", "b"], "gold": 0}) + "\n")
    assert R.task_hash(b.resolve(), name, [], local=True) != ha


def test_rebuild_removes_stale_task_files(tmp_path, fake_world):
    (tmp_path / "ipt_general_gone.yaml").write_text("task: ipt_general_gone\n")
    S.build_suite("general", SPEC, str(tmp_path), {})
    assert not (tmp_path / "ipt_general_gone.yaml").exists()


def test_world_bad_gold_names_file_and_line(tmp_path, monkeypatch):
    def bad(suite, world_cfg, out_dir):
        write_jsonl(
            Path(out_dir) / "t.jsonl",
            [
                {"id": "1", "query": "q", "choices": ["a", "b"], "gold": 1},
                {"id": "2", "query": "q", "choices": ["a", "b"], "gold": 2},
            ],
        )
        return {"t": {"type": "multiple_choice", "metric": "acc", "paper_name": "T"}}

    monkeypatch.setitem(
        sys.modules, "instruct_pt.world", types.SimpleNamespace(write_eval_suite=bad)
    )
    with pytest.raises(DataError, match=r"t\.jsonl:2: gold 2"):
        S.build_suite("general", {"source": "world"}, str(tmp_path), {})


def test_world_unknown_metric(tmp_path, monkeypatch):
    def bad(suite, world_cfg, out_dir):
        write_jsonl(Path(out_dir) / "t.jsonl", [{"id": "1", "query": "q", "answer": "a"}])
        return {"t": {"type": "generate", "metric": "bleu", "paper_name": "T"}}

    monkeypatch.setitem(
        sys.modules, "instruct_pt.world", types.SimpleNamespace(write_eval_suite=bad)
    )
    with pytest.raises(DataError, match="bleu"):
        S.build_suite("general", {"source": "world"}, str(tmp_path), {})


def test_build_lm_eval_suite_writes_only_suite_json(tmp_path):
    spec = {
        "source": "lm_eval",
        "tasks": {
            "arc_e": {
                "lm_eval_task": "arc_easy",
                "metric": "acc_norm",
                "num_fewshot": 0,
                "paper_name": "ARC-e",
            },
            "mmlu": {
                "lm_eval_task": "mmlu",
                "metric": "acc",
                "num_fewshot": 5,
                "paper_name": "MMLU",
            },
        },
    }
    meta = S.build_suite("general", spec, str(tmp_path), None)
    assert meta["tasks"]["mmlu"]["num_fewshot"] == 5
    assert meta["tasks"]["arc_e"]["output_type"] == "multiple_choice"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite.json"]
    del spec["tasks"]["mmlu"]["paper_name"]
    with pytest.raises(DataError, match="mmlu.*paper_name"):
        S.build_suite("general", spec, str(tmp_path), None)


def test_build_adaptllm_suite(tmp_path):
    from lm_eval.tasks._yaml_loader import load_yaml

    from instruct_pt.evaluation import lm_tasks as LT

    meta = S.build_suite("finance", {"source": "adaptllm"}, str(tmp_path), None)
    assert sorted(meta["tasks"]) == ["convfinqa", "fiqa_sa", "fpb", "headline", "ner"]
    assert meta["tasks"]["headline"]["metric"] == "mean_weighted_f1"
    cfg = load_yaml(tmp_path / "ipt_finance_convfinqa.yaml", resolve_func=True)
    assert (cfg["dataset_path"], cfg["dataset_name"], cfg["test_split"]) == (
        "AdaptLLM/finance-tasks",
        "ConvFinQA",
        "test",
    )
    assert cfg["process_results"] is H.lm_gen_numeric_em_adaptllm
    assert cfg["doc_to_target"] is H.lm_answer
    ner = load_yaml(tmp_path / "ipt_finance_ner.yaml", resolve_func=True)
    assert ner["metric_list"][0]["aggregation"] is H.lm_agg_entity_f1_doc
    headline = load_yaml(tmp_path / "ipt_finance_headline.yaml", resolve_func=True)
    assert headline["class"] is ner["class"] is LT.DomainTask
    assert headline["metadata"]["required_fields"] == ["input", "options", "gold_index", "class_id"]
    assert ner["metadata"]["required_fields"] == ["input", "label"]
    assert meta["max_length"] == 2048  # generation prompts: the last 2048 - 100 tokens
    with pytest.raises(DataError, match="unknown AdaptLLM"):
        S.build_suite("biomedicine", {"source": "adaptllm", "tasks": ["fpb"]}, str(tmp_path), None)


def test_unknown_source(tmp_path):
    with pytest.raises(DataError, match="source"):
        S.build_suite("general", {"source": "nope"}, str(tmp_path), None)


# ---------------------------------------------------------------------------- hooks


def test_choice_hooks_predict_by_mean_token_nll():
    doc = {"choices": ["a", "bbbb"], "gold": 1, "subtask": 3}
    # (loglikelihood, is_greedy, n_tokens): summed ll favours "a" (-2 > -4); mean NLL per token
    # "bbbb" (4 / 4 = 1 < 2 / 1)
    results = [(-2.0, False, 1), (-4.0, False, 4)]
    assert H.lm_mc_micro_f1(doc, results) == {"micro_f1": (1, 1)}
    assert H.lm_mc_mean_weighted_f1(doc, results) == {"mean_weighted_f1": ("3", 1, 1)}
    assert H.lm_mc_accuracy(doc, results) == {"accuracy": 1.0}
    adapt = {"options": ["a", "bbbb"], "gold_index": 0, "class_id": 2}
    assert H.lm_mc_weighted_f1(adapt, results) == {"weighted_f1": (0, 1)}
    assert H.lm_mc_mean_weighted_f1(adapt, results) == {"mean_weighted_f1": ("2", 0, 1)}
    world = {"id": "headline_like-up-00007", "choices": ["a", "bbbb"], "gold": 0}
    assert H.lm_mc_mean_weighted_f1(world, results) == {"mean_weighted_f1": ("up", 0, 1)}
    with pytest.raises(DataError, match="sub-question"):
        H.lm_mc_mean_weighted_f1({"id": "x1", "choices": ["a", "bbbb"], "gold": 0}, results)
    with pytest.raises(DataError, match="n_tokens"):  # lm-eval's bare pairs: no token counts
        H.lm_mc_accuracy(doc, [(-2.0, False), (-4.0, False)])


def test_generation_hooks_and_aggregations():
    assert H.lm_answer({"label": ["42", "x"]}) == "42"
    assert H.lm_gen_numeric_em({"answer": "12"}, ["12.004 dollars"]) == {"numeric_em": 1.0}
    assert H.lm_gen_numeric_em_adaptllm({"label": "0.5"}, ["50%"]) == {"numeric_em": 1.0}
    item = H.lm_gen_entity_f1({"answer": "Acme (org), Bob (per)"}, ["acme (ORG)"])["entity_f1"]
    assert H.lm_agg_entity_f1([item]) == pytest.approx(2 / 3)  # TP 1, FN 1
    assert H.lm_agg_micro_f1([(0, 0), (1, 0)]) == 0.5
    assert H.lm_agg_mean_weighted_f1([(0, 1, 1), (1, 0, 0)]) == 1.0


def test_aggregate_items_reads_json_items_back():
    gold = H.lm_gen_entity_f1({"answer": "Acme (org), Bob (per)"}, ["acme (ORG)"])["entity_f1"]
    as_json = json.loads(json.dumps([gold, ([], [])]))  # entity lists come back as lists
    assert H.aggregate_items("lm_agg_entity_f1", as_json) == pytest.approx(2 / 3)
    assert H.aggregate_items("lm_agg_entity_f1_doc", as_json) == pytest.approx((2 / 3 + 1) / 2)
    assert H.aggregate_items("mean", [1.0, 0.0, 0.0, 1.0]) == 0.5
    with pytest.raises(DataError, match="unknown aggregation 'median'"):
        H.aggregate_items("median", [1.0])
    with pytest.raises(DataError, match="of no items"):
        H.aggregate_items("mean", [])


# ---------------------------------------------------------------------------- evaluate


def test_evaluate_end_to_end(tmp_path, fake_world, tiny_model):
    suite_dir = tmp_path / "suite"
    S.build_suite("general", SPEC, str(suite_dir), {})
    recs = R.evaluate(
        tiny_model, str(suite_dir), str(tmp_path / "out"), "tiny", "general", batch_size=4, limit=4
    )
    assert [r["task"] for r in recs] == ["colour", "relation", "sums"]
    for rec in recs:
        assert rec == read_json(tmp_path / "out" / f"{rec['task']}.json")
        assert 0.0 <= rec["value"] <= 100.0
        assert rec["n"] == 4 and rec["num_fewshot"] == 1
        assert rec["model"] == "tiny" and rec["suite"] == "general"
        assert rec["harness"].startswith("lm-eval 0.4.13")
        assert rec["task_hash"] == R.task_hash(
            suite_dir.resolve(), f"ipt_general_{rec['task']}", [], True
        )
    by_task = {r["task"]: r for r in recs}
    # Per-document items: one line per document in order; the aggregate over them is the value.
    aggregations = {"colour": "mean", "relation": "lm_agg_micro_f1", "sums": "mean"}
    for rec in recs:
        assert rec["aggregation"] == aggregations[rec["task"]]
        lines = read_jsonl(tmp_path / "out" / f"{rec['task']}.docs.jsonl")
        assert [line["doc"] for line in lines] == list(range(4))
        items = [line["item"] for line in lines]
        assert 100 * H.aggregate_items(rec["aggregation"], items) == pytest.approx(rec["value"])
    relation = read_jsonl(tmp_path / "out" / "relation.docs.jsonl")
    assert [line["item"][0] for line in relation] == [0, 1, 0, 1]  # (gold, prediction) pairs
    assert by_task["relation"]["stderr"] is None  # corpus-level F1 has no closed-form stderr
    assert by_task["colour"]["stderr"] is not None and by_task["colour"]["metric"] == "acc_norm"

    # Restrict to one task with a shot override; twice, to check the bytes are reproducible.
    outs = [tmp_path / "zero1", tmp_path / "zero2"]
    for out in outs:
        only = R.evaluate(
            tiny_model,
            str(suite_dir),
            str(out),
            "tiny",
            "general",
            limit=N_DOCS,
            num_fewshot=0,
            tasks=["relation"],
        )
        assert [(r["task"], r["num_fewshot"], r["n"]) for r in only] == [("relation", 0, N_DOCS)]
        assert only[0]["task_hash"] == by_task["relation"]["task_hash"]
        assert sorted(p.name for p in out.iterdir()) == ["relation.docs.jsonl", "relation.json"]
    for name in ("relation.json", "relation.docs.jsonl"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_evaluation_job_log_has_no_progress_bars(tmp_path, fake_world, tiny_model):
    """As the evaluate rule runs it (stderr and logging into the job's log file): none of
    lm-eval's, transformers' or datasets' bars (carriage returns) in the log."""
    import contextlib
    import logging

    from transformers.utils import logging as hf_logging

    suite_dir = tmp_path / "suite"
    S.build_suite("general", SPEC, str(suite_dir), {})
    log_path = tmp_path / "evaluate.log"
    root = logging.getLogger()
    level = root.level
    with open(log_path, "a", encoding="utf-8") as f, contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            R.evaluate(tiny_model, str(suite_dir), str(tmp_path / "out"), "tiny", "general",
                       batch_size=4, limit=4)  # fmt: skip
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            hf_logging.enable_progress_bar()
    text = log_path.read_bytes().decode("utf-8")  # read_text would turn "\r" into "\n"
    assert "lm-eval on tiny" in text  # the job did log
    assert "\r" not in text


@pytest.mark.parametrize("weighted", [True, False])
def test_group_items_are_its_leaves_documents(tmp_path, fake_world, tiny_model, weighted):
    """A group (MMLU-like) weighted by size is the mean over all its leaves' documents; one not
    weighted by size is not recomputable from the pooled items (aggregation null)."""
    suite_dir = tmp_path / "suite"
    S.build_suite("general", SPEC, str(suite_dir), {})
    colour = (suite_dir / "ipt_general_colour.yaml").read_text()
    (suite_dir / "ipt_general_colour2.yaml").write_text(
        colour.replace("task: ipt_general_colour", "task: ipt_general_colour2")
    )
    (suite_dir / "ipt_general_grp.yaml").write_text(
        "group: ipt_general_grp\ntask: [ipt_general_colour, ipt_general_colour2]\n"
        "aggregate_metric_list:\n  - metric: acc_norm\n"
        f"    weight_by_size: {str(weighted).lower()}\nmetadata: {{version: 1}}\n"
    )
    meta = read_json(suite_dir / "suite.json")
    meta["tasks"] = {"grp": {**meta["tasks"]["colour"], "lm_eval_task": "ipt_general_grp"}}
    (suite_dir / "suite.json").write_text(json.dumps(meta))
    (rec,) = R.evaluate(tiny_model, str(suite_dir), str(tmp_path / "o"), "m", "general", limit=3)
    lines = read_jsonl(tmp_path / "o" / "grp.docs.jsonl")
    assert [line["doc"] for line in lines] == [
        f"ipt_general_colour{k}/{i}" for k in ("", "2") for i in range(3)
    ]
    assert rec["n"] == 6
    if weighted:
        assert rec["aggregation"] == "mean"
        items = [line["item"] for line in lines]
        assert 100 * H.aggregate_items("mean", items) == pytest.approx(rec["value"])
    else:
        assert rec["aggregation"] is None


def test_evaluate_rejects_unknown_task_and_wrong_suite(tmp_path, fake_world):
    S.build_suite("general", SPEC, str(tmp_path), {})
    with pytest.raises(DataError, match="nope"):
        R.evaluate("unused", str(tmp_path), str(tmp_path / "o"), "m", "general", tasks=["nope"])
    with pytest.raises(DataError, match="finance"):
        R.evaluate("unused", str(tmp_path), str(tmp_path / "o"), "m", "finance")


def test_read_metric_picks_filter_and_nulls_missing_stderr():
    res = {"alias": "x", "acc,none": 0.5, "acc_stderr,none": "N/A", "numeric_em,strict": 0.25}
    assert R.read_metric(res, "acc", "t") == (0.5, None)
    assert R.read_metric({"acc,none": 0.5, "acc_stderr,none": float("nan")}, "acc", "t") == (
        0.5,
        None,
    )
    assert R.read_metric({"f1,x": 0.1, "f1_stderr,x": 0.02}, "f1", "t") == (0.1, 0.02)
    assert R.read_metric(res, "numeric_em", "t") == (0.25, None)
    with pytest.raises(DataError, match="acc_norm"):
        R.read_metric(res, "acc_norm", "t")


def test_task_hash_of_builtin_tasks_ignores_shots_and_install_paths(tmp_path):
    def leaf(name, shots, where, prompt="{{q}}"):
        cfg = {
            "task": name,
            "doc_to_text": prompt,
            "num_fewshot": shots,
            "metadata": {"config_source": where},
        }
        return types.SimpleNamespace(task_name=name, dump_config=lambda: dict(cfg))

    a = R.task_hash(tmp_path, "g", [leaf("g_2", 0, "/a"), leaf("g_1", 0, "/a")], local=False)
    b = R.task_hash(tmp_path, "g", [leaf("g_1", 5, "/b"), leaf("g_2", 5, "/b")], local=False)
    c = R.task_hash(
        tmp_path, "g", [leaf("g_1", 0, "/a"), leaf("g_2", 0, "/a", "Q: {{q}}")], local=False
    )
    assert a == b != c


# ---------------------------------------------------------------------------- placement


@pytest.fixture
def cuda(monkeypatch):
    """Pretend CUDA has `n` visible GPUs (0: CUDA not available); returns the setter."""
    import torch

    def set_gpus(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return set_gpus


def test_resolve_device(cuda, caplog):
    from instruct_pt.devices import resolve_device

    cuda(1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("auto", gpus=1) == "cuda"
    assert resolve_device("auto", gpus=0) == "cpu"  # a job without GPUs takes none
    assert resolve_device("cuda:1", gpus=0) == "cuda:1"  # explicit devices are kept
    cuda(0)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu", gpus=4) == "cpu"
    with caplog.at_level("WARNING"):
        assert resolve_device("auto", gpus=2) == "cpu"
    assert "got 2 GPU(s) but CUDA is not available" in caplog.text
    with pytest.raises(RuntimeError, match="'cuda:1'.*CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="gpus must be >= 0"):
        resolve_device("auto", gpus=-1)


def test_hf_placement(cuda, caplog):
    cuda(4)
    assert R.hf_placement("auto", None) == ({}, "cuda")
    assert R.hf_placement("auto", 1) == ({}, "cuda")
    assert R.hf_placement("auto", 0) == ({}, "cpu")
    assert R.hf_placement("auto", 4) == ({"parallelize": True}, "cuda")
    with caplog.at_level("WARNING"):
        assert R.hf_placement("auto", 2) == ({"parallelize": True}, "cuda")
    assert "4 GPUs are visible, the job got 2" in caplog.text
    cuda(2)
    with pytest.raises(RuntimeError, match="got 4 GPUs but 2 are visible"):
        R.hf_placement("auto", 4)
    cuda(0)
    assert R.hf_placement("auto", 4) == ({}, "cpu")


class _Built(Exception):
    """Raised by the stand-in HFLM constructor once it has the arguments."""


@pytest.mark.parametrize(
    ("visible", "gpus", "expected"),
    [
        (4, 4, {"device": "cuda", "parallelize": True}),  # Llama3-70B: split over the job's 4
        (4, 1, {"device": "cuda"}),
        (0, 1, {"device": "cpu"}),
        (4, 0, {"device": "cpu"}),
    ],
)
def test_evaluate_hands_placement_to_hflm(
    tmp_path, fake_world, tiny_model, cuda, monkeypatch, visible, gpus, expected
):
    """The model arguments that reach lm-eval's HFLM are its own parameters, placed by `gpus`."""
    import inspect

    from lm_eval.api.registry import get_model

    hflm = get_model("hf")
    seen: dict = {}

    def fake_init(self, **kwargs):
        seen.update(kwargs)
        raise _Built

    monkeypatch.setattr(hflm, "__init__", fake_init)
    cuda(visible)
    S.build_suite("general", SPEC, str(tmp_path / "s"), {})
    with pytest.raises(_Built):
        R.evaluate(tiny_model, str(tmp_path / "s"), str(tmp_path / "o"), "m", "general", gpus=gpus)
    placement = {k: seen[k] for k in ("device", "parallelize") if k in seen}
    assert placement == expected
    assert seen["pretrained"] == tiny_model and seen["add_bos_token"] is True
    monkeypatch.undo()  # the real signature
    params = inspect.signature(get_model("hf").__init__).parameters
    assert set(seen) <= set(params), sorted(set(seen) - set(params))
