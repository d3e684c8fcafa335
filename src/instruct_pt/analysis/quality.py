"""The quality JSON of one instruction-augmented corpus (paper Table 6, Fig. 6): sample, grade, aggregate.

The paper had GPT-4 judge 500 sampled instruction-augmented texts per corpus. Here a seeded sample
of synthesized texts (those with at least one pair that reaches the pre-training corpora:
:func:`instruct_pt.analysis.synthesized.iter_synthesized`; pairs templify drops are counted in
``stats.not_templified_pairs``) is graded by one of two graders, and their verdicts are aggregated
into the same fields:

* **Miniature** (``analysis.quality.judge: null``): the world knows its own ground truth
  (``meta.facts`` of each raw text), and :mod:`instruct_pt.analysis.grader` grades each pair by
  exact rules. Context relevance is % of pairs, response accuracy % of the pairs linked to a fact
  (the others are counted in ``stats.unlinked_pairs`` by reason); ``"method":
  "world-ground-truth"``; categories from ``grader.CATEGORIES``.
* **Paper scale** (``analysis.quality.judge`` set, as in config.yaml): raw texts have no facts, so
  an LLM judge (:mod:`instruct_pt.analysis.judge`: any OpenAI-compatible chat-completions
  endpoint, GPT-4 in the paper) grades each sampled text's pairs for relevance and accuracy
  (yes/no) and puts each pair in one of ``judge_prompt.JUDGE_CATEGORIES``. Rates are over the judged
  pairs (pairs the judge never answered properly are dropped and counted in
  ``stats.dropped_pairs``), with ``"method": "llm-judge:<model>"`` and the judge's settings under
  ``"judge"``; judgments are cached under ``checkpoint_dir`` so a rerun asks only what is missing.

``n_categories`` counts categories with at least one pair, "other" excluded; ``categories`` gives
every category's share of pairs (fixed order).
"""

from __future__ import annotations

import logging
import random
from collections import Counter

from tqdm import tqdm

from instruct_pt.analysis.grader import CATEGORIES, categorize, grade_pair, is_relevant
from instruct_pt.analysis.judge import judge_sample, judge_settings
from instruct_pt.analysis.judge_prompt import JUDGE_CATEGORIES, PROMPT_SHA256
from instruct_pt.analysis.synthesized import iter_synthesized
from instruct_pt.common import DataError, iter_jsonl, write_json

log = logging.getLogger(__name__)


def _sample_synth(
    paths: list[str], n_samples: int, seed: int, dropped: Counter, not_templified: Counter
) -> list[dict]:
    """Seeded sample of synthesized texts that keep at least one pair (two passes, low memory)."""
    eligible = 0
    for rec in iter_synthesized(paths, not_templified):
        if rec["pairs"]:
            eligible += 1
        else:
            dropped["no_pairs"] += 1
    if eligible == 0:
        # A synthesizer that produced no parsable pair is a finding, not a crash: report zeros.
        log.warning("%s: no synthesized text has any instruction-response pair", ", ".join(paths))
        return []
    k = min(n_samples, eligible)
    if k < n_samples:
        log.warning("only %d texts with pairs (asked for %d): using all", eligible, n_samples)
    chosen = set(random.Random(seed).sample(range(eligible), k))
    out, i = [], 0
    for rec in iter_synthesized(paths):
        if rec["pairs"]:
            if i in chosen:
                out.append(rec)
            i += 1
    return out


def _raw_meta(raw_path: str, ids: set[str]) -> dict[str, dict]:
    metas: dict[str, dict] = {}
    for rec in iter_jsonl(raw_path, ("id",)):
        if rec["id"] in ids:
            meta = rec.get("meta") or {}
            if not isinstance(meta, dict):
                raise DataError(f"{raw_path}: record {rec['id']!r}: 'meta' must be an object")
            metas[rec["id"]] = meta
    return metas


