"""The miniature over several world seeds: tables, figures and claims aggregated across runs.

Each world seed is a run of its own, ``{run}-s{seed}`` (``make demo-seeds``: the whole tiny DAG
per seed, with ``world.seed`` set from an overlay config ``results/{run}-s{seed}/world_seed.yaml``),
except the preset's own world seed, whose run is ``{run}`` itself (:func:`seed_run`): after
``make demo``, ``make demo-seeds`` builds only the other seeds.
:func:`seeds_report` reads the runs' report CSVs and writes ``paper_figures/{run}-seeds/``:

- every table and figure CSV in the long format plus ``ci_low``, ``ci_high``, ``ci_method``,
  ``seeds`` and ``per_seed`` (each seed's value, in the order of ``seeds``); ``ours`` is the mean
  over the seeds. A cell with per-document items in every seed gets the seed-then-document
  bootstrap interval (:func:`instruct_pt.reports.stats.cell_interval`); any other cell a Student-t
  interval over the seeds' values. The Markdown shows ``mean [low, high]``.
- Figure 4 and Figure 6 drawn by the single run's code
  (:func:`instruct_pt.plotting.plot_step_panels`,
  :func:`instruct_pt.plotting.plot_category_panels`) with the intervals as error bars: Figure 4
  naming task, metric, shots and n (from the seeds' result files) with the task's floors
  (chance: dashed) and equal curves shifted apart; Figure 6 on one x scale with n per panel and
  the categories at 0 in every corpus left out (named in the notes);
- the claims scorecard over the seeds (:func:`instruct_pt.reports.claims.score_claims` with one CSV per
  seed): each effect is the mean over the seeds of left - right, with its per-seed effects.

A cell missing, or without a number, in some seed has no aggregate; such cells are counted by
reason in the Markdown notes and the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import textwrap
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml

from instruct_pt import config as config_mod
from instruct_pt.common import DataError
from instruct_pt.reports import plotting, stats
from instruct_pt.reports.cells import (
    CSV_FIELDS,
    Record,
    check_scale,
    fmt_number,
    read_report_csv,
    write_csv,
)
from instruct_pt.reports.claims import Numbers, score_claims, t_over_seeds
from instruct_pt.reports.floors import FLOOR_CHANCE, FLOOR_LABELS, FLOOR_MAJORITY
from instruct_pt.reports.markdown import figure_line, write_markdown
from instruct_pt.reports.registry import SPECS
from instruct_pt.world import config as world_config

log = logging.getLogger(__name__)

DEFAULT_SEEDS = (7, 11, 13)
SEEDS_FIELDS = (*CSV_FIELDS, "ci_low", "ci_high", "ci_method", "seeds", "per_seed")
BOOTSTRAP, T_OVER_SEEDS = "seed-then-document bootstrap", "t over seeds"
_STEP = re.compile(r"^(?P<panel>.+) step (?P<step>\d+)$")


def parse_seeds(value: object, key: str = "seeds") -> list[int]:
    """World seeds from the config: a list (of ints or digit strings, as ``--config`` gives) or
    a string "7 11 13" / "7,11,13". At least two distinct non-negative seeds."""
    if isinstance(value, str):
        parts: Iterable = [p for p in re.split(r"[\s,]+", value.strip("[] ")) if p]
    elif isinstance(value, list | tuple):
        parts = value
    else:
        parts = [value]
    seeds = []
    for p in parts:
        text = str(p).strip()
        if isinstance(p, bool) or not text.isdigit():
            raise DataError(f"config key '{key}': {p!r} is not a non-negative integer seed")
        seeds.append(int(text))
    if len(set(seeds)) != len(seeds):
        raise DataError(f"config key '{key}': a seed is listed twice: {seeds}")
    if len(seeds) < 2:
        raise DataError(f"config key '{key}': need at least 2 world seeds, got {seeds}")
    return seeds


def seed_run(run: str, seed: int, home_seed: int | None = None) -> str:
    """The run of one world seed: ``{run}-s{seed}``, except the configuration's own world seed
    (``home_seed``), whose run is ``run`` itself, so that `make demo-seeds` after `make demo`
    reuses the demo's run for the preset's seed instead of building the same world again."""
    return run if seed == home_seed else f"{run}-s{seed}"


def home_seed(config: dict) -> int:
    """The world seed a configuration builds (its ``world`` section over the world's defaults)."""
    return int(world_config.resolve_config(config.get("world") or {})["seed"])


def run_name_cli(argv: Sequence[str] | None = None) -> int:
    """`python -m instruct_pt.reports.seeds --run R --seed S CONFIG...`: prints the run of world
    seed S, the config files (config.yaml, then the preset) merged as Snakemake merges them."""
    p = argparse.ArgumentParser(prog="python -m instruct_pt.reports.seeds", description=__doc__)
    p.add_argument("--run", required=True, help="the runs' base name (SEEDS_RUN)")
    p.add_argument("--seed", required=True, type=int, help="one world seed")
    p.add_argument("configs", nargs="+", help="config files, later ones overriding earlier")
    args = p.parse_args(argv)
    layers = []
    for path in args.configs:
        data = config_mod.read_layer(path)
        if not isinstance(data, dict):
            raise DataError(f"{path}: not a mapping of config keys")
        layers.append(data)
    print(seed_run(args.run, args.seed, home_seed(config_mod.merge_layers(layers))))
    return 0


def seeds_run(run: str) -> str:
    """The aggregate's run name (paper_figures/{run}-seeds/)."""
    return f"{run}-seeds"


def check_world_seeds(overlays: Sequence[str | os.PathLike], seeds: Sequence[int]) -> None:
    """Each seed's overlay config (``world_seed.yaml``, what its run was built with) must set
    ``world.seed`` to that seed: a run built without it would repeat another seed's world."""
    for path, seed in zip(overlays, seeds, strict=True):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: world-seed overlay missing (seed {seed})")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        got = data.get("world", {}).get("seed") if isinstance(data, dict) else None
        if got != seed:
            raise DataError(f"{path}: key 'world.seed' is {got!r}, expected {seed}")


def _cell_seed(seed: int, table: str, row: str, column: str) -> int:
    key = zlib.crc32(f"{table}\x00{row}\x00{column}".encode())
    return int(np.random.SeedSequence([seed, key]).generate_state(1)[0])


def aggregate_table(
    name: str,
    csvs: Sequence[str | os.PathLike],
    seeds: Sequence[int],
    *,
    seed: int = 0,
    n_boot: int = stats.DEFAULT_BOOT,
    level: float = stats.DEFAULT_LEVEL,
) -> tuple[list[Record], Counter]:
    """The aggregated records of one table (one CSV per seed, in the order of ``seeds``) and
    the cells without an aggregate, counted by reason."""
    if len(csvs) != len(seeds):
        raise ValueError(f"{name}: {len(csvs)} CSVs for {len(seeds)} seeds")
    per_seed = [read_report_csv(p) for p in csvs]
    keys = list(dict.fromkeys((r["row"], r["column"]) for recs in per_seed for r in recs))
    numbers = Numbers({name: list(csvs)})
    dropped: Counter = Counter()
    records = []
    for row, column in keys:
        recs = [numbers.record(name, k, row, column) for k in range(len(csvs))]
        first = next(r for r in recs if r is not None)
        rec = {f: first[f] for f in CSV_FIELDS} | {f: "" for f in SEEDS_FIELDS[len(CSV_FIELDS) :]}
        rec.update(ours="", ours_stderr="", sources="", seeds=";".join(map(str, seeds)))
        missing = [s for s, r in zip(seeds, recs, strict=True) if r is None]
        if missing:
            dropped["cell missing in a seed's run"] += 1
            rec.update(n="", note=f"no cell in seed(s) {', '.join(map(str, missing))}")
            records.append(rec)
            continue
        ns = {r["n"] for r in recs}
        rec["n"] = ns.pop() if len(ns) == 1 else ""
        side = numbers.side({"table": name, "row": row, "column": column})
        rec["per_seed"] = ";".join(fmt_number(v) for v in side.per_seed or [])
        if side.value is None:
            if any(r["ours"] for r in recs):
                dropped["no number in some seed"] += 1
            records.append(rec)
            continue
        rec["ours"] = fmt_number(side.value)
        if side.cell is not None:
            iv = stats.cell_interval(
                side.cell, seed=_cell_seed(seed, name, row, column), n_boot=n_boot, level=level
            )
            method = BOOTSTRAP
        else:
            iv = t_over_seeds(side.per_seed, level)
            method = T_OVER_SEEDS
        rec.update(ci_low=fmt_number(iv.low), ci_high=fmt_number(iv.high), ci_method=method)
        records.append(rec)
    return records, dropped


def _row_header(md_path: Path) -> str:
    """The first header cell of a single-run Markdown table ("Model", "Curve", ...)."""
    if md_path.is_file():
        for line in md_path.read_text(encoding="utf-8").splitlines():
            if line.startswith("| "):
                return line.split("|")[1].strip()
    return "Row"


def _label(name: str) -> str:
    m = re.fullmatch(r"(table|figure)(\d+)", name)
    return f"{m.group(1).capitalize()} {m.group(2)}" if m else name


def _notes(
    seeds: Sequence[int],
    level: float,
    n_boot: int,
    dropped: Counter,
    csvs: Sequence,
    out_dir: str | os.PathLike,
) -> list[str]:
    pct = f"{100 * level:g}%"
    notes = [
        f"Each cell: the mean over world seeds {', '.join(map(str, seeds))} [{pct} interval]. "
        f"Cells with per-document items in every seed: {BOOTSTRAP} ({n_boot} resamples: seeds "
        "with replacement, then questions within each seed); other cells: a Student-t interval "
        "over the seeds' values (CSV column ci_method). Each seed's value: CSV column per_seed.",
        "Per-seed tables: "
        + ", ".join(f"`{os.path.relpath(Path(p).with_suffix('.md'), out_dir)}`" for p in csvs)
        + ".",
    ]
    if dropped:
        notes.append(
            "Cells without an aggregate: "
            + ", ".join(f"{n} ({why})" for why, n in sorted(dropped.items()))
            + "."
        )
    return notes


def _interval_of(rec: Record) -> tuple[float, float, float] | None:
    if not (rec["ours"] and rec["ci_low"] and rec["ci_high"]):
        return None
    return float(rec["ours"]), float(rec["ci_low"]), float(rec["ci_high"])


def _errs(iv: tuple[float, float, float]) -> tuple[float, float, float]:
    """(mean, err below, err above) for matplotlib's error bars (never negative: a percentile
    interval may exclude the mean)."""
    m, lo, hi = iv
    return m, max(0.0, m - lo), max(0.0, hi - m)


_NOTE = re.compile(r"^(?P<metric>[^,;]+), task (?P<task>[^,;]+)")


def figure4_info(csvs: Sequence[str | os.PathLike]) -> dict[str, dict[str, set]]:
    """What each Figure 4 panel shows, over the seeds' runs: ``{panel: {"task", "metric",
    "shots", "n": set of values}}``, read from the result JSONs the per-seed CSVs name (their
    ``sources``, relative to the CSV's folder). Where a result is not at hand: task and metric
    from the cell's note, n from the CSV (shots stay unknown: '?')."""
    info: dict[str, dict[str, set]] = {}
    unread = 0
    for path in csvs:
        for r in read_report_csv(path):
            m = _STEP.match(r["column"])
            if not m:
                continue
            d = info.setdefault(m["panel"], {k: set() for k in ("task", "metric", "shots", "n")})
            results = []
            for src in filter(None, r["sources"].split(";")):
                try:
                    text = (Path(path).parent / src).read_text(encoding="utf-8")
                    results.append(json.loads(text))
                except (OSError, ValueError):
                    unread += 1
            for res in results:
                d["task"].add(res.get("task"))
                d["metric"].add(res.get("metric"))
                d["shots"].add(res.get("num_fewshot"))
                d["n"].add(res.get("n"))
            note = _NOTE.match(r["note"])
            if not results and note:
                d["task"].add(note["task"])
                d["metric"].add(note["metric"])
            if not results and r["n"]:
                d["n"].add(int(float(r["n"])))
    if unread:
        log.warning("figure4: %d result file(s) named in the seeds' CSVs not readable", unread)
    return info


def row_ns(csvs: Sequence[str | os.PathLike]) -> dict[str, set]:
    """Each row's n over the seeds' CSVs (a set: the seeds may differ)."""
    ns: dict[str, set] = {}
    for path in csvs:
        for r in read_report_csv(path):
            ns.setdefault(r["row"], set())
            if r["n"]:
                ns[r["row"]].add(int(float(r["n"])))
    return ns


def plot_figure4(
    records: list[Record],
    title: str,
    out_png,
    out_pdf,
    info: dict[str, dict[str, set]] | None = None,
) -> str:
    """Aggregated Figure 4, drawn as the single run's
    (:func:`instruct_pt.plotting.plot_step_panels`):
    one panel per setting naming task, metric, shots and n (``info``, :func:`figure4_info`),
    each curve's mean with its interval as error bars, the task's floors as lines (chance
    dashed, majority dotted), equal curves shifted apart. Returns the shift's note ('' if none)."""
    cells = {(r["row"], r["column"]): r for r in records}
    panels: dict[str, list[int]] = {}
    for r in records:
        m = _STEP.match(r["column"])
        if m:
            panels.setdefault(m["panel"], [])
            if int(m["step"]) not in panels[m["panel"]]:
                panels[m["panel"]].append(int(m["step"]))
    if not panels:
        raise DataError("figure4: no '{panel} step {k}' columns to plot")
    labels = [r for r in dict.fromkeys(r["row"] for r in records) if r not in FLOOR_LABELS]
    curves = [{"label": c, "variant": c} for c in labels]
    info = info or {}
    drawn = {}
    for panel, steps in panels.items():
        pts: dict[str, list] = {}
        for curve in labels:
            for step in sorted(steps):
                rec = cells.get((curve, f"{panel} step {step}"))
                iv = _interval_of(rec) if rec is not None else None
                if iv is not None:
                    pts.setdefault(curve, []).append((step, *_errs(iv)))
        floors = {}
        for row in (FLOOR_CHANCE, FLOOR_MAJORITY):
            floor = cells.get((row, f"{panel} final"))
            floors[row] = float(floor["ours"]) if floor is not None and floor["ours"] else None
        d = info.get(panel, {})
        task = plotting.set_words(d.get("task", set())) if d.get("task") else "score"
        drawn[panel] = {
            "points": pts,
            "floors": floors,
            "title": plotting.step_panel_title(
                task, panel, d.get("shots", set()), d.get("n", set())
            ),
            "ylabel": plotting.step_panel_ylabel(task, d.get("metric", set()))
            + ", mean over seeds",
        }
    out = plotting.plot_step_panels(drawn, curves, textwrap.fill(title, 45 * len(drawn)))
    plotting.save_and_close(out["fig"], out_png, out_pdf)
    return out["note"]


def plot_figure6(
    records: list[Record],
    title: str,
    out_png,
    out_pdf,
    ns: dict[str, set] | None = None,
) -> str:
    """Aggregated Figure 6, drawn as the single run's
    (:func:`instruct_pt.plotting.plot_category_panels`): each corpus's category shares (mean over
    seeds) with their intervals as error bars, one shared x scale, n in each panel's title
    (``ns``: :func:`row_ns`), categories at 0 in every corpus left out. No chance line: the
    figure holds no task scores. Returns the note naming the categories left out."""
    bars: dict[str, dict[str, tuple[float, float, float]]] = {}
    for r in records:
        iv = _interval_of(r)
        bars.setdefault(r["row"], {})[r["column"]] = _errs(iv) if iv else (0.0, 0.0, 0.0)
    ns = ns or {}
    words = {row: plotting.set_words(ns.get(row, set())) for row in bars}
    fig, empty = plotting.plot_category_panels(bars, words, textwrap.fill(title, 40 * len(bars)))
    plotting.save_and_close(fig, out_png, out_pdf)
    if empty:
        return f"Categories at 0% in every corpus, not plotted: {', '.join(empty)}."
    return "Every category has pairs in some corpus (none left out of the figure)."


def seeds_report(
    tables: dict[str, Sequence[str | os.PathLike]],
    seeds: Sequence[int],
    out_dir: str | os.PathLike,
    *,
    run: str,
    scale: str,
    claims_path: str | os.PathLike | None = None,
    seed: int = 0,
    n_boot: int = stats.DEFAULT_BOOT,
    level: float = stats.DEFAULT_LEVEL,
) -> dict:
    """Aggregate the per-seed report CSVs (``{"table1": [csv of seed 1, ...], ...}``) into
    ``out_dir``: ``{name}.csv`` / ``.md`` per table, ``.png`` / ``.pdf`` for figure4 and
    figure6, and ``claims.json`` / ``.md`` when ``claims_path`` is given. ``run``: the
    aggregate's name (``{run}-seeds``). Returns the scorecard (or {} without claims)."""
    check_scale(scale)
    seeds = list(seeds)
    if len(set(seeds)) < 2:
        raise DataError(f"need at least 2 distinct world seeds, got {seeds}")
    out = Path(out_dir)
    pct = f"{100 * level:g}%"
    for name, csvs in tables.items():
        records, dropped = aggregate_table(name, csvs, seeds, seed=seed, n_boot=n_boot, level=level)
        for why, n in sorted(dropped.items()):
            log.warning("%s: %d cell(s) without an aggregate: %s", name, n, why)
        title = f"{_label(name)} (`{run}`): mean over world seeds {', '.join(map(str, seeds))}"
        extra = _notes(seeds, level, n_boot, dropped, csvs, out)
        if name in ("figure4", "figure6"):
            png, pdf = out / f"{name}.png", out / f"{name}.pdf"
            what = f"{title}, {pct} intervals as error bars"
            if name == "figure4":
                note = plot_figure4(records, what, png, pdf, figure4_info(csvs))
            else:
                note = plot_figure6(records, what, png, pdf, row_ns(csvs))
            extra = [figure_line(out / f"{name}.md", title, png, pdf), *extra]
            extra += [note] if note else []
        write_csv(out / f"{name}.csv", records, SEEDS_FIELDS)
        write_markdown(
            out / f"{name}.md",
            title,
            run,
            scale,
            records,
            row_header=_row_header(Path(csvs[0]).with_suffix(".md")),
            formatters=dict(SPECS[name].formatters) if name in SPECS else None,
            extra=extra,
        )
    if claims_path is None:
        return {}
    return score_claims(
        {name: list(csvs) for name, csvs in tables.items()},
        claims_path,
        out / "claims.json",
        out / "claims.md",
        run=run,
        scale=scale,
        seed=seed,
        n_boot=n_boot,
        level=level,
        world_seeds=seeds,
    )


if __name__ == "__main__":
    sys.exit(run_name_cli())
