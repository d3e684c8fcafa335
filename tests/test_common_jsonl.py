"""The one JSONL reader (instruct_pt.common): line numbers, offsets, BOM, gzip, errors naming
file:line, and the readers of packing and mixtures going through it."""

from __future__ import annotations

import codecs
import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.common import (
    DataError,
    iter_jsonl_lines,
    iter_jsonl_offsets,
    parse_jsonl_line,
    read_jsonl_at,
)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> str:
    from instruct_pt.common import write_jsonl
    from instruct_pt.data.tokenizer import prepare_tokenizer

    tmp = tmp_path_factory.mktemp("tok")
    texts = [{"id": str(i), "text": f"alpha beta gamma {i} café"} for i in range(20)]
    write_jsonl(tmp / "t.jsonl", texts)
    prepare_tokenizer(
        {"source": "train", "vocab_size": 300}, [str(tmp / "t.jsonl")], str(tmp / "tok"), 0
    )
    return str(tmp / "tok")


records = st.lists(
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
        max_size=3,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(records, st.lists(st.booleans(), min_size=8, max_size=8), st.booleans(), st.booleans())
def test_records_come_back_with_their_line_and_offset(tmp_path_factory, recs, blanks, bom, gz):
    lines, expected_lines = [], []
    for i, rec in enumerate(recs):
        if blanks[i]:
            lines.append("  \n")
        lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
        expected_lines.append(len(lines))
    data = (codecs.BOM_UTF8 if bom else b"") + "".join(lines).encode("utf-8")
    path = tmp_path_factory.mktemp("j") / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)

    got = list(iter_jsonl_offsets(path))
    assert [rec for _, _, rec in got] == recs
    assert [lineno for lineno, _, _ in got] == expected_lines
    assert [raw for *_, raw in iter_jsonl_lines(path)] == [
        json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in recs
    ]
    if not gz:  # offsets lead back to the record
        with open(path, "rb") as f:
            assert [read_jsonl_at(f, offset, path) for _, offset, _ in got] == recs


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"a": 1\n', "f.jsonl:3: not valid JSON"),
        (b"[1, 2]\n", "f.jsonl:3: expected a JSON object, got list"),
        (b'{"caf\xe9": 1}\n', "f.jsonl:3: not UTF-8 (byte 0xe9 at column 6)"),
        (b'{"b": 1}\n', "f.jsonl:3: missing key(s) a"),
        (codecs.BOM_UTF8 + b'{"a": 1}\n', "f.jsonl:3: not valid JSON (Unexpected UTF-8 BOM"),
    ],
)
def test_a_bad_line_names_file_and_line(raw, message):
    with pytest.raises(DataError) as e:
        parse_jsonl_line(raw, "f.jsonl", 3, required=("a",))
    assert str(e.value).startswith(message)


def test_only_the_file_opening_bom_is_skipped(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"a": 1}\n' + codecs.BOM_UTF8 + b'{"a": 2}\n')
    with pytest.raises(DataError, match=r"f\.jsonl:2: not valid JSON"):
        list(iter_jsonl_offsets(path))


def test_packing_and_mixtures_name_file_and_line(tmp_path, tiny_tokenizer):
    from instruct_pt.data.mixtures import build_mixture
    from instruct_pt.data.packing import pack

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "text": "x y"}\n\n{"id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:3: not UTF-8"):
        pack(str(bad), tiny_tokenizer, str(tmp_path / "p"), 4, 0)
    comp = [{"name": "c", "path": str(bad), "format": "text"}]
    with pytest.raises(DataError, match=r"bad\.jsonl:3: not UTF-8"):
        build_mixture("m", comp, tiny_tokenizer, str(tmp_path / "m.jsonl"), str(tmp_path / "m"), 0)
    no_id = tmp_path / "no_id.jsonl"
    no_id.write_text('{"id": "a", "text": "x"}\n{"text": "y"}\n', encoding="utf-8")
    comp = [{"name": "c", "path": str(no_id), "format": "text"}]
    with pytest.raises(DataError, match=r"no_id\.jsonl:2: missing key\(s\) id"):
        build_mixture("m", comp, tiny_tokenizer, str(tmp_path / "m.jsonl"), str(tmp_path / "m"), 0)


def test_packing_and_mixtures_read_a_file_that_opens_with_a_bom(tmp_path, tiny_tokenizer):
    from instruct_pt.common import read_jsonl
    from instruct_pt.data.mixtures import build_mixture
    from instruct_pt.data.packing import pack

    lines = [json.dumps({"id": f"d{i}", "text": f"alpha beta {i}"}) + "\n" for i in range(6)]
    plain, bom = tmp_path / "plain.jsonl", tmp_path / "bom.jsonl"
    plain.write_text("".join(lines), encoding="utf-8")
    bom.write_bytes(codecs.BOM_UTF8 + "".join(lines).encode())
    for path in (plain, bom):
        pack(str(path), tiny_tokenizer, str(tmp_path / path.stem), 4, 0)
        comp = [{"name": "c", "path": str(path), "format": "text"}]
        out = tmp_path / f"{path.stem}.mix.jsonl"
        build_mixture("m", comp, tiny_tokenizer, str(out), str(tmp_path / f"{path.stem}.m"), 3)
    assert (tmp_path / "bom" / "tokens.bin").read_bytes() == (
        tmp_path / "plain" / "tokens.bin"
    ).read_bytes()
    assert read_jsonl(tmp_path / "bom.mix.jsonl") == read_jsonl(tmp_path / "plain.mix.jsonl")
    assert len(read_jsonl(tmp_path / "bom.mix.jsonl")) == 6
