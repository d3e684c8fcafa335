"""The synthesizer protocol: exact strings, parsing rules, round trips."""

from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.protocol import (
    MARKERS,
    build_prompt,
    classify_pair,
    format_cot,
    format_example,
    format_mc_question,
    format_pairs,
    parse_pairs,
    split_cot,
    split_mc_question,
)

PAIRS = [{"question": "Who?", "answer": "Ann"}, {"question": "When?", "answer": "1990"}]


def test_exact_strings_match_the_released_synthesizer():
    assert build_prompt("Some text.") == "<s> <CON> Some text. </CON>\n\n"
    assert build_prompt("B", prior_chain="CHAIN") == "CHAIN<s> <CON> B </CON>\n\n"
    assert format_pairs(PAIRS) == "<QUE> Who? <ANS> Ann </END>\n\n<QUE> When? <ANS> 1990 </END>"
    assert (
        format_example("T", PAIRS)
        == "<s> <CON> T </CON>\n\n<QUE> Who? <ANS> Ann </END>\n\n<QUE> When? <ANS> 1990 </END></s>"
    )
    # braces in the text are not template slots
    assert (
        format_pairs([{"question": "{answer}", "answer": "{question}"}])
        == "<QUE> {answer} <ANS> {question} </END>"
    )


def test_parse_rules_and_drop_reasons():
    gen = (
        "<QUE> Who? <ANS> Ann </END>\n\n"
        "<QUE> who? <ANS> Bob </END>\n\n"  # duplicate (case-insensitive)
        "No marker <ANS> x </END>\n\n"
        "<QUE> Two <ANS> a <ANS> b </END>"
        "<QUE> No answer marker </END>"
        "<QUE>  <ANS> empty question </END>"
        "<QUE> Empty answer? <ANS>  </END>"
        "<QUE> Where? <ANS> Paris </END>\n\n"
        "<QUE> Unfinished? <ANS> Lon"
    )
    pairs, dropped = parse_pairs(gen)
    assert pairs == [
        {"question": "Who?", "answer": "Ann"},
        {"question": "Where?", "answer": "Paris"},
    ]
    assert dropped == {
        "duplicate_question": 1,
        "no_question_marker": 1,
        "multiple_answer_markers": 1,
        "no_answer_marker": 1,
        "empty_question": 1,
        "empty_answer": 1,
        "unfinished": 1,
    }


def test_parse_stops_at_eos():
    pairs, dropped = parse_pairs("<QUE> A? <ANS> b </END></s><QUE> C? <ANS> d </END>")
    assert pairs == [{"question": "A?", "answer": "b"}] and not dropped


def test_chain_is_concatenation():
    chain = format_example("one", PAIRS[:1]) + format_example("two", PAIRS[1:])
    assert build_prompt("three", chain).count("<s> <CON>") == 3
    assert chain.count("</s>") == 2


_free_text = (
    st.text(min_size=1, max_size=40)
    .map(str.strip)
    .filter(lambda s: s and not any(m in s for m in MARKERS))
)
_pair = st.fixed_dictionaries({"question": _free_text, "answer": _free_text})


@settings(max_examples=200, deadline=None)
@given(st.lists(_pair, max_size=6, unique_by=lambda p: p["question"].lower()))
def test_roundtrip_format_parse(pairs):
    parsed, dropped = parse_pairs(format_pairs(pairs))
    assert parsed == pairs
    assert not dropped
    parsed, _ = parse_pairs(format_pairs(pairs) + "</s> trailing junk")
    assert parsed == pairs


_noisy = st.lists(
    st.sampled_from(["<QUE>", "<ANS>", "</END>", "</s>", " ", "\n\n", "q", "Q", "a b"])
    | st.text(max_size=8),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_noisy)
def test_parse_never_crashes_and_pairs_come_from_the_input(gen):
    pairs, dropped = parse_pairs(gen)
    assert all(v > 0 for v in dropped.values())
    keys = [p["question"].lower() for p in pairs]
    assert len(keys) == len(set(keys))
    for p in pairs:
        assert p["question"] and p["answer"]
        assert p["question"] in gen and p["answer"] in gen
        assert not any(m in p["question"] or m in p["answer"] for m in ("<QUE>", "<ANS>", "</END>"))


_option = _free_text.filter(lambda s: "\n" not in s)


@settings(max_examples=100, deadline=None)
@given(
    _free_text.filter(lambda s: "\nOptions:\n- " not in s and not s.endswith("\n")),
    st.lists(_option, min_size=1, max_size=5),
)
def test_mc_roundtrip(question, options):
    assert split_mc_question(format_mc_question(question, options)) == (question, options)


@settings(max_examples=100, deadline=None)
@given(
    _free_text.filter(lambda s: "\nTherefore, the answer is " not in s),
    _free_text.filter(lambda s: "\nTherefore, the answer is " not in s),
    _free_text,
)
def test_cot_roundtrip(question, reasoning, final):
    q, a = format_cot(question, reasoning, final)
    assert q.endswith("\nLet's think step by step.")
    assert a == f"{reasoning}\nTherefore, the answer is {final}"
    assert split_cot(q, a) == (question, reasoning, final)


def test_classify_pair_formats():
    q, a = format_cot(format_mc_question("Which?", ["x", "y"]), "Because of x.", "x")
    c = classify_pair(q, a)
    assert c == {
        "format": "mc_cot",
        "question": "Which?",
        "options": ["x", "y"],
        "reasoning": "Because of x",
        "answer": "x",
    }
    assert classify_pair("Plain?", "yes")["format"] == "free"
    assert classify_pair(format_mc_question("Which?", ["x"]), "x")["format"] == "mc"
    assert classify_pair(*format_cot("Why?", "r", "f"))["format"] == "cot"
    # malformed CoT / MC are dropped, as the reference templify code does
    assert classify_pair("Why?\nLet's think step by step.", "no final answer") is None
    assert classify_pair("Which?\nOptions:\n- a\n- ", "a") is None
