"""The reports' registry (instruct_pt.reports.registry): every report a rule names is registered,
and make() refuses what it cannot make before writing anything. (The package's layout rules, for
reports/ as for every module: tests/test_layout.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instruct_pt.reports.registry import SPECS, make

ROOT = Path(__file__).resolve().parents[1]


def test_every_report_a_rule_names_is_registered():
    text = (ROOT / "rules" / "reports.smk").read_text(encoding="utf-8")
    named = re.findall(r'^\s+report="(\w+)",$', text, flags=re.M)
    assert len(named) == 9 and set(named) == set(SPECS)
    # A figure's spec has a label; a table's title comes from the paper's table.
    assert {n for n, s in SPECS.items() if s.figure} == {"figure4", "figure6"}


def test_make_refuses_an_unknown_report_and_a_figure_without_its_images(tmp_path):
    out = {"out_csv": tmp_path / "x.csv", "out_md": tmp_path / "x.md", "run": "r"}
    with pytest.raises(ValueError, match="unknown report 'table7'; known: table1, "):
        make("table7", scale="paper", **out)
    with pytest.raises(ValueError, match="scale must be one of"):
        make("table9", tmp_path / "c.json", scale="tiny", **out)
    with pytest.raises(FileNotFoundError, match="c.json: contamination result missing"):
        make("table9", tmp_path / "c.json", scale="paper", **out)
    quality = tmp_path / "q.json"
    quality.write_text(
        '{"context_relevance": 50, "response_accuracy": 50, "n_categories": 1, '
        '"categories": {"a": 1.0}, "n_pairs": 4}'
    )
    with pytest.raises(ValueError, match="figure6: a figure needs out_png and out_pdf"):
        make("figure6", {"general": quality}, scale="paper", **out)
    assert not list(tmp_path.glob("x.*"))  # nothing written
