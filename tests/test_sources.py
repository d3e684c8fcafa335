"""Data-set loaders: world, local files and (monkeypatched) hub data sets."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt import world
from instruct_pt.common import DataError, read_json, read_jsonl
from instruct_pt.data import records, sources

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SMALL = {"n_people": 20, "n_drugs": 12, "n_companies": 12, "n_ft_examples": 20, "eval_per_task": 8}


def _write_lines(path, lines: list) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return str(path)


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace datasets.load_dataset; record its calls and serve rows given per hub id."""
    import datasets

    calls: list[dict] = []
    tables: dict[str, list[dict]] = {}

    def load_dataset(path, name=None, *, split=None, streaming=None, revision=None, **kw):
        calls.append(
            {
                "path": path,
                "name": name,
                "split": split,
                "streaming": streaming,
                "revision": revision,
            }
        )
        return iter(tables[(path, name)] if (path, name) in tables else tables[path])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return tables, calls


# ---------------------------------------------------------------- world


def test_world_source_writes_records_and_stats(tmp_path):
    out = str(tmp_path / "data" / "synth_ft.jsonl")
    stats = sources.prepare_dataset("synth_ft", {"source": "world"}, SMALL, out)
    assert read_jsonl(out) == world.generate_dataset("synth_ft", SMALL)
    assert stats["records"] == SMALL["n_ft_examples"] and stats["dropped"] == {}
    assert stats["dataset"] == "synth_ft" and stats["source"] == "world"
    assert read_json(out + ".stats.json") == stats


def test_unknown_source_dataset_and_field_are_named(tmp_path):
    out = str(tmp_path / "x.jsonl")
    with pytest.raises(DataError, match=r"datasets\.raw_general\.source"):
        sources.prepare_dataset("raw_general", {"source": "ftp"}, None, out)
    with pytest.raises(DataError, match="raw_poetry"):
        sources.prepare_dataset("raw_poetry", {"source": "world"}, None, out)
    path = _write_lines(tmp_path / "in.jsonl", [{"text": "a"}])
    with pytest.raises(DataError, match=r"datasets\.raw_general\.fields: unknown field 'body'"):
        sources.prepare_dataset(
            "raw_general", {"source": "local", "path": path, "fields": {"body": "x"}}, None, out
        )
    assert not os.path.exists(out)


# ---------------------------------------------------------------- local files


def test_local_jsonl_bad_line_names_file_and_line(tmp_path):
    path = _write_lines(tmp_path / "corpus.jsonl", [{"text": "one"}, {"text": "two"}, "{not json"])
    with pytest.raises(DataError, match=rf"{path}:3"):
        sources.prepare_dataset(
            "raw_general", {"source": "local", "path": path}, None, str(tmp_path / "o.jsonl")
        )


def test_local_missing_file_names_path_and_config_key(tmp_path):
    path = str(tmp_path / "nowhere.jsonl")
    with pytest.raises(DataError, match=rf"{path}.*datasets\.raw_finance\.path"):
        sources.prepare_dataset(
            "raw_finance", {"source": "local", "path": path}, None, str(tmp_path / "o.jsonl")
        )


def test_local_jsonl_mapping_drops_and_ids(tmp_path):
    rows = [
        {"body": "first text", "uid": "a"},
        {"body": "   "},  # empty
        {"uid": "b"},  # no text
        {"body": ["a", "list"]},  # not a string
        {"body": "second text", "uid": "a"},  # duplicate id
        {"body": "third text"},  # no id: generated from its position
    ]
    path = _write_lines(tmp_path / "news.jsonl", rows)
    out = str(tmp_path / "raw_finance.jsonl")
    spec = {"source": "local", "path": path, "fields": {"text": "body", "id": "uid"}}
    stats = sources.prepare_dataset("raw_finance", spec, None, out)
    records = read_jsonl(out)
    assert [r["text"] for r in records] == ["first text", "second text", "third text"]
    assert [r["id"] for r in records] == ["a", "a-1", "raw_finance-0000002"]
    assert all(r["meta"] == {"source": f"local:{path}"} for r in records)
    assert stats["dropped"] == {"empty_text": 1, "missing_text": 1, "not_a_string_text": 1}
    assert stats["records"] == 3 and stats["read"] == 6 and stats["renamed_ids"] == 1
    # stable: the same input gives the same bytes
    first = open(out, "rb").read()
    sources.prepare_dataset("raw_finance", spec, None, out)
    assert open(out, "rb").read() == first


