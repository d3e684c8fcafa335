"""``synth_ft``: the synthesizer's fine-tuning collection (a context + instruction-response pairs)."""

from __future__ import annotations

import random
from typing import Any

from instruct_pt.synthesis.protocol import format_mc_question
from instruct_pt.world.config import RELATIONS, seeded_rng
from instruct_pt.world.corpora import capitalize_first, render_document, render_statement
from instruct_pt.world.entities import Entity, World, require_reserved
from instruct_pt.world.qa import claim_pair, compare_years_pair, cot_pair, fact_pair, make_pair
from instruct_pt.world.vocabulary import MECHANISM_STATEMENTS, MECHANISMS, SENTIMENTS


def _revenue_change(rng: random.Random, ent: Entity) -> dict:
    r, p = int(ent.attrs["revenue"]), int(ent.attrs["prev_revenue"])
    question = f"How much did the quarterly revenue of {ent.name} change, in million dollars?"
    reasoning = f"Revenue was {r} million dollars this quarter and {p} million a year earlier. {r} - {p} = {r - p}."
    return (
        cot_pair(question, reasoning, str(r - p))
        if rng.random() < 0.7
        else make_pair(question, str(r - p), "free")
    )


def _summary(ent: Entity) -> str:
    a = ent.attrs
    if ent.domain == "general":
        return f"{ent.name} is a {a['major']} graduate of {a['university']} who works for {a['employer']}."
    if ent.domain == "biomedicine":
        article = "an" if a["mechanism"][0] in "aeiou" else "a"
        return f"{ent.name} is {article} {a['mechanism']} of {a['target']} used for {a['treats']}."
    direction = "grew" if int(a["growth"]) > 0 else "fell" if int(a["growth"]) < 0 else "was flat"
    return f"{ent.name} is a {a['sector']} company whose revenue {direction} this quarter."


