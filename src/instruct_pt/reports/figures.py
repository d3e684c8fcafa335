"""How the paper's two figures compute their cells (and what they draw) from one run's results.

Figure 4: a task's score across instruction-tuning steps, one panel per setting; Figure 6: the
distribution of the synthesized pairs over task categories, per corpus. Each build returns its
records and a drawing for :mod:`instruct_pt.reports.plotting` (rendered by the registry).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from instruct_pt.common import DataError
from instruct_pt.reports.cells import Record, clauses, load_result, record, task_cell
from instruct_pt.reports.floors import FLOOR_CHANCE, FLOOR_MAJORITY, floor_records, task_floors
from instruct_pt.reports.plotting import (
    plot_category_panels,
    plot_step_panels,
    step_panel_title,
    step_panel_ylabel,
)
from instruct_pt.reports.spec import Built
from instruct_pt.reports.tables import CORPUS_ROW, load_quality, run_dirs
from instruct_pt.reports.titles import join_words, method_words, models_phrase, n_phrase, trained


def figure4(
    eval_dir: str | os.PathLike,
    curves: list[dict],
    settings: dict[str, str],
    task: str,
    *,
    scale: str,
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
) -> Built:
    """Fig. 4: score on ``task`` vs instruction-tuning step, one panel per setting, one line per curve.

    ``curves``: ``[{"label", "variant", "steps": {step: model}}]``; ``settings``:
    ``{"zero-shot": setting, "few-shot": setting}``. Besides ``"{panel} step {k}"`` the CSV has
    ``"{panel} final"`` (the last step), which the claims scorecard compares, and the task's
    floors under the ``"{panel} final"`` columns (dashed lines in the panels). ``tasks_dir``
    and ``models_dir`` as in :func:`instruct_pt.reports.tables.table1`.
    """
    tasks_dir, models_dir = run_dirs(eval_dir, tasks_dir, models_dir)
    records: list[Record] = []
    floors: dict[str, dict[str, dict]] = {}
    ns: list = []
    points: dict[tuple[str, str], list[tuple[int, float, float | None]]] = {}
    panel_info: dict[str, dict] = {}  # panel -> metric, shots and n of its results
    for curve in curves:
        steps = sorted((int(k), m) for k, m in curve["steps"].items())
        if not steps:
            raise DataError(f"figure4: curve {curve['label']!r} has no steps")
        label = curve["label"]
        for panel, setting in settings.items():
            line = []
            for step, model in steps:
                path = Path(eval_dir) / model / setting / f"{task}.json"
                res = load_result(path, f"curve {label!r}, step {step}, {panel}")
                cell = task_cell(res, scale, path)
                line.append((step, cell["ours"], cell["stderr"]))
                ns.append(res.get("n"))
                info = panel_info.setdefault(panel, {"metric": set(), "shots": set(), "n": set()})
                info["metric"].add(str(res["metric"]))
                info["shots"].add(res.get("num_fewshot"))
                info["n"].add(res.get("n"))
                if f"{panel} final" not in floors:
                    suite = str(res.get("suite") or setting)
                    floors[f"{panel} final"] = task_floors(
                        tasks_dir, suite, str(res["task"]), res["metric"]
                    )
                records.append(
                    record("figure4", label, f"{panel} step {step}", cell, label, scale, False)
                )
            final = {**cell, "note": f"value at the last step ({steps[-1][0]})"}
            records.append(record("figure4", label, f"{panel} final", final, label, scale, False))
            points[(label, panel)] = line
    records += floor_records("figure4", floors)
    done = trained(models_dir, [m for c in curves for m in c["steps"].values()])
    what = (
        f"{task} vs instruction-tuning steps "
        f"({clauses(models_phrase(done), n_phrase(ns, 'questions'))})"
    )

    def draw(suptitle: str):
        """The panels with standard errors as error bars; the note says the curves' shift."""
        panels = {}
        for panel in settings:
            info = panel_info[panel]
            panels[panel] = {
                "points": {
                    c["label"]: [
                        (x, y, se or 0.0, se or 0.0) for x, y, se in points[(c["label"], panel)]
                    ]
                    for c in curves
                },
                "floors": {
                    row: floors.get(f"{panel} final", {}).get(row, {}).get("ours")
                    for row in (FLOOR_CHANCE, FLOOR_MAJORITY)
                },
                "title": step_panel_title(task, panel, info["shots"], info["n"]),
                "ylabel": step_panel_ylabel(task, info["metric"]),
            }
        out = plot_step_panels(panels, curves, suptitle + "\nerror bars: ±1 standard error")
        return out["fig"], [out["note"]] if out["note"] else []

    return Built(records, what, caption=f"{task} vs instruction-tuning steps", draw=draw)


def figure6(quality_jsons: dict[str, str | os.PathLike], *, scale: str) -> Built:
    """Fig. 6: the distribution of synthesized pairs over task categories (% of pairs), per corpus."""
    dists: dict[str, dict[str, float]] = {}
    records: list[Record] = []
    methods: list[str] = []
    n_pairs: list[int | None] = []
    ns: dict[str, int | None] = {}
    for corpus, path in quality_jsons.items():
        q = load_quality(path, corpus)
        row = CORPUS_ROW.get(corpus, corpus)
        methods.append(str(q.get("method", "")))
        n_pairs.append(q["n_pairs"])
        ns[row] = q["n_pairs"]
        dists[row] = {name: 100.0 * float(share) for name, share in q["categories"].items()}
        for name, pct in dists[row].items():
            cell = {"ours": pct, "n": q["n_pairs"], "note": "% of pairs"}
            records.append(record("figure6", row, name, cell, row, scale, False))
    judged = join_words([method_words(m) for m in dict.fromkeys(methods)])
    what = (
        "task-category distribution of the synthesized pairs "
        f"({clauses(n_phrase(n_pairs, 'pairs per corpus'), f'categories by {judged}')})"
    )

    def draw(suptitle: str):
        """The panels with binomial standard errors of the shares; the note names the
        categories left out."""
        bars = {
            row: {
                c: (v, err, err)
                for c, v in dist.items()
                for err in [math.sqrt(v * (100 - v) / ns[row]) if ns.get(row) else 0.0]
            }
            for row, dist in dists.items()
        }
        words = {row: "?" if ns.get(row) is None else str(ns[row]) for row in dists}
        fig, empty = plot_category_panels(bars, words, suptitle)
        dropped = (
            f"Categories with no pair in any corpus, not plotted: {', '.join(empty)}."
            if empty
            else "Every category has pairs in some corpus (none left out of the figure)."
        )
        return fig, [dropped]

    return Built(records, what, caption="task-category distribution", draw=draw)
