"""The claims scorecard: effects, intervals and verdicts on small hand-made runs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from instruct_pt.common import DataError, read_json, write_json, write_jsonl
from instruct_pt.reports import scorecard
from instruct_pt.reports.cells import CSV_FIELDS, MINIATURE_NOTE
from instruct_pt.reports.claims import default_claims_path, load_claims, score_claims, verdict
from instruct_pt.reports.registry import make

KNOWN_TABLES = {"table1", "table2", "table3", "table4", "table5", "table6", "figure4"}


def write_csv(path: Path, rows: list[tuple]) -> Path:
    """rows: (table, row, column, ours[, stderr[, sources]])."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for t, r, c, v, *rest in rows:
        stderr = rest[0] if rest else ""
        sources = rest[1] if len(rest) > 1 else ""
        writer.writerow([t, r, c, v, stderr, "", "", "", "", sources])
    path.write_text(buf.getvalue())
    return path


def result(folder: Path, model: str, task: str, items: list, aggregation: str = "mean") -> str:
    """A task result JSON + docs file; returns its path relative to `folder`."""
    rel = f"eval/{model}/general/{task}.json"
    value = 100 * sum(items) / len(items) if aggregation == "mean" else 0.0
    write_json(
        folder / rel,
        {"model": model, "task": task, "n": len(items), "value": value, "aggregation": aggregation},
    )
    write_jsonl(
        folder / f"eval/{model}/general/{task}.docs.jsonl",
        [{"doc": i, "item": x} for i, x in enumerate(items)],
    )
    return rel


def cell(table, row, column):
    return {"table": table, "row": row, "column": column}


CLAIMS = {
    "claims": [
        {
            "id": "held",
            "text": "Instruct beats Vanilla",
            "tag": "[S2]",
            "check": {
                "op": ">",
                "left": cell("table1", "500M Instruct PT", "Avg"),
                "right": cell("table1", "500M Vanilla PT", "Avg"),
            },
        },
        {
            "id": "not-held",
            "text": "Instruct beats Mix",
            "tag": "[S]",
            "check": {
                "op": ">",
                "left": cell("table1", "500M Instruct PT", "Avg"),
                "right": cell("table1", "500M Mix PT", "Avg"),
            },
        },
        {
            "id": "empty-cell",
            "text": "1.3B Instruct beats 1.3B Vanilla",
            "tag": "[S2]",
            "check": {
                "op": ">",
                "left": cell("table1", "1.3B Instruct PT", "Avg"),
                "right": cell("table1", "1.3B Vanilla PT", "Avg"),
            },
        },
        {
            "id": "no-row",
            "text": "a row this run does not have",
            "tag": "[S]",
            "check": {
                "op": ">",
                "left": cell("table1", "500M Instruct PT", "Avg"),
                "right": cell("table1", "Nobody", "Avg"),
            },
        },
        {
            "id": "no-table",
            "text": "needs Table 3",
            "tag": "[S2]",
            "check": {
                "op": ">",
                "left": cell("table3", "Instruct PT-8B", "Finance avg"),
                "right": cell("table3", "Llama3-70B", "Finance avg"),
            },
        },
        {
            "id": "within",
            "text": "500M close to Pythia",
            "tag": "[S2]",
            "check": {
                "op": "within",
                "tol": 1.0,
                "left": cell("table2", "Instruct PT 500M", "Avg"),
                "right": cell("table2", "Pythia-1B", "Avg"),
            },
        },
        {
            "id": "all-fails",
            "text": "beats on both domains",
            "tag": "[S2]",
            "check": {
                "all": [
                    {
                        "op": ">",
                        "left": cell("table4", "Instruct PT", "Biomed avg"),
                        "right": cell("table4", "1-shot", "Biomed avg"),
                    },
                    {
                        "op": ">",
                        "left": cell("table4", "Instruct PT", "Finance avg"),
                        "right": cell("table4", "1-shot", "Finance avg"),
                    },
                ]
            },
        },
        {
            "id": "constant",
            "text": "above chance",
            "tag": "[S]",
            "check": {
                "op": ">=",
                "left": cell("table1", "500M Vanilla PT", "Avg"),
                "right": {"value": 25},
            },
        },
    ]
}