def test_local_mirror_of_world_output_round_trips(tmp_path):
    mirror = tmp_path / "mirror.jsonl"
    sources.prepare_dataset("instruction_tuning", {"source": "world"}, SMALL, str(mirror))
    out = str(tmp_path / "it.jsonl")
    stats = sources.prepare_dataset(
        "instruction_tuning", {"source": "local", "path": str(mirror)}, None, out
    )
    assert read_jsonl(out) == read_jsonl(mirror)
    assert stats["dropped"] == {}


def test_local_csv_through_datasets(tmp_path):
    path = tmp_path / "orca.csv"
    path.write_text(
        'id,question,response\nq1,What is 2 plus 2?,4\nq2,Name a colour.,""\n3,Say 7.,7\n',
        encoding="utf-8",
    )
    out = str(tmp_path / "gi.jsonl")
    stats = sources.prepare_dataset(
        "general_instructions",
        {"source": "local", "path": str(path), "cache_dir": str(tmp_path / "cache")},
        None,
        out,
    )
    assert read_jsonl(out) == [  # every column is read as text: "4" stays "4", not 4.0
        {"id": "q1", "question": "What is 2 plus 2?", "response": "4"},
        {"id": "3", "question": "Say 7.", "response": "7"},
    ]
    assert sum(stats["dropped"].values()) == 1  # the empty response (read as None or "")


