"""Data quality against the world's ground truth (Table 6, Fig. 6): the grader and the quality JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_pt.analysis import quality
from instruct_pt.analysis.grader import (
    CATEGORIES,
    categorize,
    final_answer,
    grade_pair,
    strip_question,
)
from instruct_pt.analysis.judge import JudgeError
from instruct_pt.common import DataError, read_json, read_jsonl, write_jsonl
from instruct_pt.synthesis.protocol import format_cot, format_mc_question

ADA = [
    {"subject": "Ada Brook", "relation": "birth_city", "value": "Valdis"},
    {"subject": "Ada Brook", "relation": "birth_year", "value": "1991"},
    {"subject": "Ada Brook", "relation": "employer", "value": "Brightforge Labs"},
    {"subject": "Ada Brook", "relation": "hobby", "value": "kayaking"},
]
ACME = [
    {"subject": "Acme Corp", "relation": "revenue", "value": "120"},
    {"subject": "Acme Corp", "relation": "prev_revenue", "value": "100"},
    {"subject": "Acme Corp", "relation": "growth", "value": "20"},
    {"subject": "Acme Corp", "relation": "ceo", "value": "Lena Ortiz"},
]


@pytest.mark.parametrize(
    "question, answer, facts, expected",
    [
        ("Where was Ada Brook born?", "Valdis", ADA, (True, "")),
        ("Where was she born?", "She was born in Valdis.", ADA, (True, "")),
        ("When was Ada Brook born?", "Valdis", ADA, (False, "")),
        (
            "Which company does Ada Brook work for?\nOptions:\n- Brightforge Labs\n- Nimbus",
            "Brightforge Labs",
            ADA,
            (True, ""),
        ),
        (
            "What is her hobby?\nLet's think step by step.",
            "The text says she kayaks.\nTherefore, the answer is kayaking.",
            ADA,
            (True, ""),
        ),
        ("Was Ada Brook born in Valdis?", "Yes", ADA, (True, "")),
        ("Was Ada Brook born in Oslo?", "Yes", ADA, (False, "")),
        ("Was Ada Brook born in Oslo?", "No, she was not.", ADA, (True, "")),
        ("What is the weather like today?", "Sunny", ADA, (None, "no_fact")),
        ("What was the revenue of Acme Corp?", "120 million dollars", ACME, (True, "")),
        ("What was the revenue of Acme Corp a year earlier?", "120", ACME, (False, "")),
        ("By what percent did the revenue of Acme Corp change?", "20", ACME, (True, "")),
        ("How much did the revenue of Acme Corp change?", "20", ACME, (None, "ambiguous")),
        ("Did the revenue of Acme Corp go up or down?", "went up", ACME, (None, "answer_type")),
        ("Who runs Acme Corp?", "Lena Ortiz", ACME, (True, "")),
    ],
)
def test_grade_pair(question, answer, facts, expected):
    assert grade_pair(question, answer, facts) == expected


@pytest.mark.parametrize(
    "question, answer, category",
    [
        ("Write a title for this text.", "Ada's life", "summarization/title"),
        ("Is the sentiment of the news positive or negative?", "positive", "sentiment"),
        ("Does the text entail that Ada lives abroad?", "no", "NLI/entailment"),
        ("Rewrite the first sentence.", "...", "paraphrase/rewriting"),
        ("Extract the company names.", "Acme", "entity extraction"),
        ("How many years passed between 1991 and 2011?", "20", "arithmetic"),
        ("Who is older, Ada or Bo?", "Ada", "comparison"),
        ("Why did Ada move?", "For work.", "explanation"),
        (
            "What is her hobby?\nLet's think step by step.",
            "x\nTherefore, the answer is kayaking",
            "chain-of-thought reasoning",
        ),
        ("Where was Ada born?\nOptions:\n- Valdis\n- Oslo", "Valdis", "multiple choice"),
        ("Was Ada born in Valdis?", "Yes", "yes/no verification"),
        ("Where was Ada born?", "Valdis", "fact lookup"),
        ("Ada Brook.", "Valdis", "other"),
    ],
)
def test_categorize(question, answer, category):
    assert categorize(question, answer) == category


@given(st.text(max_size=60), st.text(max_size=60))
def test_categorize_always_returns_a_known_category(question, answer):
    assert categorize(question, answer) in CATEGORIES


@given(st.text(alphabet="abcdefgh 0123456789", min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_final_answer_takes_what_follows_the_cot_marker(final):
    assert final_answer(f"some reasoning.\nTherefore, the answer is {final}.") == final.strip()


PLAIN = st.text(alphabet="abcdefgh xyz0123456789?", min_size=1, max_size=30).filter(
    lambda t: t.strip()
)


@given(PLAIN, st.lists(PLAIN, min_size=1, max_size=4), PLAIN, PLAIN)
def test_grader_reads_the_protocol_markers(stem, options, reasoning, final):
    """The grader strips and reads the CoT and MC markers exactly as protocol writes them."""
    mc = format_mc_question(stem, options)
    assert strip_question(mc) == stem.strip()
    assert categorize(mc, options[0]) in ("multiple choice", *CATEGORIES[:9])
    question, answer = format_cot(stem, reasoning, final)
    assert strip_question(question) == stem.strip()
    assert final_answer(answer) == final.strip().rstrip(".").strip()
    assert categorize(question, answer) in ("chain-of-thought reasoning", *CATEGORIES[:9])


def world_fixture(tmp_path):
    raw = [
        {
            "id": "t0",
            "text": "Ada Brook was born in Valdis in 1991. She works for Brightforge Labs.",
            "meta": {"domain": "general", "entity": "Ada Brook", "facts": ADA},
        },
        {
            "id": "t1",
            "text": "Acme Corp reported revenue of 120 million dollars.",
            "meta": {"domain": "finance", "entity": "Acme Corp", "facts": ACME},
        },
        {
            "id": "t2",
            "text": "A text with nothing in it.",
            "meta": {"domain": "general", "entity": "", "facts": []},
        },
    ]
    pairs = {
        "t0": [
            ("Where was Ada Brook born?", "Valdis"),  # relevant, accurate
            ("Which company does Ada Brook work for?", "Nimbus Systems"),  # relevant, wrong
            ("What is the capital of Mars?", "Olympus"),  # irrelevant, no fact
        ],
        "t1": [
            ("Who runs Acme Corp?", "Lena Ortiz"),  # relevant (entity), accurate
            # never reaches the corpora (the MC answer is no option): left out and counted
            ("Who runs Acme Corp?\nOptions:\n- Ada Brook\n- Tom Hale", "Lena Ortiz"),
        ],
        "t2": [],  # no pairs: never sampled
    }
    synth = [
        {
            "id": r["id"],
            "text": r["text"],
            "chain": 0,
            "round": 0,
            "pairs": [{"question": q, "answer": a} for q, a in pairs[r["id"]]],
            "dropped": {},
            "generation": "",
        }
        for r in raw
    ]
    write_jsonl(tmp_path / "raw.jsonl", raw)
    write_jsonl(tmp_path / "shard0.jsonl", synth[:2])
    write_jsonl(tmp_path / "shard1.jsonl", synth[2:])
    return [str(tmp_path / "shard0.jsonl"), str(tmp_path / "shard1.jsonl")], str(
        tmp_path / "raw.jsonl"
    )


def test_data_quality_on_world_ground_truth(tmp_path):
    synth, raw = world_fixture(tmp_path)
    out = tmp_path / "q.json"
    result = quality.data_quality(synth, raw, "general", str(out), n_samples=10, seed=0)
    assert read_json(out) == result
    assert (result["corpus"], result["n_texts"], result["n_pairs"], result["method"]) == (
        "general",
        2,
        4,
        "world-ground-truth",
    )
    assert result["context_relevance"] == 75.0  # 3 of 4 pairs are about their text
    assert result["response_accuracy"] == pytest.approx(
        100 * 2 / 3, abs=1e-3
    )  # 2 of 3 fact pairs right
    assert result["n_fact_pairs"] == 3
    assert result["stats"]["dropped_texts"] == {"no_pairs": 1}
    assert result["stats"]["not_templified_pairs"] == {"mc_answer_not_an_option": 1}
    assert result["stats"]["unlinked_pairs"] == {"no_fact": 1}
    assert list(result["categories"]) == list(CATEGORIES)
    assert result["categories"]["fact lookup"] == 1.0 and result["n_categories"] == 1


def test_data_quality_sampling_is_seeded(tmp_path):
    synth, raw = world_fixture(tmp_path)
    runs = [
        quality.data_quality(synth, raw, "g", str(tmp_path / f"q{i}.json"), n_samples=1, seed=s)
        for i, s in enumerate((3, 3))
    ]
    assert runs[0] == runs[1] and runs[0]["n_texts"] == 1
    assert (tmp_path / "q0.json").read_bytes() == (tmp_path / "q1.json").read_bytes()
    picked = {
        quality.data_quality(synth, raw, "g", str(tmp_path / "q.json"), n_samples=1, seed=s)[
            "n_pairs"
        ]
        for s in range(8)
    }
    assert picked == {1, 3}  # both texts with pairs get drawn by some seed


def test_paper_scale_needs_an_llm_judge(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "raw.jsonl", [{"id": "a", "text": "web text", "meta": {}}])
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "id": "a",
                "text": "web text",
                "chain": 0,
                "round": 0,
                "pairs": [{"question": "q?", "answer": "a"}],
                "dropped": {},
                "generation": "",
            }
        ],
    )
    args = (
        [str(tmp_path / "s.jsonl")],
        str(tmp_path / "raw.jsonl"),
        "general",
        str(tmp_path / "q.json"),
        500,
        0,
    )
    with pytest.raises(DataError, match="judge"):
        quality.data_quality(*args)
    # with a judge configured the LLM path runs (tests/test_judge.py); here it stops at the key
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(JudgeError, match="environment variable OPENAI_API_KEY"):
        quality.data_quality(*args, judge={"model": "gpt-4"}, checkpoint_dir=str(tmp_path / "c"))


def test_data_quality_bad_inputs(tmp_path):
    synth, raw = world_fixture(tmp_path)
    write_jsonl(tmp_path / "raw_other.jsonl", [{"id": "zzz", "text": "", "meta": {"facts": []}}])
    with pytest.raises(DataError, match="not found"):
        quality.data_quality(
            synth, str(tmp_path / "raw_other.jsonl"), "g", str(tmp_path / "q.json"), 10, 0
        )
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "text": "t"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: missing key"):
        quality.data_quality(
            [str(tmp_path / "bad.jsonl")], raw, "g", str(tmp_path / "q.json"), 10, 0
        )


def test_no_parsable_pair_is_reported_not_a_crash(tmp_path):
    """An undertrained synthesizer may produce nothing parsable: the corpus reports zeros."""
    synth, raw = world_fixture(tmp_path)
    empty = tmp_path / "empty.jsonl"
    write_jsonl(empty, [{**r, "pairs": []} for p in synth for r in read_jsonl(p)])
    result = quality.data_quality([str(empty)], raw, "general", str(tmp_path / "q.json"), 10, 0)
    assert (result["n_texts"], result["n_pairs"], result["n_categories"]) == (0, 0, 0)
    assert result["context_relevance"] is None and result["response_accuracy"] is None
    assert result["stats"]["dropped_texts"] == {"no_pairs": 3}
