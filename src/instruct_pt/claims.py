"""The claims scorecard: does this run reproduce each of the paper's claims?

Claims are data (``resources/claims.yaml``): a text, the evidence tag of the claim, and a check
over cells of the report CSVs (:mod:`instruct_pt.reports`). Each claim is scored on this run's
numbers ("ours") as "held", "not held" or "not evaluated" (a number is missing; the reason says
which), and the same check is run on the paper's own numbers where :mod:`instruct_pt.paper` has
them, so a reader sees whether the paper's printed numbers support the claim too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from instruct_pt.common import DataError, write_json, write_text
from instruct_pt.paper import load_tables, paper_value
from instruct_pt.reports import MINIATURE_NOTE, SCALES, read_report_csv

log = logging.getLogger(__name__)

HELD, NOT_HELD, NOT_EVALUATED = "held", "not held", "not evaluated"
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


@dataclass
class Outcome:
    """Result of one check on one source of numbers (ours or the paper's)."""

    status: str
    reasons: list[str] = field(default_factory=list)
    numbers: list[dict] = field(default_factory=list)


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


class _Numbers:
    """Cell lookup in this run's CSVs ("ours") or in the paper's tables."""

    def __init__(self, tables: dict[str, str | os.PathLike]):
        self.paths = tables
        self.cache: dict[str, dict[tuple[str, str], dict]] = {}

    def ours(self, table: str, row: str, column: str) -> tuple[float | None, dict, str]:
        """(value, extra fields, reason when missing)."""
        if table not in self.paths:
            return None, {}, f"{table} was not produced in this run"
        if table not in self.cache:
            self.cache[table] = {
                (r["row"], r["column"]): r for r in read_report_csv(self.paths[table])
            }
        rec = self.cache[table].get((row, column))
        if rec is None:
            return None, {}, f"{table} has no cell {row!r} / {column!r}"
        extra = {"ours_stderr": float(rec["ours_stderr"]) if rec["ours_stderr"] else None}
        if not rec["ours"]:
            return None, extra, f"{table} / {row!r} / {column!r} has no number in this run"
        return float(rec["ours"]), extra, ""


def _operand_label(operand: dict) -> str:
    if "value" in operand:
        return str(operand["value"])
    return f"{operand['table']} / {operand['row']} / {operand['column']}"


def _evaluate(check: dict, lookup) -> Outcome:
    """Score a check with ``lookup(operand) -> (value | None, extra, reason)``."""
    if "all" in check:
        parts = [_evaluate(part, lookup) for part in check["all"]]
        statuses = {p.status for p in parts}
        status = (
            NOT_HELD
            if NOT_HELD in statuses
            else NOT_EVALUATED
            if NOT_EVALUATED in statuses
            else HELD
        )
        return Outcome(
            status, [r for p in parts for r in p.reasons], [n for p in parts for n in p.numbers]
        )
    values, numbers, reasons = [], [], []
    for side in ("left", "right"):
        operand = check[side]
        value, extra, reason = lookup(operand)
        values.append(value)
        numbers.append({"side": side, "operand": _operand_label(operand), "value": value, **extra})
        if reason:
            reasons.append(reason)
    left, right = values
    if left is None or right is None:
        return Outcome(NOT_EVALUATED, reasons, numbers)
    held = COMPARE_OPS[check["op"]](left, right, float(check.get("tol", 0.0)))
    return Outcome(HELD if held else NOT_HELD, reasons, numbers)


def _paper_lookup(operand: dict) -> tuple[float | None, dict, str]:
    if "value" in operand:
        return float(operand["value"]), {}, ""
    table = operand["table"]
    found = (
        paper_value(table, operand["row"], operand["column"]) if table in load_tables() else None
    )
    if found is None:
        return None, {}, f"paper number for {_operand_label(operand)} unknown or UNCONFIRMED"
    return found[0], {"tag": found[1]}, ""


def _describe(check: dict) -> str:
    if "all" in check:
        return " AND ".join(f"({_describe(p)})" for p in check["all"])
    tol = f" (tol {check['tol']})" if check["op"] == "within" else ""
    return f"{_operand_label(check['left'])} {check['op']} {_operand_label(check['right'])}{tol}"


def _fmt(outcome: Outcome) -> str:
    parts = []
    for n in outcome.numbers:
        value = "—" if n["value"] is None else f"{n['value']:.1f}"
        if n.get("tag"):
            value += f" {n['tag']}"
        parts.append(value)
    return " vs ".join(parts) if len(parts) == 2 else "; ".join(parts)


def score_claims(
    tables: dict[str, str | os.PathLike],
    claims_path: str | os.PathLike,
    out_json: str | os.PathLike,
    out_md: str | os.PathLike,
    run: str,
    scale: str,
) -> dict:
    """Score every claim on this run's report CSVs (``{"table1": path, ...}``); write JSON + Markdown.

    A table absent from ``tables`` makes its claims "not evaluated" (with the reason); a table
    that is named but whose file is missing is an error naming the file.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    for name, path in tables.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: report CSV missing (table {name!r})")
    claims = load_claims(claims_path)
    numbers = _Numbers(tables)

    def ours_lookup(operand: dict):
        if "value" in operand:
            return float(operand["value"]), {}, ""
        return numbers.ours(operand["table"], operand["row"], operand["column"])

    scored = []
    for claim in claims:
        ours = _evaluate(claim["check"], ours_lookup)
        paper = _evaluate(claim["check"], _paper_lookup)
        scored.append(
            {
                "id": claim["id"],
                "text": claim["text"],
                "tag": claim["tag"],
                "source": claim.get("source", ""),
                "check": _describe(claim["check"]),
                "status": ours.status,
                "reason": "; ".join(dict.fromkeys(ours.reasons))
                if ours.status == NOT_EVALUATED
                else "",
                "numbers": ours.numbers,
                "paper_status": paper.status if paper.status != NOT_EVALUATED else "unknown",
                "paper_numbers": paper.numbers,
            }
        )
    summary = {s: sum(c["status"] == s for c in scored) for s in (HELD, NOT_HELD, NOT_EVALUATED)}
    summary["total"] = len(scored)
    result = {"run": run, "scale": scale, "summary": summary, "claims": scored}
    write_json(out_json, result)
    _write_scorecard(out_md, result)
    log.info(
        "claims: held %d of %d (%d not evaluated)",
        summary[HELD],
        len(scored),
        summary[NOT_EVALUATED],
    )
    return result


def _write_scorecard(path: str | os.PathLike, result: dict) -> None:
    s = result["summary"]
    lines = [
        "# Claims scorecard",
        "",
        f"Run: `{result['run']}` · scale: {result['scale']}",
        "",
    ]
    if result["scale"] != "paper":
        lines += [MINIATURE_NOTE, "Paper numbers below are full scale, for orientation.", ""]
    lines += [
        f"**Held {s[HELD]} of {s['total']} claims** ({s[NOT_HELD]} not held, {s[NOT_EVALUATED]} not evaluated).",
        "",
        "| Claim | Tag | Status | Ours | Paper | Paper's numbers support it |",
        "|---|---|---|---|---|---|",
    ]
    for c in result["claims"]:
        status = c["status"] + (f" ({c['reason']})" if c["reason"] else "")
        ours = _fmt(Outcome(c["status"], [], c["numbers"]))
        paper = _fmt(Outcome(c["paper_status"], [], c["paper_numbers"]))
        row = [f"{c['text']} (`{c['id']}`)", c["tag"], status, ours, paper, c["paper_status"]]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    lines += ["", "Checks:", ""] + [f"- `{c['id']}`: {c['check']}" for c in result["claims"]]
    write_text(path, "\n".join(lines) + "\n")
