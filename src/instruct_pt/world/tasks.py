"""Evaluation suites: one builder per task of ``EVAL_TASKS``, ``eval_records``, ``write_eval_suite``.

Evaluation records ask only about corpus entities, in phrasings no training set contains.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from instruct_pt.common import DataError, write_jsonl
from instruct_pt.world.config import EVAL_TASKS, RELATIONS, _rng
from instruct_pt.world.corpora import _cap, _say, render_document
from instruct_pt.world.entities import Entity, World, build_world
from instruct_pt.world.qa import _choices
from instruct_pt.world.vocabulary import (
    _EVAL_INSTRUCTIONS,
    _MECHANISM_STATEMENTS,
    _MECHANISMS,
    _POOLS,
    _QUESTIONS,
    _SENTIMENTS,
    _STATEMENTS,
)

log = logging.getLogger(__name__)


def _picks(rng: random.Random, items: list, n: int) -> list:
    """n items, cycling through freshly shuffled copies of ``items`` (few repeats, all used)."""
    out: list = []
    while len(out) < n:
        batch = list(items)
        rng.shuffle(batch)
        out += batch
    return out[:n]


def _mc_record(query: str, choices: list[str], gold: str) -> dict:
    return {"query": query, "choices": choices, "gold": choices.index(gold)}


def _eval_reading(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("general"), n):
        relation = rng.choice(RELATIONS["general"])
        question = rng.choice(_QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        query = f"{render_document(ent, rng)}\nQuestion: {question}\nAnswer:"
        out.append(_mc_record(query, _choices(rng, gold, _POOLS[relation]), gold))
    return out


def _eval_reasoning(world: World, rng: random.Random, n: int) -> list[dict]:
    people = world.corpus("general")
    labels = {
        "employer": "employer",
        "university": "university",
        "hobby": "hobby",
        "birth_city": "birth city",
    }
    out = []
    for _ in range(n):
        kind = rng.choice(["first", "recent", "same"])
        if kind == "same":
            relation = rng.choice(sorted(labels))
            groups: dict[str, list[Entity]] = {}
            for p in people:
                groups.setdefault(p.attrs[relation], []).append(p)
            shared = [g for _, g in sorted(groups.items()) if len(g) > 1]
            if shared and rng.random() < 0.5:
                a, b = rng.sample(rng.choice(shared), 2)
            else:
                a = rng.choice(people)
                b = rng.choice([p for p in people if p.attrs[relation] != a.attrs[relation]])
            facts = " ".join(
                _say(_STATEMENTS[relation][0], e, True, v=e.attrs[relation]) for e in (a, b)
            )
            question = _EVAL_INSTRUCTIONS["reasoning_same"].format(label=labels[relation])
            gold = "yes" if a.attrs[relation] == b.attrs[relation] else "no"
            out.append(_mc_record(f"{facts}\nQuestion: {question}\nAnswer:", ["yes", "no"], gold))
            continue
        a = rng.choice(people)
        b = rng.choice([p for p in people if p.attrs["birth_year"] != a.attrs["birth_year"]])
        facts = " ".join(
            _say(_STATEMENTS["birth_year"][0], e, True, v=e.attrs["birth_year"]) for e in (a, b)
        )
        older, younger = sorted((a, b), key=lambda e: int(e.attrs["birth_year"]))
        gold = (older if kind == "first" else younger).name
        question = _EVAL_INSTRUCTIONS[f"reasoning_{kind}"]
        out.append(_mc_record(f"{facts}\nQuestion: {question}\nAnswer:", [a.name, b.name], gold))
    return out


def _eval_knowledge(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("general"), n):
        relation = rng.choice(RELATIONS["general"])
        question = rng.choice(_QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        out.append(
            _mc_record(
                f"Question: {question}\nAnswer:", _choices(rng, gold, _POOLS[relation]), gold
            )
        )
    return out


def _eval_pubmedqa(world: World, rng: random.Random, n: int) -> list[dict]:
    results = {
        "effective": "Symptoms improved markedly compared with placebo.",
        "ineffective": "Symptoms did not differ from placebo.",
        "inconclusive": "The results were mixed and did not allow a firm conclusion.",
    }
    labels = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}
    out = []
    for ent in _picks(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        context = f"In a randomized trial, {a['trial_size']} patients with {a['treats']} received {ent.name}. {results[a['outcome']]}"
        question = _EVAL_INSTRUCTIONS["pubmedqa"].format(d=ent.name, x=a["treats"])
        out.append(
            _mc_record(
                f"Context: {context}\nQuestion: {question}\nAnswer:",
                ["yes", "no", "maybe"],
                labels[a["outcome"]],
            )
        )
    return out


def _eval_chemprot(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        sentence = _say(rng.choice(_MECHANISM_STATEMENTS[a["mechanism"]]), ent, True, g=a["target"])
        question = _EVAL_INSTRUCTIONS["chemprot"].format(d=ent.name, g=a["target"])
        out.append(
            _mc_record(
                f"Sentence: {sentence}\nQuestion: {question}\nAnswer:",
                list(_MECHANISMS),
                a["mechanism"],
            )
        )
    return out


def _eval_mqp(world: World, rng: random.Random, n: int) -> list[dict]:
    relations = ["treats", "target", "side_effect"]
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("biomedicine"), n)):
        r1 = rng.choice(relations)
        same = k % 2 == 0
        r2 = r1 if same else rng.choice([r for r in relations if r != r1])
        q1, q2 = (
            t.format(n=ent.name) for t in _QUESTIONS[r1]["eval"][:1] + _QUESTIONS[r2]["eval"][1:]
        )
        if rng.random() < 0.5:
            q1, q2 = q2, q1
        query = f"Question 1: {q1}\nQuestion 2: {q2}\n{_EVAL_INSTRUCTIONS['mqp']}\nAnswer:"
        out.append(_mc_record(query, ["yes", "no"], "yes" if same else "no"))
    return out


_RCT_SENTENCES = {
    "background": [
        "{x} affects many adults and current treatments are limited.",
        "Few options exist for patients with {x}.",
    ],
    "objective": [
        "We aimed to test whether {d} reduces symptoms of {x}.",
        "This study asked whether {d} is safe in {x}.",
    ],
    "methods": [
        "We enrolled {k} patients and gave them {d} or placebo for twelve weeks.",
        "Patients were randomly assigned to {d} or placebo.",
    ],
    "results": [
        "Symptoms improved in more patients given {d} than placebo.",
        "{e} was the most frequent side effect of {d}.",
    ],
    "conclusions": [
        "{d} may be a useful option for {x}.",
        "Larger trials of {d} are needed before wider use.",
    ],
}


def _eval_rct(world: World, rng: random.Random, n: int) -> list[dict]:
    roles = list(_RCT_SENTENCES)
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("biomedicine"), n)):
        a = ent.attrs
        role = roles[k % len(roles)]
        sentence = _cap(
            rng.choice(_RCT_SENTENCES[role]).format(
                x=a["treats"], d=ent.name, k=a["trial_size"], e=a["side_effect"]
            )
        )
        out.append(
            _mc_record(
                f"Sentence: {sentence}\nQuestion: {_EVAL_INSTRUCTIONS['rct']}\nAnswer:", roles, role
            )
        )
    return out


def _eval_usmle(world: World, rng: random.Random, n: int) -> list[dict]:
    drugs = world.corpus("biomedicine")
    out = []
    for ent in _picks(rng, drugs, n):
        a = ent.attrs
        kind = rng.choice(["treats", "target", "side_effect", "which_drug"])
        if kind == "which_drug":
            others = sorted({d.name for d in drugs if d.attrs["treats"] != a["treats"]})
            if len(others) >= 3:
                question = _EVAL_INSTRUCTIONS["usmle"].format(x=a["treats"])
                choices = rng.sample(others, 3) + [ent.name]
                rng.shuffle(choices)
                out.append(_mc_record(f"Question: {question}\nAnswer:", choices, ent.name))
                continue
            kind = "treats"
        question = rng.choice(_QUESTIONS[kind]["eval"]).format(n=ent.name)
        out.append(
            _mc_record(
                f"Question: {question}\nAnswer:", _choices(rng, a[kind], _POOLS[kind]), a[kind]
            )
        )
    return out


def _eval_convfinqa(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("finance"), n):
        a = ent.attrs
        r, p = int(a["revenue"]), int(a["prev_revenue"])
        kind = rng.choice(["change", "total", "percent"])
        answer = {"change": r - p, "total": r + p, "percent": int(a["growth"])}[kind]
        context = f"{ent.name} reported revenue of {r} million dollars this quarter, compared with {p} million dollars a year earlier."
        out.append(
            {
                "query": f"{context}\nQuestion: {_EVAL_INSTRUCTIONS['conv_' + kind]}\nAnswer:",
                "answer": str(answer),
            }
        )
    return out


def _sentiment_text(ent: Entity, style: str) -> str:
    a, growth = ent.attrs, abs(int(ent.attrs["growth"]))
    c, s = ent.name, a["sentiment"]
    if style == "news":
        return {
            "positive": f"{c} said quarterly revenue rose {growth} percent to {a['revenue']} million dollars.",
            "negative": f"{c} said quarterly revenue dropped {growth} percent to {a['revenue']} million dollars.",
            "neutral": f"{c} said quarterly revenue was roughly unchanged at {a['revenue']} million dollars.",
        }[s]
    if style == "post":
        return {
            "positive": f"{c} crushing it this quarter, revenue up {growth}%",
            "negative": f"{c} revenue down {growth}% again, not looking good",
            "neutral": f"{c} revenue flat this quarter, nothing exciting",
        }[s]
    return {  # headline
        "positive": f"{c} shares climb after revenue jumps {growth} percent",
        "negative": f"{c} shares slide as revenue drops {growth} percent",
        "neutral": f"{c} shares hold steady after a flat quarter",
    }[s]


def _eval_fpb(world: World, rng: random.Random, n: int) -> list[dict]:
    return [
        _mc_record(
            f"{_sentiment_text(e, 'news')}\nQuestion: {_EVAL_INSTRUCTIONS['fpb']}\nAnswer:",
            list(_SENTIMENTS),
            e.attrs["sentiment"],
        )
        for e in _picks(rng, world.corpus("finance"), n)
    ]


def _eval_fiqa(world: World, rng: random.Random, n: int) -> list[dict]:
    return [
        _mc_record(
            f"Post: {_sentiment_text(e, 'post')}\nQuestion: {_EVAL_INSTRUCTIONS['fiqa']}\nAnswer:",
            list(_SENTIMENTS),
            e.attrs["sentiment"],
        )
        for e in _picks(rng, world.corpus("finance"), n)
    ]


def _eval_headline(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("finance"), n)):
        sub = ("up", "down")[k % 2]
        gold = (
            "yes" if ent.attrs["sentiment"] == {"up": "positive", "down": "negative"}[sub] else "no"
        )
        query = f"Headline: {_sentiment_text(ent, 'headline')}\nQuestion: {_EVAL_INSTRUCTIONS['headline_' + sub]}\nAnswer:"
        out.append({"subtask": sub, **_mc_record(query, ["yes", "no"], gold)})
    return out


def _eval_ner(world: World, rng: random.Random, n: int) -> list[dict]:
    templates = [
        ("{p}, chief executive of {c}, spoke to investors in {y}.", "pc"),
        ("{c} said on Monday that {p} will stay on as chief executive.", "cp"),
        ("Analysts praised {c} after {p} presented the quarterly report in {y}.", "cp"),
    ]
    out = []
    for ent in _picks(rng, world.corpus("finance"), n):
        template, order = rng.choice(templates)
        a = ent.attrs
        sentence = template.format(p=a["ceo"], c=ent.name, y=a["hq_city"])
        names = [a["ceo"], ent.name] if order == "pc" else [ent.name, a["ceo"]]
        out.append(
            {
                "query": f"Sentence: {sentence}\nQuestion: {_EVAL_INSTRUCTIONS['ner']}\nAnswer:",
                "answer": ", ".join(names),
            }
        )
    return out


_EVAL_BUILDERS = {
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
    if suite not in _EVAL_BUILDERS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(_EVAL_BUILDERS)})"
        )
    if task not in _EVAL_BUILDERS[suite]:
        raise DataError(f"world: unknown task {task!r} in suite {suite!r}")
    world = build_world(world_cfg, seed)
    rng = _rng(world.cfg, "eval", suite, task)
    records: list[dict] = []
    seen: set[str] = set()
    asked = world.cfg["eval_per_task"]
    for rec in _EVAL_BUILDERS[suite][task](world, rng, asked):
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
