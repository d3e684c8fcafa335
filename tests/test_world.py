"""The miniature world: formats, determinism, disjointness of training and evaluation."""

from __future__ import annotations

import importlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt import world as W
from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.data.records import validate_record
from instruct_pt.synthesis.protocol import COT_TRIGGER, classify_pair
from instruct_pt.world import entities

SMALL = {
    "n_people": 24,
    "n_drugs": 16,
    "n_companies": 16,
    "docs_per_entity": 2,
    "n_ft_examples": 40,
    "n_general_instructions": 30,
    "n_instruction_tuning": 40,
    "eval_per_task": 12,
}
TRAINING_SETS = ("synth_ft", "general_instructions", "instruction_tuning")


def _training_texts(cfg: dict) -> list[str]:
    """Every string a model could be trained on outside the raw corpora."""
    texts = []
    for rec in W.generate_dataset("synth_ft", cfg):
        texts.append(rec["context"])
        texts += [p["question"] + "\n" + p["answer"] for p in rec["pairs"]]
    for rec in W.generate_dataset("general_instructions", cfg):
        texts += [rec["question"], rec["response"]]
    for rec in W.generate_dataset("instruction_tuning", cfg):
        texts += [rec["instruction"], rec["response"]]
    return texts


def _mentions(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


# ---------------------------------------------------------------- package API


def test_public_api_is_re_exported_from_its_modules():
    """Importers use ``instruct_pt.world.X``; each X is the object its submodule defines."""
    used_by_importers = {
        "generate_dataset": "datasets",
        "eval_records": "tasks",
        "write_eval_suite": "tasks",
        "DATASETS": "config",
        "EVAL_TASKS": "config",
        "RELATIONS": "config",
        "DEFAULT_WORLD": "config",
        "resolve_config": "config",
        "build_world": "entities",
        "HELD_OUT_TEMPLATES": "vocabulary",
    }
    for name, module in used_by_importers.items():
        assert name in W.__all__, name
        submodule = importlib.import_module(f"instruct_pt.world.{module}")
        assert getattr(W, name) is getattr(submodule, name), name
    assert all(hasattr(W, name) for name in W.__all__)
    assert not [n for n in W.__all__ if n.startswith("_")]


# ---------------------------------------------------------------- configuration


def test_unknown_dataset_and_config_key_are_named():
    with pytest.raises(DataError, match="raw_chemistry"):
        W.generate_dataset("raw_chemistry", {})
    with pytest.raises(DataError, match="n_planets"):
        W.generate_dataset("raw_general", {"n_planets": 3})
    with pytest.raises(DataError, match="ft_fraction"):
        W.resolve_config({"ft_fraction": 1.5})
    with pytest.raises(DataError, match="n_people"):
        W.resolve_config({"n_people": "many"})
    with pytest.raises(DataError, match="oceans"):
        W.write_eval_suite("oceans", {}, "/nonexistent")


def test_too_small_world_is_refused():
    with pytest.raises(DataError, match="at least 4"):
        W.build_world({"n_drugs": 4, "ft_fraction": 0.5})


def test_docs_per_entity_can_differ_by_domain():
    """A mapping sizes each raw corpus on its own; an int is the same as the mapping of it."""
    per_domain = {"general": 3, "biomedicine": 1, "finance": 2}
    world = W.build_world(SMALL)
    for domain, n in per_domain.items():
        records = W.generate_dataset(f"raw_{domain}", {**SMALL, "docs_per_entity": per_domain})
        assert len(records) == n * len(world.corpus(domain))
        assert [e["meta"]["entity"] for e in records].count(records[0]["meta"]["entity"]) == n
    same = {d: SMALL["docs_per_entity"] for d in W.RELATIONS}
    for name in ("raw_finance", "synth_ft"):
        assert W.generate_dataset(name, {**SMALL, "docs_per_entity": same}) == W.generate_dataset(
            name, SMALL
        )


@pytest.mark.parametrize(
    "bad",
    [{"general": 3, "biomedicine": 1}, {"general": 3, "biomedicine": 1, "finance": -1},
     {"general": 3, "biomedicine": 1, "finance": 2, "law": 1}, {"general": "3", "biomedicine": 1, "finance": 2}],
)  # fmt: skip
def test_docs_per_entity_mapping_must_name_every_domain_once(bad):
    with pytest.raises(DataError, match="docs_per_entity .*every domain"):
        W.resolve_config({"docs_per_entity": bad})


@pytest.mark.parametrize("name", ["synth_ft", "general_instructions", "instruction_tuning"])
def test_training_sets_need_reserved_entities(name):
    with pytest.raises(DataError, match=f"{name} needs >= 2 reserved"):
        W.generate_dataset(name, {**SMALL, "ft_fraction": 0.0})
    assert W.generate_dataset("raw_general", {**SMALL, "ft_fraction": 0.0})


def test_ft_split_follows_ft_fraction():
    world = W.build_world({"n_people": 50, "ft_fraction": 0.3})
    assert len(world.reserved("general")) == 15
    assert len(world.corpus("general")) == 35
    names = [e.name for d in W.RELATIONS for e in world.entities[d]]
    ceos = [e.attrs["ceo"] for e in world.entities["finance"]]
    assert len(set(names + ceos)) == len(names) + len(ceos), "entity and CEO names must be unique"


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", W.DATASETS)
def test_same_config_same_bytes_other_seed_other_bytes(name, tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_jsonl(a, W.generate_dataset(name, SMALL))
    entities._build_world.cache_clear()  # rebuild the world from scratch: no shared state
    write_jsonl(b, W.generate_dataset(name, SMALL))
    write_jsonl(c, W.generate_dataset(name, {**SMALL, "seed": 1}))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_generation_order_does_not_matter(tmp_path):
    def run(order):
        entities._build_world.cache_clear()
        out = {name: W.generate_dataset(name, SMALL) for name in order}
        out["eval"] = W.eval_records("finance", "ner_like", SMALL)
        return out

    forward = run(W.DATASETS)
    backward = run(tuple(reversed(W.DATASETS)))
    assert forward == backward


def test_seed_argument_overrides_config_seed():
    assert W.generate_dataset("raw_finance", SMALL, seed=7) == W.generate_dataset(
        "raw_finance", {**SMALL, "seed": 7}
    )


# ---------------------------------------------------------------- training data formats


@pytest.mark.parametrize("name", W.DATASETS)
def test_records_follow_the_data_contract(name):
    records = W.generate_dataset(name, SMALL)
    assert records
    for i, rec in enumerate(records):
        validate_record(name, rec, f"{name}:{i}")
    assert len({r["id"] for r in records}) == len(records)


@pytest.mark.parametrize("name,domain", [(n, n.removeprefix("raw_")) for n in W.DATASETS[:3]])
def test_raw_documents_state_their_facts(name, domain):
    world = W.build_world(SMALL)
    corpus = {e.name: e for e in world.corpus(domain)}
    records = W.generate_dataset(name, SMALL)
    assert len(records) == len(corpus) * SMALL["docs_per_entity"]
    for rec in records:
        meta = rec["meta"]
        assert meta["domain"] == domain and meta["entity"] in corpus
        assert [f["relation"] for f in meta["facts"]] == W.RELATIONS[domain]
        assert rec["text"].startswith(meta["entity"])
        for fact in meta["facts"]:
            if fact["relation"] in ("mechanism", "outcome", "sentiment", "growth"):
                continue  # stated in words, not verbatim
            assert fact["value"] in rec["text"], (fact, rec["text"])
    # renderings of one entity differ (sentence order, templates, pronouns)
    by_entity: dict[str, set[str]] = {}
    for rec in records:
        by_entity.setdefault(rec["meta"]["entity"], set()).add(rec["text"])
    assert sum(len(v) > 1 for v in by_entity.values()) >= len(by_entity) // 2


@pytest.mark.parametrize("domain", ["general", "biomedicine"])
def test_name_rate_sets_how_often_raw_texts_repeat_the_name(domain):
    """name_rate 1: every sentence names the entity (no pronoun); 0: only the first one does."""
    counts = {}
    for rate in (0.0, 1.0):
        records = W.generate_dataset(f"raw_{domain}", {**SMALL, "name_rate": rate})
        counts[rate] = [len(re.findall(re.escape(r["meta"]["entity"]), r["text"])) for r in records]
    assert set(counts[0.0]) == {1} if domain == "general" else max(counts[0.0]) <= 2
    assert min(counts[1.0]) >= (6 if domain == "general" else 4)
    with pytest.raises(DataError, match="name_rate"):
        W.resolve_config({"name_rate": 1.5})


def test_synth_ft_pair_formats():
    records = W.generate_dataset("synth_ft", W.DEFAULT_WORLD)
    formats, seen, datasets = set(), set(), set()
    for rec in records:
        assert 2 <= len(rec["pairs"]) <= 6
        seen.add(rec["seen"])
        datasets.add((rec["dataset"], rec["task_type"], rec["seen"]))
        for pair in rec["pairs"]:
            q, a, fmt = pair["question"], pair["answer"], pair["format"]
            formats.add(fmt)
            has_options = "\nOptions:\n- " in q
            is_cot = q.endswith(COT_TRIGGER)
            assert (has_options, is_cot) == {
                "free": (False, False),
                "mc": (True, False),
                "cot": (False, True),
                "mc_cot": (True, True),
            }[fmt], pair
            if is_cot:
                assert re.fullmatch(r"[^\n]+\nTherefore, the answer is [^\n]+", a), a
            final = a.rsplit("Therefore, the answer is ", 1)[-1]
            if fmt == "mc":
                assert q.endswith("\n- " + q.split("\n- ")[-1])  # options close the question
            if has_options:
                options = q.removesuffix(COT_TRIGGER).split("\nOptions:\n", 1)[1].split("\n")
                assert all(o.startswith("- ") for o in options)
                assert final in [o[2:] for o in options], pair
            # the synthesizer protocol reads the pair as the world labels it
            assert (classify_pair(q, a) or {}).get("format") == fmt, pair
    assert formats == {"free", "mc", "cot", "mc_cot"}
    assert seen == {True, False}
    assert len({d for d, _, _ in datasets}) >= 6
    # a data set's task type and seen flag never change
    assert len(datasets) == len({d for d, _, _ in datasets})


# ---------------------------------------------------------------- evaluation suites


@pytest.mark.parametrize("suite", list(W.EVAL_TASKS))
def test_eval_suite_files_and_formats(suite, tmp_path):
    meta = W.write_eval_suite(suite, SMALL, str(tmp_path))
    assert meta == W.EVAL_TASKS[suite]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.jsonl" for t in meta)
    for task, task_meta in meta.items():
        assert task_meta["type"] in ("multiple_choice", "generate")
        assert task_meta["metric"] and task_meta["description"]
        assert (task_meta["paper_name"] == "") == (suite == "general")
        records = read_jsonl(tmp_path / f"{task}.jsonl")
        # every question once: a small world may have fewer distinct questions than asked for
        assert 0 < len(records) <= SMALL["eval_per_task"]
        assert len({r["id"] for r in records}) == len(records)
        for rec in records:
            query = rec["query"]
            assert query == query.rstrip() and query.endswith("Answer:")
            if task_meta["type"] == "multiple_choice":
                assert list(rec) == ["id", "query", "choices", "gold"]
                choices = rec["choices"]
                assert len(choices) >= 2 and len(set(choices)) == len(choices)
                assert all(c == c.strip() and c for c in choices)
                assert isinstance(rec["gold"], int) and 0 <= rec["gold"] < len(choices)
            else:
                assert list(rec) == ["id", "query", "answer"]
                assert rec["answer"] and rec["answer"] == rec["answer"].strip()


def test_eval_labels_are_not_constant():
    for suite, tasks in W.EVAL_TASKS.items():
        for task, meta in tasks.items():
            records = W.eval_records(suite, task, W.DEFAULT_WORLD)
            key = "gold" if meta["type"] == "multiple_choice" else "answer"
            golds = [r["choices"][r["gold"]] if key == "gold" else r[key] for r in records]
            assert len(set(golds)) > 1, (suite, task)


def test_knowledge_facts_are_in_the_general_corpus():
    world = W.build_world(W.DEFAULT_WORLD)
    people = {e.name: e for e in world.corpus("general")}
    texts_by_entity: dict[str, list[str]] = {}
    for rec in W.generate_dataset("raw_general", W.DEFAULT_WORLD):
        texts_by_entity.setdefault(rec["meta"]["entity"], []).append(rec["text"])
    for rec in W.eval_records("general", "knowledge", W.DEFAULT_WORLD):
        (name,) = [n for n in people if _mentions(n, rec["query"])]
        gold = rec["choices"][rec["gold"]]
        assert gold in people[name].attrs.values()
        assert any(gold in text for text in texts_by_entity[name])


def test_reading_answers_are_in_the_passage_and_reasoning_is_consistent():
    for rec in W.eval_records("general", "reading", W.DEFAULT_WORLD):
        passage = rec["query"].split("\nQuestion:")[0]
        assert rec["choices"][rec["gold"]] in passage
    for rec in W.eval_records("general", "reasoning", W.DEFAULT_WORLD):
        gold = rec["choices"][rec["gold"]]
        years = re.findall(r"([A-Z]\w+ [A-Z]\w+) was born in the year (\d{4})", rec["query"])
        if "born first" in rec["query"]:
            assert gold == min(years, key=lambda x: int(x[1]))[0]
        elif "more recently" in rec["query"]:
            assert gold == max(years, key=lambda x: int(x[1]))[0]
        else:
            assert gold in ("yes", "no")


def test_finance_generation_answers_follow_from_the_query():
    for rec in W.eval_records("finance", "convfinqa_like", W.DEFAULT_WORLD):
        r, p = map(int, re.findall(r"(\d+) million dollars", rec["query"]))
        expected = {"percentage": round(100 * (r - p) / p), "total": r + p, "change": r - p}
        kind = next(k for k in expected if k in rec["query"])
        assert int(rec["answer"]) == expected[kind], rec
    for rec in W.eval_records("finance", "ner_like", W.DEFAULT_WORLD):
        sentence = rec["query"].split("\n")[0]
        names = rec["answer"].split(", ")
        assert len(names) == 2
        assert sorted(names, key=sentence.index) == names  # in order of appearance


# ---------------------------------------------------------------- disjointness


def test_eval_entities_never_appear_in_training_sets():
    world = W.build_world(W.DEFAULT_WORLD)
    blob = "\n".join(_training_texts(W.DEFAULT_WORLD))
    eval_names = [e.name for d in W.RELATIONS for e in world.corpus(d)]
    eval_names += [e.attrs["ceo"] for e in world.corpus("finance")]
    leaked = [n for n in eval_names if _mentions(n, blob)]
    assert not leaked
    # ... while the reserved entities are used there, and never in the raw corpora
    reserved = [e.name for d in W.RELATIONS for e in world.reserved(d)]
    assert sum(_mentions(n, blob) for n in reserved) >= 0.9 * len(reserved)
    raw = "\n".join(
        r["text"] for n in W.DATASETS[:3] for r in W.generate_dataset(n, W.DEFAULT_WORLD)
    )
    assert not [n for n in reserved if _mentions(n, raw)]


def _signature(template: str) -> str:
    """The longest fixed piece of a template (what a phrasing leak would copy)."""
    return max(re.split(r"\{[^}]*\}", template), key=len)


def test_held_out_phrasings_never_appear_in_training_sets():
    blob = "\n".join(_training_texts(W.DEFAULT_WORLD))
    assert len(W.HELD_OUT_TEMPLATES) >= 20
    for template in W.HELD_OUT_TEMPLATES:
        signature = _signature(template)
        assert len(signature) >= 12, template
        assert signature not in blob, template
    # and the evaluation really uses them
    queries = "\n".join(
        r["query"]
        for s, tasks in W.EVAL_TASKS.items()
        for t in tasks
        for r in W.eval_records(s, t, W.DEFAULT_WORLD)
    )
    used = sum(_signature(t) in queries for t in W.HELD_OUT_TEMPLATES)
    assert used >= 0.9 * len(W.HELD_OUT_TEMPLATES)


# ---------------------------------------------------------------- property tests


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), ft=st.sampled_from([0.2, 0.3, 0.5]))
def test_any_seed_gives_valid_disjoint_data(seed, ft):
    cfg = {**SMALL, "seed": seed, "ft_fraction": ft}
    for name in W.DATASETS:
        for i, rec in enumerate(W.generate_dataset(name, cfg)):
            validate_record(name, rec, f"{name}:{i}")
    world = W.build_world(cfg)
    blob = "\n".join(_training_texts(cfg))
    assert not [e.name for e in world.corpus("general") if _mentions(e.name, blob)]
    for rec in W.eval_records("biomedicine", "usmle_like", cfg):
        assert 0 <= rec["gold"] < len(rec["choices"]) == 4


