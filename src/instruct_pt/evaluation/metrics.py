"""The arithmetic of the paper's domain metrics, on plain Python lists of labels and answers.

The paper scores its domain tasks with AdaptLLM's evaluation code (LMOps `adaptllm/src/utils/
metric.py`, see paper-facts §4.3): accuracy (PubMedQA, MQP, USMLE), micro-F1 (ChemProt, RCT),
weighted F1 (FPB, FiQA SA), the mean over Headline's nine sub-questions of their weighted F1,
entity-level F1 (NER) and numeric exact match with an absolute tolerance of 1e-2 (ConvFinQA).
The F1 variants call scikit-learn's `f1_score`, as AdaptLLM's code does (imported on first use:
it takes seconds, and most users of this module never score an F1); entity F1 is its multilabel
form, each entity a label. Hand-worked unit tests (tests/test_metrics.py) check every function.
All functions return fractions in [0, 1]; callers multiply by 100.

Where our definition departs from AdaptLLM's code the docstring says so.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

__all__ = [
    "accuracy",
    "micro_f1",
    "weighted_f1",
    "mean_weighted_f1",
    "entity_f1",
    "parse_entities",
    "parse_numbers",
    "numeric_em",
    "normalize_answer",
    "exact_match",
    "token_f1",
]


def _check_lengths(golds: Sequence, preds: Sequence) -> None:
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")


def _f1_score(y_true: Any, y_pred: Any, **kwargs: Any) -> float:
    """scikit-learn's `f1_score` (imported here, on first use), as a Python float."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, **kwargs))


def _binarize(gold_sets: Sequence[set], pred_sets: Sequence[set]) -> tuple[Any, Any, dict]:
    """(gold, predicted) sparse indicator matrices of per-item label sets, and label -> column.

    Columns are numbered in order of first appearance (gold sets first), so any hashable label
    works (sklearn itself would sort them, and tuples or mixed types do not sort).
    """
    from sklearn.preprocessing import MultiLabelBinarizer

    index: dict[Hashable, int] = {}
    for labels in (*gold_sets, *pred_sets):
        for label in labels:
            index.setdefault(label, len(index))
    # At least two columns (an all-zero one if need be): sklearn takes one column as binary
    # targets, not as multilabel ones. A column nobody has adds no count.
    n_columns = max(len(index), 2)
    binarizer = MultiLabelBinarizer(classes=list(range(n_columns)), sparse_output=True)
    gold = binarizer.fit_transform([[index[x] for x in labels] for labels in gold_sets])
    pred = binarizer.transform([[index[x] for x in labels] for labels in pred_sets])
    return gold, pred, index


# ---------------------------------------------------------------------------- classification


