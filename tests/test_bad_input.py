"""Fault injection: every bad-input class through every entry point that reads a user's texts.

The cases run once per module; each cell of the outcome table is checked against what it must be
(an error naming the file and line or the option, or a count in the stats), and the table is
rendered to docs/bad-input.md and, in short, to the README (between its bad-input markers). Both
must match what the run produced; to regenerate them:

    BAD_INPUT_UPDATE=1 PYTHONPATH=$PWD/src .venv/bin/pytest -q tests/test_bad_input.py
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from instruct_pt.common import DataError, read_json, read_jsonl
from instruct_pt.data.inputs import escape_markers, has_marker
from instruct_pt.synthesis.protocol import MARKERS

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
ENTRY_POINTS = {
    "cli": "CLI `instruct-pt-synthesize`",
    "jsonl": "`prepare_dataset`, local `.jsonl`",
    "csv": "`prepare_dataset`, local `.csv`",
    "split": "`split_corpus` (reads `prepare_dataset`'s output)",
}
GOOD = [{"id": f"g{i}", "text": f"The cat sat on mat {i}."} for i in range(3)]
LONG_TEXT = " ".join(f"word{i % 50}" for i in range(3000))
MARKED = "Say <QUE> q <ANS> a </END></s> and <s> <CON> x </CON> then."


def _lines(rows: list) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=sorted({k for r in rows for k in r}), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue().encode()


@dataclass
class Case:
    """One bad-input class: the file's bytes per entry point (None: not applicable, with why)."""

    name: str
    what: str
    jsonl: bytes | None
    csv: bytes | None = None
    csv_na: str = "no such thing in CSV"
    cli_args: list[str] = field(default_factory=list)
    filter: dict | None = None  # a datasets.<name>.filter (prepare_dataset only)
    # per entry point: ("error", substrings the message must hold) or ("counted", stats keys)
    expect: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


def _rows_case(name, what, bad_rows, expect, csv_rows=None, **kw) -> Case:
    rows = [*GOOD, *bad_rows]
    csv_bytes = _csv(csv_rows if csv_rows is not None else rows) if csv_rows is not False else None
    return Case(name, what, _lines(rows), csv_bytes, **kw, expect=expect)


