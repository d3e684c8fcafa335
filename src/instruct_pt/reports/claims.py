"""Scoring the paper's claims on a run's report CSVs: each comparison's effect, interval and verdict.

Claims are data (``resources/claims.yaml``): a text, the evidence tag of the claim, and a check
over cells of the report CSVs (:mod:`instruct_pt.reports.registry`). On this run's numbers ("ours") each
comparison gets an effect (left - right, in points), an interval and a verdict decided by the
interval, never by a bare difference of two point estimates:

- ``>`` / ``>=``: "held" if the interval's lower bound is > 0 (>= 0), "refuted" if its upper
  bound is < 0, else "inconclusive"; ``<`` / ``<=`` mirrored; ``within`` tol: "held" if the
  interval lies inside [-tol, tol], "refuted" if it lies entirely outside, else "inconclusive";
  ``all``: "refuted" if a part is refuted, else "not evaluated" if a part is, else "held" if
  every part is held, else "inconclusive".
- The interval is a paired bootstrap over questions (:mod:`instruct_pt.reports.stats`) from the
  per-document items behind each cell (the report CSVs' ``sources`` column names the result
  JSONs; their ``.docs.jsonl`` files hold the items); a constant operand shifts the other
  side's bootstrap interval. A cell without items (Table 5/6 cells, results written without
  docs files) falls back to the normal approximation from the cells' standard errors when both
  sides have one, else the comparison is "not evaluated" and the reason says why.
- Several world seeds (one CSV per seed and table, :mod:`instruct_pt.reports.seeds`): a cell is the
  mean over the seeds, the bootstrap resamples seeds, then questions within each seed, a cell
  without items gets a Student-t interval over the seeds' effects, and every comparison lists
  its per-seed effects. The verdict is decided by the envelope of the bootstrap interval and
  the t interval over the seeds' effects (``_with_seed_spread``): with 3 seeds the bootstrap
  alone understates how far another seed's run can fall.

The paper's own numbers get the same check as a point comparison ("held" / "not held"; the
paper gives no intervals), so a reader sees whether the paper's printed numbers support it.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from instruct_pt.common import DataError, write_json
from instruct_pt.reports import stats
from instruct_pt.reports.cells import SCALES, read_report_csv
from instruct_pt.reports.paper import load_tables, paper_value
from instruct_pt.reports.scorecard import (
    HELD,
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_HELD,
    REFUTED,
    UNKNOWN,
    VERDICTS,
    write_scorecard,
)

log = logging.getLogger(__name__)

COMPARE_OPS = {
    ">": lambda a, b, tol: a > b,
    ">=": lambda a, b, tol: a >= b,
    "<": lambda a, b, tol: a < b,
    "<=": lambda a, b, tol: a <= b,
    "within": lambda a, b, tol: abs(a - b) <= tol,
}


def default_claims_path() -> str:
    """The packaged claims file."""
    return str(resources.files("instruct_pt").joinpath("resources", "claims.yaml"))


def _validate_check(check: object, where: str) -> None:
    if not isinstance(check, dict):
        raise DataError(f"{where}: a check must be a mapping")
    if "all" in check:
        parts = check["all"]
        if not isinstance(parts, list) or not parts:
            raise DataError(f"{where}: 'all' needs a non-empty list of checks")
        for i, part in enumerate(parts):
            _validate_check(part, f"{where}.all[{i}]")
        return
    if check.get("op") not in COMPARE_OPS:
        raise DataError(
            f"{where}: op must be one of {', '.join(COMPARE_OPS)}, got {check.get('op')!r}"
        )
    if check["op"] == "within" and not isinstance(check.get("tol"), int | float):
        raise DataError(f"{where}: op 'within' needs a numeric 'tol'")
    for side in ("left", "right"):
        operand = check.get(side)
        if not isinstance(operand, dict) or not (
            {"table", "row", "column"} <= set(operand) or "value" in operand
        ):
            raise DataError(f"{where}.{side}: expected {{table, row, column}} or {{value}}")


def load_claims(path: str | os.PathLike) -> list[dict]:
    """Read and validate a claims file; DataError names the claim at fault."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: claims file missing")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list):
        raise DataError(f"{path}: expected a top-level 'claims' list")
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        where = f"{path}: claims[{i}]"
        missing = [k for k in ("id", "text", "tag", "check") if k not in claim]
        if missing:
            raise DataError(f"{where}: missing key(s) {', '.join(missing)}")
        if claim["id"] in seen:
            raise DataError(f"{where}: duplicate id {claim['id']!r}")
        seen.add(claim["id"])
        _validate_check(claim["check"], f"{where} ({claim['id']})")
    return claims


