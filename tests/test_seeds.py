"""The multi-seed scorecard: aggregation of hand-made per-seed runs (means, intervals, verdicts,
Markdown, figures) and the `make demo-seeds` commands (their config overlays, the aggregate
rule run by Snakemake on fake runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.container import BarContainer, ErrorbarContainer

from instruct_pt.common import DataError, write_json, write_jsonl
from instruct_pt.reports import cells, plotting
from instruct_pt.reports.cells import read_report_csv
from instruct_pt.reports.floors import FLOOR_CHANCE, FLOOR_MAJORITY
from instruct_pt.reports.seeds import (
    SEEDS_FIELDS,
    check_world_seeds,
    parse_seeds,
    run_name_cli,
    seed_run,
    seeds_report,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEEDS = [7, 11, 13]
N_DOCS = 300
ALL_NAMES = ["table1", "table2", "table3", "table4", "table5", "table6", "table9"]
ALL_NAMES += ["figure4", "figure6"]
INS, VAN = "500M Instruct PT", "500M Vanilla PT"
FLIP = [1, -1, 1]  # the sign of Instruct - Vanilla on task "flip", seed by seed
NO_ITEMS = {INS: [40.0, 41.0, 42.0], VAN: [30.0, 31.0, 29.0]}  # effects 10, 10, 13


def _result(root: Path, run: str, model: str, task: str, correct: np.ndarray) -> Path:
    """A task result JSON + its docs file; returns the JSON's path."""
    path = root / "results" / run / "eval" / model / "general" / f"{task}.json"
    value = 100.0 * correct.mean()
    write_json(path, {"model": model, "task": task, "n": len(correct), "value": value,
                      "aggregation": "mean"})  # fmt: skip
    write_jsonl(
        path.with_name(f"{task}.docs.jsonl"),
        [{"doc": i, "item": float(x)} for i, x in enumerate(correct)],
    )
    return path


def _rec(table: str, row: str, column: str, ours: float | None, sources=(), note="") -> dict:
    return {
        "table": table,
        "row": row,
        "column": column,
        "ours": cells.fmt_number(ours),
        "ours_stderr": "",
        "n": "",
        "paper": "",
        "paper_tag": "",
        "note": note,
        "sources": ";".join(str(s) for s in sources),
    }


def make_seed_runs(
    root: Path, seeds=SEEDS, run: str = "mini", drop_cell_in: int | None = None, home_seed=None
):
    """paper_figures/{run}-s{seed}/{name}.csv ({run} for ``home_seed``) for every report name
    (most header-only), with per-document items behind Table 1 and Figure 4; returns
    {name: [csv per seed]}."""
    tables: dict[str, list[str]] = {name: [] for name in ALL_NAMES}
    for i, seed in enumerate(seeds):
        r = seed_run(run, seed, home_seed)
        rng = np.random.default_rng(seed)
        truth = (rng.permutation(N_DOCS) + 0.5) / N_DOCS  # exact shares: < 0.6 is 60%
        correct = {
            (VAN, "boolq"): truth < 0.5,
            (INS, "boolq"): truth < 0.6,  # +10 points in every seed
            (VAN, "flip"): truth < 0.5,
            (INS, "flip"): truth < 0.5 + 0.1 * FLIP[i],  # +10, -10, +10
        }
        t1 = []
        for model in (INS, VAN):
            paths = []
            for task in ("boolq", "flip"):
                c = correct[(model, task)].astype(float)
                paths.append(_result(root, r, model.replace(" ", "_"), task, c))
                if not (drop_cell_in == i and model == VAN and task == "flip"):
                    t1.append(_rec("table1", model, task, 100 * c.mean(), [paths[-1]]))
            t1.append(_rec("table1", model, "noitems", NO_ITEMS[model][i]))
        t1.append(_rec("table1", FLOOR_CHANCE, "boolq", 50.0))
        f4 = []
        for label, rate in (("Vanilla PT", 0.4), ("Instruct PT", 0.55)):
            for step in (20, 40):
                c = (truth < rate + step / 1000).astype(float)
                src = _result(root, r, f"it-{label[0]}-{step}", "knowledge", c)
                f4.append(_rec("figure4", label, f"zero-shot step {step}", 100 * c.mean(), [src]))
            f4.append(_rec("figure4", label, "zero-shot final", 100 * c.mean(), [src]))
        f4 += [
            _rec("figure4", FLOOR_CHANCE, "zero-shot final", 25.0),
            _rec("figure4", FLOOR_MAJORITY, "zero-shot final", 30.0),
        ]
        f6 = [
            _rec("figure6", corpus, cat, share + i)
            for corpus in ("General", "Biomedicine")
            for cat, share in (("free-form QA", 60.0), ("multiple choice", 40.0))
        ]
        for name in ALL_NAMES:
            records = {"table1": t1, "figure4": f4, "figure6": f6}.get(name, [])
            path = root / "paper_figures" / r / f"{name}.csv"
            cells.write_csv(path, [dict(x) for x in records])
            tables[name].append(str(path))
    return tables


