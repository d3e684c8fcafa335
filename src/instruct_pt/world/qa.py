"""Question-answer pairs shared by the training sets (free-form, multiple choice, chain of thought)."""

from __future__ import annotations

import random

from instruct_pt.synthesis.protocol import format_cot, format_mc_question
from instruct_pt.world.config import RELATIONS
from instruct_pt.world.corpora import render_statement
from instruct_pt.world.entities import Entity
from instruct_pt.world.vocabulary import POOLS, QUESTIONS, STATEMENTS


def draw_choices(rng: random.Random, gold: str, pool: list[str], k: int = 4) -> list[str]:
    """``gold`` plus k-1 distinct distractors from ``pool``, shuffled."""
    out = rng.sample(sorted(set(pool) - {gold}), k - 1) + [gold]
    rng.shuffle(out)
    return out


def make_pair(question: str, answer: str, fmt: str) -> dict[str, str]:
    return {"question": question, "answer": answer, "format": fmt}


def ask_question(rng: random.Random, relation: str, name: str) -> str:
    return rng.choice(QUESTIONS[relation]["train"]).format(n=name)


def fact_pair(
    rng: random.Random, ent: Entity, relation: str, formats: tuple[str, ...] = ("free", "mc")
) -> dict:
    """A training-phrased question about one fact, free-form or multiple choice."""
    question, gold = ask_question(rng, relation, ent.name), ent.attrs[relation]
    if rng.choice(formats) == "mc" and relation in POOLS:
        return make_pair(
            format_mc_question(question, draw_choices(rng, gold, POOLS[relation])), gold, "mc"
        )
    return make_pair(question, gold, "free")


def cot_pair(question: str, reasoning: str, final: str, options: list[str] | None = None) -> dict:
    """A chain-of-thought pair in the synthesizer's format, multiple choice if ``options``."""
    if options is not None:
        return make_pair(
            *format_cot(format_mc_question(question, options), reasoning, final), "mc_cot"
        )
    return make_pair(*format_cot(question, reasoning, final), "cot")


def compare_years_pair(rng: random.Random, a: Entity, b: Entity) -> dict:
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
        return make_pair(question, final, "free")
    if fmt == "cot":
        return cot_pair(question, reasoning, final)
    return cot_pair(question, reasoning, final, [a.name, b.name])


def claim_pair(rng: random.Random, ent: Entity) -> tuple[str, str]:
    """A statement about a person and whether the person's document supports it."""
    relation = rng.choice(RELATIONS["general"])
    true = rng.random() < 0.5
    value = (
        ent.attrs[relation]
        if true
        else rng.choice(sorted(set(POOLS[relation]) - {ent.attrs[relation]}))
    )
    return render_statement(STATEMENTS[relation][0], ent, True, v=value), "yes" if true else "no"