@dataclass
class _Side:
    """One operand of a comparison on this run's numbers."""

    label: str
    value: float | None = None
    stderr: float | None = None
    cell: list | None = None  # stats.Cell: runs (one per world seed) of TaskItems
    constant: bool = False
    reason: str = ""  # why there is no value
    why_no_items: str = ""  # why there is no bootstrap
    per_seed: list[float] | None = None  # the cell's value in each world seed's run


class Numbers:
    """Cell lookup in the runs' CSVs: the number, its stderr and its per-document items.

    ``tables``: ``{table: path}`` (one run) or ``{table: [path, ...]}`` (one run per world seed,
    the same seeds in the same order for every table). With several seeds a cell's value is the
    mean over the seeds, its cell holds one run of items per seed, and it has no stderr.
    """

    def __init__(self, tables: dict[str, str | os.PathLike | Sequence[str | os.PathLike]]):
        self.paths = {
            name: list(p) if isinstance(p, list | tuple) else [p] for name, p in tables.items()
        }
        lengths = {len(p) for p in self.paths.values()}
        if len(lengths) > 1 or 0 in lengths:
            raise DataError(f"every table needs one CSV per seed, got {sorted(lengths)} CSVs")
        self.cache: dict[tuple[str, int], dict[tuple[str, str], dict]] = {}
        self.items: dict[Path, stats.TaskItems] = {}

    def record(self, table: str, k: int, row: str, column: str) -> dict | None:
        """The CSV record of one cell in seed `k`'s CSV of `table` (None if it has none)."""
        if (table, k) not in self.cache:
            self.cache[(table, k)] = {
                (r["row"], r["column"]): r for r in read_report_csv(self.paths[table][k])
            }
        return self.cache[(table, k)].get((row, column))

    def side(self, operand: dict) -> _Side:
        label = _operand_label(operand)
        if "value" in operand:
            return _Side(label, float(operand["value"]), 0.0, constant=True)
        table, row, column = operand["table"], operand["row"], operand["column"]
        if table not in self.paths:
            return _Side(label, reason=f"{table} was not produced in this run")
        paths = self.paths[table]
        recs = [self.record(table, k, row, column) for k in range(len(paths))]
        for k, rec in enumerate(recs):
            if rec is None:
                where = "" if len(paths) == 1 else f" ({paths[k]})"
                return _Side(label, reason=f"{table} has no cell {row!r} / {column!r}{where}")
        stderrs = [float(r["ours_stderr"]) if r["ours_stderr"] else None for r in recs]
        stderr = stderrs[0] if len(recs) == 1 else None
        for k, rec in enumerate(recs):
            if not rec["ours"]:
                where = "in this run" if len(paths) == 1 else f"in {paths[k]}"
                return _Side(label, stderr=stderr, reason=f"{label} has no number {where}")
        values = [float(r["ours"]) for r in recs]
        cell, why = [], ""
        for k, rec in enumerate(recs):
            runs, why = self._cell(table, k, rec)
            if runs is None:
                cell = None
                break
            cell += runs
        return _Side(label, float(np.mean(values)), stderr, cell, why_no_items=why, per_seed=values)

    def _cell(self, table: str, k: int, rec: dict) -> tuple[list | None, str]:
        """(the cell as one run of TaskItems, or None and why) from the record's sources."""
        if not rec.get("sources"):
            return None, "no per-document items behind this cell"
        folder = Path(self.paths[table][k]).parent
        run = []
        for src in rec["sources"].split(";"):
            path = (folder / src).resolve() if not Path(src).is_absolute() else Path(src)
            if path not in self.items:
                try:
                    self.items[path] = stats.load_task_items(path)
                except (OSError, DataError) as e:
                    return None, f"no per-document items ({e})"
            run.append(self.items[path])
        return [run], ""