def cell(table, row, column):
    return {"table": table, "row": row, "column": column}


CLAIMS = {
    "claims": [
        {
            "id": "consistent",
            "text": "Instruct beats Vanilla on boolq",
            "tag": "[S]",
            "check": {
                "op": ">",
                "left": cell("table1", INS, "boolq"),
                "right": cell("table1", VAN, "boolq"),
            },
        },  # fmt: skip
        {
            "id": "flip",
            "text": "Instruct beats Vanilla on flip",
            "tag": "[S]",
            "check": {
                "op": ">",
                "left": cell("table1", INS, "flip"),
                "right": cell("table1", VAN, "flip"),
            },
        },  # fmt: skip
        {
            "id": "no-items",
            "text": "Instruct beats Vanilla where there are no items",
            "tag": "[S]",
            "check": {
                "op": ">",
                "left": cell("table1", INS, "noitems"),
                "right": cell("table1", VAN, "noitems"),
            },
        },  # fmt: skip
        {
            "id": "above-chance",
            "text": "Vanilla above 40",
            "tag": "[S]",
            "check": {"op": ">", "left": cell("table1", VAN, "boolq"), "right": {"value": 40}},
        },
    ]
}


@pytest.fixture
def runs(tmp_path):
    tables = make_seed_runs(tmp_path)
    claims_path = tmp_path / "claims.yaml"
    claims_path.write_text(yaml.safe_dump(CLAIMS))
    return tables, claims_path


def _csv_cells(path) -> dict:
    return {(r["row"], r["column"]): r for r in read_report_csv(path, SEEDS_FIELDS)}


def test_parse_seeds():
    assert parse_seeds([7, 11, 13]) == [7, 11, 13]
    assert parse_seeds(["7", "11"]) == [7, 11]  # what --config seeds='[7,11]' gives
    assert parse_seeds("7 11 13") == parse_seeds("7,11,13") == parse_seeds("[7, 11, 13]")
    for bad, message in (
        ("7 x", "'x' is not a non-negative integer"),
        ([7, 7], "listed twice"),
        ([7], "at least 2"),
        (7, "at least 2"),
        ([7, -1], "-1 is not"),
        ([7, True], "True is not"),
    ):
        with pytest.raises(DataError, match=message):
            parse_seeds(bad)