@pytest.fixture
def run_files(tmp_path):
    """Table 1 cells backed by per-document items (200 questions), Table 2 cells with only
    standard errors, Table 4 cells with neither."""
    rng = np.random.default_rng(0)
    truth = rng.random(200)
    models = {
        "van": (truth < 0.50).astype(float),
        "mix": (truth < 0.70).astype(float),  # clearly better than ins
        "ins": (truth < 0.60).astype(float),  # clearly better than van
    }
    rows = []
    labels = {"van": "500M Vanilla PT", "mix": "500M Mix PT", "ins": "500M Instruct PT"}
    for model, correct in models.items():
        src = result(tmp_path, model, "boolq", correct.tolist())
        rows.append(("table1", labels[model], "Avg", 100 * correct.mean(), "", src))
    rows += [
        ("table1", "1.3B Vanilla PT", "Avg", "41", "1.0"),
        ("table1", "1.3B Instruct PT", "Avg", ""),
    ]
    tables = {
        "table1": write_csv(tmp_path / "t1.csv", rows),
        "table2": write_csv(
            tmp_path / "t2.csv",
            [
                ("table2", "Instruct PT 500M", "Avg", "42.25", "0.5"),
                ("table2", "Pythia-1B", "Avg", "42.5", "0.5"),
            ],
        ),
        "table4": write_csv(
            tmp_path / "t4.csv",
            [
                ("table4", "Instruct PT", "Biomed avg", "60", "0.5"),
                ("table4", "1-shot", "Biomed avg", "50", "0.5"),
                ("table4", "Instruct PT", "Finance avg", "70"),
                ("table4", "1-shot", "Finance avg", "71"),
            ],
        ),
    }
    claims_path = tmp_path / "claims.yaml"
    claims_path.write_text(yaml.safe_dump(CLAIMS))
    return tables, claims_path


def test_verdict_rules():
    assert verdict(">", 0, 0.5, 3.0) == "held"
    assert verdict(">", 0, -0.5, 3.0) == "inconclusive"
    assert verdict(">", 0, -3.0, -0.5) == "refuted"
    assert verdict(">", 0, 0.0, 0.0) == "inconclusive"  # bounds exactly 0: neither
    assert verdict(">=", 0, 0.0, 0.0) == "held"
    assert verdict("<", 0, -3.0, -0.5) == "held"
    assert verdict("<", 0, 0.5, 3.0) == "refuted"
    assert verdict("<=", 0, -1.0, 0.0) == "held"
    assert verdict("within", 1.0, -0.9, 0.9) == "held"
    assert verdict("within", 1.0, -0.5, 1.5) == "inconclusive"
    assert verdict("within", 1.0, 1.2, 3.0) == "refuted"
    assert verdict("within", 1.0, -3.0, -1.1) == "refuted"


def test_verdicts_effects_and_intervals(tmp_path, run_files):
    tables, claims_path = run_files
    out_json, out_md = tmp_path / "claims.json", tmp_path / "claims.md"
    res = score_claims(tables, claims_path, out_json, out_md, run="mini", scale="miniature")
    by_id = {c["id"]: c for c in res["claims"]}
    assert {c["id"]: c["verdict"] for c in res["claims"]} == {
        "held": "held",  # ins (55%) beats van (44%): right wherever van is, and more
        "not-held": "refuted",  # mix beats ins: the claim ins > mix is refuted
        "empty-cell": "not evaluated",
        "no-row": "not evaluated",
        "no-table": "not evaluated",
        "within": "inconclusive",  # -0.25 +- 1.39: not inside [-1, 1], not outside
        "all-fails": "not evaluated",  # Biomed held (normal), Finance has no interval
        "constant": "held",  # van's Avg (about 50) >= 25, by its own bootstrap interval
    }
    held = by_id["held"]["parts"][0]
    assert held["effect"]["method"] == "paired bootstrap"
    assert [n["value"] for n in held["numbers"]] == pytest.approx([55.0, 44.0])
    assert held["effect"]["estimate"] == pytest.approx(11.0)
    low, high = held["effect"]["ci"]
    assert 0 < low < 11.0 < high < 22.0
    assert by_id["within"]["parts"][0]["effect"]["method"] == "normal"
    assert by_id["within"]["parts"][0]["effect"]["ci"] == pytest.approx(
        [-0.25 - 1.959964 * 0.5 * 2**0.5, -0.25 + 1.959964 * 0.5 * 2**0.5]
    )
    constant = by_id["constant"]["parts"][0]["effect"]
    assert constant["estimate"] == pytest.approx(44.0 - 25) and constant["ci"][0] > 0
    parts = by_id["all-fails"]["parts"]
    assert [p["verdict"] for p in parts] == ["held", "not evaluated"]
    assert "no per-document items behind this cell and no standard error" in parts[1]["reason"]
    reason = {c["id"]: c["reason"] for c in res["claims"]}
    assert "has no number in this run" in reason["empty-cell"]
    assert "'Nobody'" in reason["no-row"]
    assert reason["no-table"] == "table3 was not produced in this run"
    assert reason["held"] == ""
    assert res["summary"] == {
        "held": 2,
        "refuted": 1,
        "inconclusive": 1,
        "not evaluated": 4,
        "total": 8,
    }
    assert read_json(out_json) == res


