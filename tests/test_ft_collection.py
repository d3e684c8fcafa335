"""The synthesizer's fine-tuning collection: one reserved entity per record, and the miniature's
mixtures taking only the collection's first records (``pretrain.ft_records``, mixtures ``head``)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from instruct_pt import config as cfg
from instruct_pt.common import DataError, read_json, write_jsonl
from instruct_pt.data.mixtures import build_mixture
from instruct_pt.data.tokenizer import prepare_tokenizer
from instruct_pt.world import build_world, generate_dataset

ROOT = Path(__file__).resolve().parents[1]
# 100 people (30 reserved), 60 drugs and 60 companies (18 reserved each); 60 records, 9 data sets
# in turn: 7 QA + 7 NLI + 7 compares x 2 people + 2 summaries = 30 draws, the whole reserve of
# people; 7 + 7 + 2 = 16 drugs, 7 + 6 + 2 = 15 companies
WORLD = {"n_people": 100, "n_drugs": 60, "n_companies": 60, "n_ft_examples": 60}
GENERAL_SETS = ("people_qa", "people_compare", "nli")


def _named(text: str, names: list[str]) -> list[str]:
    return [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]


def _people_per_record(world_cfg: dict) -> list[list[str]]:
    world = build_world(world_cfg)
    reserved = [e.name for e in world.reserved("general")]
    return [
        _named(r["context"], reserved)
        for r in generate_dataset("synth_ft", world_cfg)
        if r["dataset"] in GENERAL_SETS
    ]


def test_every_general_record_is_about_people_no_other_record_uses():
    per_record = _people_per_record(WORLD)
    assert len(per_record) == 21
    uses = Counter(name for names in per_record for name in names)
    assert all(len(names) in (1, 2) for names in per_record)
    assert max(uses.values()) == 1, uses.most_common(3)
    # compare records name two different people
    assert sum(len(names) == 2 for names in per_record) == 7


def test_records_share_people_only_once_the_reserve_is_used_up():
    """30 reserved people, 100+ draws: each person drawn as often as any other, +-1."""
    small = {**WORLD, "n_ft_examples": 270}
    world = build_world(small)
    reserved = [e.name for e in world.reserved("general")]
    uses = Counter(n for names in _people_per_record(small) for n in names)
    assert set(uses) <= set(reserved) and len(uses) == len(reserved)
    # summaries also draw general people, so counts from people_qa/compare/nli differ by <= 2
    assert max(uses.values()) - min(uses.values()) <= 2


def test_drug_and_company_records_each_get_a_new_entity():
    world = build_world(WORLD)
    for dataset, domain in (
        ("bio_qa", "biomedicine"),
        ("bio_relation", "biomedicine"),
        ("news_qa", "finance"),
        ("news_sentiment", "finance"),
    ):
        names = [e.name for e in world.reserved(domain)]
        recs = [r for r in generate_dataset("synth_ft", WORLD) if r["dataset"] == dataset]
        firsts = [_named(r["context"], names)[:1] for r in recs]
        assert all(firsts), dataset
        assert len({f[0] for f in firsts}) == len(recs), dataset
    # and the same collection for the same config (the world is seeded)
    assert generate_dataset("synth_ft", WORLD) == generate_dataset("synth_ft", dict(WORLD))


# ----------------------------------------------------------------------------- mixtures head


@pytest.fixture(scope="module")
def ft_inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft_head")
    raw = [{"id": r["id"], "text": r["text"]} for r in generate_dataset("raw_general", WORLD)]
    ft = [{"id": r["id"], "text": r["context"]} for r in generate_dataset("synth_ft", WORLD)]
    write_jsonl(tmp / "raw.jsonl", raw)
    write_jsonl(tmp / "ft.jsonl", ft)
    prepare_tokenizer(
        {"source": "train", "vocab_size": 400}, [str(tmp / "raw.jsonl")], str(tmp / "tok"), 0
    )
    return tmp, [r["id"] for r in ft]


def _mix(tmp: Path, head, tag: str) -> tuple[dict, list[dict]]:
    comps = [
        {"name": "raw", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {"name": "ft", "path": str(tmp / "ft.jsonl"), "format": "text", "repeat": 4, "head": head},
    ]
    out = tmp / tag
    build_mixture(
        "general-mix", comps, str(tmp / "tok"), str(out / "t.jsonl"), str(out / "m.json"), 5
    )
    texts = [json.loads(line) for line in open(out / "t.jsonl", encoding="utf-8")]
    return read_json(out / "m.json"), texts


def test_head_mixes_the_first_records_four_times_and_the_manifest_says_so(ft_inputs):
    tmp, ft_ids = ft_inputs
    manifest, texts = _mix(tmp, 12, "h12")
    ft = manifest["sources"]["ft"]
    assert (ft["head"], ft["unique_documents"], ft["documents"]) == (12, 12, 48)
    assert ft["available_documents"] == len(ft_ids) == 60
    mixed = Counter(t["id"].split("/", 1)[1].split("#")[0] for t in texts if t["source"] == "ft")
    assert mixed == {i: 4 for i in ft_ids[:12]}
    whole, _ = _mix(tmp, None, "all")
    assert whole["sources"]["ft"]["head"] is None
    assert whole["sources"]["ft"]["unique_documents"] == 60
    assert 0 < ft["tokens"] < whole["sources"]["ft"]["tokens"]
    assert manifest["sources"]["raw"] == whole["sources"]["raw"]
    # deterministic: the same bytes again
    again, texts2 = _mix(tmp, 12, "h12b")
    assert again == manifest and texts2 == texts


def test_head_beyond_the_file_or_not_a_count_is_an_error(ft_inputs):
    tmp, _ = ft_inputs
    with pytest.raises(DataError, match=r"ft\.jsonl: component 'ft' asks for its first 61"):
        _mix(tmp, 61, "h61")
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(DataError, match=r"components\[1\]: head must be a positive integer"):
            _mix(tmp, bad, "bad")


def test_presets_keep_the_paper_collection_whole_and_the_tiny_mixtures_under_the_cap():
    paper = cfg.load_config(ROOT / "config.yaml")
    tiny = cfg.load_config(ROOT / "config.yaml", ROOT / "presets" / "tiny.yaml")
    assert paper["pretrain"]["ft_records"] is None
    n_mix, n_tune = tiny["pretrain"]["ft_records"], tiny["world"]["n_ft_examples"]
    assert n_mix < n_tune  # the synthesizer tunes on more than the mixtures take
    bad = {**tiny, "pretrain": {**tiny["pretrain"], "ft_records": 0}}
    with pytest.raises(cfg.ConfigError, match="ft_records"):
        cfg.validate_config(bad, ROOT / "workflow" / "schemas" / "config.schema.yaml")
