"""Data-set loaders: world, local files and (monkeypatched) hub data sets."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt import sources, world
from instruct_pt.common import DataError, read_json, read_jsonl

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
        sources.validate_record(name, rec, "f.jsonl:7")


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=50, deadline=None)
@given(
    q=_text, options=st.lists(_text, min_size=1, max_size=4), mc=st.booleans(), cot=st.booleans()
)
def test_infer_pair_format_recognises_the_synthesizer_conventions(q, options, mc, cot):
    q, options = q.replace("\n", " ").replace(".", ""), [o.replace(".", "") for o in options]
    question = q + ("\nOptions:\n" + "\n".join(f"- {o}" for o in options) if mc else "")
    question += world.COT_SUFFIX if cot else ""
    expected = {
        (False, False): "free",
        (True, False): "mc",
        (False, True): "cot",
        (True, True): "mc_cot",
    }
    assert sources.infer_pair_format(question) == expected[(mc, cot)]


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(st.one_of(st.none(), _text), max_size=15),
    max_docs=st.one_of(st.none(), st.integers(0, 10)),
)
def test_kept_plus_dropped_accounts_for_every_row_read(rows, max_docs, tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "in.jsonl"
    _write_lines(path, [{} if t is None else {"text": t} for t in rows])
    spec = {"source": "local", "path": str(path), "max_docs": max_docs}
    out = str(path) + ".out.jsonl"
    stats = sources.prepare_dataset("raw_general", spec, None, out)
    records = read_jsonl(out)
    assert stats["records"] == len(records) <= (len(rows) if max_docs is None else max_docs)
    assert stats["read"] == stats["records"] + sum(stats["dropped"].values())
    assert all(r["text"].strip() for r in records)
    assert len({r["id"] for r in records}) == len(records)