def test_tables_hold_means_and_intervals(tmp_path, runs):
    tables, claims_path = runs
    out = tmp_path / "agg"
    seeds_report(tables, SEEDS, out, run="mini-seeds", scale="miniature", seed=3, n_boot=500)
    cells = _csv_cells(out / "table1.csv")
    for rec in cells.values():
        per_seed = [float(x) for x in rec["per_seed"].split(";")]
        assert len(per_seed) == 3 and rec["seeds"] == "7;11;13"
        assert float(rec["ours"]) == pytest.approx(np.mean(per_seed), abs=1e-4)
        assert float(rec["ci_low"]) <= float(rec["ours"]) <= float(rec["ci_high"])
        assert rec["sources"] == ""  # the seeds' CSVs hold them
    boolq = cells[(INS, "boolq")]
    assert boolq["ci_method"] == "seed-then-document bootstrap"
    assert float(boolq["ci_high"]) - float(boolq["ci_low"]) > 1.0  # not a degenerate interval
    no_items = cells[(INS, "noitems")]
    assert no_items["ci_method"] == "t over seeds" and float(no_items["ours"]) == 41.0
    half = 4.302653 * 1.0 / np.sqrt(3)  # t(0.975, 2) * sd / sqrt(3)
    assert [float(no_items["ci_low"]), float(no_items["ci_high"])] == pytest.approx(
        [41 - half, 41 + half], abs=1e-3
    )
    md = (out / "table1.md").read_text()
    lo, hi = float(boolq["ci_low"]), float(boolq["ci_high"])
    assert f"| {float(boolq['ours']):.1f} [{lo:.1f}, {hi:.1f}] |" in md
    assert "mean over world seeds 7, 11, 13" in md and "Student-t" in md
    assert "| chance |" in md  # floor rows keep their labels
    assert "`../paper_figures/mini-s13/table1.md`" in md  # relative to the aggregate
    # deterministic for a seed
    again = tmp_path / "again"
    seeds_report(tables, SEEDS, again, run="mini-seeds", scale="miniature", seed=3, n_boot=500)
    assert (again / "table1.csv").read_bytes() == (out / "table1.csv").read_bytes()


def test_scorecard_over_seeds(tmp_path, runs):
    tables, claims_path = runs
    out = tmp_path / "agg"
    res = seeds_report(
        tables,
        SEEDS,
        out,
        run="mini-seeds",
        scale="miniature",
        claims_path=claims_path,
        seed=3,
        n_boot=1000,
    )
    by_id = {c["id"]: c for c in res["claims"]}
    assert {i: c["verdict"] for i, c in by_id.items()} == {
        "consistent": "held",  # +10 in every seed
        "flip": "inconclusive",  # +10, -10, +10: the seeds disagree
        "no-items": "held",  # t over seeds: 11 +- 7.2
        "above-chance": "held",
    }
    consistent = by_id["consistent"]["parts"][0]
    assert consistent["per_seed"] == pytest.approx([10.0, 10.0, 10.0], abs=1e-6)
    assert consistent["effect"]["estimate"] == pytest.approx(10.0)
    assert consistent["effect"]["n_seeds"] == 3
    assert consistent["effect"]["method"] == "paired bootstrap"  # t over +10, +10, +10: no wider
    flip = by_id["flip"]["parts"][0]
    assert flip["per_seed"] == pytest.approx([10.0, -10.0, 10.0], abs=1e-6)
    assert flip["effect"]["estimate"] == pytest.approx(10 / 3)
    low, high = flip["effect"]["ci"]
    assert low < 0 < 10 / 3 < high  # the seed draw that repeats seed 11 reaches -10
    no_items = by_id["no-items"]["parts"][0]["effect"]
    assert no_items["method"] == "t over seeds" and no_items["estimate"] == pytest.approx(11.0)
    assert by_id["above-chance"]["parts"][0]["per_seed"] == pytest.approx(
        [v - 40 for v in by_id["above-chance"]["numbers"][0]["per_seed"]]
    )
    assert res["seeds"] == SEEDS and res["bootstrap"]["world_seeds"] == [3]
    md = (out / "claims.md").read_text()
    assert "World seeds: 7, 11, 13" in md and "| Per seed |" in md
    assert "+10.0, -10.0, +10.0" in md


def test_cell_missing_in_one_seed_is_counted(tmp_path):
    tables = make_seed_runs(tmp_path, drop_cell_in=1)
    out = tmp_path / "agg"
    seeds_report(tables, SEEDS, out, run="mini-seeds", scale="miniature", n_boot=200)
    rec = _csv_cells(out / "table1.csv")[(VAN, "flip")]
    assert rec["ours"] == "" and rec["ci_low"] == "" and "no cell in seed(s) 11" in rec["note"]
    md = (out / "table1.md").read_text()
    assert "Cells without an aggregate: 1 (cell missing in a seed's run)." in md


