"""The oracle synthesizer: instruction-response pairs from the world's ground truth.

A miniature-only stand-in for a perfect instruction synthesizer. Every raw world text carries its
facts (``meta.facts``: subject, relation, value); the oracle asks about ``pairs_per_text`` of
them (distinct relations), in the training phrasings (``QUESTIONS[relation]["train"]``, never an
evaluation phrasing), free-form or 4-way multiple choice in the synthesizer's option format, the
answer always the true value. Its records have the ``synthesize_shard`` format and chains (M
rounds, as the synthesizer's), so templify, mixtures and pre-training treat them like the
synthesizer's.

Pre-trained on (the mixture ``general-oracle``, Instruct PT with these pairs), a model shows what
Instruct PT reaches at the compared size when every pair is relevant and correct: the general
suite's ceiling (rules/ceilings.smk), and the distance of the synthesizer's pairs from perfect.
"""

from __future__ import annotations

import logging
import random

from instruct_pt.common import DataError, stable_hash
from instruct_pt.synthesis.multi_round import shard_records
from instruct_pt.synthesis.protocol import format_mc_question
from instruct_pt.world.qa import draw_choices
from instruct_pt.world.vocabulary import POOLS, QUESTIONS

log = logging.getLogger(__name__)


def _facts(rec: dict, where: str) -> list[dict]:
    facts = (rec.get("meta") or {}).get("facts")
    if not isinstance(facts, list):
        raise DataError(
            f"{where}: no 'meta.facts' list: the oracle synthesizer reads the world's ground "
            "truth, which only world corpora carry"
        )
    for fact in facts:
        if not (isinstance(fact, dict) and {"subject", "relation", "value"} <= set(fact)):
            raise DataError(f"{where}: a fact must have 'subject', 'relation' and 'value'")
    return facts


def oracle_pairs(facts: list[dict], rng: random.Random, k: int, mc_rate: float = 0.5) -> list[dict]:
    """Up to ``k`` pairs about ``facts`` (distinct relations with training phrasings)."""
    askable: dict[str, dict] = {}
    for fact in facts:
        if fact["relation"] in QUESTIONS:
            askable.setdefault(fact["relation"], fact)
    pairs = []
    for relation in rng.sample(sorted(askable), min(k, len(askable))):
        fact = askable[relation]
        value = str(fact["value"])
        question = rng.choice(QUESTIONS[relation]["train"]).format(n=fact["subject"])
        pool = POOLS.get(relation)
        if pool and value in pool and rng.random() < mc_rate:
            question = format_mc_question(question, draw_choices(rng, value, pool))
        pairs.append({"question": question, "answer": value})
    return pairs


def oracle_shard(
    shard_path: str, out_path: str, seed: int, pairs_per_text: int, rounds: int = 1
) -> dict:
    """The oracle's pairs for every text of a shard, records as ``synthesize_shard`` writes them
    for ``rounds`` rounds (the synthesizer's M for the corpus: the same chains, so Instruct PT on
    the oracle's pairs differs from Instruct PT only in the pairs).

    A text without an askable fact gets no pairs (counted); a shard whose texts all lack one
    fails, as an empty augmentation would silently turn Instruct PT into Vanilla PT."""
    if pairs_per_text < 1:
        raise DataError(f"oracle synthesis: pairs_per_text must be >= 1, got {pairs_per_text}")

    def make(rec: dict, where: str) -> list[dict]:
        rng = random.Random(stable_hash(seed, "oracle", rec["id"]))
        return oracle_pairs(_facts(rec, where), rng, pairs_per_text)

    stats = shard_records(shard_path, out_path, make, "oracle", rounds)
    if stats["texts"] and not stats["texts_with_pairs"]:
        raise DataError(f"{shard_path}: no text has a fact the oracle can ask about")
    stats["engine"] = "oracle"
    log.info(
        "oracle %s: %d pairs for %d texts (%d without pairs)",
        shard_path,
        stats["pairs"],
        stats["texts"],
        stats["texts_without_pairs"],
    )
    return stats