def test_a_task_never_asks_the_same_question_twice(caplog):
    """Builders cycle over the world's entities; asked for more questions than exist, a task
    keeps each question once (repeats would pass for independent evidence) and says so."""
    cfg = {"seed": 7, "n_people": 20, "n_drugs": 12, "n_companies": 12, "eval_per_task": 200}
    short = []
    for suite, tasks in W.EVAL_TASKS.items():
        for task in tasks:
            with caplog.at_level("WARNING", logger="instruct_pt.world"):
                recs = W.eval_records(suite, task, cfg)
            keys = [(r["query"], tuple(r.get("choices") or ())) for r in recs]
            assert len(keys) == len(set(keys)), (suite, task)
            assert len({r["id"] for r in recs}) == len(recs)
            if len(recs) < 200:
                short.append(task)
    assert short  # this small world cannot fill 200 distinct questions for every task
    assert all(f"/{t} has" in caplog.text for t in short)


def test_reasoning_draws_a_new_pair_instead_of_repeating_one(caplog):
    """A world of few people has few pairs that share a value: the reasoning builder draws again
    rather than ask a pair twice, so a small world still fills its questions (it had 139-140 of
    150 when a repeat was only dropped)."""
    for n_people in (30, 40):
        cfg = {"seed": 7, "n_people": n_people, "n_drugs": 12, "n_companies": 12}
        with caplog.at_level("WARNING", logger="instruct_pt.world"):
            recs = W.eval_records("general", "reasoning", {**cfg, "eval_per_task": 150})
        assert len({r["query"] for r in recs}) == len(recs) == 150
        golds = {r["choices"][r["gold"]] for r in recs}
        assert {"yes", "no"} <= golds and len(golds) > 10  # both kinds still asked
    assert "distinct questions" not in caplog.text