def _operand_label(operand: dict) -> str:
    if "value" in operand:
        return str(operand["value"])
    return f"{operand['table']} / {operand['row']} / {operand['column']}"


def _part_seed(seed: int, check: dict) -> int:
    """A seed for one comparison: the run's seed and the comparison's text, so a claim's interval
    does not depend on which other claims are scored or in which order."""
    key = zlib.crc32(_describe(check).encode("utf-8"))
    return int(np.random.SeedSequence([seed, key]).generate_state(1)[0])


def _interval(
    left: _Side, right: _Side, seed: int, n_boot: int, level: float
) -> tuple[stats.Interval | None, str]:
    """(left - right with its interval, or None and why)."""
    if left.value is None or right.value is None:
        return None, "; ".join(dict.fromkeys(s.reason for s in (left, right) if s.reason))
    if left.constant and right.constant:
        return stats.normal_effect(left.value, 0.0, right.value, 0.0, level), ""
    if left.cell is not None and right.cell is not None:
        return stats.effect(left.cell, right.cell, seed=seed, n_boot=n_boot, level=level), ""
    if left.cell is not None and right.constant:
        iv = stats.cell_interval(left.cell, seed=seed, n_boot=n_boot, level=level)
        return iv.shifted(-right.value), ""
    if right.cell is not None and left.constant:
        iv = stats.cell_interval(right.cell, seed=seed, n_boot=n_boot, level=level)
        return (
            stats.Interval(
                left.value - iv.estimate,
                left.value - iv.high,
                left.value - iv.low,
                iv.level,
                iv.method,
                iv.n_boot,
                iv.n_seeds,
            ),
            "",
        )
    if left.stderr is not None and right.stderr is not None:
        return stats.normal_effect(left.value, left.stderr, right.value, right.stderr, level), ""
    effects = _seed_effects(left, right)
    if effects is not None and len(effects) > 1:
        return t_over_seeds(effects, level), ""
    why = [
        f"{s.label}: {s.why_no_items} and no standard error"
        for s in (left, right)
        if s.cell is None and s.stderr is None
    ]
    return None, "; ".join(why) or "no interval for these operands"


def _seed_effects(left: _Side, right: _Side) -> list[float] | None:
    """left - right in each world seed's run (a constant side is the same in every seed)."""
    if left.value is None or right.value is None:
        return None
    lv = left.per_seed or [left.value]
    rv = right.per_seed or [right.value]
    if left.constant:
        lv = lv * len(rv)
    if right.constant:
        rv = rv * len(lv)
    if len(lv) != len(rv):
        return None
    return [a - b for a, b in zip(lv, rv, strict=True)]


def t_over_seeds(effects: list[float], level: float) -> stats.Interval:
    """The mean of per-seed effects with a Student-t interval over the seeds (cells without
    per-document items in a multi-seed run: the seeds' spread includes question sampling)."""
    from scipy.stats import t as student_t

    k = len(effects)
    mean = float(np.mean(effects))
    half = float(student_t.ppf(0.5 + level / 2.0, k - 1) * np.std(effects, ddof=1) / np.sqrt(k))
    return stats.Interval(mean, mean - half, mean + half, level, "t over seeds", 0, k)


