"""Ceiling training splits: records in an evaluation task's exact format that never repeat its
questions (closed-book ones never ask a fact the evaluation asks), for the ceiling rows.
"""

from __future__ import annotations

import dataclasses
import logging
import random

from instruct_pt.common import DataError, write_jsonl
from instruct_pt.world.config import EVAL_TASKS, RELATIONS, seeded_rng
from instruct_pt.world.corpora import free_person_names, random_person
from instruct_pt.world.entities import World, build_world
from instruct_pt.world.tasks import EVAL_BUILDERS, eval_records, pick_cycling
from instruct_pt.world.vocabulary import EVAL_INSTRUCTIONS, FIRST, LAST, QUESTIONS

log = logging.getLogger(__name__)

CLOSED_BOOK = {("general", "knowledge"), ("biomedicine", "usmle_like")}
# Below this many distinct unevaluated corpus questions, a closed-book task also trains on the
# reserved entities (USMLE-like at the tiny preset: its 500 questions ask every corpus fact).
MIN_DISTINCT_CLOSED_BOOK = 20


def _closed_book_fact(
    lookup: dict[str, set[tuple[str, str]]], task: str, rec: dict
) -> tuple[str, str]:
    """The (entity, relation) a closed-book record asks: its question matched against every
    evaluation phrasing; USMLE's "which drug treats x" asks (the gold drug, treats)."""
    query = rec["query"]
    question = query.removeprefix("Question: ").removesuffix("\nAnswer:")
    if question == query:
        raise DataError(
            f"world: {task} record not of the form 'Question: ...\\nAnswer:': {query!r}"
        )
    facts = lookup.get(question)
    if facts is None:
        prefix, _, suffix = EVAL_INSTRUCTIONS["usmle"].partition("{x}")
        if task == "usmle_like" and question.startswith(prefix) and question.endswith(suffix):
            return (rec["choices"][rec["gold"]], "treats")
        raise DataError(f"world: {task} question matches no evaluation phrasing: {question!r}")
    if len(facts) != 1:
        raise DataError(f"world: {task} question {question!r} asks several facts {sorted(facts)}")
    return next(iter(facts))


def _fact_lookup(world: World, domain: str) -> dict[str, set[tuple[str, str]]]:
    lookup: dict[str, set[tuple[str, str]]] = {}
    for ent in world.entities[domain]:
        for relation in RELATIONS[domain]:
            for template in QUESTIONS.get(relation, {}).get("eval", []):
                lookup.setdefault(template.format(n=ent.name), set()).add((ent.name, relation))
    return lookup


def _reserved_view(world: World) -> World:
    """The world with corpus and reserve swapped: builders then ask about reserved entities."""
    return World(
        world.cfg,
        {
            d: [dataclasses.replace(e, ft=not e.ft) for e in ents]
            for d, ents in world.entities.items()
        },
    )


# Open-book general tasks train their ceiling on fresh people: names of the name pool that no
# world entity (person or CEO) bears, with random attribute values, redrawn for every 300
# records (train_records). Only reading the context answers their questions (no memorised
# person helps), which is what the evaluation tests. Measured (seed 7, 500M Vanilla fine-tuned
# 1,000 steps of 16 reading records): with people redrawn, 34.5% on reading about fresh people
# never trained on (chance 25); on a fixed set of 300 fresh people the model memorised them
# instead (loss 0.03) and read no better than chance on new ones.
N_FRESH_PEOPLE = 300


def _fresh_people_view(world: World, rng: random.Random, n: int = N_FRESH_PEOPLE) -> World:
    """The world with its general corpus replaced by ``n`` fresh people (see above)."""
    names = free_person_names(world)
    if len(names) < 4:
        raise DataError(
            f"world config: {len(FIRST) * len(LAST) - len(names)} of {len(FIRST) * len(LAST)} "
            "person names are taken; the open-book ceilings need >= 4 fresh ones (lower n_people "
            "or n_companies)"
        )
    rng.shuffle(names)
    people = [random_person(name, rng) for name in names[:n]]
    return World(world.cfg, {**world.entities, "general": people})


def answer_text(rec: dict) -> str:
    """The gold answer of an evaluation record, as the evaluation scores it after the query."""
    return str(rec["choices"][rec["gold"]]) if "choices" in rec else str(rec["answer"])


