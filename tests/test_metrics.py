"""Domain metrics against values worked out by hand (and a few properties)."""

from __future__ import annotations

import importlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_pt.evaluation import metrics as M

# The F1 metrics import scikit-learn on first use (seconds): import it here, so that no
# hypothesis example pays for it against the deadline.
importlib.import_module("sklearn.metrics")

labels = st.sampled_from(["a", "b", "c"])
pairs = st.lists(st.tuples(labels, labels), min_size=1, max_size=30)


# ---------------------------------------------------------------------------- accuracy / micro


def test_accuracy_hand():
    assert M.accuracy([1, 2, 3, 4], [1, 0, 3, 0]) == 0.5
    assert M.accuracy([], []) == 0.0
    with pytest.raises(ValueError):
        M.accuracy([1], [1, 2])


@given(pairs)
def test_micro_f1_equals_accuracy_for_single_labels(ps):
    golds, preds = zip(*ps, strict=True)
    assert math.isclose(M.micro_f1(golds, preds), M.accuracy(golds, preds))


def test_micro_f1_multilabel_hand():
    # doc1 gold {x,y} pred {x}: TP 1, FN 1. doc2 gold {z} pred {z,w}: TP 1, FP 1.
    # TP 2, FP 1, FN 1 -> F1 = 4 / (4 + 1 + 1) = 2/3.
    assert math.isclose(M.micro_f1([["x", "y"], ["z"]], [["x"], ["z", "w"]]), 2 / 3)


def test_micro_f1_labels_restricts_classes():
    # All classes: 1 of 2 right -> 0.5.
    golds, preds = ["none", "cpr:3"], ["cpr:4", "cpr:3"]
    assert M.micro_f1(golds, preds) == 0.5
    # Without "none", doc 1 has a false positive cpr:4: TP 1, FP 1 -> 2/3.
    assert math.isclose(M.micro_f1(golds, preds, labels=["cpr:3", "cpr:4"]), 2 / 3)


# ---------------------------------------------------------------------------- weighted F1


def test_weighted_f1_hand():
    # gold: a a a b b c ; pred: a a b b c c
    # a: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 = 4/5;     support 3
    # b: TP 1, FP 1, FN 1 -> F1 = 2/4 = 1/2;           support 2
    # c: TP 1, FP 1, FN 0 -> F1 = 2/3;                 support 1
    # weighted = (3*0.8 + 2*0.5 + 1*(2/3)) / 6 = (2.4 + 1 + 0.6667) / 6 = 0.67778
    golds = list("aaabbc")
    preds = list("aabbcc")
    assert math.isclose(M.weighted_f1(golds, preds), (2.4 + 1.0 + 2 / 3) / 6)


def test_weighted_f1_class_never_gold_has_no_weight():
    # gold a a b ; pred a z b: a F1 = 2*1/(2+0+1) = 2/3 (support 2), b F1 = 1 (support 1),
    # z (support 0) has weight 0 -> (2*2/3 + 1) / 3 = 7/9.
    assert math.isclose(M.weighted_f1(list("aab"), list("azb")), 7 / 9)


@given(pairs)
def test_weighted_f1_bounds_and_perfect(ps):
    golds, preds = zip(*ps, strict=True)
    assert 0.0 <= M.weighted_f1(golds, preds) <= 1.0
    assert math.isclose(M.weighted_f1(golds, golds), 1.0)


def test_mean_weighted_f1_hand():
    # sub-question 0: gold 1 0, pred 1 0 -> 1.0
    # sub-question 1: gold 1 1 0 0, pred 1 0 0 0:
    #   class 1: TP 1, FN 1 -> F1 2/3 (support 2); class 0: TP 2, FP 1 -> F1 4/5 (support 2)
    #   weighted = (2/3 + 4/5) / 2 = 11/15
    # mean = (1 + 11/15) / 2 = 13/15
    subs = [0, 0, 1, 1, 1, 1]
    golds = [1, 0, 1, 1, 0, 0]
    preds = [1, 0, 1, 0, 0, 0]
    assert math.isclose(M.mean_weighted_f1(subs, golds, preds), 13 / 15)


# ---------------------------------------------------------------------------- entities


def test_parse_entities():
    text = "Apple Inc. (ORG), Tim  Cook (PER); Cupertino\n apple inc. (org)"
    assert M.parse_entities(text) == [("apple inc.", "org"), ("tim cook", "per"), ("cupertino", "")]
    assert M.parse_entities("") == []


def test_entity_f1_micro_and_doc_hand():
    golds = [[("acme", "org"), ("bob", "per")], [("zed", "per")], []]
    preds = [[("acme", "org"), ("bob", "org")], [], []]
    # micro: TP 1, FP 1 (bob/org), FN 2 (bob/per, zed) -> 2 / (2 + 1 + 2) = 0.4
    assert math.isclose(M.entity_f1(golds, preds), 0.4)
    # per doc: doc1 TP1 FP1 FN1 -> 0.5; doc2 -> 0; doc3 empty/empty -> 1; mean = 0.5
    assert math.isclose(M.entity_f1(golds, preds, average="doc"), 0.5)
    with pytest.raises(ValueError):
        M.entity_f1(golds, preds, average="macro")


# ---------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.5 million", [1234.5]),
        ("the change is -3.2% vs 10", [-3.2, 10.0]),
        ("about .5 or 2e3", [0.5, 2000.0]),
        ("no numbers here", []),
        ("12\n34", [12.0]),  # first line only
    ],
)
def test_parse_numbers(text, expected):
    assert M.parse_numbers(text) == expected


def test_parse_numbers_percent_as_fraction():
    assert M.parse_numbers("12.5%", percent_as_fraction=True) == [0.125]


