"""The synthesizer protocol: exact strings, parsing rules, pair acceptance, round trips.

Expected values marked "official" are what the official code (microsoft/LMOps
instruction_pretrain, ``read_compre.py`` / ``read_compre_pt.py``) returns on the same input, with
the reason in a comment.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.synthesis.protocol import (
    MARKERS,
    UNANSWERABLE_OPTIONS,
    accept_pair,
    build_prompt,
    classify_pair,
    format_cot,
    format_example,
    format_mc_question,
    format_pairs,
    parse_pairs,
    question_format,
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


def test_template_filling_is_the_official_chained_replace():
    # official cook_compre: QA_template.replace('{question}', Q).replace('{answer}', A): the
    # literal "{answer}" that Q brought in is replaced by A; "{question}" inside A stays
    assert format_pairs([{"question": "What is {answer}?", "answer": "x"}]) == (
        "<QUE> What is x? <ANS> x </END>"
    )
    assert format_pairs([{"question": "{answer}", "answer": "{question}"}]) == (
        "<QUE> {question} <ANS> {question} </END>"
    )
    # official cook_read: one replace of {context} in the template; the text is not re-read
    assert build_prompt("a {context} b") == "<s> <CON> a {context} b </CON>\n\n"
    assert build_prompt("") == "<s>"  # official: an empty text is just the BOS


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
# a question holding the literal "{answer}" does not round-trip (official chained replace, tested
# above)
_pair = st.fixed_dictionaries(
    {"question": _free_text.filter(lambda s: "{answer}" not in s), "answer": _free_text}
)


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
        # a question holds no marker; an answer holds no <ANS>, </END> or </s>, but it may hold
        # a <QUE> (as the official parser: "<QUE>q<ANS>q<QUE></END>" -> answer "q<QUE>")
        assert not any(m in p["question"] for m in ("<QUE>", "<ANS>", "</END>", "</s>"))
        assert not any(m in p["answer"] for m in ("<ANS>", "</END>", "</s>"))


def test_an_answer_may_contain_a_question_marker():
    assert parse_pairs("<QUE>q<ANS>q<QUE></END>")[0] == [{"question": "q", "answer": "q<QUE>"}]


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
    # the parts come back stripped, the reasoning without one final "." (official)
    r = reasoning[:-1] if reasoning.endswith(".") else reasoning
    expected = (question, r, final) if r and final.strip() else None
    assert split_cot(q, a) == expected


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_FORMATS = {
    (False, False): "free",
    (True, False): "mc",
    (False, True): "cot",
    (True, True): "mc_cot",
}


@settings(max_examples=100, deadline=None)
@given(
    q=_text, options=st.lists(_text, min_size=1, max_size=4), mc=st.booleans(), cot=st.booleans()
)
def test_question_format_reads_the_markers_alone(q, options, mc, cot):
    """Gold pairs without a format are labelled from the question (moved from sources)."""
    q, options = q.replace("\n", " ").replace(".", ""), [o.replace(".", "") for o in options]
    question = format_mc_question(q, options) if mc else q
    if cot:
        question = format_cot(question, "r", "f")[0]
    assert question_format(question) == _FORMATS[(mc, cot)]


def test_question_format_is_lenient_where_accept_pair_is_strict():
    # no newline before the trigger, trailing space, an option header without "- ": still read
    assert question_format("Why? Let's think step by step.  ") == "cot"
    assert question_format("Pick\nOptions:\nred") == "mc"
    assert classify_pair("Pick\nOptions:\nred", "red")["format"] == "free"  # no "- " items
    assert question_format("Let's think step by step. Why?") == "free"
    assert question_format("Options: a, b") == "free"


@settings(max_examples=200, deadline=None)
@given(
    stem=_free_text.filter(lambda s: "Options:" not in s and "step by step" not in s),
    options=st.lists(_option.filter(lambda s: s.strip()), min_size=1, max_size=4),
    mc=st.booleans(),
    cot=st.booleans(),
    reasoning=_free_text.filter(lambda s: "Therefore" not in s and s.strip(".").strip()),
)
def test_question_format_agrees_with_accept_pair_on_accepted_pairs(
    stem, options, mc, cot, reasoning
):
    question, answer = (format_mc_question(stem, options), options[0]) if mc else (stem, "yes")
    if cot:
        question, answer = format_cot(question, reasoning, answer)
    accepted = classify_pair(question, answer)
    assert accepted is not None and accepted["format"] == _FORMATS[(mc, cot)]
    assert question_format(question) == accepted["format"]


def test_classify_pair_formats():
    q, a = format_cot(format_mc_question("Which?", ["x", "y"]), "Because of x.", "x")
    assert classify_pair(q, a) == {
        "format": "mc_cot",
        "question": "Which?",
        "options": ["x", "y"],
        "reasoning": "Because of x",
        "answer": "x",
        "unanswerable": False,
    }
    assert classify_pair("Plain?", "yes")["format"] == "free"
    assert classify_pair(format_mc_question("Which?", ["x"]), "x")["format"] == "mc"
    assert classify_pair(*format_cot("Why?", "r", "f"))["format"] == "cot"


MC_Q = "Which?\nOptions:\n- red\n- blue"
COT = "\nLet's think step by step."
SEP = "\nTherefore, the answer is "

# (question, answer, official result: None = dropped, else (qa_mode, question, options, cot,
# answer, unanswerable)), with why the official code returns it.
OFFICIAL_CASES = [
    # format_options raises "no match answers": an MC answer must be an option
    (MC_Q, "green", None),
    # ... compared after stripping both sides; the answer keeps its own spaces
    (MC_Q, " blue ", ("mc", "Which?", ["red", "blue"], None, " blue ", False)),
    # an empty option is kept: "\n- \n- b".split("\n- ") -> ["", "b"]
    ("Which?\nOptions:\n- \n- b", "b", ("mc", "Which?", ["", "b"], None, "b", False)),
    # the stripped form the parser hands over: "- a\n-" is ONE option "a\n-", so "a" matches none
    ("Which?\nOptions:\n- a\n-", "a", None),
    # the missing comma: "...specified conditions" + "None of the options fit" is one string,
    # so neither phrase alone is unanswerable, and the pair is dropped
    (MC_Q, "None of the options fit", None),
    (MC_Q, "None of the available choices adequately meet the specified conditions", None),
    (
        MC_Q,
        "None of the available choices adequately meet the specified conditionsNone of the options fit",
        (
            "mc",
            "Which?",
            ["red", "blue"],
            None,
            "None of the available choices adequately meet the specified conditionsNone of the options fit",
            True,
        ),
    ),
    # the lower-case copies are in the list too
    (MC_Q, "none", ("mc", "Which?", ["red", "blue"], None, "none", True)),
    # step 1 needs the answer NOT among the (raw) options: here "None" is an option -> a match
    (
        "Which?\nOptions:\n- None\n- blue",
        "None",
        ("mc", "Which?", ["None", "blue"], None, "None", False),
    ),
    # ... exact membership: "None " is not "None", so it counts as unanswerable
    (
        "Which?\nOptions:\n- None \n- blue",
        "None",
        ("mc", "Which?", ["None ", "blue"], None, "None", True),
    ),
    # two option blocks: the split has 3 parts -> dropped
    (MC_Q + "\nOptions:\n- green", "red", None),
    # an empty stem -> dropped
    ("\nOptions:\n- a", "a", None),
    # CoT: the stem is stripped BEFORE the options are looked for, so the trailing "- " left by
    # the trigger becomes "-" glued to "b" (one option "b\n-"), and "a" still matches
    (
        "Which?\nOptions:\n- a\n- b\n- " + COT,
        "r" + SEP + "a",
        ("mc_cot", "Which?", ["a", "b\n-"], "r", "a", False),
    ),
    # the stem keeps its spaces before the option block (not stripped again)
    (
        "Which? \nOptions:\n- a\n- b " + COT,
        "r." + SEP + "b",
        ("mc_cot", "Which? ", ["a", "b"], "r", "b", False),
    ),
    ("Why?" + COT, "r" + SEP + "f", ("cot", "Why?", None, "r", "f", False)),
    # one final "." is removed from the reasoning, without a second strip
    ("Why?" + COT, "r ." + SEP + "f", ("cot", "Why?", None, "r ", "f", False)),
    ("Why?" + COT, "." + SEP + "f", None),  # the reasoning is then empty
    ("Why?" + COT, "no final answer", None),  # no separator
    ("Why?" + COT, "a" + SEP + "b" + SEP + "c", None),  # two separators
    ("Why? Let's think step by step.", "r" + SEP + "f", None),  # separator, but no "\n" trigger
    ("Why?", "r" + SEP + "f", None),  # separator in the answer, no trigger at the end
    ("Let's think" + COT + " Now.", "f", None),  # trigger inside, not at the end
    (COT, "r" + SEP + "f", None),  # empty stem
    # a free pair is taken as it is
    ("Who {answer}?", "Ann", ("free", "Who {answer}?", None, None, "Ann", False)),
]


@pytest.mark.parametrize("question,answer,official", OFFICIAL_CASES)
def test_pair_acceptance_equals_the_official(question, answer, official):
    pair, reason = accept_pair(question, answer)
    if official is None:
        assert pair is None and reason
        return
    assert reason is None
    fmt, q, options, reasoning, final, unanswerable = official
    assert pair == {
        "format": fmt,
        "question": q,
        "options": options,
        "reasoning": reasoning,
        "answer": final,
        "unanswerable": unanswerable,
    }


def test_the_unanswerable_list_is_the_officials():
    # 41 phrases (43 in the source, two glued by the missing comma), then their lower case
    assert len(UNANSWERABLE_OPTIONS) == 82
    assert UNANSWERABLE_OPTIONS[:2] == ("None of the above choices", "None")
    assert "None of the options fit" not in UNANSWERABLE_OPTIONS
    assert "no matching selection" in UNANSWERABLE_OPTIONS


_opt = st.text(alphabet="ab -\n", max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="Wh? ", min_size=1, max_size=5), st.lists(_opt, min_size=1, max_size=4), _opt
)
def test_mc_acceptance_property(stem, options, answer):
    """Kept iff the answer equals an option after stripping, or is unanswerable and no option."""
    question = format_mc_question(stem, options)
    pair, _ = accept_pair(question, answer)
    raw = question.split("\nOptions:\n- ")
    if len(raw) != 2 or not raw[0]:
        assert pair is None
        return
    opts = raw[1].split("\n- ")
    assert (pair is not None) == any(answer.strip() == o.strip() for o in opts)
    if pair is not None:
        assert pair["options"] == opts and pair["format"] == "mc"
