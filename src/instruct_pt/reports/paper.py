"""The paper's own numbers, each with its evidence tag, for reports and the claims scorecard.

Everything lives in ``resources/paper_values.yaml``. A number reaches a table only through
:func:`paper_value`, which never returns an UNCONFIRMED cell: a replication must not print a
secondary guess or a recollection as "the paper's number". :func:`paper_entry` gives the full
cell (tag, source, notes) so a report can still say *that* the paper has an unconfirmed value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from instruct_pt.common import DataError

log = logging.getLogger(__name__)

TAGS = ("[P]", "[S]", "[S2]", "UNCONFIRMED")
VALUES_FILE = "paper_values.yaml"


@dataclass(frozen=True)
class PaperEntry:
    """One cell of one of the paper's tables. ``value`` is None exactly when tag is UNCONFIRMED."""

    value: float | None
    tag: str
    source: str = ""
    note: str = ""
    conflict: str = ""


@dataclass(frozen=True)
class PaperTable:
    """One table: its title, its columns in the paper's order, and its cells by row label."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: dict[str, dict[str, PaperEntry]]


def _parse_entry(where: str, raw: object) -> PaperEntry:
    if not isinstance(raw, dict) or "tag" not in raw or "value" not in raw:
        raise DataError(f"{where}: expected a mapping with 'value' and 'tag'")
    tag, value = raw["tag"], raw["value"]
    if tag not in TAGS:
        raise DataError(f"{where}: unknown evidence tag {tag!r} (allowed: {', '.join(TAGS)})")
    if (tag == "UNCONFIRMED") != (value is None):
        raise DataError(f"{where}: value must be null exactly when the tag is UNCONFIRMED")
    if value is not None and not isinstance(value, int | float):
        raise DataError(f"{where}: value must be a number, got {value!r}")
    return PaperEntry(
        value=None if value is None else float(value),
        tag=tag,
        source=str(raw.get("source", "")),
        note=str(raw.get("note", "")),
        conflict=str(raw.get("conflict", "")),
    )


def parse_tables(data: dict, where: str = VALUES_FILE) -> dict[str, PaperTable]:
    """Validate the YAML structure and build the tables.

    Cells outside ``columns`` are errors; cells of a listed row that the YAML leaves out are
    UNCONFIRMED (the paper prints a number there that no source gives us).
    """
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a mapping of tables")
    tables: dict[str, PaperTable] = {}
    for name, spec in data.items():
        columns = tuple(spec.get("columns", ()))
        rows: dict[str, dict[str, PaperEntry]] = {}
        for row, cells in (spec.get("rows") or {}).items():
            rows[row] = {}
            for column, raw in cells.items():
                key = f"{where}: {name} / {row} / {column}"
                if column not in columns:
                    raise DataError(f"{key}: column not in the table's columns")
                rows[row][column] = _parse_entry(key, raw)
            for column in columns:  # the paper prints a number here, but no source gives it
                rows[row].setdefault(column, PaperEntry(value=None, tag="UNCONFIRMED"))
        for row in spec.get("unconfirmed_rows", ()):  # rows whose every cell is UNCONFIRMED
            rows[row] = {c: PaperEntry(value=None, tag="UNCONFIRMED") for c in columns}
        tables[name] = PaperTable(name, str(spec.get("title", name)), columns, rows)
    return tables


@lru_cache(maxsize=1)
def load_tables() -> dict[str, PaperTable]:
    """All of the paper's tables from the packaged YAML (parsed once per process)."""
    text = resources.files("instruct_pt").joinpath("resources", VALUES_FILE).read_text("utf-8")
    return parse_tables(yaml.safe_load(text))


def paper_table(table: str) -> PaperTable:
    """One table by key ("table1" ... "table6", "table9"); KeyError names the known keys."""
    tables = load_tables()
    if table not in tables:
        raise KeyError(f"unknown paper table {table!r}; known: {', '.join(tables)}")
    return tables[table]


def paper_entry(table: str, row: str, column: str) -> PaperEntry | None:
    """The paper's cell (including UNCONFIRMED ones, whose value is None), or None if unknown.

    Unknown rows and columns give None (our own rows have no paper counterpart); an unknown
    table raises KeyError, since that is a programming error.
    """
    return paper_table(table).rows.get(row, {}).get(column)


def paper_value(table: str, row: str, column: str) -> tuple[float, str] | None:
    """``(value, tag)`` of a confirmed-enough cell ([P], [S] or [S2]); None for anything else."""
    entry = paper_entry(table, row, column)
    if entry is None or entry.value is None or entry.tag == "UNCONFIRMED":
        return None
    return entry.value, entry.tag
