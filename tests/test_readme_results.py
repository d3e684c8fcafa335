"""The README's generated results section: the multi-seed scorecard (claims, effects, intervals,
verdicts, per-seed effects) and time per stage replace only the text between the markers; the
replacement is idempotent; missing or misplaced markers and a single-run scorecard fail clearly."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from test_seeds import CLAIMS, SEEDS, make_seed_runs

from instruct_pt.common import DataError
from instruct_pt.reports import readme_results as rr
from instruct_pt.reports import timing
from instruct_pt.reports.claims import score_claims

BEGIN, END = "<!-- results:mini-seeds:begin -->", "<!-- results:mini-seeds:end -->"
README = f"# Title\n\nIntro | with a pipe.\n\n{BEGIN}\nstale text\n{END}\n\n## After\n\nkept\n"


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    """paper_figures/mini-seeds/ with a real multi-seed claims.json and a timing report."""
    root = tmp_path_factory.mktemp("run")
    tables = make_seed_runs(root)
    claims_yaml = root / "claims.yaml"
    claims_yaml.write_text(yaml.safe_dump(CLAIMS))
    out = root / "paper_figures" / "mini-seeds"
    score_claims(tables, claims_yaml, out / "claims.json", out / "claims.md", run="mini-seeds",
                 scale="miniature", world_seeds=SEEDS)  # fmt: skip
    os.utime(out / "claims.json", (1_780_000_000, 1_780_000_000))  # 2026-05-28 UTC
    jobs = [
        timing.Job("mini-s7", "compared models", "pretrain_from_scratch", "m/a", 90.0, 80.0, 1.0),
        timing.Job("mini-s11", "compared models", "pretrain_from_scratch", "m/a", 70.0, 60.0, 1.0),
        timing.Job("mini-s11", "evaluation", "evaluate", "eval/a/b", 30.0, 20.0, 1.0),
    ]
    timing.write_report(jobs, {}, out / "timing.csv", out / "timing.md", run="x", bench_dir="b")
    md = (out / "timing.md").read_text()
    (out / "timing.md").write_text(md.replace(timing.machine(), "2 CPU cores, Test CPU 1.0 GHz"))
    return out


def test_section_holds_the_scorecard_and_the_time(seeds_dir):
    body = rr.render(seeds_dir, "presets/tiny.yaml")
    scorecard = json.loads((seeds_dir / "claims.json").read_text())
    assert (
        "preset `presets/tiny.yaml`, world seeds 7, 11, 13, scorecard of 2026-05-28 (UTC)" in body
    )
    assert "machine: 2 CPU cores, Test CPU 1.0 GHz." in body  # the run's, from timing.md
    s = scorecard["summary"]
    assert f"**Held {s['held']} of 4 claims**: {s['refuted']} refuted" in body
    assert "| Claim | Verdict | Effect (points) | 95% CI | Per seed |" in body
    for c in scorecard["claims"]:
        (part,) = c["parts"]
        e = part["effect"]
        row = next(line for line in body.splitlines() if f"(`{c['id']}`)" in line)
        assert f"| {c['verdict']} |" in row
        assert f"| {e['estimate']:+.1f} | [{e['ci'][0]:+.1f}, {e['ci'][1]:+.1f}] |" in row
        if part["per_seed"]:
            assert ", ".join(f"{x:+.1f}" for x in part["per_seed"]) in row
    # the fixture's "consistent" claim (+10 in every seed) is held; "flip" (+10, -10, +10) is not
    consistent = next(c for c in scorecard["claims"] if c["id"] == "consistent")
    flip = next(c for c in scorecard["claims"] if c["id"] == "flip")
    assert consistent["verdict"] == "held" and flip["verdict"] == "inconclusive"
    assert "| +10.0 |" in next(ln for ln in body.splitlines() if "(`consistent`)" in ln)
    assert "| stage (CPU s) | `mini-s7` | `mini-s11` | all runs | share |" in body  # seed order
    assert "| compared models | 80 | 60 | 140 | 87.5% |" in body
    assert "(3 jobs, 160 CPU s;" in body
    assert "| `mini-s11` | 2 | 100 | 80 |" in body and "| **all runs** | 3 | 190 | 160 |" in body


def test_replacement_touches_only_the_section_and_is_idempotent(tmp_path, seeds_dir):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert rr.update_readme(readme, seeds_dir, "presets/tiny.yaml") is True
    once = readme.read_text()
    assert "stale text" not in once
    before, rest = once.split(BEGIN + "\n")
    section, after = rest.split(END)
    assert before == "# Title\n\nIntro | with a pipe.\n\n"
    assert after == "\n\n## After\n\nkept\n"
    assert "(`consistent`)" in section and "`mini-s7`" in section
    assert rr.update_readme(readme, seeds_dir, "presets/tiny.yaml") is False
    assert readme.read_text() == once


def test_markers_missing_twice_or_reversed_fail_naming_the_file(tmp_path, seeds_dir):
    readme = tmp_path / "README.md"
    for text, message in [
        ("# no markers\n", f"README.md: marker '{BEGIN}' missing"),
        (f"{BEGIN}\n", f"README.md: marker '{END}' missing"),
        (f"{BEGIN}\n{END}\n{BEGIN}\n", r"found 2 times \(lines \[1, 3\]\)"),
        (f"{END}\nx\n{BEGIN}\n", r"\(line 1\) comes before"),
        (f"text {BEGIN}\n{END}\n", "must stand once on its own line"),
    ]:
        readme.write_text(text)
        with pytest.raises(DataError, match=message):
            rr.update_readme(readme, seeds_dir, "presets/tiny.yaml")
        assert readme.read_text() == text  # untouched


def test_a_single_run_or_missing_scorecard_is_refused(tmp_path, seeds_dir):
    with pytest.raises(FileNotFoundError, match=r"claims\.json: multi-seed scorecard missing"):
        rr.render(tmp_path, "p.yaml")
    one = json.loads((seeds_dir / "claims.json").read_text())
    one["seeds"] = None
    (tmp_path / "claims.json").write_text(json.dumps(one))
    with pytest.raises(DataError, match="key 'seeds' is None: not a multi-seed scorecard"):
        rr.render(tmp_path, "p.yaml")
    one["seeds"] = SEEDS
    (tmp_path / "claims.json").write_text(json.dumps(one))
    body = rr.render(tmp_path, "p.yaml")  # no timing beside it: said so
    assert f"No timing: `{tmp_path.as_posix()}/timing.csv` is missing." in body
    assert "(where this section was generated)" in body
