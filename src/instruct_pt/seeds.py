"""The miniature over several world seeds: tables, figures and claims aggregated across runs.

Each world seed is a run of its own, ``{run}-s{seed}`` (``make demo-seeds``: the whole tiny DAG
per seed, with ``world.seed`` set from an overlay config ``results/{run}-s{seed}/world_seed.yaml``).
:func:`seeds_report` reads the runs' report CSVs and writes ``paper_figures/{run}-seeds/``:

- every table and figure CSV in the long format plus ``ci_low``, ``ci_high``, ``ci_method``,
  ``seeds`` and ``per_seed`` (each seed's value, in the order of ``seeds``); ``ours`` is the mean
  over the seeds. A cell with per-document items in every seed gets the seed-then-document
  bootstrap interval (:func:`instruct_pt.stats.cell_interval`); any other cell a Student-t
  interval over the seeds' values. The Markdown shows ``mean [low, high]``.
- Figure 4 with error bars (the intervals) and the task's floors (chance: dashed), Figure 6
  with error bars;
- the claims scorecard over the seeds (:func:`instruct_pt.claims.score_claims` with one CSV per
  seed): each effect is the mean over the seeds of left - right, with its per-seed effects.

A cell missing, or without a number, in some seed has no aggregate; such cells are counted by
reason in the Markdown notes and the log.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml

from instruct_pt import reports, stats
from instruct_pt.claims import _Numbers, _t_over_seeds, score_claims
from instruct_pt.common import DataError
from instruct_pt.reports import (
    CSV_FIELDS,
    FLOOR_CHANCE,
    FLOOR_LABELS,
    FLOOR_MAJORITY,
    Record,
    fmt_number,
    read_report_csv,
)

log = logging.getLogger(__name__)

DEFAULT_SEEDS = (7, 11, 13)
SEEDS_FIELDS = (*CSV_FIELDS, "ci_low", "ci_high", "ci_method", "seeds", "per_seed")
BOOTSTRAP, T_OVER_SEEDS = "seed-then-document bootstrap", "t over seeds"
FORMATTERS = {  # as the single-run tables
    "table2": {"Params": reports._human_count, "Tokens": reports._human_count},
    "table6": {"Task categories": lambda x: f"{x:.0f}"},
    "table9": {"Contaminated": lambda x: f"{x:.0f}", "Total": lambda x: f"{x:.0f}"},
}
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


def seed_run(run: str, seed: int) -> str:
    """The run of one world seed."""
    return f"{run}-s{seed}"


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
    numbers = _Numbers({name: list(csvs)})
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
            iv = _t_over_seeds(side.per_seed, level)
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


def _yerr(points: list[tuple[float, float, float]]) -> np.ndarray:
    """matplotlib's asymmetric error bars (never negative: a percentile interval may exclude
    the mean)."""
    return np.array(
        [[max(0.0, m - lo) for m, lo, _ in points], [max(0.0, hi - m) for m, _, hi in points]]
    )


def plot_figure4(records: list[Record], title: str, out_png, out_pdf) -> None:
    """Aggregated Figure 4: one panel per setting, each curve's mean with its interval as
    error bars, the task's floors as horizontal lines (chance dashed, majority dotted)."""
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
    curves = [r for r in dict.fromkeys(r["row"] for r in records) if r not in FLOOR_LABELS]
    plt = reports._pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (panel, steps) in zip(axes[0], panels.items(), strict=True):
        for i, curve in enumerate(curves):
            pts = [
                (step, _interval_of(cells[(curve, f"{panel} step {step}")]))
                for step in sorted(steps)
                if (curve, f"{panel} step {step}") in cells
            ]
            pts = [(s, iv) for s, iv in pts if iv is not None]
            if not pts:
                continue
            ax.errorbar(
                [s for s, _ in pts],
                [iv[0] for _, iv in pts],
                yerr=_yerr([iv for _, iv in pts]),
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=curve,
            )
        for row, style in ((FLOOR_CHANCE, "--"), (FLOOR_MAJORITY, ":")):
            floor = cells.get((row, f"{panel} final"))
            if floor is not None and floor["ours"]:
                ax.axhline(
                    float(floor["ours"]), color="grey", linestyle=style, label=FLOOR_LABELS[row]
                )
        ax.set_title(panel)
        ax.set_xlabel("instruction-tuning step")
        ax.set_ylabel("score (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    reports._save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def plot_figure6(records: list[Record], title: str, out_png, out_pdf) -> None:
    """Aggregated Figure 6: each corpus's category shares (mean over seeds) with error bars.
    No chance line: the figure holds no task scores."""
    corpora = list(dict.fromkeys(r["row"] for r in records))
    categories = list(dict.fromkeys(r["column"] for r in records))
    cells = {(r["row"], r["column"]): r for r in records}
    plt = reports._pyplot()
    fig, axes = plt.subplots(
        1,
        len(corpora),
        figsize=(3.6 * len(corpora), 0.28 * len(categories) + 1.2),
        squeeze=False,
        sharey=True,
    )
    for ax, corpus in zip(axes[0], corpora, strict=True):
        ivs = [
            _interval_of(cells[(corpus, c)]) if (corpus, c) in cells else None for c in categories
        ]
        pts = [iv or (0.0, 0.0, 0.0) for iv in ivs]
        ax.barh(
            range(len(categories)),
            [m for m, _, _ in pts],
            xerr=_yerr(pts),
            capsize=2,
            color="C0",
        )
        ax.set_yticks(range(len(categories)), categories)
        ax.invert_yaxis()
        ax.set_title(corpus)
        ax.set_xlabel("% of pairs (mean over seeds)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    reports._save_figure(fig, out_png, out_pdf)
    plt.close(fig)


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
    reports._check_scale(scale)
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
            (plot_figure4 if name == "figure4" else plot_figure6)(records, what, png, pdf)
            extra = [f"Figure: ![{title}]({png.name}) (PDF: {pdf.name})", *extra]
        reports._write_csv(out / f"{name}.csv", records, SEEDS_FIELDS)
        reports._write_markdown(
            out / f"{name}.md",
            title,
            run,
            scale,
            records,
            row_header=_row_header(Path(csvs[0]).with_suffix(".md")),
            formatters=FORMATTERS.get(name),
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
