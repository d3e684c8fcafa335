"""The shape of a report in the registry: its spec (how it is shown) and what a build returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from instruct_pt.reports.cells import Record


@dataclass(frozen=True)
class Built:
    """What a report's build computed: its records (one per cell), the clause a miniature title
    gives after the label (``what``), and for a figure the paper's caption and its drawing
    (``draw(suptitle) -> (matplotlib figure, notes for the Markdown)``)."""

    records: list[Record]
    what: str
    caption: str = ""
    draw: Callable[[str], tuple[Any, list[str]]] | None = None


@dataclass(frozen=True)
class ReportSpec:
    """One of the paper's tables or figures: how its cells are computed (``build``) and shown.

    ``figure``: a figure's label ("Figure 4"; a table's title is the paper table's, from
    :mod:`instruct_pt.reports.paper`); ``row_header``: the first column's header;
    ``formatters``: a column's number format where it is not one decimal; ``headers``: a
    column's Markdown header where it is not its CSV name; ``show_n``: each cell says its n;
    ``notes``: fixed notes under the table."""

    build: Callable[..., Built]
    figure: str = ""
    row_header: str = "Model"
    formatters: Mapping[str, Callable[[float], str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    show_n: bool = False
    notes: tuple[str, ...] = ()
