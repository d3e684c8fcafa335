"""The paper's numbers: right values and tags, and never an UNCONFIRMED value as a number."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_pt.common import DataError
from instruct_pt.reports.paper import (
    load_tables,
    paper_entry,
    paper_table,
    paper_value,
    parse_tables,
)

TABLES = load_tables()
ALL_CELLS = [
    (name, row, column)
    for name, table in TABLES.items()
    for row, cells in table.rows.items()
    for column in cells
]
# Recollections that fit the averages but have no source: they must never appear anywhere.
UNC_REC = {
    ("table1", "500M Instruct PT", "ARC-c"): 27.4,
    ("table1", "500M Instruct PT", "HellaSwag"): 47.3,
    ("table1", "1.3B Instruct PT", "WinoGrande"): 55.9,
    ("table1", "1.3B Instruct PT", "OBQA"): 33.4,
    ("table1", "1.3B Instruct PT", "HellaSwag"): 54.3,
}


def test_known_values_with_tags():
    assert paper_value("table1", "500M Vanilla PT", "BoolQ") == (57.5, "[S]")
    assert paper_value("table1", "500M Instruct PT", "Avg") == (46.6, "[S2]")
    assert paper_value("table1", "1.3B Instruct PT", "Avg") == (49.7, "[S2]")
    assert paper_value("table2", "BLOOM-3B", "Tokens") == (341e9, "[S2]")
    assert paper_value("table2", "Instruct PT 500M", "Tokens") == (100e9, "[P]")
    assert paper_value("table3", "Instruct PT-8B", "Finance avg") == (74.7, "[S2]")
    assert paper_value("table3", "Llama3-70B", "Biomed avg") == (63.9, "[S2]")
    assert paper_value("table4", "1-shot", "Biomed avg") == (58.5, "[S2]")
    assert paper_value("table6", "General", "Task categories") == (49.0, "[S2]")


def test_table_shapes_match_the_brief():
    assert list(paper_table("table1").rows) == [
        "500M Vanilla PT",
        "500M Mix PT",
        "500M Instruct PT",
        "1.3B Vanilla PT",
        "1.3B Instruct PT",
    ]
    assert paper_table("table1").columns[-1] == "Avg" and len(paper_table("table1").columns) == 10
    assert list(paper_table("table3").rows) == [
        "Llama3-8B",
        "Vanilla PT-8B",
        "Instruct PT-8B",
        "Llama3-70B",
    ]
    assert list(paper_table("table4").rows) == [
        "Instruct PT",
        "w/o Corpora",
        "Rule-based",
        "1-shot",
    ]
    assert list(paper_table("table6").rows) == ["General", "Biomedicine", "Finance"]


def test_unconfirmed_values_are_never_returned():
    for name, row, column in ALL_CELLS:
        entry = paper_entry(name, row, column)
        if entry.tag == "UNCONFIRMED":
            assert entry.value is None
            assert paper_value(name, row, column) is None
        else:
            assert paper_value(name, row, column) == (entry.value, entry.tag)
    # all of Table 5 and the 500M Mix PT row are unknown
    assert all(paper_value("table5", r, c) is None for _, r, c in ALL_CELLS if _ == "table5")
    assert all(
        paper_value("table1", "500M Mix PT", c) is None for c in paper_table("table1").columns
    )


def test_recollections_are_absent_from_the_values_file():
    text = resources.files("instruct_pt").joinpath("resources", "paper_values.yaml").read_text()
    for key, value in UNC_REC.items():
        assert paper_value(*key) is None
        if value != 54.3:  # 54.3 is also Llama3-70B's PubMedQA score [S], a different cell
            assert str(value) not in text


def test_missing_cells_of_paper_rows_read_as_unconfirmed():
    entry = paper_entry("table3", "Instruct PT-8B", "ChemProt")
    assert entry is not None and entry.tag == "UNCONFIRMED" and entry.value is None
    assert paper_entry("table3", "our own row", "ChemProt") is None
    assert paper_entry("table1", "500M Instruct PT", "not a column") is None
    with pytest.raises(KeyError, match="table7"):
        paper_value("table7", "x", "y")


def test_conflicting_category_counts_are_flagged():
    entry = paper_entry("table6", "Biomedicine", "Task categories")
    assert (entry.value, entry.tag) == (26.0, "[S]") and "49-51" in entry.conflict
    assert paper_entry("table6", "Biomedicine", "Context relevance").conflict == ""


@pytest.mark.parametrize(
    "cell, message",
    [
        ({"value": 1.0, "tag": "UNCONFIRMED"}, "null exactly"),
        ({"value": None, "tag": "[S]"}, "null exactly"),
        ({"value": 1.0, "tag": "[S3]"}, "unknown evidence tag"),
        ({"value": "1.0", "tag": "[S]"}, "must be a number"),
        ({"tag": "[S]"}, "'value' and 'tag'"),
    ],
)
def test_bad_cells_are_rejected(cell, message):
    data = {"t": {"columns": ["c"], "rows": {"r": {"c": cell}}}}
    with pytest.raises(DataError, match=message):
        parse_tables(data)


def test_cell_outside_the_columns_is_rejected():
    data = {"t": {"columns": ["c"], "rows": {"r": {"d": {"value": 1, "tag": "[P]"}}}}}
    with pytest.raises(DataError, match="t / r / d"):
        parse_tables(data)


names = st.sampled_from(sorted(TABLES))
words = st.one_of(
    st.sampled_from(sorted({r for t in TABLES.values() for r in t.rows})),
    st.sampled_from(sorted({c for t in TABLES.values() for c in t.columns})),
    st.text(max_size=12),
)


@given(names, words, words)
def test_paper_value_is_none_or_a_tagged_number(table, row, column):
    found = paper_value(table, row, column)
    assert found is None or (isinstance(found[0], float) and found[1] in ("[P]", "[S]", "[S2]"))