def _tiny_world() -> dict:
    """The tiny preset's ``world`` section."""
    from pathlib import Path

    import yaml

    preset = Path(__file__).resolve().parents[1] / "presets" / "tiny.yaml"
    return yaml.safe_load(preset.read_text())["world"]


def test_closed_book_questions_ask_distinct_facts():
    """A knowledge question asked again with other distractors is no new evidence: the builder
    asks a person another of their facts. On the tiny preset's world (140 people, 840 facts)
    the 500 questions ask 500 distinct facts (398 when the relation was drawn at random)."""
    from instruct_pt.world.ceiling import _closed_book_fact, _fact_lookup
    from instruct_pt.world.entities import build_world

    def asked(cfg: dict, seed: int | None = None) -> tuple[list[tuple[str, str]], int]:
        """(the fact each knowledge question asks, the number of corpus people)"""
        world = build_world(cfg, seed)
        lookup = _fact_lookup(world, "general")
        recs = W.eval_records("general", "knowledge", cfg, seed)
        return [_closed_book_fact(lookup, "knowledge", r) for r in recs], len(
            world.corpus("general")
        )

    cfg = _tiny_world()
    for seed in (7, 2027):
        facts, _ = asked(cfg, seed)
        assert len(set(facts)) == len(facts) == 500, (seed, len(set(facts)))
    # a small world runs out of facts: then facts repeat, each person's all asked first
    small = {"seed": 7, "n_people": 30, "n_drugs": 12, "n_companies": 12, "eval_per_task": 200}
    facts, n_corpus = asked(small)
    assert len(set(facts)) == min(len(facts), len(W.RELATIONS["general"]) * n_corpus) < len(facts)


