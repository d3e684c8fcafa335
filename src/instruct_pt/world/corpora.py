"""Documents about entities (statements rendered from templates) and the raw corpora."""

from __future__ import annotations

import random

from instruct_pt.common import DataError
from instruct_pt.world.config import RELATIONS, docs_per_entity, seeded_rng
from instruct_pt.world.entities import Entity, World
from instruct_pt.world.vocabulary import (
    CEO_STATEMENTS,
    FIRST,
    GROWTH_STATEMENTS,
    INTRO_STATEMENTS,
    LAST,
    MECHANISM_STATEMENTS,
    OUTCOME_STATEMENTS,
    POOLS,
    REACTIONS,
    REVENUE_STATEMENTS,
    STATEMENTS,
)


def capitalize_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_statement(template: str, ent: Entity, by_name: bool, **values: str) -> str:
    """Render a statement about ``ent``, calling it by name or by pronoun."""
    subject = ent.name if by_name else ent.subject
    possessive = f"{ent.name}'s" if by_name else ent.possessive
    text = template.format(
        S=capitalize_first(subject),
        s=subject,
        P=capitalize_first(possessive),
        p=possessive,
        **values,
    )
    return capitalize_first(text)


# Closing sentences that mention an earlier-stated value again, as real text does: the second
# mention is predictable only by copying it from the context, so pre-training rewards looking a
# value up in the context (what reading with a context needs), not only names.
RESTATEMENTS: dict[str, list[str]] = {
    "birth_city": [
        "{P} family still lives in {v}.",
        "{S} often goes back to {v} to see old friends.",
        "Growing up in {v} shaped {p} taste in food.",
    ],
    "birth_year": [
        "{S} was born in {v}, like several of {p} colleagues.",
        "Friends joke that {v} was a lucky year to be born.",
        "Being born in {v}, {s} remembers the old trams.",
    ],
    "university": [
        "{S} still keeps in touch with classmates from {v}.",
        "Old friends from {v} visit {p} home every spring.",
        "{P} years at {v} were the happiest of {p} life.",
    ],
    "major": [
        "{S} still reads about {v} in the evenings.",
        "Friends ask {p} advice on anything to do with {v}.",
        "{P} interest in {v} began at school.",
    ],
    "employer": [
        "Colleagues at {v} describe {p} work as careful.",
        "{S} has stayed at {v} for many years.",
        "Before joining {v}, {s} tried several other jobs.",
    ],
    "hobby": [
        "Friends say {s} talks about {v} all the time.",
        "{S} took up {v} as a teenager.",
        "Most of {p} free time goes to {v}.",
    ],
}


def _fact_sentences(
    ent: Entity,
    rng: random.Random,
    name_rate: float = 0.35,
    restate_rate: float = 0.0,
    restatements: int = 1,
) -> list[str]:
    """The sentences of one rendering of an entity's document; the first names the entity, each
    later one with probability ``name_rate`` (else a pronoun). A general document ends, with
    probability ``restate_rate``, with ``restatements`` sentences that mention values again."""
    a = ent.attrs
    by_name = [True] + [rng.random() < name_rate for _ in range(6)]

    def say(templates: list[str], k: int, **values: str) -> str:
        return render_statement(rng.choice(templates), ent, by_name[k], **values)

    if ent.domain == "general":
        rels = list(RELATIONS["general"])
        rng.shuffle(rels)
        sentences = [say(STATEMENTS[r], k, v=a[r]) for k, r in enumerate(rels)]
        # no draw at rate 0: the worlds without restatements stay as they were
        if restate_rate > 0 and rng.random() < restate_rate:
            for r in rng.sample(rels, restatements):
                sentences.append(say(RESTATEMENTS[r], 6, v=a[r]))
        return sentences
    if ent.domain == "biomedicine":
        body = [
            say(MECHANISM_STATEMENTS[a["mechanism"]], 1, g=a["target"]),
            say(STATEMENTS["treats"], 2, v=a["treats"]),
            say(STATEMENTS["side_effect"], 3, v=a["side_effect"]),
            say(OUTCOME_STATEMENTS[a["outcome"]], 4, n=a["trial_size"]),
        ]
        rng.shuffle(body)
        return [f"{ent.name} is an experimental drug."] + body
    growth = int(a["growth"])
    trend = "up" if growth > 0 else "down" if growth < 0 else "flat"
    results = " ".join(
        [
            say(REVENUE_STATEMENTS[trend], 2, r=a["revenue"], p0=a["prev_revenue"]),
            GROWTH_STATEMENTS[trend].format(g=abs(growth)),
            rng.choice(REACTIONS[a["sentiment"]]),
        ]
    )
    body = [say(CEO_STATEMENTS, 1, c=a["ceo"]), results]
    rng.shuffle(body)
    return [say(INTRO_STATEMENTS, 0, x=a["sector"], y=a["hq_city"])] + body


def render_document(
    ent: Entity,
    rng: random.Random,
    name_rate: float = 0.35,
    restate_rate: float = 0.0,
    restatements: int = 1,
) -> str:
    """A fresh rendering of an entity's document (sentence order, templates, name vs pronoun)."""
    return " ".join(_fact_sentences(ent, rng, name_rate, restate_rate, restatements))


# A passer-by's text restates this many of its values (when it restates): dense copy targets.
ONE_OFF_RESTATEMENTS = 3


def free_person_names(world: World) -> list[str]:
    """Names of the name pool that no world entity bears (neither a person nor a CEO), sorted."""
    taken = {e.name for e in world.entities["general"]}
    taken |= {e.attrs["ceo"] for e in world.entities["finance"]}
    return sorted(f"{f} {last}" for f in FIRST for last in LAST if f"{f} {last}" not in taken)


def random_person(name: str, rng: random.Random) -> Entity:
    """A person outside the world: ``name`` with random attribute values (nothing to remember)."""
    subject, possessive = rng.choice([("he", "his"), ("she", "her")])
    attrs = {r: rng.choice(POOLS[r]) for r in RELATIONS["general"]}
    return Entity("general", name, attrs, subject, possessive, False)


def build_raw_corpus(world: World, domain: str, name: str) -> list[dict]:
    rng = seeded_rng(world.cfg, "dataset", name)
    n_docs = docs_per_entity(world.cfg, domain)
    items = [(e, k) for e in world.corpus(domain) for k in range(n_docs)]
    if domain == "general" and world.cfg["one_off_docs"]:
        # Passers-by (the long tail of real text): each text about a random free name with random
        # values, so its restated value can only be predicted by copying it from the text.
        free = free_person_names(world)
        if not free:
            raise DataError("world config: one_off_docs needs person names no entity bears")
        one_off = seeded_rng(world.cfg, "one-off", name)
        items += [
            (random_person(one_off.choice(free), one_off), -1)
            for _ in range(world.cfg["one_off_docs"])
        ]
    rng.shuffle(items)  # spread the renderings of one entity over the corpus
    return [
        {
            "id": f"{name}-{i:07d}",
            "text": render_document(
                e,
                rng,
                world.cfg["name_rate"],
                world.cfg["restate_rate"],
                1 if k >= 0 else ONE_OFF_RESTATEMENTS,
            ),
            "meta": {"domain": domain, "entity": e.name, "facts": e.facts()},
        }
        for i, (e, k) in enumerate(items)
    ]
