"""Per-rule runtimes of a finished run, from Snakemake's benchmark files (benchmarks/<run>/).

Prints a Markdown table: jobs, total and longest seconds, peak memory per rule. Usage:
    python perf/runtimes.py tiny
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

# The benchmark folder of each rule (rules/*.smk `benchmark:` paths) -> the rule's name.
FOLDERS = {
    "data": "prepare_dataset", "models/base-": "base_model", "models/scratch-": "pretrain_from_scratch",
    "models/cpt-": "continual_pretrain", "models/it-": "instruction_tune",
    "models/synthesizer": "finetune_synthesizer", "synthesizer": "evaluate_synthesizer",
    "synthesizer/generations": "synthesizer_generations",
    "synthesis": "synthesize", "packed": "pack", "eval": "evaluate",
}  # fmt: skip


def rule_of(rel: str) -> str:
    for prefix, rule in sorted(FOLDERS.items(), key=lambda kv: -len(kv[0])):
        if rel.startswith(prefix):
            return rule
    return rel.split("/")[0]


def main(run: str) -> None:
    root = Path("benchmarks") / run
    stats = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for tsv in sorted(root.rglob("*.tsv")):
        with open(tsv) as f:
            row = list(csv.DictReader(f, delimiter="\t"))[-1]
        s = stats[rule_of(str(tsv.relative_to(root)))]
        s[0] += 1
        s[1] += float(row["s"])
        s[2] = max(s[2], float(row["s"]))
        s[3] = max(s[3], float(row["max_rss"]) if row["max_rss"] != "NA" else 0.0)
    print("| rule | jobs | total s | longest job s | peak RSS MB |\n|---|---:|---:|---:|---:|")
    for rule, (n, total, longest, rss) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        print(f"| `{rule}` | {n} | {total:.0f} | {longest:.0f} | {rss:.0f} |")
    print(f"| all benchmarked jobs | {sum(s[0] for s in stats.values())} | "
          f"{sum(s[1] for s in stats.values()):.0f} | | |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny")
