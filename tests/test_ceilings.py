"""Ceilings (issue #11): the world's task-format training split, its training rows, the report row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.common import DataError, read_jsonl, write_json, write_jsonl
from instruct_pt.reports.registry import make
from instruct_pt.world import EVAL_TASKS, build_world, eval_records
from instruct_pt.world.ceiling import CLOSED_BOOK, train_records, write_train_split

SMALL = {"eval_per_task": 60}  # the default world (120 people, 60 drugs, 60 companies)


def _names_in(text: str, names: list[str]) -> set[str]:
    return {n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)}


def _facts(records: list[dict], corpus: list[str]) -> set[frozenset]:
    """A closed-book record's fact as {entity, value}, found independently of the split's code:
    "What does D treat?" -> X and "A patient has X. Which drug?" -> D are both {D, X}."""
    out = set()
    for r in records:
        gold = r["answer"] if "answer" in r else r["choices"][r["gold"]]
        names = _names_in(r["query"], corpus)
        if names:
            out |= {frozenset((n, gold)) for n in names}
            continue
        m = re.search(r"A patient has (.+?)\. Which", r["query"])
        assert m, r["query"]
        out.add(frozenset((gold, m.group(1))))
    return out


# ----------------------------------------------------------------------------- the split


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_no_training_record_repeats_an_evaluation_query_or_fact(seed):
    world = build_world(SMALL, seed)
    for suite, tasks in EVAL_TASKS.items():
        corpus = [e.name for e in world.corpus(suite)]
        for task in tasks:
            evals = eval_records(suite, task, SMALL, seed)
            train, stats = train_records(suite, task, SMALL, 50, seed)
            assert len(train) == 50 and stats["records"] == 50
            assert not {r["query"] for r in train} & {r["query"] for r in evals}, (suite, task)
            if (suite, task) not in CLOSED_BOOK:
                # open-book tasks ask about reserved entities, never about an evaluated one
                named = set().union(*(_names_in(r["query"], corpus) for r in train))
                assert not named, (suite, task, sorted(named)[:3])
                continue

            # closed-book: no fact of the training split is asked by the evaluation
            leaked = _facts(train, corpus) & _facts(evals, corpus)
            assert not leaked, (suite, task, sorted(map(sorted, leaked))[:3])


def test_knowledge_trains_on_unevaluated_corpus_facts():
    """Closed-book knowledge learns from the corpus people (the model can only know those)."""
    world = build_world(SMALL, 3)
    corpus = [e.name for e in world.corpus("general")]
    train, stats = train_records("general", "knowledge", SMALL, 200, 3)
    assert stats["entities"] == "corpus"
    assert all(_names_in(r["query"], corpus) for r in train)
    assert stats["dropped"].get("eval_fact", 0) > 0  # evaluated facts were met and left out
    assert stats["distinct_queries"] > 150


def test_a_closed_book_task_without_unevaluated_facts_says_so():
    """USMLE-like at 42 corpus drugs and 500 questions asks (almost) every corpus fact: the
    split adds reserved drugs (the format only) and its statistics say it."""
    cfg = {"n_drugs": 60, "eval_per_task": 500}
    _, stats = train_records("biomedicine", "usmle_like", cfg, 100, 7)
    assert "reserved (format only)" in stats["entities"]


def test_the_split_is_deterministic_and_written_per_task(tmp_path):
    a = train_records("finance", "ner_like", SMALL, 30, 5)
    assert a == train_records("finance", "ner_like", SMALL, 30, 5)
    assert a != train_records("finance", "ner_like", SMALL, 30, 6)
    stats = write_train_split("finance", SMALL, 7, str(tmp_path / "f.jsonl"), 5)
    recs = read_jsonl(tmp_path / "f.jsonl")
    assert set(stats) == set(EVAL_TASKS["finance"])
    assert {t: sum(r["task"] == t for r in recs) for t in stats} == dict.fromkeys(stats, 7)
    with pytest.raises(DataError, match="unknown task"):
        train_records("finance", "nope", SMALL, 3)
    with pytest.raises(DataError, match=">= 1"):
        train_records("finance", "ner_like", SMALL, 0)


def test_answers_are_the_gold_the_query_supports():
    """Reading: the passage states the answer; ConvFinQA-like: the answer is computed from the
    figures in the query."""
    train, _ = train_records("general", "reading", SMALL, 40, 1)
    for r in train:
        passage = r["query"].split("\nQuestion:")[0]
        assert r["answer"] in passage, r
    train, _ = train_records("finance", "convfinqa_like", SMALL, 40, 1)
    for r in train:
        now, before = map(int, re.findall(r"(\d+) million dollars", r["query"])[:2])
        question = r["query"].split("Question: ")[1]
        if "total" in question:  # each kind has several phrasings (vocabulary, "conv_*")
            assert int(r["answer"]) == now + before, r
        elif "percent" in question:
            assert abs(int(r["answer"]) - 100 * (now - before) / before) <= 1, r
        else:
            assert "change" in question, question
            assert int(r["answer"]) == now - before, r


# ----------------------------------------------------------------------------- training rows


def test_task_rows_train_only_the_answer(tmp_path):
    from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer
    from instruct_pt.training.batches import IGNORE
    from instruct_pt.training.finetune_data import task_rows

    texts = [
        {"id": f"t{i}", "text": f"Question: Where was Ada born?\nAnswer: Paris {i}"}
        for i in range(40)
    ]
    write_jsonl(tmp_path / "c.jsonl", texts)
    prepare_tokenizer(
        {"source": "train", "vocab_size": 300},
        [str(tmp_path / "c.jsonl")],
        str(tmp_path / "tok"),
        0,
    )
    tok = load_tokenizer(str(tmp_path / "tok"))
    recs = [
        {"task": "k", "query": "Question: Where was Ada born?\nAnswer:", "answer": "Paris"},
        {"task": "k", "query": "Q", "answer": "  "},
        {"task": "r", "query": "x " * 200, "answer": "y"},
    ]
    rows, stats = task_rows(recs, tok, 64)
    ((ids, labels),) = rows
    # the bytes lm-eval scores: the query, " " + the answer; generation stops at "\n"
    assert tok.decode(ids) == "<s>Question: Where was Ada born?\nAnswer: Paris\n</s>"
    trained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained.strip() == "Paris\n</s>".strip() and "Answer" not in trained
    assert stats["dropped"] == {"empty_answer": 1, "longer_than_seq_len": 1}
    with pytest.raises(DataError, match="bad.jsonl:1"):
        task_rows([{"query": 3, "answer": "a"}], tok, 64, "bad.jsonl")


# ----------------------------------------------------------------------------- reports


def _put(ev: Path, model: str, setting: str, task: str, value: float, stderr: float, n: int):
    write_json(
        ev / model / setting / f"{task}.json",
        {
            "model": model, "suite": setting, "task": task, "paper_name": "", "metric": "acc",
            "value": value, "stderr": stderr, "n": n, "num_fewshot": 0,
            "harness": "lm-eval 0.4.13", "task_hash": "h",
        },
    )  # fmt: skip


@pytest.fixture
def run(tmp_path):
    ev = tmp_path / "results" / "mini" / "eval"
    docs = [
        {"id": f"k{i}", "query": f"q{i}", "choices": ["a", "b"], "gold": i % 2} for i in range(4)
    ]
    write_jsonl(ev / "tasks" / "general" / "knowledge.jsonl", docs)
    write_jsonl(ev / "tasks" / "general" / "reading.jsonl", docs)
    for model, know, read in (("van", 50.0, 52.0), ("ceil", 90.0, 51.0)):
        _put(ev, model, "general", "knowledge", know, 2.0, 4)
        _put(ev, model, "general", "reading", read, 2.0, 4)
    return ev


CEILING = {"label": "ceiling: 500M Vanilla PT + task-format training (miniature)", "model": "ceil"}


def test_the_ceiling_row_sits_between_the_models_and_the_floors(tmp_path, run):
    out = {"out_csv": tmp_path / "t1.csv", "out_md": tmp_path / "t1.md"}
    rows = [{"label": "500M Vanilla PT", "model": "van"}]
    records = make("table1", run, rows, **out, run="mini", scale="miniature", ceiling=CEILING)
    order = list(dict.fromkeys(r["row"] for r in records))
    assert order == ["500M Vanilla PT", CEILING["label"], "floor: chance", "floor: majority"]
    got = {(r["row"], r["column"]): r for r in records}
    assert got[(CEILING["label"], "knowledge")]["ours"] == "90"
    assert got[(CEILING["label"], "Avg")]["ours"] == "70.5"
    # floors here are 50 (chance and majority): 51 +- 2 is not clearly above them, 90 is
    assert "not clearly above the floors" in got[(CEILING["label"], "reading")]["note"]
    assert "not clearly above" not in got[(CEILING["label"], "knowledge")]["note"]
    md = out["out_md"].read_text()
    assert f"| {CEILING['label']} | 90.0 ± 2.0 | 51.0 ± 2.0 |" in md
    assert "Ceiling: a model of the compared models' size" in md
    # without a ceiling the table is as before
    plain = make("table1", run, rows, **out, run="mini", scale="miniature")
    assert not [r for r in plain if r["row"].startswith("ceiling")]
    with pytest.raises(DataError, match="must start with 'ceiling: '"):
        make(
            "table1",
            run,
            rows,
            **out,
            run="mini",
            scale="miniature",
            ceiling={"label": "x", "model": "ceil"},
        )


def test_table2_and_domain_tables_carry_the_ceiling(tmp_path, run):
    out = {"out_csv": tmp_path / "t2.csv", "out_md": tmp_path / "t2.md"}
    rows = [{"label": "Instruct PT 500M", "model": "van", "params": 1, "tokens": 2, "ours": True}]
    records = make("table2", run, rows, **out, run="mini", scale="miniature", ceiling=CEILING)
    cells = [r for r in records if r["row"] == CEILING["label"]]
    assert [(r["column"], r["ours"]) for r in cells] == [("Avg", "70.5")]
    # Table 3: one ceiling row over the domains it exists for
    ev = tmp_path / "d" / "eval"
    write_jsonl(ev / "tasks" / "finance" / "fpb_like.jsonl",
                [{"id": f"f{i}", "query": f"q{i}", "choices": ["x", "y", "z"], "gold": 0} for i in range(3)])  # fmt: skip
    _put(ev, "cpt-finance-vanilla", "finance", "fpb_like", 40.0, 5.0, 3)
    _put(ev, "ceiling-finance", "finance", "fpb_like", 95.0, 1.0, 3)
    ceiling = {"label": "ceiling: Vanilla PT-8B + task-format training", "models": {"finance": "ceiling-finance"}}  # fmt: skip
    rows = [{"label": "Vanilla PT-8B", "models": {"finance": "cpt-finance-vanilla"}}]
    out = {"out_csv": tmp_path / "t3.csv", "out_md": tmp_path / "t3.md"}
    records = make("table3", ev, rows, **out, run="mini", scale="miniature", ceiling=ceiling)
    got = {(r["row"], r["column"]): r["ours"] for r in records}
    assert got[(ceiling["label"], "fpb_like")] == "95"
    assert got[(ceiling["label"], "Finance avg")] == "95"
    assert json.dumps([r["row"] for r in records]).index("ceiling") < json.dumps(
        [r["row"] for r in records]
    ).index("floor")


# ----------------------------------------------------------------------------- workflow


def test_the_tiny_dag_plans_one_ceiling_per_suite_and_rejects_unknown_suites(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    snakemake = [str(Path(sys.executable).parent / "snakemake")]
    tiny = ["--configfile", "presets/tiny.yaml", "--config", "run=pytest-ceilings"]
    dry = subprocess.run(
        [*snakemake, "table1", "table3", "-n", "--quiet", "rules", *tiny],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dict(re.findall(r"^((?:ceiling|oracle)_\w+)\s+(\d+)$", dry.stdout, re.M))
    # general: pre-trained on the oracle's pairs (one shard each); the domains: fine-tuned
    shards = str(yaml.safe_load((root / "presets/tiny.yaml").read_text())["synthesis"]["n_shards"])
    assert jobs == {
        "ceiling_data": "2",
        "ceiling_tune": "2",
        "ceiling_pretrain": "1",
        "oracle_synthesis": shards,
    }
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(
        "ceilings: {per_task: 2, seq_len: 64, train: {tokens: 64}, "
        "suites: {nope: {model: scratch-500m-vanilla, label: x}}}\n"
    )
    bad = subprocess.run(
        [*snakemake, "-n", "--configfile", "presets/tiny.yaml", str(overlay)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "ceilings.suites.nope" in bad.stdout + bad.stderr