CASES = [
    Case(
        "non_utf8",
        "bytes that are not UTF-8 (Latin-1 `café`) on line 4",
        _lines([*GOOD, b'{"id": "b", "text": "caf\xe9"}']),
        _csv(GOOD) + b"b,caf\xe9\n",
        expect={  # the CSV file's line 5: its header is line 1
            ep: ("error", ("in.csv:5" if ep == "csv" else "in.jsonl:4", "not UTF-8"))
            for ep in ENTRY_POINTS
        },
    ),
    Case(
        "invalid_json",
        "a line that is not JSON",
        _lines([*GOOD, b'{"id": "b", "text": ']),
        None,
        csv_na="CSV has no JSON",
        expect={
            ep: ("error", ("in.jsonl:4", "not valid JSON")) for ep in ("cli", "jsonl", "split")
        },
    ),
    Case(
        "not_an_object",
        "a line that is JSON but not an object (`[1, 2]`)",
        _lines([*GOOD, [1, 2]]),
        None,
        csv_na="CSV rows are always records",
        expect={
            ep: ("error", ("in.jsonl:4", "expected a JSON object"))
            for ep in ("cli", "jsonl", "split")
        },
    ),
    Case(
        "empty_file",
        "an empty file (0 bytes)",
        b"",
        b"",
        expect={
            "cli": ("error", ("in.jsonl", "no records", "read 0 rows")),
            "jsonl": ("error", ("in.jsonl", "no records", "read 0 rows")),
            "csv": ("error", ("in.csv", "empty CSV file")),
            "split": ("error", ("in.jsonl", "no texts to split")),
        },
    ),
    Case(
        "blank_only",
        "a file of blank lines only",
        b"\n   \n\t\n",
        b"\n   \n\t\n",
        expect={
            "cli": ("error", ("in.jsonl", "no records", "read 0 rows")),
            "jsonl": ("error", ("in.jsonl", "no records", "read 0 rows")),
            "csv": ("error", ("in.csv", "empty CSV file")),
            "split": ("error", ("in.jsonl", "no texts to split")),
        },
    ),
    _rows_case(
        "empty_text",
        'an empty text `""`',
        [{"id": "b", "text": ""}],
        {
            "cli": ("counted", ("empty_text",)),
            "jsonl": ("counted", ("empty_text",)),
            "csv": ("counted", ("missing_text",)),  # the CSV reader reads an empty cell as null
            "split": ("error", ("in.jsonl:4", "an empty or blank text")),
        },
    ),
    _rows_case(
        "blank_text",
        'a whitespace-only text `"  \\n\\t "`',
        [{"id": "b", "text": "  \n\t "}],
        {
            "cli": ("counted", ("empty_text",)),
            "jsonl": ("counted", ("empty_text",)),
            "csv": ("counted", ("empty_text",)),
            "split": ("error", ("in.jsonl:4", "an empty or blank text")),
        },
    ),
    _rows_case(
        "non_string_text",
        'a text that is not a string (`["a"]`)',
        [{"id": "b", "text": ["a"]}],
        {
            "cli": ("counted", ("not_a_string_text",)),
            "jsonl": ("counted", ("not_a_string_text",)),
            "split": ("error", ("in.jsonl:4", "'text' must be a string")),
        },
        csv_rows=False,
        csv_na="CSV cells are text",
    ),
    _rows_case(
        "missing_text",
        "a record without the text field",
        [{"id": "b", "body": "x"}],
        {
            "cli": ("counted", ("missing_text",)),
            "jsonl": ("counted", ("missing_text",)),
            "csv": ("counted", ("missing_text",)),
            "split": ("error", ("in.jsonl:4", "missing key(s) text")),
        },
    ),
    _rows_case(
        "lone_surrogate",
        'a text with a lone surrogate escape (`"a\\ud800b"`: valid JSON, not writable as UTF-8)',
        [{"id": "b", "text": "a\ud800b"}],
        {
            "cli": ("counted", ("invalid_unicode_text",)),
            "jsonl": ("counted", ("invalid_unicode_text",)),
            "split": ("error", ("in.jsonl:4", "lone surrogates")),
        },
        csv_rows=False,
        csv_na="a CSV file has no escapes",
    ),
    Case(
        "all_dropped",
        "every text empty or blank (the data set ends empty after drops)",
        _lines([{"id": "a", "text": ""}, {"id": "b", "text": " "}, {"id": "c", "text": "\n"}]),
        _csv([{"id": "a", "text": " "}, {"id": "b", "text": "\t"}]),
        expect={
            "cli": ("error", ("in.jsonl", "no records", "'empty_text': 3")),
            "jsonl": ("error", ("in.jsonl", "no records", "'empty_text': 3")),
            "csv": ("error", ("in.csv", "no records", "'empty_text': 2")),
            "split": ("error", ("in.jsonl:1", "an empty or blank text")),
        },
    ),
    _rows_case(
        "duplicate_id",
        "an id that repeats an earlier one (line 4 repeats line 1's `g0`)",
        [{"id": "g0", "text": "Another text."}],
        {
            "cli": ("counted", ("renamed_ids", "in.jsonl:4")),
            "jsonl": ("counted", ("renamed_ids", "in.jsonl:4")),
            "csv": ("counted", ("renamed_ids", "row 4 of in.csv")),
            "split": ("error", ("in.jsonl:4", "duplicate id 'g0' (first at line 1)")),
        },
    ),
    _rows_case(
        "protocol_markers",
        f"a text holding the synthesizer's markers (`{MARKED}`)",
        [{"id": "b", "text": MARKED}],
        {
            "cli": ("counted", ("escaped_markers",)),
            "jsonl": ("counted", ("escaped_markers",)),
            "csv": ("counted", ("escaped_markers",)),
            "split": ("error", ("in.jsonl:4", "unescaped protocol marker")),
        },
    ),
    _rows_case(
        "over_long",
        "a text far longer than the synthesizer's window (3000 words; CLI: --max-model-len 128)",
        [{"id": "b", "text": LONG_TEXT}],
        {
            "cli": ("counted", ("truncated_texts",)),
            "jsonl": ("kept", ()),
            "csv": ("kept", ()),
            "split": ("kept", ()),
        },
    ),
    Case(
        "hub_filter_on_local",
        "a hub-only `filter` (`meta.pile_set_name`) kept on a local file",
        _lines(GOOD),
        _csv(GOOD),
        filter={"meta.pile_set_name": "PubMed Abstracts"},
        expect={
            "jsonl": ("error", ("in.jsonl", "filter", "meta.pile_set_name", "'filtered_out': 3")),
            "csv": ("error", ("in.csv", "filter", "meta.pile_set_name", "'filtered_out': 3")),
        },
    ),
    Case(
        "missing_file",
        "an input path that does not exist",
        None,
        None,
        expect={
            "cli": ("error", ("in.jsonl", "not found")),
            "jsonl": ("error", ("in.jsonl", "not found")),
            "csv": ("error", ("in.csv", "not found")),
            "split": ("error", ("in.jsonl", "No such file")),
        },
    ),
    *[
        Case(
            f"cli_{name}",
            f"a bad option: `{' '.join(args)}`",
            _lines(GOOD),
            cli_args=args,
            expect={"cli": ("error", (args[0],))},
        )
        for name, args in [
            ("rounds", ["--rounds", "0"]),
            ("max_new_tokens", ["--max-new-tokens", "0"]),
            ("no_room", ["--max-new-tokens", "128", "--max-model-len", "128"]),
            ("batch_size", ["--batch-size", "0"]),
            ("rounds_not_a_number", ["--rounds", "two"]),
        ]
    ],
]