def data_quality(
    synth_paths: list[str],
    raw_path: str,
    corpus: str,
    out_json: str,
    n_samples: int,
    seed: int,
    judge: dict | None = None,
    checkpoint_dir: str | None = None,
) -> dict:
    """Context relevance, response accuracy and task categories of ``n_samples`` sampled texts.

    ``synth_paths``: synthesized shards (one record per raw text, with ``pairs``); ``raw_path``:
    the raw data set whose ``meta.facts`` hold the ground truth. Writes and returns
    ``{"corpus", "n_texts", "n_pairs", "context_relevance", "response_accuracy", "n_categories",
    "categories", "method", "n_fact_pairs", "stats"}`` (rates in %, shares as fractions).

    ``judge`` (``analysis.quality.judge``): when given, an LLM judge grades the sample instead
    (see :mod:`instruct_pt.analysis.judge`; output + ``"judge"``), storing its judgments under
    ``checkpoint_dir`` (required then).
    """
    dropped: Counter = Counter()
    not_templified: Counter = Counter()
    sample = _sample_synth(list(synth_paths), n_samples, seed, dropped, not_templified)
    metas = _raw_meta(raw_path, {r["id"] for r in sample})
    missing = [r["id"] for r in sample if r["id"] not in metas]
    if missing:
        raise DataError(
            f"{raw_path}: id {missing[0]!r} (and {len(missing) - 1} more) of the synthesized texts not found"
        )
    if judge is not None:
        if not checkpoint_dir:
            raise ValueError("data_quality: the LLM judge needs a checkpoint_dir for its judgments")
        result = _llm_judge_quality(
            sample, corpus, n_samples, seed, judge_settings(judge, seed), checkpoint_dir, dropped
        )
        result["stats"]["not_templified_pairs"] = dict(sorted(not_templified.items()))
        write_json(out_json, result)
        log.info(
            "%s (%s): relevance %s, accuracy %s, %d categories, dropped pairs %s",
            corpus,
            result["method"],
            result["context_relevance"],
            result["response_accuracy"],
            result["n_categories"],
            result["stats"]["dropped_pairs"],
        )
        return result
    if sample and not any("facts" in metas[r["id"]] for r in sample):
        raise DataError(
            f"{raw_path}: raw texts carry no ground-truth facts (meta.facts); paper-scale corpora "
            "need an LLM judge (the paper used GPT-4 on 500 texts): set analysis.quality.judge"
        )

    result = _ground_truth_quality(sample, metas, corpus, n_samples, seed, dropped, not_templified)
    write_json(out_json, result)
    log.info(
        "%s: relevance %s, accuracy %s, %d categories",
        corpus,
        result["context_relevance"],
        result["response_accuracy"],
        result["n_categories"],
    )
    return result


