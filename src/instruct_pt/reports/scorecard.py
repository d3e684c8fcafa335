"""The claims scorecard for people: its verdicts' words, its Markdown table and its summary.

:mod:`instruct_pt.reports.claims` scores the claims and writes ``claims.json``; this module
writes the same result as ``claims.md`` and, for the end of `make demo`, a few summary lines.
"""

from __future__ import annotations

import os
from pathlib import Path

from instruct_pt.common import DataError, read_json, write_text
from instruct_pt.reports.cells import MINIATURE_NOTE

HELD, REFUTED, INCONCLUSIVE, NOT_EVALUATED = "held", "refuted", "inconclusive", "not evaluated"
VERDICTS = (HELD, REFUTED, INCONCLUSIVE, NOT_EVALUATED)
# The paper's numbers (no intervals): a point comparison.
NOT_HELD, UNKNOWN = "not held", "unknown"
ONE_SEED_NOTE = (
    "1 world seed: the interval covers question sampling only, not seed-to-seed variation."
)


def _fmt_numbers(numbers: list[dict]) -> str:
    parts = []
    for n in numbers:
        value = "—" if n["value"] is None else f"{n['value']:.1f}"
        if n.get("tag"):
            value += f" {n['tag']}"
        parts.append(value)
    return " vs ".join(parts) if len(parts) == 2 else "; ".join(parts)


def _fmt_per_seed(part: dict) -> str:
    effects = part.get("per_seed")
    return "—" if not effects else ", ".join(f"{e:+.1f}" for e in effects)


def _fmt_effect(part: dict) -> str:
    e = part["effect"]
    if e is None:
        return "—"
    low, high = e["ci"]
    return f"{e['estimate']:+.1f} [{low:+.1f}, {high:+.1f}]"


def write_scorecard(path: str | os.PathLike, result: dict) -> None:
    """The scorecard ``result`` (as in claims.json) as a Markdown table with its notes."""
    s, boot = result["summary"], result["bootstrap"]
    pct = f"{100 * boot['level']:g}%"
    lines = [
        "# Claims scorecard",
        "",
        f"Run: `{result['run']}` · scale: {result['scale']}",
        "",
    ]
    if result["scale"] != "paper":
        lines += [MINIATURE_NOTE, "Paper numbers below are full scale, for orientation.", ""]
    seeds = boot["world_seeds"]
    named = result.get("seeds")
    per_seed = any(p.get("per_seed") for c in result["claims"] for p in c["parts"])
    if named and len(named) > 1:
        lines += [
            f"World seeds: {', '.join(map(str, named))}. Each effect is the mean over the seeds "
            "of left - right; its interval resamples seeds, then questions within each seed "
            "(cells without per-document items: a Student-t interval over the seeds' effects, "
            "marked 't over seeds'). 'Per seed' lists each seed's effect, in that order.",
            "",
        ]
    elif seeds in ([], [1]):  # stderrs (the normal approximation) are one run's too
        lines += [ONE_SEED_NOTE, ""]
    else:
        lines += [f"World seeds per cell: {', '.join(map(str, seeds))}.", ""]
    lines += [
        f"Effect = left - right (points), {pct} interval: paired bootstrap over questions "
        f"({boot['n_boot']} resamples, seed {boot['seed']}) where the cells have per-document "
        "items, else the normal approximation from their standard errors (marked 'normal'). "
        "A claim is held or refuted only when its interval says so; otherwise it is "
        "inconclusive.",
        "",
        f"**Held {s[HELD]} of {s['total']} claims**: {s[REFUTED]} refuted, "
        f"{s[INCONCLUSIVE]} inconclusive, {s[NOT_EVALUATED]} not evaluated.",
        "",
        f"| Claim | Tag | Verdict | Effect [{pct} CI] | "
        + ("Per seed | " if per_seed else "")
        + "Ours | Paper | Paper's numbers support it |",
        "|---|---|---|---|---|---|---|" + ("---|" if per_seed else ""),
    ]
    for c in result["claims"]:
        status = c["verdict"] + (f" ({c['reason']})" if c["reason"] else "")
        effects = []
        for p in c["parts"]:
            text = _fmt_effect(p)
            if p["effect"] and p["effect"]["method"] in ("normal", "t over seeds"):
                text += f" {p['effect']['method']}"
            if len(c["parts"]) > 1:
                text += f" {p['verdict']}"
            effects.append(text)
        ours = _fmt_numbers(c["numbers"])
        paper = _fmt_numbers(c["paper_numbers"])
        row = [
            f"{c['text']} (`{c['id']}`)",
            c["tag"],
            status,
            "; ".join(effects),
            *(["; ".join(_fmt_per_seed(p) for p in c["parts"])] if per_seed else []),
            ours,
            paper,
            c["paper_status"],
        ]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in row) + " |")
    lines += ["", "Checks:", ""] + [f"- `{c['id']}`: {c['check']}" for c in result["claims"]]
    write_text(path, "\n".join(lines) + "\n")


def claims_summary(claims_json: str | os.PathLike) -> str:
    """The scorecard in a few lines (the end of `make demo`): how many claims held, were
    refuted, inconclusive or not evaluated, then one line per claim."""
    path = Path(claims_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: claims scorecard missing (run the workflow first)")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise DataError(f"{path}: expected a JSON object with a 'claims' list")
    claims = data["claims"]
    counts: dict[str, int] = {}
    for i, claim in enumerate(claims):
        for key in ("id", "verdict"):
            if key not in claim:
                raise DataError(f"{path}: claims[{i}]: missing key {key!r}")
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    order = ["held", "refuted", "inconclusive", "not evaluated"]
    order += sorted(v for v in counts if v not in order)
    seeds = data.get("seeds")
    where = f"run {data.get('run', '?')}, {data.get('scale', '?')} scale" + (
        f", world seeds {', '.join(map(str, seeds))}" if seeds else ""
    )
    lines = [
        f"Claims scorecard ({where}): "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in order)
        + f" of {len(claims)}"
    ]
    width = max((len(c["verdict"]) for c in claims), default=0)
    for claim in claims:
        lines.append(f"  {claim['verdict']:<{width}}  {claim['id']}")
    return "\n".join(lines)