@dataclass
class Outcome:
    kind: str  # "error", "counted", "kept", "n/a", or "CRASH" (never allowed)
    text: str  # the cell
    detail: dict = field(default_factory=dict)


def _counts(stats: dict) -> dict:
    out = dict(stats.get("dropped", {}))
    for key in ("renamed_ids", "escaped_markers", "truncated_texts", "escaped_marker_texts"):
        if stats.get(key):
            out[key] = stats[key]
    return out


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run_prepare(case: Case, ext: str, warned: _Warnings) -> Outcome:
    from instruct_pt.data.sources import prepare_dataset

    spec = {"source": "local", "path": f"in.{ext}"}
    if case.filter:
        spec["filter"] = case.filter
    try:
        stats = prepare_dataset("raw_general", spec, None, f"out-{ext}.jsonl")
    except DataError as e:
        return Outcome("error", f"error: {e}")
    counts = _counts(stats)
    notes = "; ".join(warned.messages)
    text = f"kept {stats['records']} of {stats['read']}"
    if counts:
        text += f", counted {counts}"
    if notes:
        text += f"; log: {notes}"
    kind = "counted" if counts else "kept"
    if kind == "kept":
        text += " (whole: synthesis cuts an over-long text inside the context and counts it)"
    return Outcome(kind, text, {"counts": counts, "notes": notes, "out": f"out-{ext}.jsonl"})


def _run_split() -> Outcome:
    from instruct_pt.synthesis.corpus_split import split_corpus

    try:
        stats = split_corpus("in.jsonl", 1.0, 1, 0, ["shard.jsonl"], "rest.jsonl")
    except DataError as e:
        return Outcome("error", f"error: {e}")
    except OSError as e:  # Snakemake makes sure the file exists; the message names it anyway
        return Outcome("error", f"error ({type(e).__name__}): {e}")
    text = f"kept {stats['converted']} of {stats['raw']}"
    return Outcome(
        "kept", text + " (whole: synthesis cuts an over-long text inside the context and counts it)"
    )


def _run_cli(case: Case, model: str, warned: _Warnings) -> Outcome:
    from instruct_pt.cli import synthesize_main

    argv = ["--input", "in.jsonl", "--output", "aug.jsonl", "--work-dir", "work"]
    argv += ["--synthesizer", model, "--rounds", "2", "--max-new-tokens", "4"]
    argv += ["--max-model-len", "128", "--batch-size", "4", *case.cli_args]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = synthesize_main(argv)
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
    assert "Traceback" not in err.getvalue()
    # stderr may hold progress bars; the error is one line, the last
    lines = [ln for ln in err.getvalue().splitlines() if "error" in ln.lower()]
    if rc != 0:
        assert len(lines) == 1, f"CLI error is not one line: {lines}"
        assert lines[0].startswith("instruct-pt-synthesize: error: "), lines
        assert err.getvalue().rstrip("\n").endswith(lines[0])
        wrote = sorted(p for p in ("work", "aug.jsonl") if os.path.exists(p))
        return Outcome("error", f"exit {rc}: `{lines[0]}`", {"line": lines[0], "wrote": wrote})
    stats = {**read_json("work/raw.jsonl.stats.json")}
    synth = read_json("work/synthesis.stats.json")
    counts = {**_counts(stats), **_counts(synth)}
    notes = "; ".join(m for m in warned.messages if "datasets." in m)
    text = f"exit 0, kept {stats['records']} of {stats['read']}, counted {counts}"
    if notes:
        text += f"; log: {notes}"
    return Outcome("counted" if counts else "kept", text, {"counts": counts, "notes": notes})


