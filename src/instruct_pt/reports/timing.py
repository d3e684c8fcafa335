"""Time per rule and per stage, from Snakemake's benchmark files (``benchmarks/{run}/**.tsv``).

Every rule with a ``benchmark:`` directive writes one TSV per job (Snakemake's format: a header
``s  h:m:s  max_rss  ...  cpu_time`` and one data row per repeat; ``NA`` where the job ended
before the first resource sample). :func:`collect` reads whatever TSVs a run has, names each
job's rule and stage from its path (the ``benchmark:`` paths in ``rules/*.smk``), and
:func:`write_report` writes ``timing.csv`` (one row per job) and ``timing.md`` (by stage, by
rule, every job). :func:`write_runs_report` does the same over several runs (``make
demo-seeds``: one column per world seed, and the total).

Wall seconds are summed over jobs; jobs run side by side (``--cores``), so the sum is more than
the elapsed time. CPU seconds (user + system over the job's process tree) are the measure of
work, and each stage's share is of those. A TSV's numbers are from the last time its job ran.

(A little over 500 lines: one concept, the run's timing, from its TSVs to its two reports; they
share the ``Job`` record and its totals.)
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import platform
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from instruct_pt.common import DataError, write_text

log = logging.getLogger(__name__)

#: Stages in report order; "other": a benchmark path no rule here writes.
STAGES = (
    "data",
    "synthesizer",
    "synthesis",
    "stand-ins",
    "ceilings",
    "compared models",
    "evaluation",
    "reports",
    "other",
)
STAGE_NOTES = {
    "data": "data sets, tokenizers, evaluation suites, mixtures, packing, downloads",
    "synthesizer": "fine-tuning the instruction synthesizer and measuring it (Table 5)",
    "synthesis": "splitting the raw corpora, synthesizing pairs, templifying",
    "stand-ins": "base models: pre-trained stand-ins (miniature) or hub downloads",
    "ceilings": "each task's ceiling: its data and a model tuned on the task's own format, or "
    "(general) the oracle's true pairs and Instruct PT on them",
    "compared models": "pre-training from scratch, continual pre-training, instruction tuning",
    "evaluation": "evaluating every model; the quality and contamination analyses",
    "reports": "tables, figures, the claims scorecard",
    "other": "benchmark files no rule of this workflow writes",
}
#: A job's benchmark path (relative to benchmarks/{run}/, without .tsv) -> (rule, stage).
#: The first match wins; keep these in step with the `benchmark:` paths in rules/*.smk.
PATTERNS: tuple[tuple[re.Pattern, str, str], ...] = tuple(
    (re.compile(pattern), rule, stage)
    for pattern, rule, stage in (
        (r"data/templified/[^/]+", "templify_ft_collection", "data"),
        (r"data/ceiling_[^/]+", "ceiling_data", "ceilings"),
        (r"data/[^/]+", "prepare_dataset", "data"),
        (r"tokenizers/[^/]+", "tokenizer", "data"),
        (r"eval_tasks/[^/]+", "eval_tasks", "data"),
        (r"mixtures/[^/]+/general-oracle", "mixture", "ceilings"),
        (r"packed/[^/]+/general-oracle\.L\d+", "pack", "ceilings"),
        (r"mixtures/[^/]+/[^/]+", "mixture", "data"),
        (r"packed/[^/]+/[^/]+", "pack", "data"),
        (r"prefetch/[^/]+", "fetch_hub", "data"),
        (r"synthesizer/split", "split_synthesizer_data", "synthesizer"),
        (r"models/synthesizer", "finetune_synthesizer", "synthesizer"),
        (r"synthesizer/generations/[^/]+", "synthesizer_generations", "synthesizer"),
        (r"synthesizer/eval", "evaluate_synthesizer", "synthesizer"),
        (r"synthesis/[^/]+/split", "split_corpus", "synthesis"),
        (r"synthesis/[^/]+/rule_based/shard\d+", "rule_based_synthesis", "synthesis"),
        (r"synthesis/[^/]+/oracle/shard\d+", "oracle_synthesis", "ceilings"),
        (r"synthesis/[^/]+/augmented/oracle", "templify", "ceilings"),
        (r"synthesis/[^/]+/[^/]+/shard\d+", "synthesize", "synthesis"),
        (r"synthesis/[^/]+/augmented/[^/]+", "templify", "synthesis"),
        (r"models/base-[^/]+", "base_model", "stand-ins"),
        (r"models/ceiling-[^/]+", "ceiling_tune", "ceilings"),
        (r"models/oracle-ceiling-[^/]+", "ceiling_pretrain", "ceilings"),
        (r"models/scratch-[^/]+", "pretrain_from_scratch", "compared models"),
        (r"models/cpt-[^/]+", "continual_pretrain", "compared models"),
        (r"models/it-[^/]+", "instruction_tune", "compared models"),
        (r"eval/[^/]+/[^/]+", "evaluate", "evaluation"),
        (r"analysis/quality/[^/]+", "data_quality", "evaluation"),
        (r"analysis/contamination", "contamination", "evaluation"),
        (r"reports/(?P<name>[^/]+)", "report_{name}", "reports"),
        (r"seeds_report", "seeds_report", "reports"),
        (r"timing_seeds", "report_timing_seeds", "reports"),
        (r"plan", "plan", "reports"),
    )
)
CSV_FIELDS = ("run", "stage", "rule", "job", "wall_s", "cpu_s", "max_rss_mib")
REQUIRED = ("s", "max_rss", "cpu_time")
NA = "NA"
NOT_SAMPLED = "CPU and memory not sampled (job shorter than Snakemake's sampling interval)"


@dataclass(frozen=True)
class Job:
    """One job's benchmark: seconds of wall time, CPU seconds and peak RSS (None: not sampled)."""

    run: str
    stage: str
    rule: str
    job: str
    wall_s: float
    cpu_s: float | None
    max_rss_mib: float | None