def test_the_tiny_preset_asks_500_distinct_questions_a_task(caplog):
    """#11 item 4: every task of every suite has its 500 questions, none repeated (the notion of
    ``eval_records``' dedupe), on the preset's seed and on one it never used."""
    cfg = _tiny_world()
    assert cfg["eval_per_task"] == 500
    for seed in (7, 2027):
        for suite, tasks in W.EVAL_TASKS.items():
            for task in tasks:
                with caplog.at_level("WARNING", logger="instruct_pt.world"):
                    recs = W.eval_records(suite, task, cfg, seed)
                keys = {(r["query"], tuple(r.get("choices") or ())) for r in recs}
                assert len(recs) == len(keys) == 500, (seed, suite, task, len(keys))
    assert "distinct questions" not in caplog.text


def test_varied_domain_contexts_state_their_gold():
    """The domain tasks' varied contexts keep the answer in the query: the trial result or the
    sentiment text a record shows belongs to its gold label (and not to another)."""
    from instruct_pt.world.tasks import _SENTIMENT_TEXTS, _TRIAL_RESULTS

    cfg = {**W.DEFAULT_WORLD, "eval_per_task": 120}
    labels = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}
    for rec in W.eval_records("biomedicine", "pubmedqa_like", cfg):
        context = rec["query"].split("\nQuestion:")[0]
        stated = {
            labels[o] for o, results in _TRIAL_RESULTS.items() for t in results if t in context
        }
        assert stated == {rec["choices"][rec["gold"]]}, rec
    patterns = {
        style: {
            s: [re.escape(t).replace(r"\{c\}", ".+").replace(r"\{g\}", r"\d+").replace(r"\{r\}", r"\d+")
                for t in templates]
            for s, templates in by_sentiment.items()
        }
        for style, by_sentiment in _SENTIMENT_TEXTS.items()
    }  # fmt: skip
    for task, style, head in (("fpb_like", "news", ""), ("fiqa_sa_like", "post", "Post: ")):
        for rec in W.eval_records("finance", task, cfg):
            text = rec["query"].split("\n")[0].removeprefix(head)
            stated = {
                s for s, ps in patterns[style].items() if any(re.fullmatch(p, text) for p in ps)
            }
            assert stated == {rec["choices"][rec["gold"]]}, rec
    for rec in W.eval_records("finance", "headline_like", cfg):
        text = rec["query"].split("\n")[0].removeprefix("Headline: ")
        (sentiment,) = [
            s for s, ps in patterns["headline"].items() if any(re.fullmatch(p, text) for p in ps)
        ]
        up = "rising" in rec["query"] or "going up" in rec["query"]
        expected = "yes" if sentiment == ("positive" if up else "negative") else "no"
        assert rec["choices"][rec["gold"]] == expected, rec