def _ft_people_qa(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("general")
    return draw.document(ent, rng), [fact_pair(rng, ent, r) for r in RELATIONS["general"]]


def _ft_people_compare(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    a, b = draw("general"), draw("general")
    context = draw.document(a, rng) + "\n" + draw.document(b, rng)
    pairs = [compare_years_pair(rng, a, b), compare_years_pair(rng, b, a)]
    ya, yb = int(a.attrs["birth_year"]), int(b.attrs["birth_year"])
    q = f"How many years apart were {a.name} and {b.name} born?"
    pairs.append(
        cot_pair(
            q,
            f"{a.name} was born in {ya} and {b.name} in {yb}. The difference is {abs(ya - yb)}.",
            str(abs(ya - yb)),
        )
    )
    pairs += [fact_pair(rng, a, "birth_year", ("free",)), fact_pair(rng, b, "employer")]
    return context, pairs


def _ft_nli(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("general")
    pairs = []
    for _ in range(4):
        claim, label = claim_pair(rng, ent)
        pairs.append(
            make_pair(
                format_mc_question(f'Does the text support the claim "{claim}"?', ["yes", "no"]),
                label,
                "mc",
            )
        )
    return draw.document(ent, rng), pairs


def _ft_bio_qa(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("biomedicine")
    a = ent.attrs
    pairs = [fact_pair(rng, ent, r) for r in ("treats", "target", "side_effect")]
    pairs.append(
        make_pair(f"How many patients were in the trial of {ent.name}?", a["trial_size"], "free")
    )
    verdict = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}[a["outcome"]]
    pairs.append(
        make_pair(
            format_mc_question(
                f"Did the trial show that {ent.name} works?", ["yes", "no", "maybe"]
            ),
            verdict,
            "mc",
        )
    )
    return draw.document(ent, rng), pairs


def _ft_bio_relation(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("biomedicine")
    a = ent.attrs
    phrase = render_statement(MECHANISM_STATEMENTS[a["mechanism"]][0], ent, True, g=a["target"])
    pairs = [
        make_pair(
            format_mc_question(f"How does {ent.name} act on {a['target']}?", MECHANISMS),
            a["mechanism"],
            "mc",
        ),
        cot_pair(
            f"What kind of agent is {ent.name} for {a['target']}?",
            f"The text says: {phrase}",
            a["mechanism"],
            MECHANISMS,
        ),
        fact_pair(rng, ent, "target", ("free",)),
    ]
    return draw.document(ent, rng), pairs


def _ft_news_qa(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("finance")
    pairs = [fact_pair(rng, ent, r) for r in ("ceo", "hq_city", "sector")]
    pairs += [
        _revenue_change(rng, ent),
        make_pair(
            f"By what percent did the revenue of {ent.name} change?", ent.attrs["growth"], "free"
        ),
    ]
    return draw.document(ent, rng), pairs


def _ft_news_sentiment(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw("finance")
    a = ent.attrs
    growth = int(a["growth"])
    direction = "went up" if growth > 0 else "went down" if growth < 0 else "stayed the same"
    pairs = [
        make_pair(
            format_mc_question("What is the sentiment of the news?", SENTIMENTS),
            a["sentiment"],
            "mc",
        ),
        make_pair(
            format_mc_question(
                "Did the revenue go up or down?", ["went up", "went down", "stayed the same"]
            ),
            direction,
            "mc",
        ),
        make_pair(
            "Did the shares go up after the report?",
            "yes" if a["sentiment"] == "positive" else "no",
            "free",
        ),
    ]
    return draw.document(ent, rng), pairs


def _ft_summarize(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = draw(("general", "biomedicine", "finance")[i % 3])
    pairs = [
        make_pair("Summarize the text in one sentence.", _summary(ent), "free"),
        make_pair("What is the text mainly about?", ent.name, "free"),
    ]
    return draw.document(ent, rng), pairs


_GOODS = [
    "loaves",
    "apples",
    "books",
    "lamps",
    "chairs",
    "kites",
    "candles",
    "baskets",
    "jars",
    "boats",
]
_PLACES = ["a bakery", "a market stall", "a bookshop", "a workshop", "a toy store", "a farm shop"]


def _ft_math_word(draw: _Draw, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    good, place = rng.choice(_GOODS), rng.choice(_PLACES)
    x, y, price = rng.randint(5, 60), rng.randint(5, 60), rng.randint(2, 9)
    context = (
        f"{capitalize_first(place)} sold {x} {good} in the morning and {y} {good} in the afternoon. "
        f"Each of the {good} cost {price} dollars."
    )
    pairs = [
        cot_pair(
            f"How many {good} were sold in total?",
            f"{x} were sold in the morning and {y} in the afternoon. {x} + {y} = {x + y}.",
            str(x + y),
        ),
        make_pair(
            f"How many more {good} were sold in the morning than in the afternoon?",
            str(x - y),
            "free",
        ),
        cot_pair(
            "How much money did the morning sales bring in?",
            f"{x} {good} at {price} dollars each is {x} * {price} = {x * price}.",
            f"{x * price} dollars",
        ),
        make_pair(
            format_mc_question("When were more of them sold?", ["morning", "afternoon", "equal"]),
            "morning" if x > y else "afternoon" if y > x else "equal",
            "mc",
        ),
    ]
    return context, pairs


# name: (task_type, seen by the synthesizer during fine-tuning, builder)
FT_DATASETS: dict[str, tuple[str, bool, Any]] = {
    "people_qa": ("factoid_qa", True, _ft_people_qa),
    "people_compare": ("comparison", True, _ft_people_compare),
    "nli": ("nli", True, _ft_nli),
    "bio_qa": ("biomedical_qa", True, _ft_bio_qa),
    "bio_relation": ("relation_extraction", False, _ft_bio_relation),
    "news_qa": ("financial_qa", True, _ft_news_qa),
    "news_sentiment": ("sentiment", True, _ft_news_sentiment),
    "summarize": ("summarization", False, _ft_summarize),
    "math_word": ("arithmetic", True, _ft_math_word),
}


class _Draw:
    """The reserved entities of each domain, handed out in turn: a record's entity is new to the
    collection until the domain's reserve is used up, then the reserve starts over. (Cycling per
    data set instead gave every reserved person several records, tuning the synthesizer on
    repeats: measured, a different person per record raised its response accuracy.)"""

    def __init__(self, world: World):
        self.world = world
        self.drawn: dict[str, int] = {}

    def __call__(self, domain: str) -> Entity:
        pool = self.world.reserved(domain)
        k = self.drawn.get(domain, 0)
        self.drawn[domain] = k + 1
        return pool[k % len(pool)]

    def document(self, ent: Entity, rng: random.Random) -> str:
        """A rendering of the entity's document as the raw corpora render it (``name_rate``)."""
        return render_document(ent, rng, self.world.cfg["name_rate"])


def build_synth_ft(world: World) -> list[dict]:
    rng = seeded_rng(world.cfg, "dataset", "synth_ft")
    names = list(FT_DATASETS)
    require_reserved(world, "synth_ft")
    draw = _Draw(world)
    records = []
    for i in range(world.cfg["n_ft_examples"]):
        name = names[i % len(names)]
        task_type, seen, build = FT_DATASETS[name]
        context, candidates = build(draw, rng, i // len(names))
        pairs = rng.sample(candidates, rng.randint(2, min(6, len(candidates))))
        records.append(
            {
                "id": f"synth_ft-{i:07d}",
                "dataset": name,
                "task_type": task_type,
                "seen": seen,
                "context": context,
                "pairs": pairs,
            }
        )
    return records
