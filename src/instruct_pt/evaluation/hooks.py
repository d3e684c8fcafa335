"""The metric hooks lm-eval calls for our tasks, and the aggregation of per-document items.

lm-eval calls a task's `process_results(doc, results)` once per document and then the metric's
aggregation on the list of what it returned; our task YAMLs (instruct_pt.evaluation.suites) name
the `lm_*` functions of this module by dotted name (`!function`). `results` is [generated_text]
for generation and, for multiple choice, one (loglikelihood, is_greedy, n_tokens) triple per
option: DomainTask (instruct_pt.evaluation.lm_tasks) appends n_tokens to lm-eval's
(loglikelihood, is_greedy) pair. The domain choice hooks predict as the paper does (AdaptLLM's
`inference.py`, `choice_losses`): the option with the lowest mean per-token NLL. The arithmetic
of each metric lives in `instruct_pt.evaluation.metrics`.

`METRIC_HOOKS` says which hook and aggregation serve each (output type, metric);
`AGGREGATIONS` and `aggregate_items` recompute a task's value from the per-document items that
`instruct_pt.evaluation.runner.evaluate` writes (for its check, and for the bootstrap of
instruct_pt.stats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from instruct_pt.common import DataError
from instruct_pt.evaluation import metrics as M


def _gold_index(doc: dict) -> int:
    """Gold option index: world records carry `gold`, AdaptLLM records `gold_index`."""
    return int(doc["gold"] if "gold" in doc else doc["gold_index"])


def _choices(doc: dict) -> list[str]:
    return list(doc["choices"] if "choices" in doc else doc["options"])


def mean_nll(loglikelihood: float, n_tokens: int) -> float:
    """An option's mean per-token negative log-likelihood (the paper's choice score)."""
    if n_tokens < 1:
        raise DataError(f"an option scored over {n_tokens} tokens has no mean NLL")
    return -loglikelihood / n_tokens


def _pred_index(doc: dict, results: Sequence[tuple[float, bool, int]]) -> int:
    """The option with the lowest mean per-token NLL (paper; AdaptLLM's choice_losses)."""
    n_choices = len(_choices(doc))
    if len(results) != n_choices or any(len(r) != 3 for r in results):
        raise DataError(
            f"document {doc.get('id')!r}: expected {n_choices} (loglikelihood, is_greedy, "
            f"n_tokens) results, got {list(results)!r}: a domain choice task's YAML must name "
            "class instruct_pt.evaluation.lm_tasks.DomainTask (rebuild suites written before it, rule "
            "eval_tasks) and run through instruct_pt.evaluation.runner.evaluate"
        )
    losses = [mean_nll(ll, n) for ll, _, n in results]
    return min(range(n_choices), key=losses.__getitem__)  # first of ties, like torch.argmin


def lm_answer(doc: dict) -> str:
    """Gold answer text: world `answer`, or AdaptLLM `label` (a string or a list, first wins)."""
    if "answer" in doc:
        return str(doc["answer"])
    label = doc["label"]
    return str(label if isinstance(label, str) else label[0])


def lm_mc_micro_f1(doc: dict, results: list) -> dict:
    return {"micro_f1": (_gold_index(doc), _pred_index(doc, results))}


def lm_mc_weighted_f1(doc: dict, results: list) -> dict:
    return {"weighted_f1": (_gold_index(doc), _pred_index(doc, results))}


def _subtask(doc: dict) -> str:
    """Headline's sub-question: `subtask`, AdaptLLM's `class_id`, or the middle of a world id
    (`{task}-{subtask}-{index}`)."""
    if "subtask" in doc:
        return str(doc["subtask"])
    if "class_id" in doc:
        return str(doc["class_id"])
    parts = str(doc.get("id", "")).split("-")
    if len(parts) >= 3:
        return parts[-2]
    raise DataError(f"document {doc.get('id')!r} names no sub-question (subtask/class_id/id)")


def lm_mc_accuracy(doc: dict, results: list) -> dict:
    """The domain tasks' accuracy, predicting by mean per-token NLL (see top)."""
    return {"accuracy": float(_gold_index(doc) == _pred_index(doc, results))}


def lm_mc_mean_weighted_f1(doc: dict, results: list) -> dict:
    return {"mean_weighted_f1": (_subtask(doc), _gold_index(doc), _pred_index(doc, results))}


def lm_gen_numeric_em(doc: dict, results: list) -> dict:
    return {"numeric_em": M.numeric_em(results[0], lm_answer(doc))}


def lm_gen_numeric_em_adaptllm(doc: dict, results: list) -> dict:
    """ConvFinQA as AdaptLLM scores it: any number of the answer line, '%' read as /100."""
    score = M.numeric_em(results[0], lm_answer(doc), any_number=True, percent_as_fraction=True)
    return {"numeric_em": score}


def lm_gen_exact_match(doc: dict, results: list) -> dict:
    return {"exact_match": M.exact_match(results[0], lm_answer(doc))}


def lm_gen_token_f1(doc: dict, results: list) -> dict:
    return {"token_f1": M.token_f1(results[0], lm_answer(doc))}


def lm_gen_entity_f1(doc: dict, results: list) -> dict:
    gold = [tuple(e) for e in M.parse_entities(lm_answer(doc))]
    pred = [tuple(e) for e in M.parse_entities(results[0])]
    return {"entity_f1": (gold, pred)}


def lm_agg_micro_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.micro_f1(golds, preds)


def lm_agg_weighted_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.weighted_f1(golds, preds)


def lm_agg_mean_weighted_f1(items: list) -> float:
    subs, golds, preds = zip(*items, strict=True) if items else ((), (), ())
    return M.mean_weighted_f1(subs, golds, preds)


def lm_agg_entity_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.entity_f1(golds, preds, average="micro")


def lm_agg_entity_f1_doc(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.entity_f1(golds, preds, average="doc")


# (output type, metric) -> (process_results hook or None for lm-eval's own, aggregation).
# "mean" is lm-eval's registered mean (which also gets a closed-form stderr).
METRIC_HOOKS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("multiple_choice", "acc"): (None, "mean"),
    ("multiple_choice", "acc_norm"): (None, "mean"),
    ("multiple_choice", "accuracy"): ("lm_mc_accuracy", "mean"),
    ("multiple_choice", "micro_f1"): ("lm_mc_micro_f1", "lm_agg_micro_f1"),
    ("multiple_choice", "weighted_f1"): ("lm_mc_weighted_f1", "lm_agg_weighted_f1"),
    ("multiple_choice", "mean_weighted_f1"): ("lm_mc_mean_weighted_f1", "lm_agg_mean_weighted_f1"),
    ("generate_until", "numeric_em"): ("lm_gen_numeric_em", "mean"),
    ("generate_until", "exact_match"): ("lm_gen_exact_match", "mean"),
    ("generate_until", "token_f1"): ("lm_gen_token_f1", "mean"),
    ("generate_until", "entity_f1"): ("lm_gen_entity_f1", "lm_agg_entity_f1"),
}
# AdaptLLM's own scorers differ from our defaults for two metrics (see instruct_pt.evaluation.metrics).
ADAPTLLM_HOOKS = {
    ("generate_until", "numeric_em"): ("lm_gen_numeric_em_adaptllm", "mean"),
    ("generate_until", "entity_f1"): ("lm_gen_entity_f1", "lm_agg_entity_f1_doc"),
}
METRICS = sorted({m for _, m in METRIC_HOOKS})

# Aggregation names of the task JSONs' "aggregation" -> the function of the per-doc items.
AGGREGATIONS = {
    "mean": lambda items: sum(items) / len(items),
    "lm_agg_micro_f1": lm_agg_micro_f1,
    "lm_agg_weighted_f1": lm_agg_weighted_f1,
    "lm_agg_mean_weighted_f1": lm_agg_mean_weighted_f1,
    "lm_agg_entity_f1": lm_agg_entity_f1,
    "lm_agg_entity_f1_doc": lm_agg_entity_f1_doc,
}


def _tuples(x: Any) -> Any:
    """JSON lists back into the (hashable) tuples the corpus-level aggregations compare."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def aggregate_items(aggregation: str, items: Sequence) -> float:
    """A task's value (0-1) from its per-document items as read back from a docs file.

    `aggregation` is the task JSON's: "mean" (items are numbers) or one of the `lm_agg_*`
    corpus-level F1 functions (items are the tuples their hooks return, JSON lists here).
    """
    if aggregation not in AGGREGATIONS:
        raise DataError(f"unknown aggregation {aggregation!r} (known: {sorted(AGGREGATIONS)})")
    if not items:
        raise DataError(f"aggregation {aggregation!r} of no items")
    if aggregation == "mean":
        return float(AGGREGATIONS["mean"](items))
    return float(AGGREGATIONS[aggregation]([_tuples(i) for i in items]))
