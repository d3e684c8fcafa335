"""Rule-based task mining (Table 4 "Rule-based" ablation)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.common import read_jsonl, write_jsonl
from instruct_pt.synthesis.multi_round import collection_positions
from instruct_pt.synthesis.protocol import MARKERS, parse_pairs
from instruct_pt.synthesis.rule_based import _definitions, mine_pairs, rule_based_shard

TEXT = (
    "Aspirin is a medication used to reduce pain and fever. It was first synthesized in 1897 by Felix Hoffmann. "
    "Many patients take aspirin daily because it lowers the risk of heart attack. However, long-term use can cause stomach bleeding."
)


@pytest.mark.parametrize(
    "sentence, question",
    [
        ("The drug is an agonist of JRV8.", "What is the drug?"),
        ("The Eiffel Tower is a wrought-iron tower in Paris.", "What is the Eiffel Tower?"),
        ("Zolavir is an experimental drug.", "What is Zolavir?"),
        ("It is a common cause of fever.", None),  # a pronoun names nothing
        ("This was the first trial of its kind.", None),
    ],
)
def test_definition_questions_read_naturally(sentence, question):
    pairs = _definitions([sentence])
    assert [p["question"] for p in pairs] == ([question] if question else [])


def test_rules_fire_on_their_patterns():
    pairs = {p["rule"]: p for p in mine_pairs(TEXT, random.Random(0))}
    assert set(pairs) == {"summary", "word_to_text", "definition", "cause_effect", "nli", "fill_in"}
    assert pairs["definition"] == {
        "question": "What is Aspirin?",
        "answer": "Aspirin is a medication used to reduce pain and fever.",
        "rule": "definition",
    }
    assert (
        pairs["cause_effect"]["question"]
        == "What is the reason that many patients take aspirin daily?"
    )
    assert pairs["cause_effect"]["answer"] == "Because it lowers the risk of heart attack."
    assert pairs["fill_in"]["answer"] == "1897" and "____" in pairs["fill_in"]["question"]
    assert pairs["nli"]["answer"] == "No" and pairs["nli"]["question"].endswith(
        "\nOptions:\n- Yes\n- No\n- It is not possible to tell"
    )
    assert pairs["summary"]["answer"] == "Aspirin is a medication used to reduce pain and fever"


def test_therefore_makes_an_effect_question():
    pairs = mine_pairs(
        "The bridge was closed for repairs. Therefore, traffic moved to the old road.",
        random.Random(1),
    )
    effect = [p for p in pairs if p["question"].startswith("What follows")]
    assert effect == [
        {
            "question": "What follows from the fact that the bridge was closed for repairs?",
            "answer": "Traffic moved to the old road.",
            "rule": "cause_effect",
        }
    ]


def test_shard_output_has_the_synthesis_format(tmp_path):
    write_jsonl(
        tmp_path / "s.jsonl",
        [{"id": "a", "text": TEXT, "index": 0}, {"id": "b", "text": "ok", "index": 1}],
    )
    stats = rule_based_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o.jsonl"), seed=5)
    out = read_jsonl(tmp_path / "o.jsonl")
    assert [list(r) for r in out] == [
        [
            "id", "text", "chain", "round", "position", "slot", "truncated", "pairs", "dropped",
            "generation",
        ]
    ] * 2  # fmt: skip
    assert [r["chain"] for r in out] == [0, 1] and {r["round"] for r in out} == {1}
    # placed as one-round synthesis places them: each text its own collection, in shard order
    assert (
        [(r["position"], r["slot"]) for r in out] == collection_positions(2, 1) == [(0, 0), (1, 0)]
    )
    assert [r["truncated"] for r in out] == [False, False]
    assert out[1]["pairs"] == [] and stats["texts_without_pairs"] == 1
    assert (
        parse_pairs(out[0]["generation"])[0] == out[0]["pairs"]
    )  # the pairs read like a synthesizer's output
    assert stats["pairs"] == len(out[0]["pairs"]) == sum(stats["pairs_by_rule"].values())
    rule_based_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o2.jsonl"), seed=5)
    assert (tmp_path / "o.jsonl").read_bytes() == (tmp_path / "o2.jsonl").read_bytes()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "The",
                "cat",
                "is",
                "a",
                "pet",
                "because",
                "42",
                "However,",
                "Therefore,",
                ".",
                "<QUE>",
                "</END>",
                "3.5",
                "\n",
                "Moreover,",
                "was",
                "the",
            ]
        ),
        max_size=60,
    ).map(" ".join)
)
def test_mined_pairs_are_always_valid(text):
    pairs = mine_pairs(text, random.Random(0))
    assert len(pairs) <= 6
    assert len({p["question"].lower() for p in pairs}) == len(pairs)
    for p in pairs:
        assert p["question"].strip() and p["answer"].strip()
        assert not any(m in p["question"] or m in p["answer"] for m in MARKERS)