def train_records(
    suite: str, task: str, world_cfg: dict | None, n: int, seed: int | None = None
) -> tuple[list[dict], dict]:
    """``n`` training records ``{"id", "suite", "task", "query", "answer"}`` in the format of
    evaluation task ``suite``/``task`` (query as evaluated, gold answer as scored), and their
    statistics (distinct queries, entities asked about, dropped candidates by reason).

    Records may repeat (a task with few distinct questions is seen several times); none repeats
    an evaluation query, and a closed-book one never asks a fact an evaluation record asks. A
    closed-book task whose corpus facts are (almost) all evaluated has (almost) nothing left to
    learn from without leakage: it adds the reserved entities (the format only) and says so.
    """
    if suite not in EVAL_BUILDERS or task not in EVAL_BUILDERS[suite]:
        raise DataError(f"world: unknown task {task!r} in suite {suite!r}")
    if n < 1:
        raise DataError(f"world: ceiling training records per task must be >= 1, got {n}")
    world = build_world(world_cfg, seed)
    evals = eval_records(suite, task, world_cfg, seed)
    eval_queries = {r["query"] for r in evals}
    closed = (suite, task) in CLOSED_BOOK
    dropped: dict[str, int] = {}

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    entities = "reserved"
    candidates: list[dict] = []
    if closed:
        lookup = _fact_lookup(world, suite)
        eval_facts = {_closed_book_fact(lookup, task, r) for r in evals}
        rng = seeded_rng(world.cfg, "ceiling-train", suite, task, "corpus")
        for rec in EVAL_BUILDERS[suite][task](world, rng, 4 * n):
            if rec["query"] in eval_queries:
                drop("eval_query")
            elif _closed_book_fact(lookup, task, rec) in eval_facts:
                drop("eval_fact")
            else:
                candidates.append(rec)
        entities = "corpus"
    n_corpus = len({r["query"] for r in candidates})
    if n_corpus < MIN_DISTINCT_CLOSED_BOOK:
        if closed:
            log.warning(
                "world: %s/%s evaluates all but %d of its corpus facts; its ceiling also learns "
                "the format on reserved entities (facts the model cannot know)",
                suite,
                task,
                n_corpus,
            )
            entities = f"corpus ({n_corpus} unevaluated questions) + reserved (format only)"
        rng = seeded_rng(world.cfg, "ceiling-train", suite, task, "reserved")
        if suite == "general" and not closed:
            # New fresh people (new values) for every N_FRESH_PEOPLE records: a name never keeps
            # its values from one batch of records to the next, so no memorised person answers.
            views = [_fresh_people_view(world, rng) for _ in range(-(-4 * n // N_FRESH_PEOPLE))]
            entities = f"fresh ({len(views)} draws of {N_FRESH_PEOPLE} random people)"
            batches = [(view, N_FRESH_PEOPLE) for view in views]
        else:
            batches = [(_reserved_view(world), 4 * n)]
        for view, size in batches:
            for rec in EVAL_BUILDERS[suite][task](view, rng, size):
                if rec["query"] in eval_queries:
                    drop("eval_query")
                else:
                    candidates.append(rec)
    if not candidates:
        raise DataError(f"world: no training record of {suite}/{task} avoids its evaluation")
    rng = seeded_rng(world.cfg, "ceiling-train", suite, task, "pick")
    records = [
        {
            "id": f"{task}-train-{i:05d}",
            "suite": suite,
            "task": task,
            "query": rec["query"],
            "answer": answer_text(rec),
        }
        for i, rec in enumerate(pick_cycling(rng, candidates, n))
    ]
    stats = {
        "records": len(records),
        "distinct_queries": len({r["query"] for r in records}),
        "entities": entities,
        "dropped": dict(sorted(dropped.items())),
    }
    return records, stats


def write_train_split(
    suite: str, world_cfg: dict | None, per_task: int, out_path: str, seed: int | None = None
) -> dict:
    """Write the ceiling training records of every task of ``suite`` (``per_task`` each, tasks
    in catalogue order) to ``out_path`` (JSON lines); return ``{task: stats}``."""
    if suite not in EVAL_TASKS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(EVAL_TASKS)})"
        )
    records: list[dict] = []
    stats = {}
    for task in EVAL_TASKS[suite]:
        recs, stats[task] = train_records(suite, task, world_cfg, per_task, seed)
        records += recs
    n = write_jsonl(out_path, records)
    log.info("world: wrote %d ceiling training records of suite %s", n, suite)
    return stats