def test_numeric_em_hand():
    assert M.numeric_em("The answer is 15.004", "15") == 1.0  # within 1e-2
    assert M.numeric_em("15.02", "15") == 0.0  # outside 1e-2
    assert M.numeric_em("$1,500", "1500.0") == 1.0
    assert M.numeric_em("25%", "25") == 1.0  # '%' stripped by default
    assert M.numeric_em("none", "3") == 0.0
    # first number only by default; AdaptLLM accepts any number of the answer line
    assert M.numeric_em("7 or 3", "3") == 0.0
    assert M.numeric_em("7 or 3", "3", any_number=True) == 1.0
    # AdaptLLM reads '%' as /100 on both sides
    assert M.numeric_em("25%", "0.25", percent_as_fraction=True) == 1.0
    assert M.numeric_em("25%", "25", percent_as_fraction=True) == 0.0


# ---------------------------------------------------------------------------- free text


def test_exact_match_and_token_f1_hand():
    assert M.exact_match("The  Eiffel tower!", "eiffel Tower") == 1.0
    assert M.exact_match("Paris", "London") == 0.0
    # pred "big red dog", gold "red dog barks": common 2, P 2/3, R 2/3 -> F1 2/3
    assert math.isclose(M.token_f1("a big red dog", "red dog barks"), 2 / 3)
    assert M.token_f1("the", "") == 1.0  # both empty after normalisation
    assert M.token_f1("x", "") == 0.0


@given(st.text(max_size=40), st.text(max_size=40))
def test_token_f1_symmetric_and_bounded(a, b):
    f = M.token_f1(a, b)
    assert 0.0 <= f <= 1.0
    assert math.isclose(f, M.token_f1(b, a))


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_parse_numbers_reads_formatted_money(x):
    text = f"It was ${x:,.2f} in total"
    assert M.parse_numbers(text) == [pytest.approx(round(x, 2), abs=1e-6)]


names = st.text(alphabet="abcdefgh ", min_size=1, max_size=12).filter(lambda s: s.strip())
types_ = st.sampled_from(["org", "per", "loc"])


@given(st.lists(st.tuples(names, types_), max_size=6))
def test_parse_entities_round_trip(ents):
    text = "; ".join(f"{n} ({t})" for n, t in ents)
    expected = []
    for n, t in ents:
        e = (" ".join(n.split()), t)
        if e not in expected:
            expected.append(e)
    assert M.parse_entities(text) == expected


# ---------------------------------------------------------------------------- sklearn vs counts
# The F1 variants call scikit-learn; these references count TP/FP/FN by hand, as the module did
# before, and sum in the same order. Equality is exact: results written before the switch
# (task JSONs, floors) keep their bytes.


def _ref_f1(tp: int, fp: int, fn: int) -> float:
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def _ref_counts(golds, preds, label) -> tuple[int, int, int]:
    pairs = list(zip(golds, preds, strict=True))
    tp = sum(g == p == label for g, p in pairs)
    fp = sum(p == label != g for g, p in pairs)
    fn = sum(g == label != p for g, p in pairs)
    return tp, fp, fn


many_labels = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 8)), min_size=1, max_size=40)


@given(st.one_of(pairs, many_labels))
def test_single_label_f1_equals_counts_reference_exactly(ps):
    golds, preds = zip(*ps, strict=True)
    right = sum(g == p for g, p in ps)
    assert M.micro_f1(golds, preds) == _ref_f1(right, len(ps) - right, len(ps) - right)
    classes = list(dict.fromkeys(golds))  # at most 7 gold classes here (see weighted_f1)
    weighted = sum(golds.count(c) * _ref_f1(*_ref_counts(golds, preds, c)) for c in classes)
    assert M.weighted_f1(golds, preds) == weighted / len(golds)


entity = st.tuples(st.sampled_from(["acme", "bob", "zed", "x"]), st.sampled_from(["org", "per"]))
entity_docs = st.lists(
    st.tuples(st.lists(entity, max_size=3), st.lists(entity, max_size=3)), min_size=1, max_size=20
)


@given(entity_docs)
def test_entity_f1_equals_counts_reference(docs):
    golds = [g for g, _ in docs]
    preds = [p for _, p in docs]
    counts = [(len(set(g) & set(p)), len(set(p) - set(g)), len(set(g) - set(p))) for g, p in docs]
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    assert M.entity_f1(golds, preds) == _ref_f1(tp, fp, fn)  # integer sums: exact
    per_doc = [
        1.0 if not (set(g) or set(p)) else _ref_f1(*c)
        for (g, p), c in zip(docs, counts, strict=True)
    ]
    # mean over documents: numpy sums 8 or more numbers in another order (last bit may differ)
    doc, mean = M.entity_f1(golds, preds, average="doc"), sum(per_doc) / len(per_doc)
    if len(docs) < 8:
        assert doc == mean
    else:
        assert math.isclose(doc, mean, rel_tol=1e-12)
    # the same sets through micro_f1's multi-label path
    assert M.micro_f1(golds, preds) == _ref_f1(tp, fp, fn)


@given(
    st.lists(st.tuples(st.sets(labels), st.sets(labels)), min_size=1, max_size=20), st.sets(labels)
)
def test_micro_f1_labels_equals_counts_reference(items, keep):
    golds = [sorted(g) for g, _ in items]
    preds = [sorted(p) for _, p in items]
    tp = sum(len(g & p & keep) for g, p in items)
    fp = sum(len((p - g) & keep) for g, p in items)
    fn = sum(len((g - p) & keep) for g, p in items)
    assert M.micro_f1(golds, preds, labels=sorted(keep)) == _ref_f1(tp, fp, fn)