def accuracy(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
    """Fraction of items whose prediction equals the gold label (0 for no items)."""
    _check_lengths(golds, preds)
    if not golds:
        return 0.0
    return sum(g == p for g, p in zip(golds, preds, strict=True)) / len(golds)


def _as_label_set(x: Hashable | Iterable[Hashable]) -> set:
    """One label, or a collection of labels (multi-label item), as a set."""
    if isinstance(x, str | bytes) or not isinstance(x, Iterable):
        return {x}
    return set(x)


def micro_f1(
    golds: Sequence[Hashable | Iterable[Hashable]],
    preds: Sequence[Hashable | Iterable[Hashable]],
    labels: Iterable[Hashable] | None = None,
) -> float:
    """Micro-averaged F1 over items that carry one label or a collection of labels.

    True positives, false positives and false negatives are summed over items (and classes)
    before F1 is taken (sklearn `f1_score(average="micro")` on the items' label indicators;
    0 when there is nothing to match, and for no items). With exactly one gold and one predicted label per item every error is
    one FP and one FN, so micro-F1 equals accuracy, which is what AdaptLLM's sklearn call
    computes for ChemProt and RCT. `labels` restricts counting to those classes (sklearn's
    `labels=`), e.g. to leave out a "no relation" class.
    """
    _check_lengths(golds, preds)
    gold, pred, index = _binarize(
        [_as_label_set(g) for g in golds], [_as_label_set(p) for p in preds]
    )
    columns = list(range(len(index)))
    if labels is not None:
        columns = sorted({index[x] for x in labels if x in index})
    if not columns:  # nothing to count
        return 0.0
    return _f1_score(gold, pred, labels=columns, average="micro", zero_division=0.0)


def weighted_f1(golds: Sequence[Hashable], preds: Sequence[Hashable]) -> float:
    """Per-class F1 averaged with weights = each class's gold support (sklearn average='weighted').

    A class that is predicted but never gold has weight 0: such a prediction only costs the
    recall of the item's gold class, as in sklearn. 0 when there are no items. The classes are
    the gold ones in order of first appearance (the order the average is summed in: results
    written before sklearn was used here stay bit-identical; sklearn's own sorted order can
    differ from it in the last bit).
    """
    _check_lengths(golds, preds)
    if not golds:
        return 0.0
    classes = list(dict.fromkeys(golds))
    return _f1_score(
        list(golds), list(preds), labels=classes, average="weighted", zero_division=0.0
    )


def mean_weighted_f1(
    subtasks: Sequence[Hashable], golds: Sequence[Hashable], preds: Sequence[Hashable]
) -> float:
    """Mean over sub-questions of each one's weighted F1 (Headline: nine yes/no sub-questions).

    Items are grouped by `subtasks[i]` (AdaptLLM's `class_id`). AdaptLLM divides by a fixed 9;
    we divide by the number of sub-questions present, which is the same on the full test set
    and stays meaningful when an evaluation is limited to a few documents.
    """
    _check_lengths(golds, preds)
    _check_lengths(subtasks, golds)
    if not golds:
        return 0.0
    groups: dict[Hashable, tuple[list, list]] = defaultdict(lambda: ([], []))
    for s, g, p in zip(subtasks, golds, preds, strict=True):
        groups[s][0].append(g)
        groups[s][1].append(p)
    return sum(weighted_f1(g, p) for g, p in groups.values()) / len(groups)


# ---------------------------------------------------------------------------- entities

_ENTITY_SPLIT = re.compile(r"[;,\n]")
_TYPED_ENTITY = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def _norm_space(text: str) -> str:
    return " ".join(text.lower().split())


def parse_entities(text: str) -> list[tuple[str, str]]:
    """Parse 'name (type), name (type); ...' into unique (name, type) pairs, in order.

    Pieces are separated by ',', ';' or newlines; a piece without a '(type)' suffix is an
    untyped entity (type ''). Names and types are lower-cased with whitespace collapsed.
    AdaptLLM's parser (`qa_utils.parse_ner`) instead keeps only the last word before each
    '(type)'; ours keeps multi-word names. Which one the NER test set needs is to be checked
    against its records.
    """
    out: list[tuple[str, str]] = []
    for piece in _ENTITY_SPLIT.split(text):
        piece = piece.strip()
        if not piece:
            continue
        m = _TYPED_ENTITY.match(piece)
        name, etype = (m.group(1), m.group(2)) if m else (piece, "")
        ent = (_norm_space(name), _norm_space(etype))
        if ent[0] and ent not in out:
            out.append(ent)
    return out


def entity_f1(
    golds: Sequence[Iterable[Hashable]],
    preds: Sequence[Iterable[Hashable]],
    average: str = "micro",
) -> float:
    """Entity-level F1 between per-document sets of entities ((name, type) pairs or strings).

    Each distinct entity is a label of sklearn's multilabel `f1_score`, each document an item.
    average="micro": TP/FP/FN are summed over all documents, then F1 (one number per corpus).
    average="doc": F1 per document, then the mean over documents (sklearn average="samples"),
    as AdaptLLM's NER scorer does (a document with no gold and no predicted entity scores 1).
    Entities match exactly; the MUC two-axis partial credit of the `nereval` package used by
    AdaptLLM is not reproduced.
    """
    _check_lengths(golds, preds)
    if average not in ("micro", "doc"):
        raise ValueError(f"average must be 'micro' or 'doc', got {average!r}")
    if not golds:
        return 0.0
    gold, pred, index = _binarize([set(g) for g in golds], [set(p) for p in preds])
    if not index:  # no entity anywhere: nothing to match; every document is empty and empty
        return 1.0 if average == "doc" else 0.0
    if average == "doc":
        return _f1_score(gold, pred, average="samples", zero_division=1.0)
    return _f1_score(gold, pred, average="micro", zero_division=0.0)


# ---------------------------------------------------------------------------- numbers

# A number: optional sign, digits with optional thousands commas, optional decimals, optional
# exponent, optional percent sign. Currency symbols are simply not part of the match.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?")


def parse_numbers(text: str, percent_as_fraction: bool = False) -> list[float]:
    """All numbers on the first line of `text`, in order ('$1,234.5' -> 1234.5).

    Commas and currency signs are dropped. A trailing '%' is dropped too, unless
    `percent_as_fraction` (AdaptLLM's ConvFinQA scorer rewrites '12%' as 12/100).
    """
    first_line = text.split("\n", 1)[0]
    out = []
    for m in _NUMBER.finditer(first_line):
        tok = m.group(0)
        body = tok.rstrip("%").replace(",", "").lstrip("+")
        if not any(ch.isdigit() for ch in body):
            continue
        try:
            value = float(body)
        except ValueError:  # e.g. a lone exponent part; the regex keeps these rare
            continue
        if tok.endswith("%") and percent_as_fraction:
            value /= 100.0
        out.append(value)
    return out


def numeric_em(
    pred: str,
    gold: str,
    abs_tol: float = 1e-2,
    any_number: bool = False,
    percent_as_fraction: bool = False,
) -> float:
    """1.0 if the prediction's number equals the gold's first number within `abs_tol`, else 0.

    By default the prediction's first number is compared (what a reader of the answer takes
    as the answer). AdaptLLM's ConvFinQA scorer accepts a match with any number on the
    prediction's first line and treats '%' as /100: set `any_number=True,
    percent_as_fraction=True` to reproduce it. No number on either side scores 0.
    """
    gold_nums = parse_numbers(gold, percent_as_fraction)
    pred_nums = parse_numbers(pred, percent_as_fraction)
    if not gold_nums or not pred_nums:
        return 0.0
    candidates = pred_nums if any_number else pred_nums[:1]
    return float(any(math.isclose(p, gold_nums[0], abs_tol=abs_tol) for p in candidates))


# ---------------------------------------------------------------------------- free text

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(pred: str, gold: str) -> float:
    """1.0 if the SQuAD-normalised prediction equals the normalised gold answer."""
    return float(normalize_answer(pred) == normalize_answer(gold))


def token_f1(pred: str, gold: str) -> float:
    """SQuAD token F1 between normalised answers (bag-of-words overlap).

    If either side has no tokens the score is 1 when both are empty and 0 otherwise.
    """
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)