def _run_case(case: Case, entry: str, model: str, root: Path) -> Outcome:
    ext = "csv" if entry == "csv" else "jsonl"
    if entry not in case.expect:
        if case.cli_args:
            why = "a CLI option"
        elif case.filter:
            why = "the CLI has no filter" if entry == "cli" else "reads no filter"
        else:
            why = case.csv_na
        return Outcome("n/a", f"n/a ({why})")
    where = root / case.name / entry
    where.mkdir(parents=True)
    data = case.csv if entry == "csv" else case.jsonl
    if data is not None:
        (where / f"in.{ext}").write_bytes(data)
    cwd = os.getcwd()
    os.chdir(where)
    warned = _Warnings()
    logger = logging.getLogger("instruct_pt")
    logger.addHandler(warned)
    try:
        if entry == "cli":
            return _run_cli(case, model, warned)
        if entry == "split":
            return _run_split()
        return _run_prepare(case, ext, warned)
    except Exception as e:  # a traceback is the outcome this table forbids
        return Outcome("CRASH", f"CRASH {type(e).__name__}: {e}")
    finally:
        logger.removeHandler(warned)
        os.chdir(cwd)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, tiny_lm) -> dict[tuple[str, str], Outcome]:
    root = tmp_path_factory.mktemp("bad")
    logging.getLogger().setLevel(logging.INFO)
    return {
        (case.name, entry): _run_case(case, entry, tiny_lm, root)
        for case in CASES
        for entry in ENTRY_POINTS
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(outcomes: dict[tuple[str, str], Outcome]) -> str:
    head = [
        "# Bad input: what each entry point does with it",
        "",
        "Generated by `tests/test_bad_input.py` from running every case (regenerate with",
        "`BAD_INPUT_UPDATE=1 pytest tests/test_bad_input.py`; the test fails when this file is",
        "stale). Every cell is an error naming the file and line (or the option), before any",
        "output is written, or a count in the stats (`WORK/raw.jsonl.stats.json` and",
        "`WORK/synthesis.stats.json` for the CLI, `results/<run>/data/<name>.jsonl.stats.json`",
        "for the workflow's `prepare_dataset`). The input rules are one module,",
        "`instruct_pt.data.inputs`; the CLI reads its input through the workflow's `prepare_dataset`.",
        "A CLI error is one line on stderr (exit 1; 2 for a usage error), never a traceback.",
        "",
        "| Bad input | " + " | ".join(ENTRY_POINTS.values()) + " |",
        "|---|" + "---|" * len(ENTRY_POINTS),
    ]
    rows = [
        f"| **{c.name}**: {_cell(c.what)} | "
        + " | ".join(_cell(outcomes[(c.name, ep)].text) for ep in ENTRY_POINTS)
        + " |"
        for c in CASES
    ]
    return "\n".join([*head, *rows]) + "\n"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_outcome_is_an_error_naming_the_place_or_a_count(case, outcomes):
    for entry in ENTRY_POINTS:
        got = outcomes[(case.name, entry)]
        assert got.kind != "CRASH", f"{case.name} via {entry}: {got.text}"
        assert "silently" not in got.text
        if entry not in case.expect:
            assert got.kind == "n/a"
            continue
        kind, needles = case.expect[entry]
        ext = "csv" if entry == "csv" else "jsonl"
        assert got.kind == kind, f"{case.name} via {entry}: {got.text}"
        for needle in needles:
            needle = needle.format(ext=ext)
            hay = got.text if kind == "error" else f"{got.detail['counts']} {got.detail['notes']}"
            assert needle in hay, f"{case.name} via {entry}: {needle!r} not in {hay!r}"
        if entry == "cli" and kind == "error":  # checked before a file is written
            assert got.detail["wrote"] == [], got.detail


README = DOC.parents[1] / "README.md"
README_MARKERS = ("<!-- bad-input:begin -->", "<!-- bad-input:end -->")


def _short(got: Outcome) -> str:
    """A README cell: the outcome's kind and what it names or counts (the full text: the doc)."""
    if got.kind == "error":
        where = "file and line" if re.search(r"\.(jsonl|csv):\d+", got.text) else "file"
        if "--" in got.text and ".jsonl:" not in got.text:
            where = "option"
        return f"error naming the {where}"
    if got.kind == "counted":
        return "counted: " + ", ".join(f"`{k}`" for k in sorted(got.detail["counts"]))
    if got.kind == "kept":
        return "kept whole" + (" (cut in synthesis, counted)" if "cuts" in got.text else "")
    return got.kind


def render_readme(outcomes: dict) -> str:
    """The README's compact table: every bad-input class x entry point, the outcome's kind."""
    lines = [
        "| Bad input | " + " | ".join(ENTRY_POINTS.values()) + " |",
        "|---|" + "---|" * len(ENTRY_POINTS),
    ]
    lines += [
        f"| {c.name} | " + " | ".join(_short(outcomes[(c.name, ep)]) for ep in ENTRY_POINTS) + " |"
        for c in CASES
    ]
    return "\n".join(lines) + "\n"


def test_table_is_up_to_date(outcomes):
    text = render(outcomes)
    assert "silently" not in text
    begin, end = README_MARKERS
    readme = README.read_text(encoding="utf-8")
    head, rest = readme.split(begin + "\n")
    _, tail = rest.split(end)
    table = render_readme(outcomes)
    assert "silently" not in table and "CRASH" not in table
    if os.environ.get("BAD_INPUT_UPDATE"):
        DOC.write_text(text, encoding="utf-8")
        README.write_text(head + begin + "\n" + table + end + tail, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, "docs/bad-input.md is stale: see the docstring"
    assert rest.split(end)[0] == table, "README.md's bad-input table is stale: see the docstring"


def test_cli_output_holds_no_marker_and_the_drops_match_the_workflow(tmp_path, tiny_lm):
    """The CLI's output texts hold the escaped markers, never a real one; the CLI drops exactly
    what the workflow's prepare_dataset drops (same file, same counts, same records)."""
    from instruct_pt.cli import synthesize_main
    from instruct_pt.data.sources import prepare_dataset

    rows = [*GOOD, {"id": "m", "text": MARKED}, {"id": "e", "text": " "}, {"text": "no id"}]
    (tmp_path / "in.jsonl").write_bytes(_lines(rows))
    argv = ["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "aug.jsonl")]
    argv += ["--work-dir", str(tmp_path / "w"), "--synthesizer", tiny_lm, "--max-new-tokens", "8"]
    assert synthesize_main([*argv, "--max-model-len", "128"]) == 0
    out = read_jsonl(tmp_path / "aug.jsonl")
    text = "\n".join(r["text"] for r in out)
    assert escape_markers(MARKED)[0] in text
    assert not any(has_marker(r["text"]) for r in read_jsonl(tmp_path / "w" / "raw.jsonl"))
    spec = {"source": "local", "path": str(tmp_path / "in.jsonl")}
    wf = prepare_dataset("raw_general", spec, None, str(tmp_path / "wf.jsonl"))
    cli = read_json(tmp_path / "w" / "raw.jsonl.stats.json")
    assert {k: v for k, v in cli.items() if k != "source"} == {
        k: v for k, v in wf.items() if k != "source"
    }
    assert read_jsonl(tmp_path / "wf.jsonl") == read_jsonl(tmp_path / "w" / "raw.jsonl")


def test_escaped_text_holds_no_marker_property():
    from hypothesis import given
    from hypothesis import strategies as st

    pieces = st.sampled_from([*MARKERS, "<", ">", "/", "s", " ", "x", "<<", "QUE", "END>"])

    @given(st.lists(pieces, max_size=12).map("".join))
    def check(text):
        escaped, n = escape_markers(text)
        assert not has_marker(escaped)
        assert (n > 0) == has_marker(text)
        assert escaped.replace("< ", "<") == text.replace("< ", "<")  # only spaces added
        assert len(escaped) == len(text) + n
        assert escape_markers(escaped) == (escaped, 0)

    check()


def test_bom_and_not_utf8_lines(tmp_path):
    from instruct_pt.common import iter_jsonl_offsets

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "x"}\n{"id": "b", "text": "\xc3\xa9\xff"}\n')
    it = iter_jsonl_offsets(path)
    assert next(it)[2] == {"id": "a", "text": "x"}  # a leading BOM is not an error
    with pytest.raises(DataError, match=r"bom.jsonl:2: not UTF-8 \(byte 0xff at column 23\)"):
        next(it)
