"""How each of the paper's tables computes its cells from this run's result files.

One build per table (registered in :mod:`instruct_pt.reports.registry`, which renders them):
Tables 1 and 2 (general tasks), 3 and 4 (domain tasks) from the evaluation result JSONs; 5 from
``synthesizer_eval``'s JSON; 6 from ``quality``'s JSONs; 9 from the contamination JSON. Each
returns its records and the clause a miniature title gives about the run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from instruct_pt.common import DataError
from instruct_pt.reports.cells import (
    Record,
    clauses,
    column_name,
    load_result,
    mean_cell,
    ordered,
    paper_names,
    read_input,
    record,
    task_cell,
    task_names,
)
from instruct_pt.reports.floors import (
    ceiling_records,
    check_ceiling,
    floor_records,
    row_floors,
)
from instruct_pt.reports.paper import paper_table
from instruct_pt.reports.spec import Built
from instruct_pt.reports.titles import join_words, method_words, models_phrase, n_phrase, trained

DOMAIN_AVG = {"biomedicine": "Biomed avg", "finance": "Finance avg"}
DOMAIN_ORDER = ("biomedicine", "finance")
CORPUS_ROW = {"general": "General", "biomedicine": "Biomedicine", "finance": "Finance"}
DEFAULT_TABLE5_LABELS = {"base": "Base model", "synthesizer": "Instruction synthesizer"}
QUALITY_KEYS = ("context_relevance", "response_accuracy", "n_categories", "categories", "n_pairs")
TABLE5_KEYS = ("model", "split", "shots", "response_accuracy", "pair_quality", "n")


def run_dirs(eval_dir, tasks_dir, models_dir) -> tuple[Path, Path]:
    """The suites' task data and the models' folders: results/{run}/eval/tasks and
    results/{run}/models beside ``eval_dir`` (results/{run}/eval) unless given."""
    tasks_dir = Path(eval_dir) / "tasks" if tasks_dir is None else Path(tasks_dir)
    models_dir = Path(eval_dir).parent / "models" if models_dir is None else Path(models_dir)
    return tasks_dir, models_dir


def general_row(
    eval_dir, model: str, setting: str, tasks: list[str], scale: str
) -> dict[str, dict]:
    """Cells of one model on a suite: {column: cell} for every task, then 'Avg'."""
    cells: dict[str, dict] = {}
    for task in tasks:
        path = Path(eval_dir) / model / setting / f"{task}.json"
        res = load_result(path, f"model {model!r}, setting {setting!r}, task {task!r}")
        column = column_name(res, scale)
        if column in cells:
            raise DataError(f"{path}: column {column!r} appears twice for model {model!r}")
        cells[column] = task_cell(res, scale, path)
    cells["Avg"] = mean_cell(list(cells.values()))
    return cells


def table1(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    scale: str,
    setting: str = "general",
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> Built:
    """Table 1: per-task general scores and their mean ("Avg") for each pre-trained model,
    then the ceiling row if given (``{"label": "ceiling: ...", "model"}``), then the two floor
    rows (chance, majority answer) of every task.

    ``rows``: ``[{"label", "model", "paper_row"?}]``; ``paper_row`` (default: label) is the
    paper's row name ("500M Instruct PT", ...), used to look up the paper's values.
    ``tasks_dir`` (the suites' task data, default ``{eval_dir}/tasks``) gives the floors;
    ``models_dir`` (default ``{eval_dir}/../models``) the sizes in a miniature run's title.
    """
    tasks_dir, models_dir = run_dirs(eval_dir, tasks_dir, models_dir)
    tasks = task_names(eval_dir, [r["model"] for r in rows], setting)
    per_row = [(r, general_row(eval_dir, r["model"], setting, tasks, scale)) for r in rows]
    order = ordered({c for _, cells in per_row for c in cells}, paper_table("table1").columns)
    order = [c for c in order if c != "Avg"] + ["Avg"]
    records = [
        record(
            "table1", r["label"], c, cells.get(c), r.get("paper_row", r["label"]), scale, c == "Avg"
        )
        for r, cells in per_row
        for c in order
    ]
    floors = row_floors(tasks_dir, eval_dir, rows[0]["model"], setting, tasks, scale, "Avg")
    check_ceiling(ceiling)
    if ceiling is not None:
        cells = general_row(eval_dir, ceiling["model"], setting, tasks, scale)
        records += ceiling_records("table1", ceiling, order, cells, floors, scale)
    records += floor_records("table1", {c: floors[c] for c in order})
    done = trained(models_dir, [r["model"] for r in rows])
    ns = [cell.get("n") for _, cells in per_row for c, cell in cells.items() if c != "Avg"]
    what = (
        "general performance of models pre-trained from scratch "
        f"({clauses(models_phrase(done), n_phrase(ns))})"
    )
    return Built(records, what)


def table2(
    eval_dir: str | os.PathLike,
    rows: list[dict],
    *,
    scale: str,
    setting: str = "general",
    tasks_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> Built:
    """Table 2: parameters, training tokens and general average, ours vs reference models;
    then the ceiling's average if given (as in :func:`table1`) and the floors of the average
    (``tasks_dir`` as in :func:`table1`).

    ``rows``: ``[{"label", "model", "params", "tokens", "ours": bool, "model_dir"?, "paper_row"?}]``;
    ``ours`` marks models trained by this workflow (vs reference checkpoints evaluated here).
    A row with ``model_dir`` and no params/tokens (a model trained in this run, a miniature
    stand-in included) takes them from that folder's ``train_summary.json``: what was trained.
    """
    tasks_dir, _ = run_dirs(eval_dir, tasks_dir, None)
    tasks = task_names(eval_dir, [r["model"] for r in rows], setting)
    records = []
    ns = []
    for r in rows:
        cells = general_row(eval_dir, r["model"], setting, tasks, scale)
        ns += [cell.get("n") for c, cell in cells.items() if c != "Avg"]
        kind = "trained in this run" if r.get("ours") else "reference model"
        params, tokens = r.get("params"), r.get("tokens")
        if r.get("model_dir") and (params is None or tokens is None):
            path = Path(r["model_dir"]) / "train_summary.json"
            summary = read_input(path, f"training summary missing ({r['label']})")
            params = summary["parameters"] if params is None else params
            tokens = summary["tokens"] if tokens is None else tokens
            kind += ", as trained here"
        paper_row = r.get("paper_row", r["label"])
        for column, cell in (
            ("Params", {"ours": params, "note": kind}),
            ("Tokens", {"ours": tokens, "note": kind}),
            ("Avg", cells["Avg"]),
        ):
            records.append(
                record("table2", r["label"], column, cell, paper_row, scale, column == "Avg")
            )
    floors = row_floors(tasks_dir, eval_dir, rows[0]["model"], setting, tasks, scale, "Avg")
    check_ceiling(ceiling)
    if ceiling is not None:
        cells = general_row(eval_dir, ceiling["model"], setting, tasks, scale)
        records += ceiling_records("table2", ceiling, ["Avg"], cells, floors, scale)
    records += floor_records("table2", {"Avg": floors["Avg"]})
    what = (
        "data efficiency: parameters and training tokens as trained or used in this run, "
        f"general average ({clauses(f'{len(tasks)} tasks', n_phrase(ns))})"
    )
    return Built(records, what)


def _domain_cells(
    eval_dir,
    models: dict[str, str],
    settings: dict[str, str],
    scale: str,
    tasks: dict[str, list[str]],
) -> dict[str, dict[str, dict]]:
    """One row's cells per domain: {domain: {column: cell}}, every task, then the domain's average."""
    out: dict[str, dict[str, dict]] = {}
    for domain, names in tasks.items():
        avg_col = DOMAIN_AVG.get(domain, f"{domain} avg")
        if domain not in models:
            out[domain] = {avg_col: {"note": f"no {domain} model in this run"}}
            continue
        cells = general_row(eval_dir, models[domain], settings.get(domain, domain), names, scale)
        cells[avg_col] = cells.pop("Avg")
        out[domain] = cells
    return out


def _merged(cells: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """A row's cells of every domain in one {column: cell}."""
    return {c: cell for domain_cells in cells.values() for c, cell in domain_cells.items()}


def _domain_table(
    name: str,
    eval_dir,
    rows: list[dict],
    *,
    scale: str,
    with_tasks: bool,
    what: str,
    settings: dict[str, str] | None = None,
    tasks_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    ceiling: dict | None = None,
) -> Built:
    """Table 3 (tasks + averages) or Table 4 (averages only): each row's records, then the
    ceiling row (``{"label": "ceiling: ...", "models": {domain: model}}``) if given, then the
    floor rows; the title counts the task cells' questions."""
    tasks_dir, models_dir = run_dirs(eval_dir, tasks_dir, models_dir)
    settings = settings or {}
    rank = {d: i for i, d in enumerate(DOMAIN_ORDER)}
    domains = sorted(
        {d for r in rows for d in r["models"]}, key=lambda d: (rank.get(d, len(rank)), d)
    )
    tasks = {
        d: task_names(
            eval_dir, [r["models"][d] for r in rows if d in r["models"]], settings.get(d, d)
        )
        for d in domains
    }
    per_row = [(r, _domain_cells(eval_dir, r["models"], settings, scale, tasks)) for r in rows]
    avg_cols = {DOMAIN_AVG.get(d, f"{d} avg") for d in domains}
    order: list[str] = []
    for d in domains:
        avg_col = DOMAIN_AVG.get(d, f"{d} avg")
        if with_tasks:
            task_cols = {c for _, cells in per_row for c in cells[d] if c != avg_col}
            models = [r["models"][d] for r in rows if d in r["models"]]
            aliases = paper_names(eval_dir, models, settings.get(d, d), scale)
            order += ordered(task_cols, paper_table("table3").columns, aliases)
        order.append(avg_col)
    records = []
    for r, cells in per_row:
        merged = _merged(cells)
        paper_row = r.get("paper_row", r["label"])
        for c in order:
            if c in merged or c in avg_cols:
                records.append(
                    record(name, r["label"], c, merged.get(c), paper_row, scale, c in avg_cols)
                )
    floors: dict[str, dict[str, dict]] = {}
    for d in domains:
        model = next(r["models"][d] for r in rows if d in r["models"])
        avg_col = DOMAIN_AVG.get(d, f"{d} avg")
        floors.update(
            row_floors(tasks_dir, eval_dir, model, settings.get(d, d), tasks[d], scale, avg_col)
        )
    check_ceiling(ceiling)
    if ceiling is not None:
        models = {d: m for d, m in ceiling["models"].items() if d in tasks}
        merged = _merged(_domain_cells(eval_dir, models, settings, scale, tasks))
        columns = [c for c in order if c in merged or c in avg_cols]
        records += ceiling_records(name, ceiling, columns, merged, floors, scale)
    records += floor_records(name, {c: floors[c] for c in order if c in floors})
    ns = [
        cell.get("n")
        for _, cells in per_row
        for c, cell in _merged(cells).items()
        if c not in avg_cols
    ]
    done = trained(models_dir, [m for r in rows for m in r["models"].values()])
    return Built(records, f"{what} ({clauses(models_phrase(done), n_phrase(ns))})")


def table3(eval_dir: str | os.PathLike, rows: list[dict], *, scale: str, **options) -> Built:
    """Table 3: the five biomedicine and five finance tasks, and each domain's mean; then the
    floor rows.

    ``rows``: ``[{"label", "models": {"biomedicine": model, "finance": model}, "paper_row"?}]``;
    ``settings`` maps a domain to its evaluation setting (default: the domain's name);
    ``tasks_dir`` and ``models_dir`` as in :func:`table1`; ``ceiling``: a row like ``rows``'
    whose label starts with "ceiling: ", placed before the floors.
    """
    what = "domain-specific performance"
    return _domain_table(
        "table3", eval_dir, rows, scale=scale, with_tasks=True, what=what, **options
    )


def table4(eval_dir: str | os.PathLike, rows: list[dict], *, scale: str, **options) -> Built:
    """Table 4: domain averages of the ablations ("Instruct PT", "w/o Corpora", "Rule-based",
    "1-shot"), then the floors of those averages (options as in :func:`table3`)."""
    what = "ablations, domain averages"
    return _domain_table(
        "table4", eval_dir, rows, scale=scale, with_tasks=False, what=what, **options
    )


def _shots_label(shots: object) -> str:
    text = str(shots).strip().lower()
    if text in ("0", "zero", "zero-shot", "zero_shot"):
        return "zero-shot"
    if text.startswith("few") or (text.isdigit() and int(text) > 0):
        return "few-shot"
    raise DataError(f"unknown shots setting {shots!r} (expected 0, k > 0, 'zero' or 'few')")


def table5(
    synth_eval_json: str | os.PathLike,
    *,
    scale: str,
    row_labels: dict[str, str] | None = None,
    models_dir: str | os.PathLike | None = None,
) -> Built:
    """Table 5: response accuracy and pair quality of base vs synthesizer, seen/unseen x 0/few-shot.

    Input ``{"settings": [{"model","split","shots","response_accuracy","pair_quality","n"}]}``.
    ``row_labels`` maps the ``model`` field to a row label (default: base / synthesizer ->
    the paper's "Base model" / "Instruction synthesizer"). The paper's numbers are all UNCONFIRMED.
    A miniature title gives the synthesizer's size from ``{models_dir}/synthesizer``
    (default: results/{run}/models beside results/{run}/synthesizer/eval.json).
    """
    labels = {**DEFAULT_TABLE5_LABELS, **(row_labels or {})}
    path = Path(synth_eval_json)
    data = read_input(path, "synthesizer evaluation JSON missing")
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, list):
        raise DataError(f"{path}: expected {{'settings': [...]}}")
    cells: dict[tuple[str, str], dict] = {}
    rows: list[str] = []
    for i, s in enumerate(settings):
        missing = [k for k in TABLE5_KEYS if k not in s]
        if missing:
            raise DataError(f"{path}: settings[{i}]: missing key(s) {', '.join(missing)}")
        row = labels.get(s["model"], s["model"])
        prefix = f"{str(s['split']).lower()} {_shots_label(s['shots'])}"
        for metric in ("response_accuracy", "pair_quality"):
            column = f"{prefix} {metric.replace('_', ' ')}"
            if (row, column) in cells:
                raise DataError(f"{path}: settings[{i}]: duplicate setting {row!r} / {column!r}")
            value = s[metric]
            # Pair quality is a mean over the pairs parsed from the generations, not the probes.
            n = s.get("n_pairs", s["n"]) if metric == "pair_quality" else s["n"]
            stderr = s.get(f"{metric}_stderr")
            note = f"shots={s['shots']}" + ("" if value is not None else "; not measured")
            if value is not None and stderr is None:
                note += "; standard error not recorded" if n and n > 1 else "; no standard error"
            cells[(row, column)] = {"ours": value, "stderr": stderr, "n": n, "note": note}
        if row not in rows:
            rows.append(row)
    columns = ordered({c for _, c in cells}, paper_table("table5").columns)
    records = [
        record("table5", row, c, cells.get((row, c)), row, scale, True)
        for row in rows
        for c in columns
        if (row, c) in cells
    ]
    if models_dir is None:
        models_dir = path.resolve().parent.parent / "models"
    done = trained(models_dir, ["synthesizer"])
    ns = [s["n"] for s in settings]
    what = (
        "instruction synthesizer vs its base model "
        f"({clauses(models_phrase(done), n_phrase(ns, 'examples per setting'))})"
    )
    return Built(records, what)