def _with_seed_spread(iv: stats.Interval, effects: list[float] | None, level: float):
    """The interval a multi-seed verdict is decided by: the envelope of the bootstrap interval and
    the Student-t interval over the seeds' effects.

    With few seeds the seed-then-document bootstrap understates the spread between seeds (with 3
    seeds its percentile interval reaches about the range of the three runs, where the t interval
    with 2 degrees of freedom reaches ~2.5 standard deviations of a seed's effect); a verdict must
    hold for a world seed not run, so the wider of the two decides."""
    if effects is None or len(effects) < 2 or iv.method == "t over seeds":
        return iv
    t_iv = t_over_seeds(effects, level)
    if t_iv.low >= iv.low and t_iv.high <= iv.high:
        return iv
    return stats.Interval(
        iv.estimate,
        min(iv.low, t_iv.low),
        max(iv.high, t_iv.high),
        level,
        f"{iv.method} and t over seeds (envelope)",
        iv.n_boot,
        len(effects),
    )


def verdict(op: str, tol: float, low: float, high: float) -> str:
    """The verdict of a comparison from the interval [low, high] of left - right."""
    if op in (">", ">="):
        held = low > 0 if op == ">" else low >= 0
        return HELD if held else REFUTED if high < 0 else INCONCLUSIVE
    if op in ("<", "<="):
        held = high < 0 if op == "<" else high <= 0
        return HELD if held else REFUTED if low > 0 else INCONCLUSIVE
    if op == "within":
        if -tol <= low and high <= tol:
            return HELD
        return REFUTED if high < -tol or low > tol else INCONCLUSIVE
    raise DataError(f"unknown op {op!r}")


def _combine(verdicts: list[str]) -> str:
    for v in (REFUTED, NOT_EVALUATED, INCONCLUSIVE):
        if v in verdicts:
            return v
    return HELD


def _score_ours(check: dict, numbers: Numbers, seed: int, n_boot: int, level: float) -> list:
    """One dict per comparison of the check (the parts of an 'all', or the check itself)."""
    parts = []
    for part in check["all"] if "all" in check else [check]:
        if "all" in part:
            parts += _score_ours(part, numbers, seed, n_boot, level)
            continue
        left, right = numbers.side(part["left"]), numbers.side(part["right"])
        iv, why = _interval(left, right, _part_seed(seed, part), n_boot, level)
        multi = max(len(left.per_seed or ()), len(right.per_seed or ())) > 1
        if multi and iv is not None:
            iv = _with_seed_spread(iv, _seed_effects(left, right), level)
        entry = {
            "check": _describe(part),
            "verdict": NOT_EVALUATED if iv is None else "",
            "reason": why if iv is None else "",
            "effect": None if iv is None else iv.as_dict(),
            "per_seed": _seed_effects(left, right) if multi else None,
            "numbers": [
                {"side": name, "operand": s.label, "value": s.value, "ours_stderr": s.stderr}
                | ({"per_seed": s.per_seed} if multi and not s.constant else {})
                for name, s in (("left", left), ("right", right))
            ],
        }
        if iv is not None:
            entry["verdict"] = verdict(part["op"], float(part.get("tol", 0.0)), iv.low, iv.high)
        parts.append(entry)
    return parts


def _evaluate_paper(check: dict) -> tuple[str, list[dict]]:
    """(held / not held / unknown, numbers) of the check on the paper's point numbers."""
    if "all" in check:
        results = [_evaluate_paper(part) for part in check["all"]]
        statuses = {s for s, _ in results}
        status = NOT_HELD if NOT_HELD in statuses else UNKNOWN if UNKNOWN in statuses else HELD
        return status, [n for _, numbers in results for n in numbers]
    values, numbers = [], []
    for side in ("left", "right"):
        value, tag = _paper_lookup(check[side])
        values.append(value)
        numbers.append(
            {"side": side, "operand": _operand_label(check[side]), "value": value}
            | ({"tag": tag} if tag else {})
        )
    left, right = values
    if left is None or right is None:
        return UNKNOWN, numbers
    held = COMPARE_OPS[check["op"]](left, right, float(check.get("tol", 0.0)))
    return HELD if held else NOT_HELD, numbers