def test_scorecard_is_deterministic_for_a_seed(tmp_path, run_files):
    tables, claims_path = run_files
    texts = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        score_claims(
            tables,
            claims_path,
            tmp_path / f"{name}.json",
            tmp_path / f"{name}.md",
            run="r",
            scale="miniature",
            seed=seed,
        )
        texts.append((tmp_path / f"{name}.json").read_text())
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_all_claim_is_refuted_by_one_refuted_part(tmp_path, run_files):
    tables, _ = run_files
    claims = {
        "claims": [
            {
                "id": "mixed",
                "text": "t",
                "tag": "[S]",
                "check": {
                    "all": [
                        {
                            "op": ">",
                            "left": cell("table1", "500M Instruct PT", "Avg"),
                            "right": cell("table1", "500M Vanilla PT", "Avg"),
                        },
                        {
                            "op": ">",
                            "left": cell("table1", "500M Instruct PT", "Avg"),
                            "right": cell("table1", "500M Mix PT", "Avg"),
                        },
                        {"op": ">", "left": cell("table3", "x", "Avg"), "right": {"value": 1}},
                    ]
                },
            }
        ]
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(claims))
    res = score_claims(tables, path, tmp_path / "c.json", tmp_path / "c.md", run="r", scale="paper")
    c = res["claims"][0]
    assert [p["verdict"] for p in c["parts"]] == ["held", "refuted", "not evaluated"]
    assert c["verdict"] == "refuted" and c["reason"] == ""


def test_missing_docs_file_falls_back_with_its_reason(tmp_path, run_files):
    tables, claims_path = run_files
    (tmp_path / "eval/van/general/boolq.docs.jsonl").unlink()
    res = score_claims(
        tables, claims_path, tmp_path / "c.json", tmp_path / "c.md", run="r", scale="miniature"
    )
    held = {c["id"]: c for c in res["claims"]}["held"]
    assert held["verdict"] == "not evaluated"
    assert "boolq.docs.jsonl: per-document items missing" in held["reason"]


def test_cells_written_by_reports_are_bootstrapped(tmp_path):
    """make("table1") writes sources relative to the CSV; the scorecard finds the items."""
    ev = tmp_path / "results" / "eval"
    rng = np.random.default_rng(1)
    for model, p in (("van", 0.4), ("ins", 0.8)):
        for task in ("arc_easy", "boolq"):
            items = (rng.random(120) < p).astype(float).tolist()
            write_json(
                ev / model / "general" / f"{task}.json",
                {
                    "model": model,
                    "suite": "general",
                    "task": task,
                    "paper_name": "",
                    "metric": "acc",
                    "value": 100 * sum(items) / 120,
                    "stderr": 4.0,
                    "n": 120,
                    "aggregation": "mean",
                },
            )
            write_jsonl(
                ev / model / "general" / f"{task}.docs.jsonl",
                [{"doc": i, "item": x} for i, x in enumerate(items)],
            )
    rows = [
        {"label": "500M Vanilla PT", "model": "van"},
        {"label": "500M Instruct PT", "model": "ins"},
    ]
    out_csv = tmp_path / "figures" / "table1.csv"
    make(
        "table1",
        ev,
        rows,
        out_csv=out_csv,
        out_md=tmp_path / "figures" / "t1.md",
        run="r",
        scale="miniature",
    )
    claims = {"claims": [CLAIMS["claims"][0]]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(claims))
    res = score_claims(
        {"table1": out_csv},
        path,
        tmp_path / "c.json",
        tmp_path / "c.md",
        run="r",
        scale="miniature",
    )
    part = res["claims"][0]["parts"][0]
    assert part["effect"]["method"] == "paired bootstrap" and part["verdict"] == "held"
    assert part["effect"]["estimate"] == pytest.approx(
        part["numbers"][0]["value"] - part["numbers"][1]["value"], abs=1e-3
    )


