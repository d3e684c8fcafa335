"""Evaluation suites: one builder per task of ``EVAL_TASKS``, ``eval_records``, ``write_eval_suite``.

Over 500 lines because it holds one builder for each of the 13 tasks (each under ~80 lines),
beside the record helpers they share; the ceilings' training splits are in ``world.ceiling``.

Evaluation records ask only about corpus entities, in phrasings no training set contains.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from instruct_pt.common import DataError, write_jsonl
from instruct_pt.world.config import EVAL_TASKS, RELATIONS, seeded_rng
from instruct_pt.world.corpora import (
    capitalize_first,
    render_document,
    render_statement,
)
from instruct_pt.world.entities import Entity, World, build_world
from instruct_pt.world.qa import draw_choices
from instruct_pt.world.vocabulary import (
    EVAL_INSTRUCTIONS,
    MECHANISM_STATEMENTS,
    MECHANISMS,
    POOLS,
    QUESTIONS,
    SENTIMENTS,
    STATEMENTS,
    eval_phrasings,
)

log = logging.getLogger(__name__)


def pick_cycling(rng: random.Random, items: list, n: int) -> list:
    """n items, cycling through freshly shuffled copies of ``items`` (few repeats, all used)."""
    out: list = []
    while len(out) < n:
        batch = list(items)
        rng.shuffle(batch)
        out += batch
    return out[:n]


def _fresh(rng: random.Random, pools: dict, key: object, variants: list) -> object:
    """The next unused one of ``variants`` for ``key`` (an entity, or an entity and a label): an
    entity asked about again gets another question while it has one left (then a fresh shuffle)."""
    if not pools.get(key):
        pools[key] = list(variants)
        rng.shuffle(pools[key])
    return pools[key].pop()


def _mc_record(query: str, choices: list[str], gold: str) -> dict:
    return {"query": query, "choices": choices, "gold": choices.index(gold)}


def _eval_reading(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in pick_cycling(rng, world.corpus("general"), n):
        relation = rng.choice(RELATIONS["general"])
        question = rng.choice(QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        query = f"{render_document(ent, rng)}\nQuestion: {question}\nAnswer:"
        out.append(_mc_record(query, draw_choices(rng, gold, POOLS[relation]), gold))
    return out


def _eval_reasoning(world: World, rng: random.Random, n: int) -> list[dict]:
    people = world.corpus("general")
    labels = {
        "employer": "employer",
        "university": "university",
        "hobby": "hobby",
        "birth_city": "birth city",
    }
    # groups of two or more people sharing a value, per relation (computed once, drawn from often)
    shared: dict[str, list[list[Entity]]] = {}
    for relation in labels:
        groups: dict[str, list[Entity]] = {}
        for p in people:
            groups.setdefault(p.attrs[relation], []).append(p)
        shared[relation] = [g for _, g in sorted(groups.items()) if len(g) > 1]
    out: list[dict] = []
    asked: set[str] = set()
    for _ in range(n):
        # a pair already asked about is drawn again (a few tries): in a world of few people, two
        # people sharing a value are few, and a repeated question is no new evidence
        for _attempt in range(20):
            rec = _reasoning_record(rng, people, labels, shared)
            if rec["query"] not in asked:
                break
        asked.add(rec["query"])
        out.append(rec)
    return out


def _reasoning_record(
    rng: random.Random,
    people: list[Entity],
    labels: dict[str, str],
    shared: dict[str, list[list[Entity]]],
) -> dict:
    """One reasoning question: who was born first / more recently, or do two share a value."""
    kind = rng.choice(["first", "recent", "same"])
    if kind == "same":
        relation = rng.choice(sorted(labels))
        if shared[relation] and rng.random() < 0.5:
            a, b = rng.sample(rng.choice(shared[relation]), 2)
        else:
            a = rng.choice(people)
            b = rng.choice([p for p in people if p.attrs[relation] != a.attrs[relation]])
    else:
        relation = "birth_year"
        a = rng.choice(people)
        b = rng.choice([p for p in people if p.attrs[relation] != a.attrs[relation]])
    facts = " ".join(
        render_statement(STATEMENTS[relation][0], e, True, v=e.attrs[relation]) for e in (a, b)
    )
    if kind == "same":
        question = EVAL_INSTRUCTIONS["reasoning_same"].format(label=labels[relation])
        gold = "yes" if a.attrs[relation] == b.attrs[relation] else "no"
        return _mc_record(f"{facts}\nQuestion: {question}\nAnswer:", ["yes", "no"], gold)
    older, younger = sorted((a, b), key=lambda e: int(e.attrs["birth_year"]))
    gold = (older if kind == "first" else younger).name
    question = EVAL_INSTRUCTIONS[f"reasoning_{kind}"]
    return _mc_record(f"{facts}\nQuestion: {question}\nAnswer:", [a.name, b.name], gold)


def _eval_knowledge(world: World, rng: random.Random, n: int) -> list[dict]:
    """Closed-book questions: a person asked again is asked another of their facts (``_fresh``),
    so the questions ask distinct facts while any is left; the same fact asked twice, with other
    distractors, would pass for independent evidence (the 140-person tiny world, seed 7, asked 398
    distinct facts in 500 questions when the relation was drawn at random)."""
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("general"), n):
        relation = _fresh(rng, pools, ent.name, RELATIONS["general"])
        question = rng.choice(QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        out.append(
            _mc_record(
                f"Question: {question}\nAnswer:", draw_choices(rng, gold, POOLS[relation]), gold
            )
        )
    return out


# Domain tasks vary the context, template and phrasing of each question (``_fresh``), so that the
# tiny preset's 500 questions a task are distinct over ~84 entities a domain.
_TRIAL_INTROS = [
    "In a randomized trial, {k} patients with {x} received {d}.",
    "A placebo-controlled study gave {d} to {k} patients with {x}.",
    "A double-blind trial of {d} enrolled {k} adults with {x}.",
    "Researchers randomly assigned {k} patients with {x} to {d} or placebo.",
]
_TRIAL_RESULTS = {
    "effective": [
        "Symptoms improved markedly compared with placebo.",
        "Patients given the drug recovered faster than those given placebo.",
        "At twelve weeks the treated group had far fewer symptoms than the placebo group.",
    ],
    "ineffective": [
        "Symptoms did not differ from placebo.",
        "Patients given the drug fared no better than those given placebo.",
        "At twelve weeks the treated group had as many symptoms as the placebo group.",
    ],
    "inconclusive": [
        "The results were mixed and did not allow a firm conclusion.",
        "Some measures improved and others did not, so the benefit remains uncertain.",
        "The findings were inconsistent across sites, leaving the effect unclear.",
    ],
}


def _eval_pubmedqa(world: World, rng: random.Random, n: int) -> list[dict]:
    labels = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}
    variants = [
        (intro, result, question)
        for intro in _TRIAL_INTROS
        for result in range(3)
        for question in eval_phrasings("pubmedqa")
    ]
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        intro, result, question = _fresh(rng, pools, ent.name, variants)
        context = " ".join(
            [
                intro.format(k=a["trial_size"], x=a["treats"], d=ent.name),
                _TRIAL_RESULTS[a["outcome"]][result],
            ]
        )
        out.append(
            _mc_record(
                f"Context: {context}\nQuestion: {question.format(d=ent.name, x=a['treats'])}\nAnswer:",
                ["yes", "no", "maybe"],
                labels[a["outcome"]],
            )
        )
    return out


_LAB_PREFIXES = [
    "",
    "In cell studies, ",
    "Laboratory work showed that ",
    "According to the study, ",
]


def _eval_chemprot(world: World, rng: random.Random, n: int) -> list[dict]:
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        variants = [
            (statement, prefix, question)
            for statement in MECHANISM_STATEMENTS[a["mechanism"]]
            for prefix in _LAB_PREFIXES
            for question in eval_phrasings("chemprot")
        ]
        statement, prefix, question = _fresh(rng, pools, ent.name, variants)
        sentence = prefix + render_statement(statement, ent, True, g=a["target"])
        out.append(
            _mc_record(
                f"Sentence: {sentence}\nQuestion: {question.format(d=ent.name, g=a['target'])}\nAnswer:",
                list(MECHANISMS),
                a["mechanism"],
            )
        )
    return out


def _eval_mqp(world: World, rng: random.Random, n: int) -> list[dict]:
    """Two eval phrasings of questions about one drug: of one relation (same) or two (not)."""
    relations = ["treats", "target", "side_effect"]
    phrasings = {r: QUESTIONS[r]["eval"] for r in relations}
    pairs = {
        same: [
            (q1, q2)
            for r1 in relations
            for r2 in relations
            if (r1 == r2) == same
            for q1 in phrasings[r1]
            for q2 in phrasings[r2]
            if q1 != q2
        ]
        for same in (True, False)
    }
    pools: dict = {}
    out = []
    for k, ent in enumerate(pick_cycling(rng, world.corpus("biomedicine"), n)):
        same = k % 2 == 0
        q1, q2 = (t.format(n=ent.name) for t in _fresh(rng, pools, (ent.name, same), pairs[same]))
        instruction = rng.choice(eval_phrasings("mqp"))
        query = f"Question 1: {q1}\nQuestion 2: {q2}\n{instruction}\nAnswer:"
        out.append(_mc_record(query, ["yes", "no"], "yes" if same else "no"))
    return out


# {o}: the trial's outcome, as a results sentence (_RCT_OUTCOMES)
_RCT_SENTENCES = {
    "background": [
        "{x} affects many adults, and treatments before {d} were limited.",
        "Few options existed for patients with {x} before {d}.",
        "Many patients with {x} stop older treatments, which is why {d} was developed.",
        "{d} is a new candidate for {x}, a condition with few good treatments.",
    ],
    "objective": [
        "We aimed to test whether {d} reduces symptoms of {x}.",
        "This study asked whether {d} is safe in {x}.",
        "Our goal was to measure how well {d} works in adults with {x}.",
        "We set out to compare {d} with placebo in patients with {x}.",
    ],
    "methods": [
        "We enrolled {k} patients and gave them {d} or placebo for twelve weeks.",
        "Patients were randomly assigned to {d} or placebo.",
        "Neither the patients nor their doctors knew who received {d}.",
        "Symptoms were scored every two weeks in all {k} patients, on {d} or placebo.",
    ],
    "results": [
        "{o}",
        "{e} was the most frequent side effect of {d}.",
        "Patients given {d} reported {e} more often than those given placebo.",
        "Of the {k} patients enrolled, most completed the full course of {d} or placebo.",
    ],
    "conclusions": [
        "Larger trials of {d} are needed before wider use.",
        "These findings should guide further study of {d} in {x}.",
        "Doctors treating {x} may weigh these results when considering {d}.",
        "In summary, this trial adds to what is known about {d}.",
    ],
}
_RCT_OUTCOMES = {
    "effective": "Symptoms improved in more patients given {d} than placebo.",
    "ineffective": "Symptoms improved in as many patients given placebo as given {d}.",
    "inconclusive": "The difference between {d} and placebo was too small to be certain.",
}


def _eval_rct(world: World, rng: random.Random, n: int) -> list[dict]:
    roles = list(_RCT_SENTENCES)
    pools: dict = {}
    out = []
    for k, ent in enumerate(pick_cycling(rng, world.corpus("biomedicine"), n)):
        a = ent.attrs
        role = roles[k % len(roles)]
        variants = [(t, q) for t in _RCT_SENTENCES[role] for q in eval_phrasings("rct")]
        template, question = _fresh(rng, pools, (ent.name, role), variants)
        sentence = capitalize_first(
            template.format(
                x=a["treats"],
                d=ent.name,
                k=a["trial_size"],
                e=a["side_effect"],
                o=_RCT_OUTCOMES[a["outcome"]].format(d=ent.name),
            )
        )
        out.append(_mc_record(f"Sentence: {sentence}\nQuestion: {question}\nAnswer:", roles, role))
    return out


def _eval_usmle(world: World, rng: random.Random, n: int) -> list[dict]:
    drugs = world.corpus("biomedicine")
    variants = [
        (kind, question)
        for kind in ("treats", "target", "side_effect")
        for question in QUESTIONS[kind]["eval"]
    ] + [("which_drug", EVAL_INSTRUCTIONS["usmle"])]
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, drugs, n):
        a = ent.attrs
        kind, question = _fresh(rng, pools, ent.name, variants)
        if kind == "which_drug":
            others = sorted({d.name for d in drugs if d.attrs["treats"] != a["treats"]})
            if len(others) >= 3:
                choices = rng.sample(others, 3) + [ent.name]
                rng.shuffle(choices)
                query = f"Question: {question.format(x=a['treats'])}\nAnswer:"
                out.append(_mc_record(query, choices, ent.name))
                continue
            kind, question = "treats", rng.choice(QUESTIONS["treats"]["eval"])
        out.append(
            _mc_record(
                f"Question: {question.format(n=ent.name)}\nAnswer:",
                draw_choices(rng, a[kind], POOLS[kind]),
                a[kind],
            )
        )
    return out


# revenue this quarter {r} first, a year earlier {p} second (tests read them in that order)
_REVENUE_CONTEXTS = [
    "{c} reported revenue of {r} million dollars this quarter, compared with {p} million dollars a year earlier.",
    "This quarter {c} took in {r} million dollars of revenue; a year earlier it took in {p} million dollars.",
    "Quarterly revenue at {c} was {r} million dollars, against {p} million dollars in the same quarter last year.",
]


def _eval_convfinqa(world: World, rng: random.Random, n: int) -> list[dict]:
    variants = [
        (kind, context, question)
        for kind in ("change", "total", "percent")
        for context in _REVENUE_CONTEXTS
        for question in eval_phrasings("conv_" + kind)
    ]
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("finance"), n):
        a = ent.attrs
        r, p = int(a["revenue"]), int(a["prev_revenue"])
        kind, context, question = _fresh(rng, pools, ent.name, variants)
        answer = {"change": r - p, "total": r + p, "percent": int(a["growth"])}[kind]
        context = context.format(c=ent.name, r=r, p=p)
        out.append({"query": f"{context}\nQuestion: {question}\nAnswer:", "answer": str(answer)})
    return out


# {c}: company, {g}: growth in percent (absolute), {r}: revenue in million dollars
_SENTIMENT_TEXTS = {
    "news": {
        "positive": [
            "{c} said quarterly revenue rose {g} percent to {r} million dollars.",
            "{c} posted a {g} percent rise in quarterly revenue, beating its own forecast.",
            "Revenue at {c} climbed {g} percent from a year earlier to {r} million dollars.",
            "{c} raised its outlook after revenue grew {g} percent in the quarter.",
        ],
        "negative": [
            "{c} said quarterly revenue dropped {g} percent to {r} million dollars.",
            "{c} posted a {g} percent fall in quarterly revenue, missing its own forecast.",
            "Revenue at {c} declined {g} percent from a year earlier to {r} million dollars.",
            "{c} cut its outlook after revenue shrank {g} percent in the quarter.",
        ],
        "neutral": [
            "{c} said quarterly revenue was roughly unchanged at {r} million dollars.",
            "{c} posted quarterly revenue in line with a year earlier, meeting its own forecast.",
            "Revenue at {c} held steady from a year earlier at {r} million dollars.",
            "{c} kept its outlook after revenue was flat in the quarter.",
        ],
    },
    "post": {
        "positive": [
            "{c} crushing it this quarter, revenue up {g}%",
            "loving my {c} shares, sales up {g}% and climbing",
            "{c} revenue +{g}%, this one keeps delivering",
            "bought more {c} today after that {g}% revenue jump",
        ],
        "negative": [
            "{c} revenue down {g}% again, not looking good",
            "selling my {c} shares, revenue fell {g}%",
            "{c} revenue -{g}%, this one keeps disappointing",
            "{c} sales down {g}%, management has lost the plot",
        ],
        "neutral": [
            "{c} revenue flat this quarter, nothing exciting",
            "holding {c} for now, sales basically unchanged",
            "{c} flat quarter, no reason to buy or sell",
            "{c} numbers came in as expected, meh",
        ],
    },
    "headline": {
        "positive": [
            "{c} shares climb after revenue jumps {g} percent",
            "{c} stock rallies on {g} percent sales gain",
            "Investors bid up {c} as revenue rises {g} percent",
            "{c} shares hit a high after a strong quarter",
        ],
        "negative": [
            "{c} shares slide as revenue drops {g} percent",
            "{c} stock tumbles on {g} percent sales decline",
            "Investors dump {c} as revenue falls {g} percent",
            "{c} shares hit a low after a weak quarter",
        ],
        "neutral": [
            "{c} shares hold steady after a flat quarter",
            "{c} stock little changed as sales stall",
            "Investors shrug at {c} results, shares flat",
            "{c} shares end unchanged after the quarterly report",
        ],
    },
}


def _sentiment_text(ent: Entity, style: str, template: int = 0) -> str:
    a = ent.attrs
    texts = _SENTIMENT_TEXTS[style][a["sentiment"]]
    return texts[template].format(c=ent.name, g=abs(int(a["growth"])), r=a["revenue"])


def _sentiment_records(
    world: World, rng: random.Random, n: int, style: str, head: str, key: str
) -> list[dict]:
    """FPB / FiQA-like: a text in ``style`` about a company, its sentiment to classify."""
    variants = [(t, q) for t in range(4) for q in eval_phrasings(key)]
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("finance"), n):
        template, question = _fresh(rng, pools, ent.name, variants)
        query = f"{head}{_sentiment_text(ent, style, template)}\nQuestion: {question}\nAnswer:"
        out.append(_mc_record(query, list(SENTIMENTS), ent.attrs["sentiment"]))
    return out


def _eval_fpb(world: World, rng: random.Random, n: int) -> list[dict]:
    return _sentiment_records(world, rng, n, "news", "", "fpb")


def _eval_fiqa(world: World, rng: random.Random, n: int) -> list[dict]:
    return _sentiment_records(world, rng, n, "post", "Post: ", "fiqa")


def _eval_headline(world: World, rng: random.Random, n: int) -> list[dict]:
    pools: dict = {}
    out = []
    for k, ent in enumerate(pick_cycling(rng, world.corpus("finance"), n)):
        sub = ("up", "down")[k % 2]
        gold = (
            "yes" if ent.attrs["sentiment"] == {"up": "positive", "down": "negative"}[sub] else "no"
        )
        variants = [(t, q) for t in range(4) for q in eval_phrasings("headline_" + sub)]
        template, question = _fresh(rng, pools, (ent.name, sub), variants)
        headline = _sentiment_text(ent, "headline", template)
        query = f"Headline: {headline}\nQuestion: {question}\nAnswer:"
        out.append({"subtask": sub, **_mc_record(query, ["yes", "no"], gold)})
    return out


# {p}: chief executive, {c}: company, {y}: headquarters city; "pc"/"cp": order of the names
_NER_TEMPLATES = [
    ("{p}, chief executive of {c}, spoke to investors in {y}.", "pc"),
    ("{c} said on Monday that {p} will stay on as chief executive.", "cp"),
    ("Analysts praised {c} after {p} presented the quarterly report in {y}.", "cp"),
    ("{p} told reporters in {y} that {c} would hire more staff.", "pc"),
    ("Shares of {c} rose after {p} announced a new product.", "cp"),
    ("In an interview, {p} said that {c} plans to open an office in {y}.", "pc"),
    ("{c} confirmed that {p} met regulators in {y} last week.", "cp"),
    ("{p} has led {c} since it moved its headquarters to {y}.", "pc"),
]


def _eval_ner(world: World, rng: random.Random, n: int) -> list[dict]:
    variants = [(t, q) for t in _NER_TEMPLATES for q in eval_phrasings("ner")]
    pools: dict = {}
    out = []
    for ent in pick_cycling(rng, world.corpus("finance"), n):
        (template, order), question = _fresh(rng, pools, ent.name, variants)
        a = ent.attrs
        sentence = template.format(p=a["ceo"], c=ent.name, y=a["hq_city"])
        names = [a["ceo"], ent.name] if order == "pc" else [ent.name, a["ceo"]]
        out.append(
            {
                "query": f"Sentence: {sentence}\nQuestion: {question}\nAnswer:",
                "answer": ", ".join(names),
            }
        )
    return out


EVAL_BUILDERS = {
    "general": {
        "reading": _eval_reading,
        "reasoning": _eval_reasoning,
        "knowledge": _eval_knowledge,
    },
    "biomedicine": {
        "pubmedqa_like": _eval_pubmedqa,
        "chemprot_like": _eval_chemprot,
        "mqp_like": _eval_mqp,
        "rct_like": _eval_rct,
        "usmle_like": _eval_usmle,
    },
    "finance": {
        "convfinqa_like": _eval_convfinqa,
        "fpb_like": _eval_fpb,
        "fiqa_sa_like": _eval_fiqa,
        "headline_like": _eval_headline,
        "ner_like": _eval_ner,
    },
}


def eval_records(
    suite: str, task: str, world_cfg: dict | None, seed: int | None = None
) -> list[dict]:
    """The records of one evaluation task (what ``write_eval_suite`` writes to ``{task}.jsonl``).

    At most ``eval_per_task`` records, every question asked once: a builder that cycles over too
    few entities repeats questions, and repeats would pass for independent evidence (standard
    errors, bootstrap intervals). They are dropped, counted and logged; the task then has fewer
    records than asked for.
    """
    if suite not in EVAL_BUILDERS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(EVAL_BUILDERS)})"
        )
    if task not in EVAL_BUILDERS[suite]:
        raise DataError(f"world: unknown task {task!r} in suite {suite!r}")
    world = build_world(world_cfg, seed)
    rng = seeded_rng(world.cfg, "eval", suite, task)
    records: list[dict] = []
    seen: set[str] = set()
    asked = world.cfg["eval_per_task"]
    for rec in EVAL_BUILDERS[suite][task](world, rng, asked):
        key = json.dumps([rec.get("query"), rec.get("choices")], ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        sub = rec.pop("subtask", None)
        i = len(records)
        rec_id = f"{task}-{sub}-{i:05d}" if sub else f"{task}-{i:05d}"
        records.append({"id": rec_id, **rec})
    if len(records) < asked:
        log.warning(
            "world: %s/%s has %d distinct questions of %d asked (repeats dropped)",
            suite,
            task,
            len(records),
            asked,
        )
    return records


def write_eval_suite(
    suite: str, world_cfg: dict | None, out_dir: str, seed: int | None = None
) -> dict:
    """Write ``{out_dir}/{task}.jsonl`` for every task of ``suite``; return ``{task: meta}``.

    Multiple-choice records are ``{"id", "query", "choices", "gold"}``, generation records
    ``{"id", "query", "answer"}``. Queries end without a trailing space (lm-eval puts " " before the
    target) and choices have no leading space.
    """
    if suite not in EVAL_TASKS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(EVAL_TASKS)})"
        )
    out = Path(out_dir)
    meta = {}
    for task, task_meta in EVAL_TASKS[suite].items():
        n = write_jsonl(out / f"{task}.jsonl", eval_records(suite, task, world_cfg, seed))
        log.info("world: wrote %d records of %s/%s", n, suite, task)
        meta[task] = dict(task_meta)
    return meta


# ----------------------------------------------------------------------------- ceiling training
# A task-format training split per evaluation task, for the ceiling models (rules/ceilings.smk):
# the same builders, another random purpose. Open-book tasks (the answer is in the query) ask
# about the reserved entities (general ones: fresh people, see below), which no evaluation record
# names; closed-book tasks ask about the
# corpus entities (the model can only know those) but never a fact (entity, relation) that an
# evaluation record asks. No training query equals an evaluation query.