def _paper_lookup(operand: dict) -> tuple[float | None, str]:
    if "value" in operand:
        return float(operand["value"]), ""
    table = operand["table"]
    found = (
        paper_value(table, operand["row"], operand["column"]) if table in load_tables() else None
    )
    if found is None:
        return None, ""
    return found[0], found[1]


def _describe(check: dict) -> str:
    if "all" in check:
        return " AND ".join(f"({_describe(p)})" for p in check["all"])
    tol = f" (tol {check['tol']})" if check["op"] == "within" else ""
    return f"{_operand_label(check['left'])} {check['op']} {_operand_label(check['right'])}{tol}"


def score_claims(
    tables: dict[str, str | os.PathLike],
    claims_path: str | os.PathLike,
    out_json: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
    seed: int = 0,
    n_boot: int = stats.DEFAULT_BOOT,
    level: float = stats.DEFAULT_LEVEL,
    world_seeds: Sequence[int] | None = None,
) -> dict:
    """Score every claim on this run's report CSVs (``{"table1": path, ...}``); write JSON + Markdown.

    Several world seeds: ``{"table1": [path of seed 1, path of seed 2, ...], ...}`` and
    ``world_seeds`` the seeds in that order. Each effect is then the mean over the seeds of
    left - right, its interval the seed-then-document bootstrap (cells without per-document
    items: a Student-t interval over the seeds' effects), widened to the t interval over the
    seeds' effects where that is wider, and each comparison lists its per-seed effects.

    `seed` (the run's seed from the config), `n_boot` and `level` set the bootstrap; the same
    inputs and seed give the same scorecard. A table absent from ``tables`` makes its claims
    "not evaluated" (with the reason); a table that is named but whose file is missing is an
    error naming the file.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    for name, paths in tables.items():
        for path in paths if isinstance(paths, list | tuple) else [paths]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: report CSV missing (table {name!r})")
    claims = load_claims(claims_path)
    numbers = Numbers(tables)
    n_runs = len(next(iter(numbers.paths.values()), [None]))
    if world_seeds is not None and len(world_seeds) != n_runs:
        raise ValueError(f"{len(world_seeds)} world seeds named for {n_runs} CSVs per table")

    scored = []
    for claim in claims:
        parts = _score_ours(claim["check"], numbers, seed, n_boot, level)
        overall = _combine([p["verdict"] for p in parts])
        paper_status, paper_numbers = _evaluate_paper(claim["check"])
        reasons = [p["reason"] for p in parts if p["reason"]]
        scored.append(
            {
                "id": claim["id"],
                "text": claim["text"],
                "tag": claim["tag"],
                "source": claim.get("source", ""),
                "check": _describe(claim["check"]),
                "verdict": overall,
                "reason": "; ".join(dict.fromkeys(reasons)) if overall == NOT_EVALUATED else "",
                "parts": parts,
                "numbers": [n for p in parts for n in p["numbers"]],
                "paper_status": paper_status,
                "paper_numbers": paper_numbers,
            }
        )
    summary = {v: sum(c["verdict"] == v for c in scored) for v in VERDICTS}
    summary["total"] = len(scored)
    seeds = sorted(
        {p["effect"]["n_seeds"] for c in scored for p in c["parts"] if p["effect"]} - {0}
    )
    result = {
        "run": run,
        "scale": scale,
        "bootstrap": {"seed": seed, "n_boot": n_boot, "level": level, "world_seeds": seeds},
        "seeds": list(world_seeds) if world_seeds is not None else None,
        "summary": summary,
        "claims": scored,
    }
    write_json(out_json, result)
    write_scorecard(out_md, result)
    log.info(
        "claims: %d held, %d refuted, %d inconclusive, %d not evaluated (of %d)",
        *(summary[v] for v in VERDICTS),
        len(scored),
    )
    return result
