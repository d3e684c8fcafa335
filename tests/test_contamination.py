"""Contamination of the evaluation sets by the synthesized pairs (paper Table 9): n-gram overlap."""

from __future__ import annotations

import json

import pytest
from test_quality import world_fixture

from instruct_pt.analysis.contamination import contamination, suite_contamination
from instruct_pt.common import DataError, read_json, write_jsonl
from instruct_pt.evaluation import render, suites

WORLD_CFG = {"seed": 7, "n_people": 40, "n_drugs": 24, "n_companies": 24,
             "docs_per_entity": 2, "eval_per_task": 5}  # fmt: skip


def synth_record(rid: str, pairs: list[tuple[str, str]]) -> dict:
    return {
        "id": rid,
        "text": "",
        "chain": 0,
        "round": 0,
        "pairs": [{"question": q, "answer": a} for q, a in pairs],
        "dropped": {},
        "generation": "",
    }


def test_contamination_counts_examples_sharing_an_ngram(tmp_path):
    synth, _ = world_fixture(tmp_path)
    long_q = "the quick brown fox jumps over the lazy dog near the river bank today"
    write_jsonl(tmp_path / "shard2.jsonl", [synth_record("x", [(long_q.upper() + "!", "ok")])])
    task_a = [
        {"id": "1", "query": f"Q: {long_q}?", "choices": ["a", "b"], "gold": 0},
        {"id": "2", "query": "a short query", "choices": ["a", "b"], "gold": 1},
        {
            "id": "3",
            "query": "one two three four five six seven eight nine ten eleven twelve thirteen",
            "answer": "x",
        },
    ]
    task_b = [{"id": "1", "query": "Where was Ada Brook born?", "answer": "Valdis"}]
    out = tmp_path / "c.json"
    result = contamination(
        synth + [str(tmp_path / "shard2.jsonl")], {"a": task_a, "b": task_b}, str(out), n=13
    )
    assert json.loads(out.read_text()) == result
    assert result["tasks"]["a"] == {
        "contaminated": 1,
        "total": 3,
        "percent": 33.3333,
        "too_short": 1,
    }
    assert result["tasks"]["b"] == {"contaminated": 0, "total": 1, "percent": 0.0, "too_short": 1}
    # the MC pair templify drops (answer not an option) is not counted
    assert (result["n"], result["n_synth_texts"], result["n_synth_pairs"]) == (13, 4, 5)
    small = contamination(synth, {"b": task_b}, str(out), n=4)
    # "where was ada brook" is in a synthesized question
    assert small["tasks"]["b"]["contaminated"] == 1
    with pytest.raises(DataError, match="task 'c': example 1 has no 'query'"):
        contamination(synth, {"c": [{"query": "q"}, {"answer": "a"}]}, str(out))
    with pytest.raises(ValueError, match="n must be >= 1"):
        contamination(synth, {"b": task_b}, str(out), n=0)


def test_an_ngram_never_spans_two_segments(tmp_path):
    """Query and answer are separate segments: words across their border form no n-gram."""
    write_jsonl(tmp_path / "s.jsonl", [synth_record("x", [("alpha beta gamma", "delta")])])
    task = [{"query": "zeta alpha beta", "answer": "gamma delta"}]
    result = contamination([str(tmp_path / "s.jsonl")], {"t": task}, tmp_path / "c.json", n=3)
    assert result["tasks"]["t"]["contaminated"] == 0
    task = [{"query": "zeta alpha beta gamma", "answer": "x"}]
    result = contamination([str(tmp_path / "s.jsonl")], {"t": task}, tmp_path / "c.json", n=3)
    assert result["tasks"]["t"]["contaminated"] == 1


def test_suite_contamination_reads_every_rendered_document(tmp_path):
    """The rule's one call: every task of each suite, as lm-eval renders it, keyed suite/task,
    with the paper's names; a task whose data is gone is reported as unavailable."""
    suite_dir = tmp_path / "biomedicine"
    suites.build_suite("biomedicine", {"source": "world"}, str(suite_dir), WORLD_CFG)
    meta = read_json(suite_dir / "suite.json")
    examples, _ = render.render_examples(suite_dir)
    first, victim = sorted(meta["tasks"])[1], sorted(meta["tasks"])[0]
    leaked = examples[first][0]["query"]  # one evaluation query copied into a synthesized pair
    write_jsonl(tmp_path / "s.jsonl", [synth_record("x", [(leaked, "whatever")])])
    for f in suite_dir.glob(f"{victim}.jsonl"):
        f.unlink()

    out = tmp_path / "contamination.json"
    result = suite_contamination([str(tmp_path / "s.jsonl")], [str(suite_dir)], out, n=4)
    assert read_json(out) == result
    keys = [f"biomedicine/{t}" for t in sorted(meta["tasks"]) if t != victim]
    assert list(result["tasks"]) == keys
    assert list(result["unavailable"]) == [f"biomedicine/{victim}"]
    assert result["paper_names"] == {
        f"biomedicine/{t}": meta["tasks"][t]["paper_name"] for t in meta["tasks"] if t != victim
    }
    assert all(result["tasks"][k]["total"] == 5 for k in keys)
    assert result["tasks"][f"biomedicine/{first}"]["contaminated"] >= 1
    assert (result["n_synth_texts"], result["n_synth_pairs"]) == (1, 1)


def test_render_examples_reads_every_suite_document_through_lm_eval(tmp_path):
    """Table 9's evaluation side: lm-eval renders each document (query, choices, answer); a
    task whose data cannot be read is reported, not dropped silently."""
    suite_dir = tmp_path / "biomedicine"
    suites.build_suite("biomedicine", {"source": "world"}, str(suite_dir), WORLD_CFG)
    examples, unavailable = render.render_examples(suite_dir)
    meta = read_json(suite_dir / "suite.json")
    assert sorted(examples) == sorted(meta["tasks"]) and unavailable == {}
    for task, recs in examples.items():
        assert len(recs) == 5, task
        for rec in recs:
            assert rec["query"].strip() and isinstance(rec["choices"], list)
            if rec["choices"]:
                assert rec["answer"] in rec["choices"]

    # a task whose data file has gone: reported with the reason
    victim = sorted(meta["tasks"])[0]
    for f in suite_dir.glob(f"{victim}.jsonl"):
        f.unlink()
    examples, unavailable = render.render_examples(suite_dir)
    assert list(unavailable) == [victim] and victim not in examples
