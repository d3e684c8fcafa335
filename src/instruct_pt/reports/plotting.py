"""The figures' drawing, shared by one run's figures and the aggregate over world seeds.

matplotlib with byte-reproducible settings, Figure 4's step panels and Figure 6's category
panels, their panel titles, and saving (PNG and PDF without timestamps).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

from instruct_pt.reports.floors import FLOOR_CHANCE, FLOOR_LABELS, FLOOR_MAJORITY


def pyplot():
    """matplotlib with the Agg backend and settings that make files byte-reproducible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.hashsalt": "instruct_pt", "font.family": "DejaVu Sans", "font.size": 9}
    )
    return plt


def save_figure(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike) -> None:
    """Write PNG and PDF atomically, with no timestamps or version stamps in their metadata."""
    for path, fmt, meta in (
        (Path(out_png), "png", {"Software": None}),
        (Path(out_pdf), "pdf", {"Creator": None, "Producer": None, "CreationDate": None}),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
        os.replace(tmp, path)


def save_and_close(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike) -> None:
    """Save a figure (:func:`save_figure`) and close it."""
    save_figure(fig, out_png, out_pdf)
    pyplot().close(fig)


def suptitle(title: str, run: str, scale: str) -> str:
    """A figure's suptitle: the run and scale at paper scale, else the (wrapped) title."""
    return f"Run {run} ({scale} scale)" if scale == "paper" else textwrap.fill(title, 100)


def set_words(values: set, unit: str = "") -> str:
    """{3} -> '3'; {3, 5} -> '3/5'; {None} -> '?' (a figure's shots or n)."""
    known = sorted(v for v in values if v is not None)
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in known) or "?"


def step_panel_title(task: str, panel: str, shots: set, n: set) -> str:
    """A Figure 4 panel's title: task, setting, shots and n ('mmlu, zero-shot (0 shots), n=80
    questions')."""
    return f"{task}, {panel} ({set_words(shots)} shots), n={set_words(n)} questions"


def step_panel_ylabel(task: str, metrics: set) -> str:
    """A Figure 4 panel's y axis: the task and its metric ('mmlu: acc_norm (%)')."""
    return f"{task}: {set_words(metrics)} (%)"


def plot_step_panels(panels: dict[str, dict], curves: Sequence[dict], suptitle: str) -> dict:
    """Figure 4's drawing, for one run and for the aggregate over world seeds: one panel per
    setting, one line per curve with its error bars, each curve shifted a little along x (and
    drawn with its own marker and line style) so that equal curves stay visible; the floors as
    grey lines (chance dashed, majority dotted).

    ``panels``: ``{panel: {"points": {curve label: [(x, y, err_low, err_high)]}, "floors":
    {FLOOR_CHANCE/FLOOR_MAJORITY: value or None}, "title", "ylabel"}}``; ``curves``: ``[{"label",
    "variant"}]`` in drawing order (the variant picks the colour). A curve without points in a
    panel is not drawn there. Returns {"fig", "note"} (the note says the shift, if any)."""
    plt = pyplot()
    variants = sorted({c["variant"] for c in curves})
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    markers, styles = "osD^v", ("-", "--", "-.", ":")
    steps = sorted(
        {p[0] for pan in panels.values() for line in pan["points"].values() for p in line}
    )
    span = (steps[-1] - steps[0]) if len(steps) > 1 else 1
    k = len(curves)
    shift = {c["label"]: 0.012 * span * (i - (k - 1) / 2) for i, c in enumerate(curves)}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.4), squeeze=False)
    for ax, pan in zip(axes[0], panels.values(), strict=True):
        for i, curve in enumerate(curves):
            line = pan["points"].get(curve["label"]) or []
            if not line:
                continue
            xs, ys, lows, highs = zip(*line, strict=True)
            if not (any(lows) or any(highs)):
                yerr = None
            elif lows == highs:
                yerr = list(lows)
            else:
                yerr = [list(lows), list(highs)]
            ax.errorbar(
                [x + shift[curve["label"]] for x in xs],
                ys,
                yerr=yerr,
                marker=markers[i % len(markers)],
                linestyle=styles[i % len(styles)],
                color=colors[curve["variant"]],
                alpha=0.85,
                capsize=3,
                markersize=5,
                label=curve["label"],
            )
        for row, style in ((FLOOR_CHANCE, "--"), (FLOOR_MAJORITY, ":")):
            floor = pan["floors"].get(row)
            if floor is not None:
                ax.axhline(floor, color="grey", linestyle=style, label=FLOOR_LABELS[row])
        ax.set_title(pan["title"])
        ax.set_xlabel("instruction-tuning step")
        ax.set_ylabel(pan["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(suptitle)
    fig.tight_layout()
    moved = max(abs(v) for v in shift.values()) if shift else 0.0
    note = (
        f"In the figure, the curves are shifted by up to {moved:.3g} steps along x so that equal "
        "curves do not hide one another; the table has the true steps."
        if moved
        else ""
    )
    return {"fig": fig, "note": note}


def plot_category_panels(
    bars: dict[str, dict[str, tuple[float, float, float]]], ns: dict[str, str], suptitle: str
):
    """Figure 6's drawing, for one run and for the aggregate over world seeds: one panel per
    corpus (one shared x scale, n in each title), bars of the categories that some corpus has
    (a category at 0 in every corpus is left out) with their error bars.

    ``bars``: ``{corpus: {category: (% of pairs, err_low, err_high)}}``; ``ns``: ``{corpus: n
    as words}``. Returns (fig, the categories left out)."""
    plt = pyplot()
    every = list(dict.fromkeys(c for d in bars.values() for c in d))
    categories = [c for c in every if any(d.get(c, (0.0,))[0] > 0 for d in bars.values())]
    empty = [c for c in every if c not in categories]
    cells = [d.get(c, (0.0, 0.0, 0.0)) for d in bars.values() for c in categories]
    top = max((v for v, _, _ in cells), default=0.0)
    reach = max((v + hi for v, _, hi in cells), default=0.0)
    fig, axes = plt.subplots(
        1,
        len(bars),
        figsize=(3.6 * len(bars), 0.3 * max(len(categories), 1) + 1.4),
        squeeze=False,
        sharey=True,
        sharex=True,
    )
    for ax, (row, dist) in zip(axes[0], bars.items(), strict=True):
        cell = [dist.get(c, (0.0, 0.0, 0.0)) for c in categories]
        values, lows, highs = ([x[k] for x in cell] for k in range(3))
        errs = lows if lows == highs else [lows, highs]
        ax.barh(range(len(categories)), values, xerr=errs, color="C0", capsize=2)
        ax.set_yticks(range(len(categories)), categories)
        ax.set_title(f"{row} (n={ns.get(row, '?')} pairs)")
        ax.set_xlabel("% of pairs")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # shared y: once
    # Room for the largest bar and its error bar (the bar's end + 15% + 1 point, as before).
    right = max(top * 1.15 + 1, reach + 1) if top else 100.0
    axes[0][0].set_xlim(0, min(100.0, right))
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig, empty
