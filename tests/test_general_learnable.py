"""The general tasks' learnability levers (issue #11 item 2): raw texts that restate a value
(pre-training then rewards copying a value from the context) and open-book ceilings trained on
fresh people (only reading the context answers them)."""

from __future__ import annotations

import re

import pytest

from instruct_pt import world as W
from instruct_pt.common import DataError
from instruct_pt.world.ceiling import train_records
from instruct_pt.world.corpora import RESTATEMENTS

SMALL = {
    "n_people": 24,
    "n_drugs": 16,
    "n_companies": 16,
    "docs_per_entity": 4,
    "n_ft_examples": 40,
    "n_general_instructions": 30,
    "n_instruction_tuning": 40,
    "eval_per_task": 12,
}


def _restatement(text: str, attrs: dict[str, str]) -> str | None:
    """The relation whose value the text's closing sentence restates, if it is a restatement."""
    for relation, templates in RESTATEMENTS.items():
        for t in templates:
            pattern = re.escape(t).replace(r"\{v\}", re.escape(attrs[relation]))
            pattern = re.sub(r"\\\{[SPsp]\\\}", ".+?", pattern)
            if re.search(pattern + "$", text):
                return relation
    return None


def test_restated_values_repeat_a_value_stated_earlier_in_the_same_text():
    records = W.generate_dataset("raw_general", {**SMALL, "restate_rate": 0.5})
    people = {e.name: e for e in W.build_world(SMALL).entities["general"]}
    restated = 0
    for rec in records:
        attrs = people[rec["meta"]["entity"]].attrs
        relation = _restatement(rec["text"], attrs)
        if relation is None:
            continue
        restated += 1
        # the value occurs twice: stated among the six facts, then again at the end
        assert rec["text"].count(attrs[relation]) >= 2, rec["text"]
    n = len(records)  # 17 corpus people x 4 renderings = 68 texts
    assert 0.3 * n <= restated <= 0.7 * n, (restated, n)
    assert len({_restatement(r["text"], people[r["meta"]["entity"]].attrs) for r in records}) >= 5


def test_no_restatement_by_default_and_the_rate_is_checked():
    for rec in W.generate_dataset("raw_general", SMALL):
        sentences = rec["text"].count(". ") + 1
        assert sentences == 6, rec["text"]
    full = W.generate_dataset("raw_general", {**SMALL, "restate_rate": 1.0})
    assert all(r["text"].count(". ") + 1 == 7 for r in full)
    with pytest.raises(DataError, match="restate_rate"):
        W.resolve_config({"restate_rate": 1.5})


@pytest.mark.parametrize("task", ["reading", "reasoning"])
def test_open_book_general_ceilings_train_on_fresh_people_only(task):
    """No training passage names a world person (corpus or reserved) or a CEO: a memorised fact
    cannot answer it, only the passage can."""
    world = W.build_world(SMALL)
    taken = {e.name for e in world.entities["general"]} | {
        e.attrs["ceo"] for e in world.entities["finance"]
    }
    records, stats = train_records("general", task, SMALL, 60)
    assert stats["entities"].startswith("fresh")
    names = re.compile(r"\b(" + "|".join(map(re.escape, sorted(taken))) + r")\b")
    for rec in records:
        assert not names.search(rec["query"]), rec["query"]
    # the answer is in the passage (reading: the value; reasoning: one of the two names)
    assert all(rec["answer"] in rec["query"] or rec["answer"] in ("yes", "no") for rec in records)
    # fresh people are many: the split does not keep asking about a handful
    subjects = {
        m.group(0) for r in records for m in re.finditer(r"[A-Z][a-z]+ [A-Z][a-z]+", r["query"])
    }
    assert len(subjects) >= 30


def test_reading_ceiling_people_are_redrawn_so_no_name_keeps_its_values():
    """Over a large split a fresh name comes back with other values: memorising name -> value
    cannot answer (a fixed set of 300 fresh people was memorised, measured), reading can."""
    records, stats = train_records("general", "reading", SMALL, 900)
    assert stats["distinct_queries"] == len(records)
    by_name: dict[str, list[dict]] = {}
    for rec in records:
        by_name.setdefault(re.match(r"[A-Z][a-z]+ [A-Z][a-z]+", rec["query"]).group(0), []).append(
            rec
        )
    # a record's answer is in its own passage; with a person kept, it would be in every other
    # passage about the same name too (all six values are always said)
    pairs = [(a, b) for recs in by_name.values() for a, b in zip(recs, recs[1:], strict=False)]
    assert len(pairs) >= 100
    kept = sum(a["answer"] in b["query"] for a, b in pairs) / len(pairs)
    assert kept < 0.3, kept


def test_knowledge_ceiling_still_asks_unevaluated_corpus_facts():
    records, stats = train_records("general", "knowledge", SMALL, 30)
    assert stats["entities"] == "corpus"
    corpus = {e.name for e in W.build_world(SMALL).corpus("general")}
    assert all(any(n in r["query"] for n in corpus) for r in records)


def test_passers_by_are_nobody_in_the_world_and_restate_their_own_values():
    """one_off_docs adds texts about random free names: no world person or CEO, values drawn
    per text (nothing to memorise), several of them said again (copy targets)."""
    cfg = {**SMALL, "one_off_docs": 30, "restate_rate": 1.0}
    world = W.build_world(cfg)
    members = {e.name for e in world.entities["general"]}
    members |= {e.attrs["ceo"] for e in world.entities["finance"]}
    records = W.generate_dataset("raw_general", cfg)
    corpus = {e.name for e in world.corpus("general")}
    one_off = [r for r in records if r["meta"]["entity"] not in corpus]
    assert len(records) == 17 * 4 + 30 and len(one_off) == 30
    for rec in one_off:
        assert rec["meta"]["entity"] not in members
        facts = {f["relation"]: f["value"] for f in rec["meta"]["facts"]}
        assert rec["text"].count(". ") + 1 == 9  # six facts, three restated
        assert sum(rec["text"].count(v) >= 2 for v in facts.values()) >= 3
    # the same seed gives the same texts; another seed other passers-by
    assert W.generate_dataset("raw_general", cfg) == records
    assert W.generate_dataset("raw_general", {**cfg, "seed": 1}) != records