def load_quality(path: str | os.PathLike, corpus: str) -> dict:
    """One corpus's data-quality JSON (``quality``), checked."""
    q = read_input(path, f"data-quality JSON missing (corpus {corpus!r})")
    missing = [k for k in QUALITY_KEYS if k not in q]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
    return q


def _rate_cell(value: float | None, n: int | None, method: str) -> dict:
    """A percentage and its binomial standard error (in points)."""
    if value is None:
        return {"note": f"{method}; no pair could be checked"}
    se = math.sqrt(value * (100 - value) / n) if n else None
    return {"ours": value, "stderr": se, "n": n, "note": method}


def table6(quality_jsons: dict[str, str | os.PathLike], *, scale: str) -> Built:
    """Table 6: context relevance, response accuracy and task categories of each augmented corpus."""
    records = []
    methods: list[str] = []
    n_texts: list[int | None] = []
    for corpus, path in quality_jsons.items():
        q = load_quality(path, corpus)
        row = CORPUS_ROW.get(corpus, corpus)
        method = str(q.get("method", ""))
        for column, cell in (
            ("Context relevance", _rate_cell(q["context_relevance"], q["n_pairs"], method)),
            (
                "Response accuracy",
                _rate_cell(q["response_accuracy"], q.get("n_fact_pairs", q["n_pairs"]), method),
            ),
            ("Task categories", {"ours": q["n_categories"], "n": q["n_pairs"], "note": method}),
        ):
            records.append(record("table6", row, column, cell, row, scale, True))
        methods.append(method)
        n_texts.append(q.get("n_texts"))
    judged = join_words([method_words(m) for m in dict.fromkeys(methods)])
    counts = n_phrase(n_texts, "texts per corpus")
    return Built(
        records, f"quality of the instruction-augmented corpora ({clauses(judged, counts)})"
    )