def test_paper_numbers_are_scored_too(tmp_path, run_files):
    tables, claims_path = run_files
    res = score_claims(
        tables, claims_path, tmp_path / "c.json", tmp_path / "c.md", run="r", scale="paper"
    )
    by_id = {c["id"]: c for c in res["claims"]}
    assert by_id["within"]["paper_status"] == "held"  # 46.6 vs 47.1 [S2]
    assert [n["value"] for n in by_id["within"]["paper_numbers"]] == [46.6, 47.1]
    # 74.7 > 71.9, although our run lacks Table 3
    assert by_id["no-table"]["paper_status"] == "held"
    assert by_id["all-fails"]["paper_status"] == "held"  # 61.3 > 58.5 and 74.7 > 73.1
    assert by_id["held"]["paper_status"] == "unknown"  # 500M Vanilla PT Avg is UNCONFIRMED
    assert by_id["held"]["paper_numbers"][1]["value"] is None


def test_markdown_scorecard(tmp_path, run_files):
    tables, claims_path = run_files
    out_md = tmp_path / "c.md"
    score_claims(tables, claims_path, tmp_path / "c.json", out_md, run="mini", scale="miniature")
    md = out_md.read_text()
    assert "Run: `mini` · scale: miniature" in md and MINIATURE_NOTE in md
    assert scorecard.ONE_SEED_NOTE in md
    assert "**Held 2 of 8 claims**: 1 refuted, 1 inconclusive, 4 not evaluated." in md
    assert (
        "| Instruct beats Vanilla (`held`) | [S2] | held | +11.0 [+7.0, +15.5] | 55.0 vs 44.0 "
        "| 46.6 [S2] vs — | unknown |"
    ) in md
    assert "| not evaluated (table3 was not produced in this run) | — | — vs — |" in md
    within = next(line for line in md.splitlines() if "(`within`)" in line)
    assert "-0.2 [-1.6, +1.1] normal" in within
    score_claims(tables, claims_path, tmp_path / "c.json", out_md, run="full", scale="paper")
    assert MINIATURE_NOTE not in out_md.read_text()


def test_named_but_missing_table_is_an_error(tmp_path, run_files):
    tables, claims_path = run_files
    tables["table3"] = tmp_path / "t3.csv"
    with pytest.raises(FileNotFoundError, match="t3.csv"):
        score_claims(
            tables, claims_path, tmp_path / "c.json", tmp_path / "c.md", run="r", scale="paper"
        )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["claims"][0]["check"].update(op="~"), "op must be one of"),
        (lambda c: c["claims"][5]["check"].pop("tol"), "needs a numeric 'tol'"),
        (lambda c: c["claims"][1].update(id="held"), "duplicate id"),
        (lambda c: c["claims"][0].pop("tag"), "missing key"),
        (lambda c: c["claims"][0]["check"].update(left={"table": "table1"}), "expected"),
        (lambda c: c["claims"][6]["check"].update({"all": []}), "non-empty list"),
    ],
)
def test_bad_claims_are_rejected(tmp_path, mutate, message):
    data = yaml.safe_load(yaml.safe_dump(CLAIMS))
    mutate(data)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=message):
        load_claims(path)


def test_packaged_claims_cover_the_paper():
    claims = load_claims(default_claims_path())
    ids = {c["id"] for c in claims}
    assert len(claims) >= 17
    assert {
        "general-500m-instruct-beats-vanilla",
        "general-1.3b-instruct-beats-vanilla",
        "general-500m-instruct-beats-mix",
        "efficiency-500m-matches-pythia-1b",
        "efficiency-1.3b-matches-bloom-3b",
        "domain-finance-instruct-beats-70b",
        "synthesizer-beats-base-response-accuracy",
        "instruction-tuning-zero-shot",
        "instruction-tuning-few-shot",
    } <= ids

    def tables_of(check):
        if "all" in check:
            return {t for part in check["all"] for t in tables_of(part)}
        return {check[side]["table"] for side in ("left", "right") if "table" in check[side]}

    assert set().union(*(tables_of(c["check"]) for c in claims)) <= KNOWN_TABLES


def test_packaged_claims_on_the_papers_own_numbers(tmp_path):
    result = score_claims(
        {}, default_claims_path(), tmp_path / "c.json", tmp_path / "c.md", run="r", scale="paper"
    )
    assert result["summary"]["not evaluated"] == result["summary"]["total"]  # no tables given
    paper = {c["id"]: c["paper_status"] for c in result["claims"]}
    # Every claim whose numbers the paper prints (and we know) holds on those numbers.
    assert set(paper.values()) <= {"held", "unknown"}
    assert paper["domain-finance-instruct-beats-70b"] == "held"
    assert paper["domain-biomed-instruct-close-to-70b"] == "held"
    assert paper["ablation-beats-rule-based"] == "held"
    assert paper["synthesizer-beats-base-response-accuracy"] == "unknown"  # Table 5 UNCONFIRMED
    assert scorecard.HELD == "held"