def test_unsupported_local_format(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        sources.prepare_dataset(
            "raw_general", {"source": "local", "path": str(path)}, None, str(tmp_path / "o.jsonl")
        )


# ---------------------------------------------------------------- hub


def test_hub_refinedweb_maps_content_and_passes_arguments(fake_hub, tmp_path):
    tables, calls = fake_hub
    tables["tiiuae/falcon-refinedweb"] = [
        {"content": f"web page {i}", "url": f"u{i}"} for i in range(10)
    ]
    spec = {"source": "hub", "id": "tiiuae/falcon-refinedweb", "max_docs": 4, "revision": "abc"}
    out = str(tmp_path / "raw_general.jsonl")
    stats = sources.prepare_dataset("raw_general", spec, None, out)
    assert calls == [
        {
            "path": "tiiuae/falcon-refinedweb",
            "name": None,
            "split": "train",
            "streaming": True,
            "revision": "abc",
        }
    ]
    records = read_jsonl(out)
    assert [r["text"] for r in records] == [f"web page {i}" for i in range(4)]
    assert records[0] == {
        "id": "raw_general-0000000",
        "text": "web page 0",
        "meta": {"source": "hub:tiiuae/falcon-refinedweb"},
    }
    assert stats["read"] == 4  # streaming stops as soon as max_docs records are kept


def test_hub_pile_filter_max_docs_and_drop_counts(fake_hub, tmp_path):
    tables, _ = fake_hub
    rows = []
    for i in range(12):
        name = "PubMed Abstracts" if i % 3 == 0 else "Github"
        rows.append({"text": f"abstract {i}" if i != 3 else "", "meta": {"pile_set_name": name}})
    tables["EleutherAI/pile"] = rows
    spec = {
        "source": "hub",
        "id": "EleutherAI/pile",
        "filter": {"meta.pile_set_name": "PubMed Abstracts"},
        "max_docs": 2,
    }
    out = str(tmp_path / "raw_biomedicine.jsonl")
    stats = sources.prepare_dataset("raw_biomedicine", spec, None, out)
    records = read_jsonl(out)
    assert [r["text"] for r in records] == ["abstract 0", "abstract 6"]
    assert records[0]["meta"] == {
        "pile_set_name": "PubMed Abstracts",
        "source": "hub:EleutherAI/pile",
    }
    assert stats["dropped"] == {"empty_text": 1, "filtered_out": 4}  # rows 1,2,4,5; row 3 empty
    assert stats["read"] == 7


def test_hub_openorca_and_flan_defaults(fake_hub, tmp_path):
    tables, _ = fake_hub
    tables["Open-Orca/OpenOrca"] = [
        {"id": "niv.1", "system_prompt": "", "question": "Q1?", "response": "R1"},
        {"id": "niv.2", "system_prompt": "", "question": "Q2?"},
    ]
    tables["Muennighoff/flan"] = [
        {"inputs": "Translate: hi", "targets": "salut", "task_name": "wmt"},
        {"inputs": "Is 3 odd?", "targets": "yes"},
    ]
    out = str(tmp_path / "gi.jsonl")
    stats = sources.prepare_dataset(
        "general_instructions", {"source": "hub", "id": "Open-Orca/OpenOrca"}, None, out
    )
    assert read_jsonl(out) == [{"id": "niv.1", "question": "Q1?", "response": "R1"}]
    assert stats["dropped"] == {"missing_response": 1}
    out = str(tmp_path / "it.jsonl")
    sources.prepare_dataset(
        "instruction_tuning",
        {"source": "hub", "id": "Muennighoff/flan", "split": "validation"},
        None,
        out,
    )
    assert read_jsonl(out) == [
        {
            "id": "instruction_tuning-0000000",
            "task": "wmt",
            "instruction": "Translate: hi",
            "response": "salut",
        },
        {
            "id": "instruction_tuning-0000001",
            "task": "unknown",
            "instruction": "Is 3 odd?",
            "response": "yes",
        },
    ]


def test_hub_synthesizer_collection_qa_list(fake_hub, tmp_path):
    tables, calls = fake_hub
    cot = "Which is larger, 3 or 5?\nOptions:\n- 3\n- 5\nLet's think step by step."
    tables["instruction-pretrain/ft-instruction-synthesizer-collection"] = [
        {
            "passage": "Some context.",
            "QA_list": [
                {"Q": "What is it?", "A": "Some."},
                {"Q": "Pick one\nOptions:\n- a\n- b", "A": "a"},
                {"Q": cot, "A": "5 > 3.\nTherefore, the answer is 5"},
                {"Q": "", "A": "dropped"},
            ],
        },
        {"passage": "No pairs here.", "QA_list": []},
        {"passage": "Bad pairs.", "QA_list": "not a list"},
    ]
    spec = {
        "source": "hub",
        "id": "instruction-pretrain/ft-instruction-synthesizer-collection",
        "config": "squad",
        "fields": {"context": "passage"},
        "min_kept_fraction": 0.3,  # 1 of 3 rows survive in this deliberately bad table
    }
    out = str(tmp_path / "synth_ft.jsonl")
    stats = sources.prepare_dataset("synth_ft", spec, None, out)
    assert calls[0]["name"] == "squad"
    (rec,) = read_jsonl(out)
    assert rec["dataset"] == "squad" and rec["seen"] is True and rec["context"] == "Some context."
    assert [p["format"] for p in rec["pairs"]] == ["free", "mc", "mc_cot"]
    assert stats["dropped"] == {"bad_pair": 1, "no_valid_pairs": 1, "not_a_list_pairs": 1}


def test_hub_synthesizer_collection_per_dataset_configs(fake_hub, tmp_path):
    """One config per source dataset: rows take their config's name unless they carry one."""
    tables, calls = fake_hub
    hub_id = "instruction-pretrain/ft-instruction-synthesizer-collection"
    pair = [{"Q": "What is it?", "A": "Some."}]
    tables[(hub_id, "squad")] = [{"context": "A.", "QA_list": pair}] * 2
    tables[(hub_id, "race")] = [
        {"context": "B.", "QA_list": pair},
        {"context": "C.", "QA_list": pair, "dataset": "race_middle"},
    ]
    spec = {"source": "hub", "id": hub_id, "configs": ["squad", "race"]}
    out = str(tmp_path / "synth_ft.jsonl")
    stats = sources.prepare_dataset("synth_ft", spec, None, out)
    assert [c["name"] for c in calls] == ["squad", "race"]
    assert [r["dataset"] for r in read_jsonl(out)] == ["squad", "squad", "race", "race_middle"]
    assert stats["records"] == 4 and stats["read"] == 4

    with pytest.raises(DataError, match=r"datasets\.synth_ft: give either config or configs"):
        sources.prepare_dataset("synth_ft", {**spec, "config": "all"}, None, out)
    with pytest.raises(DataError, match=r"datasets\.synth_ft\.configs"):
        sources.prepare_dataset("synth_ft", {**spec, "configs": []}, None, out)


def test_hub_without_id_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"datasets\.raw_general\.id"):
        sources.prepare_dataset("raw_general", {"source": "hub"}, None, str(tmp_path / "o.jsonl"))


