"""The oracle synthesizer (world.oracle) and the general ceiling pre-trained on its pairs."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.config import ConfigError
from instruct_pt.design import mixture_components, oracle_ceiling_suites
from instruct_pt.synthesis.protocol import parse_pairs, split_mc_question
from instruct_pt.world import build_world
from instruct_pt.world.corpora import build_raw_corpus
from instruct_pt.world.oracle import oracle_pairs, oracle_shard
from instruct_pt.world.vocabulary import HELD_OUT_TEMPLATES, QUESTIONS


def _texts(seed: int, n: int = 30) -> list[dict]:
    return build_raw_corpus(build_world({}, seed), "general", "raw_general")[:n]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 8))
def test_every_pair_asks_a_fact_of_its_text_and_answers_it_truly(seed, k):
    rng = random.Random(seed)
    rec = _texts(seed % 5, 10)[seed % 10]
    facts = rec["meta"]["facts"]
    pairs = oracle_pairs(facts, rng, k)
    assert len(pairs) == min(k, len({f["relation"] for f in facts if f["relation"] in QUESTIONS}))
    truth = {(f["subject"], str(f["value"])) for f in facts}
    asked = []
    for p in pairs:
        mc = split_mc_question(p["question"])
        stem = mc[0] if mc else p["question"]
        if mc:
            assert p["answer"] in [o.strip() for o in mc[1]]
        subject = rec["meta"]["entity"]
        assert subject in stem and (subject, p["answer"]) in truth
        # a training phrasing of the fact's own relation, never an evaluation phrasing
        relation = next(f["relation"] for f in facts if str(f["value"]) == p["answer"])
        assert stem in {t.format(n=subject) for t in QUESTIONS[relation]["train"]}
        assert stem not in {t.format(n=subject) for t in HELD_OUT_TEMPLATES if "{n}" in t}
        asked.append(relation)
    assert len(asked) == len(set(asked))  # distinct relations


def test_shard_has_the_synthesis_format_and_is_deterministic(tmp_path):
    texts = _texts(7, 12)
    texts[3] = {**texts[3], "meta": {**texts[3]["meta"], "facts": []}}
    write_jsonl(tmp_path / "s.jsonl", texts)
    stats = oracle_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o.jsonl"), 5, 3)
    out = read_jsonl(tmp_path / "o.jsonl")
    assert [r["id"] for r in out] == [t["id"] for t in texts]
    assert [len(r["pairs"]) for r in out] == [3, 3, 3, 0] + [3] * 8
    assert stats["texts_without_pairs"] == 1 and stats["pairs"] == 33
    assert stats["engine"] == "oracle"
    assert parse_pairs(out[0]["generation"])[0] == out[0]["pairs"]
    oracle_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o2.jsonl"), 5, 3)
    assert (tmp_path / "o.jsonl").read_bytes() == (tmp_path / "o2.jsonl").read_bytes()
    oracle_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o3.jsonl"), 6, 3)
    assert (tmp_path / "o.jsonl").read_bytes() != (tmp_path / "o3.jsonl").read_bytes()


def test_texts_without_ground_truth_are_named(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "text": "plain text"}])
    with pytest.raises(DataError, match=r"s\.jsonl:1: no 'meta\.facts'"):
        oracle_shard(str(tmp_path / "s.jsonl"), str(tmp_path / "o.jsonl"), 5, 3)
    write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "text": "t", "meta": {"facts": []}}])
    with pytest.raises(DataError, match="no text has a fact"):
        oracle_shard(str(tmp_path / "e.jsonl"), str(tmp_path / "o.jsonl"), 5, 3)


def _config(suites: dict, pairs: int | None = 3) -> dict:
    from instruct_pt.config import load_config

    cfg = copy.deepcopy(load_config("config.yaml", "presets/tiny.yaml"))
    cfg["ceilings"]["suites"] = suites
    cfg["ceilings"]["oracle_pairs_per_text"] = pairs
    return cfg


def test_the_oracle_ceiling_is_checked_at_start_up():
    ok = _config(
        {"general": {"oracle": "500m", "label": "x"}, "finance": {"model": "m", "label": "y"}}
    )
    assert oracle_ceiling_suites(ok) == ["general"]
    for suites, pairs, message in [
        ({"general": {"oracle": "500m", "model": "m", "label": "x"}}, 3, "exactly one"),
        ({"general": {"label": "x"}}, 3, "exactly one"),
        ({"finance": {"oracle": "500m", "label": "x"}}, 3, "only the general suite"),
        ({"general": {"oracle": "7b", "label": "x"}}, 3, "not a size"),
        ({"general": {"oracle": "500m", "label": "x"}}, None, "oracle_pairs_per_text"),
    ]:
        with pytest.raises(ConfigError, match=message):
            oracle_ceiling_suites(_config(suites, pairs))


def test_the_oracle_mixture_is_instruct_pt_with_the_oracle_pairs():
    cfg = _config({"general": {"oracle": "500m", "label": "x"}})
    instruct = mixture_components(cfg, "general-instruct")
    oracle = mixture_components(cfg, "general-oracle")
    assert oracle[0]["path"] == ("augmented", "general", "oracle")
    assert instruct[0]["path"] == ("augmented", "general", "instruct")
    assert oracle[1:] == instruct[1:]  # the same raw rest and fine-tuning collection


def test_the_oracle_chain_is_timed_as_the_ceilings():
    from instruct_pt.reports import timing

    assert timing.classify("mixtures/mistral/general-oracle") == ("mixture", "ceilings")
    assert timing.classify("packed/mistral/general-oracle.L256") == ("pack", "ceilings")
    assert timing.classify("synthesis/general/augmented/oracle") == ("templify", "ceilings")
    assert timing.classify("models/oracle-ceiling-general") == ("ceiling_pretrain", "ceilings")
    # the compared models' own mixtures stay data
    assert timing.classify("mixtures/mistral/general-instruct") == ("mixture", "data")
    assert timing.classify("synthesis/general/augmented/instruct") == ("templify", "synthesis")
