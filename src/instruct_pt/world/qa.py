"""Question-answer pairs shared by the training sets (free-form, multiple choice, chain of thought)."""

from __future__ import annotations

import random

from instruct_pt.world.config import RELATIONS
from instruct_pt.world.corpora import _say
from instruct_pt.world.entities import Entity
from instruct_pt.world.vocabulary import _POOLS, _QUESTIONS, _STATEMENTS, COT_ANSWER, COT_SUFFIX


def _options(question: str, options: list[str]) -> str:
    return question + "\nOptions:\n" + "\n".join(f"- {o}" for o in options)


def _choices(rng: random.Random, gold: str, pool: list[str], k: int = 4) -> list[str]:
    """``gold`` plus k-1 distinct distractors from ``pool``, shuffled."""
    out = rng.sample(sorted(set(pool) - {gold}), k - 1) + [gold]
    rng.shuffle(out)
    return out


def _pair(question: str, answer: str, fmt: str) -> dict[str, str]:
    return {"question": question, "answer": answer, "format": fmt}


def _ask(rng: random.Random, relation: str, name: str) -> str:
    return rng.choice(_QUESTIONS[relation]["train"]).format(n=name)


def _fact_pair(
    rng: random.Random, ent: Entity, relation: str, formats: tuple[str, ...] = ("free", "mc")
) -> dict:
    """A training-phrased question about one fact, free-form or multiple choice."""
    question, gold = _ask(rng, relation, ent.name), ent.attrs[relation]
    if rng.choice(formats) == "mc" and relation in _POOLS:
        return _pair(_options(question, _choices(rng, gold, _POOLS[relation])), gold, "mc")
    return _pair(question, gold, "free")


def _cot(question: str, reasoning: str, final: str, options: list[str] | None = None) -> dict:
    if options is not None:
        return _pair(
            _options(question, options) + COT_SUFFIX,
            COT_ANSWER.format(reasoning=reasoning, final=final),
            "mc_cot",
        )
    return _pair(question + COT_SUFFIX, COT_ANSWER.format(reasoning=reasoning, final=final), "cot")


def _compare_years(rng: random.Random, a: Entity, b: Entity) -> dict:
    """Who was born earlier/later (training phrasing), as free, CoT or MC+CoT."""
    ya, yb = int(a.attrs["birth_year"]), int(b.attrs["birth_year"])
    earlier = rng.random() < 0.5
    question = f"Who was born {'earlier' if earlier else 'later'}, {a.name} or {b.name}?"
    if ya == yb:
        final = "neither, they were born in the same year"
    else:
        final = (a if (ya < yb) == earlier else b).name
    reasoning = f"{a.name} was born in {ya}. {b.name} was born in {yb}."
    fmt = rng.choice(["free", "cot", "mc_cot"])
    if fmt == "free" or ya == yb:
        return _pair(question, final, "free")
    if fmt == "cot":
        return _cot(question, reasoning, final)
    return _cot(question, reasoning, final, [a.name, b.name])


def _claim(rng: random.Random, ent: Entity) -> tuple[str, str]:
    """A statement about a person and whether the person's document supports it."""
    relation = rng.choice(RELATIONS["general"])
    true = rng.random() < 0.5
    value = (
        ent.attrs[relation]
        if true
        else rng.choice(sorted(set(_POOLS[relation]) - {ent.attrs[relation]}))
    )
    return _say(_STATEMENTS[relation][0], ent, True, v=value), "yes" if true else "no"