# ---------------------------------------------------------------- validation and helpers


@pytest.mark.parametrize(
    "name,rec,message",
    [
        ("raw_general", {"id": "x", "text": "t"}, "missing key 'meta'"),
        (
            "general_instructions",
            {"id": "x", "question": "q", "response": 3},
            "'response' must be str",
        ),
        (
            "instruction_tuning",
            {"id": 1, "task": "t", "instruction": "i", "response": "r"},
            "'id' must be str",
        ),
        (
            "synth_ft",
            {"id": "x", "dataset": "d", "task_type": "t", "seen": 1, "context": "c", "pairs": []},
            "'seen' must be bool",
        ),
        (
            "synth_ft",
            {
                "id": "x",
                "dataset": "d",
                "task_type": "t",
                "seen": True,
                "context": "c",
                "pairs": [{"question": "q", "answer": "a", "format": "essay"}],
            },
            r"pairs\[0\]\.format",
        ),
    ],
)
def test_validate_record_names_the_problem(name, rec, message):
    with pytest.raises(DataError, match=rf"f\.jsonl:7: .*{message}"):
        records.validate_record(name, rec, "f.jsonl:7")


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(st.one_of(st.none(), _text), max_size=15),
    max_docs=st.one_of(st.none(), st.integers(0, 10)),
)
def test_kept_plus_dropped_accounts_for_every_row_read(rows, max_docs, tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "in.jsonl"
    _write_lines(path, [{} if t is None else {"text": t} for t in rows])
    spec = {"source": "local", "path": str(path), "max_docs": max_docs, "min_kept_fraction": 0}
    out = str(path) + ".out.jsonl"
    if max_docs == 0 or not any(t is not None and t.strip() for t in rows):
        with pytest.raises(DataError, match=r"datasets\.raw_general: no records"):
            sources.prepare_dataset("raw_general", spec, None, out)
        assert not os.path.exists(out)
        return
    stats = sources.prepare_dataset("raw_general", spec, None, out)
    records = read_jsonl(out)
    assert stats["records"] == len(records) <= (len(rows) if max_docs is None else max_docs)
    assert stats["read"] == stats["records"] + sum(stats["dropped"].values())
    assert all(r["text"].strip() for r in records)
    assert len({r["id"] for r in records}) == len(records)


# ---------------------------------------------------------------- streaming: same bytes as before


def _raw_rows() -> list[dict]:
    """World raw texts as a RefinedWeb-like source with repeated, missing and clashing ids."""
    recs = world.generate_dataset("raw_general", SMALL)
    rows: list[dict] = []
    for i, rec in enumerate(recs):
        row = {"id": rec["id"], "content": rec["text"], "meta": rec["meta"]}
        if i % 7 == 3:
            row["id"] = recs[i - 1]["id"]  # the previous id again
        if i % 11 == 5:
            del row["id"]  # generated from the position
        if i % 13 == 0:
            row["content"] = "  "
        rows.append(row)
    rows[4:4] = [
        {"id": "dupe", "content": "d0"},
        {"id": "dupe", "content": "d1"},  # -> dupe-1
        {"id": "dupe-1", "content": "d2"},  # taken by the rename above -> dupe-1-1
        {"id": "dupe", "content": "d3"},  # -> dupe-2
        {"id": "raw_general-0000009", "content": "clash with a generated id"},
    ]
    return rows


def _ft_rows() -> list[dict]:
    """World synth_ft in the hub's {context, QA_list} schema, with bad pairs and empty lists."""
    rows = []
    for i, rec in enumerate(world.generate_dataset("synth_ft", SMALL)):
        qa = [{"Q": p["question"], "A": p["answer"]} for p in rec["pairs"]]
        if i % 5 == 2:
            qa.append({"Q": "", "A": "x"})
        if i % 9 == 4:
            qa = []
        row = {"id": rec["id"], "dataset": rec["dataset"], "context": rec["context"]}
        rows.append({**row, "QA_list": qa})
    return sorted(rows, key=lambda r: r["dataset"])


def test_streaming_writes_the_bytes_of_the_in_memory_version(tmp_path, monkeypatch):
    """The sha256 values were computed once with the pre-streaming code (everything in memory);
    o_ft's recomputed when the world's synth_ft records changed (one reserved person a record)."""
    import hashlib

    monkeypatch.chdir(tmp_path)  # the records' meta names the source path: keep it relative
    _write_lines(tmp_path / "raw.jsonl", _raw_rows())
    _write_lines(tmp_path / "ft.jsonl", _ft_rows())
    spec = {"source": "local", "path": "raw.jsonl", "fields": {"text": "content"}}
    stats = sources.prepare_dataset("raw_general", spec, None, "o_raw.jsonl")
    assert stats == {
        "dataset": "raw_general",
        "source": "local:raw.jsonl",
        "records": 43,
        "dropped": {"empty_text": 4},
        "read": 47,
        "renamed_ids": 12,
        "escaped_markers": 0,
    }
    ids = [r["id"] for r in read_jsonl("o_raw.jsonl")]
    assert ids[3:8] == ["dupe", "dupe-1", "dupe-1-1", "dupe-2", "raw_general-0000009"]
    assert ids[9] == "raw_general-0000009-1"  # the generated id clashes with the source's
    stats = sources.prepare_dataset(
        "synth_ft", {"source": "local", "path": "ft.jsonl"}, None, "o_ft.jsonl"
    )
    assert (stats["records"], stats["read"], stats["dropped"]) == (
        18,
        20,
        {"bad_pair": 4, "no_valid_pairs": 2},
    )
    digest = {
        p: hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
        for p in ("o_raw.jsonl", "o_ft.jsonl")
    }
    assert digest == {"o_raw.jsonl": "8d310dd1cb895a2f", "o_ft.jsonl": "405030a73ae533e5"}


def _reference_ids(raw_ids: list[str]) -> list[str]:
    """The in-memory renaming (a set of every id so far) that the streaming version replaces."""
    used: set[str] = set()
    out = []
    for rec_id in raw_ids:
        if rec_id in used:
            k = 1
            while f"{rec_id}-{k}" in used:
                k += 1
            rec_id = f"{rec_id}-{k}"
        used.add(rec_id)
        out.append(rec_id)
    return out


_ids = st.lists(
    st.one_of(
        st.sampled_from(["a", "a-1", "a-2", "a-1-1", "b", "b-1", "raw_general-0000001", ""]),
        st.text("ab-1", min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(raw_ids=_ids, weak_hash=st.booleans())
def test_renaming_matches_the_in_memory_reference(raw_ids, weak_hash, tmp_path_factory):
    """Also with a 2-valued id hash, so every lookup collides: the result must not change."""
    tmp = tmp_path_factory.mktemp("ids")
    path = _write_lines(
        tmp / "in.jsonl", [{"id": i, "text": f"t{k}"} for k, i in enumerate(raw_ids)]
    )
    out = str(tmp / "out.jsonl")
    given = [i if i else f"raw_general-{k:07d}" for k, i in enumerate(raw_ids)]
    expected = _reference_ids(given)
    real_hash = sources.stable_hash
    sources.stable_hash = (lambda s: len(s) % 2) if weak_hash else real_hash
    try:
        stats = sources.prepare_dataset("raw_general", {"source": "local", "path": path}, None, out)
    finally:
        sources.stable_hash = real_hash
    assert [r["id"] for r in read_jsonl(out)] == expected
    assert stats["renamed_ids"] == sum(a != b for a, b in zip(expected, given, strict=True))


# ---------------------------------------------------------------- empty or mostly dropped


def test_a_schema_change_that_drops_every_row_fails_naming_the_reasons(tmp_path):
    path = _write_lines(tmp_path / "in.jsonl", [{"body": f"text {i}"} for i in range(5)])
    out = str(tmp_path / "o.jsonl")
    with pytest.raises(DataError, match=r"datasets\.raw_general: no records .*'missing_text': 5"):
        sources.prepare_dataset("raw_general", {"source": "local", "path": path}, None, out)
    assert not os.path.exists(out) and not os.path.exists(out + ".stats.json")


def test_a_filter_that_matches_nothing_fails(fake_hub, tmp_path):
    tables, _ = fake_hub
    tables["EleutherAI/pile"] = [{"text": "t", "meta": {"pile_set_name": "Github"}}] * 3
    spec = {"source": "hub", "id": "EleutherAI/pile", "filter": {"meta.pile_set_name": "PubMed"}}
    with pytest.raises(DataError, match=r"raw_biomedicine: no records .*'filtered_out': 3"):
        sources.prepare_dataset("raw_biomedicine", spec, None, str(tmp_path / "o.jsonl"))


def test_kept_share_is_measured_on_the_rows_the_filter_selects(fake_hub, tmp_path):
    tables, _ = fake_hub
    pubmed = {"text": "abstract", "meta": {"pile_set_name": "PubMed"}}
    other = {"text": "code", "meta": {"pile_set_name": "Github"}}
    empty = {"text": " ", "meta": {"pile_set_name": "PubMed"}}
    spec = {"source": "hub", "id": "EleutherAI/pile", "filter": {"meta.pile_set_name": "PubMed"}}
    out = str(tmp_path / "o.jsonl")
    # 9 of 10 rows filtered out, 1 of the 2 selected empty: kept 1/2 = 0.5, not below the default
    tables["EleutherAI/pile"] = [pubmed, empty] + [other] * 8
    stats = sources.prepare_dataset("raw_biomedicine", spec, None, out)
    assert stats["records"] == 1 and stats["dropped"] == {"empty_text": 1, "filtered_out": 8}
    # 1 of 3 selected kept: 33% < 50%
    tables["EleutherAI/pile"] = [pubmed, empty, empty] + [other] * 8
    with pytest.raises(
        DataError,
        match=r"raw_biomedicine: kept only 1 of the 3 rows .*33\.3% < datasets\.raw_biomedicine"
        r"\.min_kept_fraction=0\.5.*'empty_text': 2, 'filtered_out': 8",
    ):
        sources.prepare_dataset("raw_biomedicine", spec, None, out)
    stats = sources.prepare_dataset(
        "raw_biomedicine", {**spec, "min_kept_fraction": 0.3}, None, out
    )
    assert stats["records"] == 1
    with pytest.raises(DataError, match=r"min_kept_fraction: must be a number in \[0, 1\]"):
        sources.prepare_dataset("raw_biomedicine", {**spec, "min_kept_fraction": 2}, None, out)
