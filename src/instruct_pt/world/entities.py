"""The world's entities: people, drugs and companies, and their split into corpus and reserve."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from instruct_pt.common import DataError
from instruct_pt.world.config import RELATIONS, resolve_config, seeded_rng
from instruct_pt.world.vocabulary import (
    CITIES,
    CO_HEADS,
    CO_TAILS,
    DISEASES,
    DRUG_HEADS,
    DRUG_TAILS,
    EMPLOYERS,
    FIRST,
    GENES,
    GROWTH,
    HOBBIES,
    LAST,
    MAJORS,
    MECHANISMS,
    OUTCOMES,
    SECTORS,
    SENTIMENTS,
    SIDE_EFFECTS,
    TRIAL_SIZES,
    UNIVERSITIES,
    YEARS,
)


@dataclass
class Entity:
    """One fictional person, drug or company with its attributes (relation -> value)."""

    domain: str
    name: str
    attrs: dict[str, str]
    subject: str  # pronoun-like stand-in for the name: "she", "the drug", "the company"
    possessive: str  # "her", "its"
    ft: bool  # reserved for the synthesizer fine-tuning collection and general instructions

    def facts(self) -> list[dict[str, str]]:
        return [
            {"subject": self.name, "relation": r, "value": self.attrs[r]}
            for r in RELATIONS[self.domain]
        ]


@dataclass
class World:
    """All entities of one world configuration (treat as read-only: it is cached)."""

    cfg: dict
    entities: dict[str, list[Entity]]

    def corpus(self, domain: str) -> list[Entity]:
        """Entities of the raw corpora, the only ones the evaluation asks about."""
        return [e for e in self.entities[domain] if not e.ft]

    def reserved(self, domain: str) -> list[Entity]:
        """Entities reserved for the synthesizer fine-tuning collection and instructions."""
        return [e for e in self.entities[domain] if e.ft]


def build_world(world_cfg: dict | None = None, seed: int | None = None) -> World:
    """The entities of a world configuration (cached: the same object for equal configs)."""
    cfg = resolve_config(world_cfg, seed)
    key = tuple(sorted((k, tuple(v.items()) if isinstance(v, dict) else v) for k, v in cfg.items()))
    return _build_world(key)


@lru_cache(maxsize=8)
def _build_world(cfg_items: tuple) -> World:
    cfg = {k: dict(v) if isinstance(v, tuple) else v for k, v in cfg_items}
    n_people, n_drugs, n_companies = cfg["n_people"], cfg["n_drugs"], cfg["n_companies"]
    person_names = [f"{f} {last}" for f in FIRST for last in LAST]
    seeded_rng(cfg, "names", "person").shuffle(person_names)
    drug_names = [h + t for h in DRUG_HEADS for t in DRUG_TAILS]
    seeded_rng(cfg, "names", "drug").shuffle(drug_names)
    company_roots = [h + t for h in CO_HEADS for t in CO_TAILS]
    seeded_rng(cfg, "names", "company").shuffle(company_roots)
    if (
        n_people + n_companies > len(person_names)
        or n_drugs > len(drug_names)
        or n_companies > len(company_roots)
    ):
        raise DataError(
            f"world config: too many entities (n_people + n_companies <= {len(person_names)}, "
            f"n_drugs <= {len(drug_names)}, n_companies <= {len(company_roots)})"
        )

    rng = seeded_rng(cfg, "attributes", "general")
    people = []
    for name in person_names[:n_people]:
        subject, possessive = rng.choice([("he", "his"), ("she", "her")])
        attrs = {
            "birth_city": rng.choice(CITIES),
            "birth_year": rng.choice(YEARS),
            "university": rng.choice(UNIVERSITIES),
            "major": rng.choice(MAJORS),
            "employer": rng.choice(EMPLOYERS),
            "hobby": rng.choice(HOBBIES),
        }
        people.append(Entity("general", name, attrs, subject, possessive, False))

    rng = seeded_rng(cfg, "attributes", "biomedicine")
    drugs = []
    for name in drug_names[:n_drugs]:
        attrs = {
            "target": rng.choice(GENES),
            "mechanism": rng.choice(MECHANISMS),
            "treats": rng.choice(DISEASES),
            "side_effect": rng.choice(SIDE_EFFECTS),
            "trial_size": rng.choice(TRIAL_SIZES),
            "outcome": rng.choice(OUTCOMES),
        }
        drugs.append(Entity("biomedicine", name, attrs, "the drug", "its", False))

    rng = seeded_rng(cfg, "attributes", "finance")
    companies = []
    ceos = person_names[n_people : n_people + n_companies]  # disjoint from the general people
    for root, ceo in zip(company_roots[:n_companies], ceos, strict=True):
        sector = rng.choice(sorted(SECTORS))
        sentiment = rng.choice(SENTIMENTS)
        growth = rng.choice(GROWTH[sentiment])
        prev = 20 * rng.randint(2, 20)  # a multiple of 20, so that revenue is a whole number
        attrs = {
            "sector": sector,
            "hq_city": rng.choice(CITIES),
            "ceo": ceo,
            "revenue": str(prev * (100 + growth) // 100),
            "prev_revenue": str(prev),
            "growth": str(growth),
            "sentiment": sentiment,
        }
        name = f"{root} {rng.choice(SECTORS[sector])}"
        companies.append(Entity("finance", name, attrs, "the company", "its", False))

    entities = {"general": people, "biomedicine": drugs, "finance": companies}
    for domain, ents in entities.items():
        order = list(range(len(ents)))
        seeded_rng(cfg, "ft_split", domain).shuffle(order)
        n_ft = round(len(ents) * cfg["ft_fraction"])
        if len(ents) - n_ft < 4:
            raise DataError(
                f"world config: {domain} needs at least 4 entities outside the ft reserve"
            )
        for i in order[:n_ft]:
            ents[i].ft = True
    return World(cfg, entities)


def require_reserved(world: World, name: str) -> None:
    """Training sets talk only about reserved entities; they need a few in every domain."""
    if any(len(world.reserved(d)) < 2 for d in RELATIONS):
        raise DataError(
            f"world config: {name} needs >= 2 reserved entities per domain (raise ft_fraction)"
        )
