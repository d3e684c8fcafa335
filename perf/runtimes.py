"""Per-stage and per-rule runtimes of a run, from Snakemake's benchmark files (benchmarks/<run>/).

The same numbers as the workflow's paper_figures/<run>/timing.md (instruct_pt.reports.timing), for a run
still in progress or one without that report. Usage:
    python perf/runtimes.py tiny
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from instruct_pt.reports import timing


def main(run: str) -> None:
    jobs, dropped = timing.collect(Path("benchmarks") / run, run)
    with tempfile.TemporaryDirectory() as tmp:
        md = Path(tmp) / "timing.md"
        timing.write_report(jobs, dropped, Path(tmp) / "timing.csv", md, run=run,
                            bench_dir=f"benchmarks/{run}")  # fmt: skip
        print(md.read_text().split("\n## Jobs")[0])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny")
