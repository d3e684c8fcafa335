"""Documents about entities (statements rendered from templates) and the raw corpora."""

from __future__ import annotations

import random

from instruct_pt.world.config import RELATIONS, _rng, docs_per_entity
from instruct_pt.world.entities import Entity, World
from instruct_pt.world.vocabulary import (
    _CEO_STATEMENTS,
    _GROWTH_STATEMENTS,
    _INTRO_STATEMENTS,
    _MECHANISM_STATEMENTS,
    _OUTCOME_STATEMENTS,
    _REACTIONS,
    _REVENUE_STATEMENTS,
    _STATEMENTS,
)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _say(template: str, ent: Entity, by_name: bool, **values: str) -> str:
    """Render a statement about ``ent``, calling it by name or by pronoun."""
    subject = ent.name if by_name else ent.subject
    possessive = f"{ent.name}'s" if by_name else ent.possessive
    text = template.format(S=_cap(subject), s=subject, P=_cap(possessive), p=possessive, **values)
    return _cap(text)


def _fact_sentences(ent: Entity, rng: random.Random, name_rate: float = 0.35) -> list[str]:
    """The sentences of one rendering of an entity's document; the first names the entity, each
    later one with probability ``name_rate`` (else a pronoun)."""
    a = ent.attrs
    by_name = [True] + [rng.random() < name_rate for _ in range(6)]

    def say(templates: list[str], k: int, **values: str) -> str:
        return _say(rng.choice(templates), ent, by_name[k], **values)

    if ent.domain == "general":
        rels = list(RELATIONS["general"])
        rng.shuffle(rels)
        return [say(_STATEMENTS[r], k, v=a[r]) for k, r in enumerate(rels)]
    if ent.domain == "biomedicine":
        body = [
            say(_MECHANISM_STATEMENTS[a["mechanism"]], 1, g=a["target"]),
            say(_STATEMENTS["treats"], 2, v=a["treats"]),
            say(_STATEMENTS["side_effect"], 3, v=a["side_effect"]),
            say(_OUTCOME_STATEMENTS[a["outcome"]], 4, n=a["trial_size"]),
        ]
        rng.shuffle(body)
        return [f"{ent.name} is an experimental drug."] + body
    growth = int(a["growth"])
    trend = "up" if growth > 0 else "down" if growth < 0 else "flat"
    results = " ".join(
        [
            say(_REVENUE_STATEMENTS[trend], 2, r=a["revenue"], p0=a["prev_revenue"]),
            _GROWTH_STATEMENTS[trend].format(g=abs(growth)),
            rng.choice(_REACTIONS[a["sentiment"]]),
        ]
    )
    body = [say(_CEO_STATEMENTS, 1, c=a["ceo"]), results]
    rng.shuffle(body)
    return [say(_INTRO_STATEMENTS, 0, x=a["sector"], y=a["hq_city"])] + body


def render_document(ent: Entity, rng: random.Random, name_rate: float = 0.35) -> str:
    """A fresh rendering of an entity's document (sentence order, templates, name vs pronoun)."""
    return " ".join(_fact_sentences(ent, rng, name_rate))


def _raw_corpus(world: World, domain: str, name: str) -> list[dict]:
    rng = _rng(world.cfg, "dataset", name)
    n_docs = docs_per_entity(world.cfg, domain)
    items = [(e, k) for e in world.corpus(domain) for k in range(n_docs)]
    rng.shuffle(items)  # spread the renderings of one entity over the corpus
    return [
        {
            "id": f"{name}-{i:07d}",
            "text": render_document(e, rng, world.cfg["name_rate"]),
            "meta": {"domain": domain, "entity": e.name, "facts": e.facts()},
        }
        for i, (e, _) in enumerate(items)
    ]
