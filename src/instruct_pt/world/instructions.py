"""``general_instructions`` (OpenOrca-style) and ``instruction_tuning`` (FLAN-style)."""

from __future__ import annotations

import random

from instruct_pt.synthesis.protocol import COT_ANSWER_SEPARATOR, format_mc_question
from instruct_pt.world.config import RELATIONS, seeded_rng
from instruct_pt.world.corpora import capitalize_first, render_document, render_statement
from instruct_pt.world.entities import Entity, World, require_reserved
from instruct_pt.world.qa import ask_question, claim_pair, compare_years_pair, fact_pair
from instruct_pt.world.vocabulary import (
    MECHANISM_STATEMENTS,
    MECHANISMS,
    QUESTIONS,
    SENTIMENTS,
    STATEMENTS,
)

_WORDS = """garden river window candle planet forest basket ladder mirror pencil harbor lantern meadow
orchard violin blanket compass feather kettle marble pillow saddle thunder tunnel wagon""".split()


def _arithmetic(rng: random.Random) -> tuple[str, str, str]:
    """(question, short answer, explained answer)"""
    x, y = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice(["plus", "minus", "times"])
    if op == "times":
        x, y = rng.randint(2, 12), rng.randint(2, 12)
    value = {"plus": x + y, "minus": x - y, "times": x * y}[op]
    return f"What is {x} {op} {y}?", str(value), f"{x} {op} {y} equals {value}."


def _word_task(rng: random.Random) -> tuple[str, str, str]:
    word = rng.choice(_WORDS)
    kind = rng.randrange(3)
    if kind == 0:
        return (
            f"Spell the word '{word}' backwards.",
            word[::-1],
            f"The word '{word}' spelled backwards is '{word[::-1]}'.",
        )
    if kind == 1:
        return (
            f"How many letters are in the word '{word}'?",
            str(len(word)),
            f"The word '{word}' has {len(word)} letters.",
        )
    return (
        f"What is the first letter of the word '{word}'?",
        word[0],
        f"The word '{word}' starts with the letter '{word[0]}'.",
    )


def _reserved_fact(world: World, rng: random.Random) -> tuple[Entity, str]:
    domain = rng.choice(["general", "biomedicine", "finance"])
    ent = rng.choice(world.reserved(domain))
    relation = rng.choice([r for r in RELATIONS[domain] if r in QUESTIONS])
    return ent, relation


def build_general_instructions(world: World) -> list[dict]:
    require_reserved(world, "general_instructions")
    rng = seeded_rng(world.cfg, "dataset", "general_instructions")
    records = []
    for i in range(world.cfg["n_general_instructions"]):
        kind = i % 4
        if kind == 0:
            question, _, response = _arithmetic(rng)
        elif kind == 1:
            question, _, response = _word_task(rng)
        elif kind == 2:
            ent, relation = _reserved_fact(world, rng)
            question = ask_question(rng, relation, ent.name)
            value = ent.attrs[relation]
            if relation in STATEMENTS:
                response = render_statement(STATEMENTS[relation][0], ent, True, v=value)
            else:
                response = f"The answer to the question is {value}."
        else:
            people = world.reserved("general")
            a, b = rng.sample(people, 2)
            pair = compare_years_pair(rng, a, b)
            question = pair["question"]
            response = pair["answer"].replace(COT_ANSWER_SEPARATOR, " So the answer is ")
        records.append(
            {"id": f"general_instructions-{i:07d}", "question": question, "response": response}
        )
    return records


_REVIEW_ITEMS = [
    "the soup",
    "the film",
    "the hotel room",
    "the concert",
    "the novel",
    "the new phone",
    "the museum tour",
    "the coffee",
]
_REVIEW_WORDS = {
    "positive": [
        "was wonderful",
        "was a delight",
        "exceeded my hopes",
        "was excellent",
        "made my day",
    ],
    "negative": [
        "was awful",
        "was a waste of money",
        "let me down",
        "was cold and bland",
        "was boring",
    ],
}
_TOPICS = {
    "sports": [
        "Local team wins the cup final",
        "Runner sets a new track record",
        "Coach signs a new contract",
    ],
    "science": [
        "Researchers map a distant comet",
        "New telescope spots a young star",
        "Study finds bees count to four",
    ],
    "weather": [
        "Heavy snow closes mountain roads",
        "Heatwave expected next week",
        "Storm brings floods to the coast",
    ],
    "arts": [
        "Painter opens a new gallery show",
        "Orchestra plays a forgotten symphony",
        "Poet wins a national prize",
    ],
}