def test_figures_have_error_bars_and_the_chance_line(tmp_path, runs, monkeypatch):
    tables, _ = runs
    figures = []
    save = plotting.save_figure

    def keep(fig, png, pdf):
        figures.append((Path(png).name, fig))
        save(fig, png, pdf)

    monkeypatch.setattr(plotting, "save_figure", keep)
    out = tmp_path / "agg"
    seeds_report(tables, SEEDS, out, run="mini-seeds", scale="miniature", n_boot=200)
    figs = dict(figures)
    ax4 = figs["figure4.png"].axes[0]
    bars = [c for c in ax4.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # one per curve
    cells = _csv_cells(out / "figure4.csv")
    for bar, label in zip(bars, ("Vanilla PT", "Instruct PT"), strict=True):
        assert bar.get_label() == label
        segments = bar.lines[2][0].get_segments()  # one vertical segment per step
        want = [
            (float(cells[(label, f"zero-shot step {s}")]["ci_low"]),
             float(cells[(label, f"zero-shot step {s}")]["ci_high"]))
            for s in (20, 40)
        ]  # fmt: skip
        got = [(seg[:, 1].min(), seg[:, 1].max()) for seg in segments]
        assert np.ravel(got) == pytest.approx(np.ravel(want), abs=1e-3)
    floors = {
        ln.get_label(): (ln.get_ydata()[0], ln.get_linestyle())
        for ln in ax4.lines
        if not ln.get_label().startswith("_") and ln.get_linestyle() != "-"
    }
    assert floors == {"chance": (25.0, "--"), "majority answer": (30.0, ":")}
    ax6 = figs["figure6.png"].axes[0]
    (bar6,) = [c for c in ax6.containers if isinstance(c, BarContainer)]
    assert bar6.errorbar is not None
    assert [p.get_width() for p in bar6.patches] == pytest.approx([61.0, 41.0])  # means
    for name in ("figure4", "figure6"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").is_file()
        assert f"![Figure {name[-1]}" in (out / f"{name}.md").read_text()


def _figure_runs(root: Path) -> dict[str, list[str]]:
    """Per-seed Figure 4 / 6 CSVs: two equal curves (results with metric, shots and n), and
    category shares with one category at 0 everywhere and n differing between seeds."""
    tables: dict[str, list[str]] = {"figure4": [], "figure6": []}
    for i, seed in enumerate(SEEDS):
        r = f"figs-s{seed}"
        truth = (np.random.default_rng(seed).permutation(50) + 0.5) / 50
        f4 = []
        for label in ("Vanilla PT", "Instruct PT"):  # the same values: one must not hide the other
            for step in (20, 40):
                c = (truth < 0.4 + step / 1000).astype(float)
                src = _result(root, r, f"it-{label[0]}-{step}", "knowledge", c)
                res = json.loads(src.read_text())
                write_json(src, {**res, "metric": "acc_norm", "num_fewshot": 3})
                f4.append(_rec("figure4", label, f"zero-shot step {step}", 100 * c.mean(), [src]))
        f4.append(_rec("figure4", FLOOR_CHANCE, "zero-shot final", 25.0))
        f6 = []
        for corpus, shares in (("General", (70.0, 30.0, 0.0)), ("Finance", (10.0, 90.0, 0.0))):
            for cat, share in zip(("fact lookup", "sentiment", "other"), shares, strict=True):
                rec = _rec("figure6", corpus, cat, share + (i if share else 0.0))
                f6.append({**rec, "n": str(20 + 2 * (i == 2)), "note": "% of pairs"})
        for name, records in (("figure4", f4), ("figure6", f6)):
            path = root / "paper_figures" / r / f"{name}.csv"
            cells.write_csv(path, records)
            tables[name].append(str(path))
    return tables


def test_seed_figures_name_metric_shots_n_and_share_the_single_run_fixes(tmp_path, monkeypatch):
    figures = {}
    save = plotting.save_figure

    def keep(fig, png, pdf):
        figures[Path(png).name] = fig
        save(fig, png, pdf)

    monkeypatch.setattr(plotting, "save_figure", keep)
    out = tmp_path / "agg"
    seeds_report(_figure_runs(tmp_path), SEEDS, out, run="figs-seeds", scale="miniature", n_boot=50)
    (ax,) = figures["figure4.png"].axes
    assert "acc_norm" in ax.get_ylabel() and "knowledge" in ax.get_ylabel()
    assert "(3 shots)" in ax.get_title() and "n=50 questions" in ax.get_title()
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2 and all(c.has_yerr for c in bars)
    xs = [tuple(c.lines[0].get_xdata()) for c in bars]
    assert xs[0] != xs[1]  # equal curves drawn apart
    assert bars[0].lines[0].get_marker() != bars[1].lines[0].get_marker()
    chance = [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(25.0)
    assert "shifted by up to" in (out / "figure4.md").read_text()

    a, b = figures["figure6.png"].axes
    assert a.get_xlim() == b.get_xlim()
    assert [t.get_text() for t in a.get_yticklabels()] == ["fact lookup", "sentiment"]
    assert "n=20/22 pairs" in a.get_title() and a.get_xlabel() == "% of pairs"
    (bar6,) = [c for c in b.containers if isinstance(c, BarContainer)]
    assert [p.get_width() for p in bar6.patches] == pytest.approx([11.0, 91.0])  # the means
    assert a.get_xlim()[1] >= 91.0 + max(
        seg[:, 0].max() - 91.0 for seg in bar6.errorbar.lines[2][0].get_segments()
    )
    assert "not plotted: other." in (out / "figure6.md").read_text()


def test_world_seed_overlays_are_checked(tmp_path):
    good = tmp_path / "a.yaml"
    good.write_text("run: x-s7\nworld: { seed: 7 }\n")
    check_world_seeds([good], [7])
    with pytest.raises(DataError, match=r"a.yaml: key 'world.seed' is 7, expected 11"):
        check_world_seeds([good], [11])
    with pytest.raises(FileNotFoundError, match="world-seed overlay missing"):
        check_world_seeds([tmp_path / "none.yaml"], [7])


# ----------------------------------------------------------------------------- make demo-seeds


def _make_calls(tmp_path: Path, seeds: str, run: str) -> list[list[str]]:
    """Run `make demo-seeds` in `tmp_path` with a stand-in snakemake that records its argv."""
    fake = tmp_path / "fake-snakemake"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        "open('calls.jsonl', 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    if not (tmp_path / "presets").exists():
        (tmp_path / "presets").symlink_to(ROOT / "presets")
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "-f", str(ROOT / "Makefile"), "demo-seeds",
         f"SEEDS={seeds}", f"SEEDS_RUN={run}", f"SNAKEMAKE={fake}", f"PY={sys.executable}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def _snakemake(tmp_path: Path, args: list[str], timeout=300):
    """The Makefile's snakemake arguments, run on this checkout's Snakefile in `tmp_path`."""
    args = [str(ROOT / a) if a == "presets/tiny.yaml" else a for a in args]
    i = args.index("--configfile")
    args[i + 1 : i + 1] = [str(ROOT / "config.yaml")]  # the Snakefile's own configfile
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_the_presets_own_seed_is_the_presets_run_the_others_get_a_suffix(tmp_path, capsys):
    assert seed_run("tiny", 11, 7) == "tiny-s11" and seed_run("tiny", 7, 7) == "tiny"
    assert seed_run("tiny", 7) == "tiny-s7"
    preset = tmp_path / "p.yaml"
    preset.write_text("run: tiny\nworld: { seed: 5, eval_per_task: 9 }\n")
    later = tmp_path / "q.yaml"
    later.write_text("world: { eval_per_task: 3 }\n")  # merged key by key: seed 5 kept
    for seed, want in ((5, "tiny"), (7, "tiny-s7")):
        assert run_name_cli(["--run", "tiny", "--seed", str(seed), str(preset), str(later)]) == 0
        assert capsys.readouterr().out.strip() == want
    later.write_text("- a list\n")
    with pytest.raises(DataError, match="q.yaml: not a mapping"):
        run_name_cli(["--run", "tiny", "--seed", "5", str(preset), str(later)])


def test_demo_seeds_runs_each_seed_with_the_presets_other_world_keys(tmp_path):
    calls = _make_calls(tmp_path, "7 11", "x")
    assert calls == [  # seed 7 is the tiny preset's own: its run keeps the plain name
        ["paper_figures", "--cores", "2", "--configfile", "presets/tiny.yaml",
         "results/x/world_seed.yaml"],
        ["paper_figures", "--cores", "2", "--configfile", "presets/tiny.yaml",
         "results/x-s11/world_seed.yaml"],
        ["paper_figures_seeds", "--cores", "2", "--configfile", "presets/tiny.yaml",
         "--config", "run=x", "seeds=7 11"],
    ]  # fmt: skip
    overlay = tmp_path / "results/x-s11/world_seed.yaml"
    mtime = overlay.stat().st_mtime_ns
    os.utime(overlay, ns=(mtime - 10**9, mtime - 10**9))
    _make_calls(tmp_path, "7 11", "x")  # unchanged overlays are not rewritten (no reruns)
    assert overlay.stat().st_mtime_ns == mtime - 10**9
    assert not (tmp_path / "results/x-s11/.world_seed.yaml").exists()
    # Each seed's command, aimed at one cheap job (the general suite's questions): the world
    # seed changes the questions, the preset's eval_per_task (500; world default 40) stays.
    questions = {}
    for args, seed in zip(calls[:2], (7, 11), strict=True):
        suite = f"results/{seed_run('x', seed, 7)}/eval/tasks/general"
        done = _snakemake(tmp_path, [suite, *args[1:]])
        assert done.returncode == 0, done.stderr[-3000:]
        questions[seed] = (tmp_path / suite / "knowledge.jsonl").read_text().splitlines()
        assert len(questions[seed]) == 500
    assert questions[7] != questions[11]


def test_aggregate_rule_runs_on_existing_seed_runs(tmp_path):
    # Seeds other than the preset's own (7): runs that only the fake CSVs below stand for (the
    # preset's own run, "mini", is the config's run, whose reports Snakemake would rebuild).
    seeds = [11, 13, 17]
    calls = _make_calls(tmp_path, "11 13 17", "mini")
    aggregate = calls[-1]
    dry = _snakemake(tmp_path, [*aggregate, "-n"])
    assert dry.returncode != 0 and "MissingInputException" in dry.stdout + dry.stderr
    make_seed_runs(tmp_path, seeds=seeds)
    dry = _snakemake(tmp_path, [*aggregate, "-n"])
    assert dry.returncode == 0, dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    assert "seeds_report" in text and "report_table1" not in text  # the seeds' runs are reused
    done = _snakemake(tmp_path, aggregate)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "paper_figures/mini-seeds"
    for name in ALL_NAMES:
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
    scorecard = json.loads((out / "claims.json").read_text())
    assert scorecard["seeds"] == seeds
    (overlay := tmp_path / "results/mini-s11/world_seed.yaml").write_text("world: {seed: 13}\n")
    shutil.rmtree(out)
    failed = _snakemake(tmp_path, aggregate)
    log = (tmp_path / "logs/mini-seeds/seeds_report.log").read_text()
    assert failed.returncode != 0 and "key 'world.seed' is 13, expected 11" in log
    assert overlay.is_file()


def test_seed_spread_widens_a_narrow_bootstrap_interval():
    # Three seeds agree in sign (+2, +12, +4) and a bootstrap over many questions is tight around
    # their mean; another seed's run could still land below zero: the t interval over the seeds
    # (mean 6, sd 5.3, t(2) = 4.3 -> +-13.1) decides, so the claim is not called held.
    from instruct_pt.reports import claims, stats

    tight = stats.Interval(6.0, 2.5, 9.5, 0.95, "paired bootstrap", 1000, 3)
    wide = claims._with_seed_spread(tight, [2.0, 12.0, 4.0], 0.95)
    assert wide.low == pytest.approx(6.0 - 13.14, abs=0.05)
    assert wide.high == pytest.approx(6.0 + 13.14, abs=0.05)
    assert wide.estimate == 6.0 and wide.n_seeds == 3 and "t over seeds" in wide.method
    assert claims.verdict(">", 0.0, tight.low, tight.high) == "held"
    assert claims.verdict(">", 0.0, wide.low, wide.high) == "inconclusive"
    # one seed: nothing to widen by
    assert claims._with_seed_spread(tight, [6.0], 0.95) is tight