def table9(contamination_json: str | os.PathLike, *, scale: str) -> Built:
    """Table 9 (appendix): evaluation examples sharing an n-gram with the synthesized pairs."""
    data = read_input(contamination_json, "contamination result missing")
    records: list[Record] = []
    names = data.get("paper_names", {})
    rows = [(task, t, None) for task, t in data["tasks"].items()]
    rows += [(task, None, why) for task, why in data.get("unavailable", {}).items()]
    for task, t, why in rows:
        # Only a task that IS the paper's (paper scale) gets the paper's row.
        paper_row = names.get(task, task.split("/")[-1]) if scale == "paper" else ""
        for column in ("Contaminated", "Total"):
            if t is None:  # its data could not be read where the rule ran
                cell = {"note": f"not available: {why}"}
            elif column == "Contaminated":
                note = (
                    f"examples sharing a {data['n']}-gram with the "
                    f"{data['n_synth_pairs']} synthesized pairs"
                )
                cell = {"ours": t["contaminated"], "n": t["total"], "note": note}
            else:
                cell = {"ours": t["total"], "n": t["total"], "note": "evaluation examples"}
            records.append(record("table9", task, column, cell, paper_row, scale, False))
    what = (
        f"evaluation examples sharing {data['n']}-grams with the "
        f"{data['n_synth_pairs']} pairs synthesized in this run"
    )
    return Built(records, what)