def _ground_truth_quality(
    sample: list[dict],
    metas: dict[str, dict],
    corpus: str,
    n_samples: int,
    seed: int,
    dropped: Counter,
    not_templified: Counter,
) -> dict:
    """Table 6 / Fig. 6 from the exact grader's verdicts on the sampled texts (world truth)."""
    counts: Counter = Counter()
    categories: Counter = Counter()
    n_texts = 0
    for rec in tqdm(sample, desc=f"quality {corpus}", unit="text", disable=None):
        meta = metas[rec["id"]]
        if "facts" not in meta:
            dropped["no_facts"] += 1
            continue
        n_texts += 1
        facts = [f for f in meta["facts"] if {"subject", "relation", "value"} <= set(f)]
        dropped["malformed_fact"] += len(meta["facts"]) - len(facts)
        anchors = (
            [str(meta.get("entity") or "")]
            + [str(f["subject"]) for f in facts]
            + [str(f["value"]) for f in facts]
        )
        for pair in rec["pairs"]:
            q, a = str(pair.get("question", "")), str(pair.get("answer", ""))
            counts["pairs"] += 1
            counts["relevant"] += is_relevant(q, a, rec["text"], anchors)
            categories[categorize(q, a)] += 1
            accurate, reason = grade_pair(q, a, facts)
            if accurate is None:
                counts[f"unlinked_{reason}"] += 1
                continue
            counts["fact_pairs"] += 1
            counts["accurate"] += accurate

    n_pairs = counts["pairs"]
    result = {
        "corpus": corpus,
        "n_texts": n_texts,
        "n_pairs": n_pairs,
        "context_relevance": round(100 * counts["relevant"] / n_pairs, 4) if n_pairs else None,
        "response_accuracy": round(100 * counts["accurate"] / counts["fact_pairs"], 4)
        if counts["fact_pairs"]
        else None,
        "n_categories": sum(1 for c in CATEGORIES if c != "other" and categories[c]),
        "categories": {
            c: round(categories[c] / n_pairs, 6) if n_pairs else 0.0 for c in CATEGORIES
        },
        "method": "world-ground-truth",
        "n_fact_pairs": counts["fact_pairs"],
        "stats": {
            "seed": seed,
            "n_samples": n_samples,
            "dropped_texts": dict(sorted((k, v) for k, v in dropped.items() if v)),
            "not_templified_pairs": dict(sorted(not_templified.items())),
            "unlinked_pairs": {
                k[len("unlinked_") :]: v
                for k, v in sorted(counts.items())
                if k.startswith("unlinked_")
            },
        },
    }
    return result


def _llm_judge_quality(
    sample: list[dict],
    corpus: str,
    n_samples: int,
    seed: int,
    settings: dict,
    checkpoint_dir: str,
    dropped: Counter,
) -> dict:
    """Table 6 / Fig. 6 from an LLM judge's verdicts on the sampled texts (judged pairs only)."""
    results = judge_sample(sample, settings, checkpoint_dir, desc=f"judge {corpus}")
    counts: Counter = Counter()
    categories: Counter = Counter()
    dropped_pairs: Counter = Counter()
    n_texts = asks = 0
    for res in results:
        asks += int(res["asks"])
        dropped_pairs.update(res["dropped"].values())
        judged = [j for j in res["judgments"] if j is not None]
        if not judged:
            dropped["all_pairs_dropped"] += 1
            continue
        n_texts += 1
        for j in judged:
            counts["pairs"] += 1
            counts["relevant"] += bool(j["relevant"])
            counts["accurate"] += bool(j["accurate"])
            categories[j["category"]] += 1
    n_pairs = counts["pairs"]

    def rate(key: str) -> float | None:
        return round(100 * counts[key] / n_pairs, 4) if n_pairs else None

    return {
        "corpus": corpus,
        "n_texts": n_texts,
        "n_pairs": n_pairs,
        "context_relevance": rate("relevant"),
        "response_accuracy": rate("accurate"),
        "n_categories": sum(1 for c in JUDGE_CATEGORIES if c != "other" and categories[c]),
        "categories": {
            c: round(categories[c] / n_pairs, 6) if n_pairs else 0.0 for c in JUDGE_CATEGORIES
        },
        "method": f"llm-judge:{settings['model']}",
        "n_fact_pairs": n_pairs,  # every judged pair has an accuracy verdict
        "judge": {
            "model": settings["model"],
            "base_url": settings["base_url"],
            "temperature": settings["temperature"],
            "max_tokens": settings["max_tokens"],
            "seed": settings["seed"],
            "prompt_sha256": PROMPT_SHA256,
        },
        "stats": {
            "seed": seed,
            "n_samples": n_samples,
            "sampled_texts": len(sample),
            "sampled_pairs": sum(len(r["pairs"]) for r in sample),
            "dropped_texts": dict(sorted((k, v) for k, v in dropped.items() if v)),
            "dropped_pairs": dict(sorted(dropped_pairs.items())),
            "judge_asks": asks,
            "reply_retries": asks - len(results),
        },
    }
