"""What each preset changes in config.yaml, as the README lists it (between the markers
``<!-- presets:begin -->`` and ``<!-- presets:end -->``; tests/test_preset_diff.py checks that
the list matches the files).

    python -m instruct_pt.reports.preset_diff --readme README.md     # rewrite the README's list
    python -m instruct_pt.reports.preset_diff                        # print it

A key counts as changed where the merged config (config.yaml, then the preset, merged as
Snakemake merges --configfile) differs from config.yaml: a leaf value, a key only one side has,
or a list (compared whole)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError
from instruct_pt.config import load_config

BEGIN, END = "<!-- presets:begin -->", "<!-- presets:end -->"
#: (column title, preset files overlaid on config.yaml, the files it is compared with)
PRESETS = (
    ("tiny", ("presets/tiny.yaml",), ()),
    ("smoke", ("presets/smoke.yaml",), ()),
    ("rehearsal", ("presets/rehearsal.yaml",), ()),
    ("real-benchmarks (vs smoke)", ("presets/smoke.yaml", "presets/real-benchmarks.yaml"),
     ("presets/smoke.yaml",)),
)  # fmt: skip
_ABSENT = object()


def leaves(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every leaf; a non-empty mapping is descended, anything else is a leaf."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, (*prefix, str(key)))
    else:
        yield prefix, node


def changed_keys(base: dict, merged: dict) -> list[tuple[str, ...]]:
    """Sorted leaf paths where merged differs from base (value, presence or type)."""
    b, m = dict(leaves(base)), dict(leaves(merged))
    out = []
    for path in sorted(set(b) | set(m)):
        x, y = b.get(path, _ABSENT), m.get(path, _ABSENT)
        if x is _ABSENT or y is _ABSENT or type(x) is not type(y) or x != y:
            out.append(path)
    return out


def _cell(paths: Sequence[tuple[str, ...]], max_children: int = 4) -> str:
    """The changed keys of one section: second-level keys, each with its third-level keys when
    there are at most max_children of them, else their count."""
    groups: dict[str, set[str]] = {}
    for p in paths:
        if len(p) == 1:
            groups.setdefault("", set())
            continue
        groups.setdefault(p[1], set()).update([p[2]] if len(p) > 2 else [])
    if "" in groups and len(groups) > 1:  # an empty section in config.yaml, filled in
        del groups[""]
    parts = []
    for key in sorted(groups):
        kids = sorted(groups[key])
        if not key:
            parts.append("changed")
        elif not kids:
            parts.append(f"`{key}`")
        elif len(kids) <= max_children:
            parts.append(f"`{key}` ({', '.join(kids)})")
        else:
            parts.append(f"`{key}` ({len(kids)} keys)")
    return "; ".join(parts)


def table(root: str | Path = ".") -> str:
    """The Markdown table: one row per top-level section, one column per preset."""
    root = Path(root)
    base_cfg = load_config(root / "config.yaml")
    columns = []
    for title, files, against in PRESETS:
        base = (
            load_config(root / "config.yaml", *(root / f for f in against)) if against else base_cfg
        )
        merged = load_config(root / "config.yaml", *(root / f for f in files))
        columns.append((title, changed_keys(base, merged)))
    sections = sorted({p[0] for _, paths in columns for p in paths})
    lines = [
        "| section | " + " | ".join(t for t, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for s in sections:
        cells = [_cell([p for p in paths if p[0] == s]) or "" for _, paths in columns]
        lines.append(f"| `{s}` | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{t} {len(paths)}" for t, paths in columns)
    lines.append("")
    lines.append(f"Changed keys (leaves) in all: {counts}.")
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str, where: str = "README") -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise DataError(f"{where}: needs exactly one {BEGIN} ... {END} pair, in that order")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def current_block(text: str) -> str:
    return text.split(BEGIN)[1].split(END)[0].lstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=".", help="the checkout (config.yaml, presets/)")
    ap.add_argument("--readme", help="rewrite this file's block between the markers")
    args = ap.parse_args(argv)
    block = table(args.root)
    if args.readme:
        path = Path(args.readme)
        path.write_text(replace_block(path.read_text(), block, str(path)))
    else:
        print(block, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