def classify(rel: str) -> tuple[str, str]:
    """(rule, stage) of a benchmark path relative to benchmarks/{run}/, without ``.tsv``."""
    for pattern, rule, stage in PATTERNS:
        m = pattern.fullmatch(rel)
        if m:
            return rule.format(**m.groupdict()), stage
    return "(unknown)", "other"


def _number(text: str, where: str, key: str, *, allow_na: bool) -> float | None:
    text = text.strip()
    if text == NA and allow_na:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: column {key!r} is {text!r}, not a number") from None
    if value != value or value < 0:  # NaN or negative
        raise DataError(f"{where}: column {key!r} is {text!r}, not a non-negative number")
    return value


def read_benchmark(path: str | os.PathLike) -> list[dict[str, float | None]]:
    """The data rows of one benchmark TSV as ``{"s", "cpu_time", "max_rss"}`` (None for NA).

    A header without the columns ``s``, ``max_rss``, ``cpu_time``, a row with another number of
    fields than the header, or a value that is not a number (nor NA, where Snakemake writes it)
    is an error naming the file, line and column. An empty file, or a header alone, gives [].
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].strip():
        return []
    header = lines[0].split("\t")
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise DataError(
            f"{path}:1: not a Snakemake benchmark header (missing column(s) {missing}): "
            f"{lines[0][:120]!r}"
        )
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataError(
                f"{path}:{n}: {len(fields)} tab-separated fields, the header has {len(header)}"
            )
        rec = dict(zip(header, fields, strict=True))
        where = f"{path}:{n}"
        rows.append(
            {
                "s": _number(rec["s"], where, "s", allow_na=False),
                "cpu_time": _number(rec["cpu_time"], where, "cpu_time", allow_na=True),
                "max_rss": _number(rec["max_rss"], where, "max_rss", allow_na=True),
            }
        )
    return rows


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def collect(bench_dir: str | os.PathLike, run: str | None = None) -> tuple[list[Job], Counter]:
    """Every job benchmarked under ``bench_dir`` (benchmarks/{run}/), in report order, and the
    files left out, counted by reason. ``run`` defaults to the folder's name. Repeats of a job
    (Snakemake's ``repeat()``) are averaged. A missing folder is an error."""
    root = Path(bench_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no benchmark folder (has the run started?)")
    run = run or root.name
    jobs, dropped = [], Counter()
    for path in sorted(root.rglob("*.tsv")):
        rows = read_benchmark(path)
        rel = path.relative_to(root).with_suffix("").as_posix()
        if not rows:
            dropped["no data row (empty file or header only)"] += 1
            log.warning("%s: no data row, left out", path)
            continue
        rule, stage = classify(rel)
        if stage == "other":
            log.warning("%s: no rule of this workflow writes this path (stage 'other')", path)
        jobs.append(
            Job(
                run=run,
                stage=stage,
                rule=rule,
                job=rel,
                wall_s=_mean([r["s"] for r in rows]),
                cpu_s=_mean([r["cpu_time"] for r in rows]),
                max_rss_mib=_mean([r["max_rss"] for r in rows]),
            )
        )
    return sort_jobs(jobs), dropped


def sort_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Report order: runs as they first appear (e.g. world seeds as listed), then stage, rule, job."""
    jobs = list(jobs)
    order = {run: i for i, run in enumerate(dict.fromkeys(j.run for j in jobs))}
    return sorted(jobs, key=lambda j: (order[j.run], STAGES.index(j.stage), j.rule, j.job))


@dataclass
class Total:
    jobs: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    not_sampled: int = 0
    max_rss_mib: float | None = None

    def add(self, job: Job) -> None:
        self.jobs += 1
        self.wall_s += job.wall_s
        if job.cpu_s is None:
            self.not_sampled += 1
        else:
            self.cpu_s += job.cpu_s
        if job.max_rss_mib is not None:
            self.max_rss_mib = max(self.max_rss_mib or 0.0, job.max_rss_mib)


def summarise(jobs: Iterable[Job], key: str = "stage") -> dict[str, Total]:
    """Totals per stage (in STAGES order, stages without jobs left out) or per rule (``key=
    "rule"``, by stage then name), plus ``"total"`` last. CPU sums skip jobs not sampled
    (counted in ``not_sampled``)."""
    jobs = sort_jobs(jobs)
    out: dict[str, Total] = {}
    total = Total()
    for job in jobs:
        out.setdefault(getattr(job, key), Total()).add(job)
        total.add(job)
    if key == "rule":
        stage_of = {j.rule: j.stage for j in jobs}
        out = dict(sorted(out.items(), key=lambda kv: (STAGES.index(stage_of[kv[0]]), kv[0])))
    out["total"] = total
    return out


def share(part: Total, total: Total) -> float:
    """A part's share of the CPU seconds, in percent (0 when nothing was sampled)."""
    return 100.0 * part.cpu_s / total.cpu_s if total.cpu_s else 0.0


def _f(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_csv(path: str | os.PathLike, jobs: Sequence[Job]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        for j in jobs:
            w.writerow(
                [j.run, j.stage, j.rule, j.job, _f(j.wall_s, 2), _f(j.cpu_s, 2)]
                + [_f(j.max_rss_mib, 1)]
            )


def read_csv(path: str | os.PathLike) -> list[Job]:
    """Jobs back from a timing.csv (errors name the file, line and column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: timing CSV missing")
    jobs = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise DataError(f"{path}:1: header {reader.fieldnames}, expected {list(CSV_FIELDS)}")
        for rec in reader:
            where = f"{path}:{reader.line_num}"
            if rec["stage"] not in STAGES:
                raise DataError(f"{where}: column 'stage' is {rec['stage']!r}, not one of {STAGES}")
            num = {
                k: None if rec[k] == "" else _number(rec[k], where, k, allow_na=False)
                for k in ("wall_s", "cpu_s", "max_rss_mib")
            }
            if num["wall_s"] is None:
                raise DataError(f"{where}: column 'wall_s' is empty")
            jobs.append(Job(rec["run"], rec["stage"], rec["rule"], rec["job"], **num))
    return jobs


def machine() -> str:
    """This machine in a few words: CPUs usable, CPU model, OS and architecture."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 0
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    parts = [f"{cpus} CPU core{'s' if cpus != 1 else ''}", model, platform.system()]
    return ", ".join(p for p in parts + [platform.machine()] if p)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _stage_label(name: str) -> str:
    return "**total**" if name == "total" else name


def stage_table(jobs: Sequence[Job]) -> list[str]:
    """Markdown rows: per stage, jobs, wall s, CPU s, share of CPU s, peak RSS; then the total."""
    stages = summarise(jobs)
    total = stages["total"]
    rows = [
        [
            _stage_label(name),
            str(t.jobs),
            f"{t.wall_s:.0f}",
            f"{t.cpu_s:.0f}",
            f"{share(t, total):.1f}%",
            _f(t.max_rss_mib, 0),
        ]
        for name, t in stages.items()
    ]
    header = ["stage", "jobs", "wall s", "CPU s", "share of CPU s", "peak RSS MiB"]
    return _table(header, rows, "lrrrrr")


def _not_sampled_note(jobs: Sequence[Job]) -> list[str]:
    n = sum(j.cpu_s is None for j in jobs)
    return [f"{n} job(s): {NOT_SAMPLED}; counted in wall s, not in CPU s.", ""] if n else []


def write_report(
    jobs: Sequence[Job],
    dropped: Counter,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    *,
    run: str,
    bench_dir: str,
) -> None:
    """timing.csv (one row per job) and timing.md (by stage, by rule, every job) of one run."""
    jobs = sort_jobs(jobs)
    write_csv(out_csv, jobs)
    rules = summarise(jobs, "rule")
    total = rules["total"]
    stage_of = {j.rule: j.stage for j in jobs}
    lines = [
        f"# Time per stage and rule (`{run}`)",
        "",
        f"From the benchmark files under `{bench_dir}/` ({len(jobs)} jobs; each file holds the last "
        "time its job ran). Wall s is summed over jobs, which run side by side, so it exceeds the "
        "elapsed time; CPU s (user + system of the job's processes) is the work, and the share "
        "is of CPU s. Snakemake samples a job's CPU every 0.5 s for about its first 15 s, then "
        "every 30 s, and keeps the last sample, so a long job's last seconds of work are not "
        "counted: CPU s is a lower bound (README, Measured). "
        f"Report written on: {machine()}.",
        "",
        *_not_sampled_note(jobs),
        *(f"Left out: {n} file(s), {why}." for why, n in sorted(dropped.items())),
        *([""] if dropped else []),
        "## By stage",
        "",
        *stage_table(jobs),
        "",
        "Stages: " + "; ".join(f"{s}: {STAGE_NOTES[s]}" for s in STAGES if s != "other") + ".",
        "",
        "## By rule",
        "",
        *_table(
            ["rule", "stage", "jobs", "wall s", "CPU s", "share of CPU s", "longest job s"],
            (
                [
                    "**total**" if name == "total" else f"`{name}`",
                    stage_of.get(name, ""),
                    str(t.jobs),
                    f"{t.wall_s:.0f}",
                    f"{t.cpu_s:.0f}",
                    f"{share(t, total):.1f}%",
                    ""
                    if name == "total"
                    else f"{max(j.wall_s for j in jobs if j.rule == name):.0f}",
                ]
                for name, t in rules.items()
            ),
            "llrrrrr",
        ),
        "",
        "## Jobs",
        "",
        *_table(
            ["stage", "rule", "job", "wall s", "CPU s", "max RSS MiB"],
            (
                [
                    j.stage,
                    f"`{j.rule}`",
                    f"`{j.job}`",
                    _f(j.wall_s),
                    _f(j.cpu_s),
                    _f(j.max_rss_mib, 0),
                ]
                for j in jobs
            ),
            "lllrrr",
        ),
    ]
    write_text(out_md, "\n".join(lines) + "\n")


def runs_stage_table(jobs: Sequence[Job], runs: Sequence[str]) -> list[str]:
    """Markdown rows: per stage, CPU s of each run, then the total over the runs and its share."""
    per_run = {r: summarise([j for j in jobs if j.run == r]) for r in runs}
    every = summarise(jobs)
    names = [s for s in STAGES if s in every] + ["total"]
    rows = []
    for name in names:
        cells = [f"{per_run[r][name].cpu_s:.0f}" if name in per_run[r] else "0" for r in runs]
        t = every[name]
        rows.append(
            [_stage_label(name), *cells, f"{t.cpu_s:.0f}", f"{share(t, every['total']):.1f}%"]
        )
    header = ["stage (CPU s)", *(f"`{r}`" for r in runs), "all runs", "share"]
    return _table(header, rows, "l" + "r" * (len(runs) + 2))


def runs_table(jobs: Sequence[Job], runs: Sequence[str]) -> list[str]:
    """Markdown rows: jobs, wall s and CPU s of each run, then of all runs."""
    rows = []
    for name, t in [(f"`{r}`", summarise([j for j in jobs if j.run == r])["total"]) for r in runs]:
        rows.append([name, str(t.jobs), f"{t.wall_s:.0f}", f"{t.cpu_s:.0f}"])
    t = summarise(jobs)["total"]
    rows.append(["**all runs**", str(t.jobs), f"{t.wall_s:.0f}", f"{t.cpu_s:.0f}"])
    return _table(["run", "jobs", "wall s", "CPU s"], rows, "lrrr")


def write_runs_report(
    bench_dirs: dict[str, str | os.PathLike],
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike,
    *,
    title: str,
) -> list[Job]:
    """Several runs (``{run: benchmarks/{run}}``, e.g. one per world seed and the aggregate):
    timing.csv with every job of every run, timing.md with CPU s per stage and run, the total,
    and wall s and jobs per run. A run without a benchmark folder has no jobs (counted)."""
    jobs: list[Job] = []
    dropped: Counter = Counter()
    for run, folder in bench_dirs.items():
        if not Path(folder).is_dir():
            log.warning("%s: no benchmark folder; run %s has no timed jobs", folder, run)
            dropped["run without a benchmark folder"] += 1
            continue
        got, why = collect(folder, run)
        jobs += got
        dropped.update(why)
    jobs = sort_jobs(jobs)
    write_csv(out_csv, jobs)
    runs = list(bench_dirs)
    lines = [
        f"# {title}",
        "",
        "From the benchmark files of each run (`benchmarks/<run>/`; each holds the last time its "
        "job ran). CPU s = user + system of the jobs' processes; wall s is summed over jobs, "
        f"which run side by side. Report written on: {machine()}.",
        "",
        *_not_sampled_note(jobs),
        *(f"Left out: {n} × {why}." for why, n in sorted(dropped.items())),
        *([""] if dropped else []),
        *runs_stage_table(jobs, runs),
        "",
        *runs_table(jobs, runs),
        "",
        "Per job: `timing.csv` (column `run`).",
    ]
    write_text(out_md, "\n".join(lines) + "\n")
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m instruct_pt.reports.timing",
        description="Print the time per stage of a run from its timing.csv.",
    )
    p.add_argument("csv", help="paper_figures/<run>/timing.csv")
    args = p.parse_args(argv)
    jobs = read_csv(args.csv)
    runs = list(dict.fromkeys(j.run for j in jobs))
    table = stage_table(jobs)
    if len(runs) > 1:
        table = runs_stage_table(jobs, runs) + [""] + runs_table(jobs, runs)
    print(f"Time per stage ({args.csv}; details beside it in timing.md):")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