def build_instruction_tuning(world: World) -> list[dict]:
    require_reserved(world, "instruction_tuning")
    rng = seeded_rng(world.cfg, "dataset", "instruction_tuning")
    people, drugs, companies = (
        world.reserved("general"),
        world.reserved("biomedicine"),
        world.reserved("finance"),
    )
    records = []
    kinds = [
        "sentiment",
        "topic",
        "uppercase",
        "arithmetic",
        "word",
        "reading_comprehension",
        "closed_book_qa",
        "yes_no_qa",
        "comparison",
        "entity_listing",
        "financial_sentiment",
        "drug_relation",
    ]
    for i in range(world.cfg["n_instruction_tuning"]):
        kind = kinds[i % len(kinds)]
        if kind == "sentiment":
            label = rng.choice(["positive", "negative"])
            review = capitalize_first(
                f"{rng.choice(_REVIEW_ITEMS)} {rng.choice(_REVIEW_WORDS[label])}."
            )
            instruction, response = (
                format_mc_question(
                    f"Review: {review}\nIs this review positive or negative?",
                    ["positive", "negative"],
                ),
                label,
            )
        elif kind == "topic":
            topic = rng.choice(sorted(_TOPICS))
            instruction = format_mc_question(
                f"Headline: {rng.choice(_TOPICS[topic])}\nWhich topic is this headline about?",
                sorted(_TOPICS),
            )
            response = topic
        elif kind == "uppercase":
            sentence = capitalize_first(
                f"{rng.choice(_REVIEW_ITEMS)} {rng.choice(_REVIEW_WORDS['positive'])}."
            )
            instruction, response = (
                f"Write this sentence in capital letters: {sentence}",
                sentence.upper(),
            )
        elif kind == "arithmetic":
            instruction, response, _ = _arithmetic(rng)
        elif kind == "word":
            instruction, response, _ = _word_task(rng)
        elif kind == "reading_comprehension":
            ent = rng.choice(people)
            relation = rng.choice(RELATIONS["general"])
            instruction = f"{render_document(ent, rng)}\n\n{ask_question(rng, relation, ent.name)}"
            response = ent.attrs[relation]
        elif kind == "closed_book_qa":
            ent = rng.choice(people + drugs)
            pair = fact_pair(
                rng,
                ent,
                rng.choice(
                    ["treats", "target"] if ent.domain == "biomedicine" else RELATIONS["general"]
                ),
                ("mc",),
            )
            instruction, response = pair["question"], pair["answer"]
        elif kind == "yes_no_qa":
            ent = rng.choice(people)
            claim, label = claim_pair(rng, ent)
            instruction, response = (
                f"{render_document(ent, rng)}\n\nBased on the text, is this true? {claim}",
                label,
            )
        elif kind == "comparison":
            a, b = rng.sample(people, 2)
            pair = compare_years_pair(rng, a, b)
            facts = f"{a.name} was born in {a.attrs['birth_year']}. {b.name} was born in {b.attrs['birth_year']}."
            instruction, response = f"{facts}\n{pair['question']}", pair["answer"]
        elif kind == "entity_listing":
            ent = rng.choice(companies)
            sentence = f"{ent.attrs['ceo']} said that {ent.name} will open a new office in {ent.attrs['hq_city']}."
            instruction = f"List the people and companies mentioned in this sentence: {sentence}"
            response = f"{ent.attrs['ceo']}, {ent.name}"
        elif kind == "financial_sentiment":
            ent = rng.choice(companies)
            instruction = format_mc_question(
                f"{render_document(ent, rng)}\nWhat is the sentiment of the news?", SENTIMENTS
            )
            response = ent.attrs["sentiment"]
        else:  # drug_relation
            ent = rng.choice(drugs)
            sentence = render_statement(
                rng.choice(MECHANISM_STATEMENTS[ent.attrs["mechanism"]]),
                ent,
                True,
                g=ent.attrs["target"],
            )
            instruction = format_mc_question(
                f"{sentence}\nHow does {ent.name} act on {ent.attrs['target']}?", MECHANISMS
            )
            response = ent.attrs["mechanism"]
        records.append(
            {
                "id": f"instruction_tuning-{i:07d}",
                "task": kind,
                "instruction": instruction,
                "response": response,
            }
        )
    return records
