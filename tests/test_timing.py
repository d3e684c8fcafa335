"""Time per rule and stage from Snakemake's benchmark files: parsing (NA, repeats, bad lines),
which rule and stage each benchmark path belongs to (every `benchmark:` path in rules/*.smk),
the summary's arithmetic, the reports of one run and of several, the command."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from instruct_pt.common import DataError
from instruct_pt.reports import timing

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def tsv(path: Path, *rows: tuple, header: str = HEADER) -> Path:
    """A benchmark file as Snakemake writes it; rows: (s, max_rss, cpu_time), values as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header] + [
        f"{s}\t0:00:01\t{rss}\t1.0\t1.0\t1.0\t0.0\t0.0\t50.0\t{cpu}" for s, rss, cpu in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def job(stage, rule, wall, cpu, rss=100.0, run="r", name=None) -> timing.Job:
    return timing.Job(run, stage, rule, name or f"{rule}/{wall}", wall, cpu, rss)


# ----------------------------------------------------------------------------- parsing


def test_reads_snakemakes_format_with_na_and_repeats(tmp_path):
    path = tsv(tmp_path / "a.tsv", ("34.62", "357.67", "5.07"))
    assert timing.read_benchmark(path) == [{"s": 34.62, "max_rss": 357.67, "cpu_time": 5.07}]
    # a job faster than the sampling interval: Snakemake writes NA for memory and CPU
    path = tsv(tmp_path / "b.tsv", ("0.31", "NA", "NA"))
    assert timing.read_benchmark(path) == [{"s": 0.31, "max_rss": None, "cpu_time": None}]
    # repeat("x.tsv", 2): one row per repeat, averaged per job
    tsv(tmp_path / "run" / "data" / "raw.tsv", ("10", "100", "8"), ("20", "300", "NA"))
    (j,), dropped = timing.collect(tmp_path / "run")
    assert (j.wall_s, j.cpu_s, j.max_rss_mib) == (15.0, 8.0, 200.0) and not dropped


def test_bad_lines_name_the_file_line_and_column(tmp_path):
    with pytest.raises(DataError, match=r"x\.tsv:1: not a Snakemake benchmark header.*cpu_time"):
        timing.read_benchmark(tsv(tmp_path / "x.tsv", header="s\th:m:s\tmax_rss"))
    bad = tsv(tmp_path / "y.tsv", ("1", "2", "3"))
    bad.write_text(bad.read_text() + "4\t0:00:04\t5\n")
    with pytest.raises(DataError, match=r"y\.tsv:3: 3 tab-separated fields, the header has 10"):
        timing.read_benchmark(bad)
    with pytest.raises(DataError, match=r"z\.tsv:2: column 's' is 'NA'"):
        timing.read_benchmark(tsv(tmp_path / "z.tsv", ("NA", "2", "3")))
    with pytest.raises(DataError, match=r"w\.tsv:2: column 'cpu_time' is 'abc'"):
        timing.read_benchmark(tsv(tmp_path / "w.tsv", ("1", "2", "abc")))
    with pytest.raises(DataError, match=r"v\.tsv:2: column 'max_rss' is '-5'"):
        timing.read_benchmark(tsv(tmp_path / "v.tsv", ("1", "-5", "1")))
    with pytest.raises(FileNotFoundError, match="no benchmark folder"):
        timing.collect(tmp_path / "none")


def test_empty_files_and_unknown_paths_are_counted_not_lost(tmp_path):
    root = tmp_path / "run"
    (root / "eval").mkdir(parents=True)
    (root / "eval" / "empty.tsv").write_text("")
    (root / "data").mkdir()
    (root / "data" / "header_only.tsv").write_text(HEADER + "\n")
    tsv(root / "mystery" / "a" / "b.tsv", ("2", "1", "1"))
    tsv(root / "models" / "scratch-500m-mix.tsv", ("5", "1", "4"))
    jobs, dropped = timing.collect(root)
    assert dropped == Counter({"no data row (empty file or header only)": 2})
    assert [(j.rule, j.stage, j.job) for j in jobs] == [
        ("pretrain_from_scratch", "compared models", "models/scratch-500m-mix"),
        ("(unknown)", "other", "mystery/a/b"),
    ]
    assert {j.run for j in jobs} == {"run"}


# ----------------------------------------------------------------------------- rules and stages


def benchmark_paths() -> dict[str, str]:
    """{rule: its benchmark path relative to benchmarks/<run>/} from rules/*.smk."""
    found = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        rule, lines = None, smk.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^rule (\w+):", line)
            if m:
                rule = m.group(1)
            if line.strip() == "benchmark:":
                literal = re.search(r'f?"(.+)"', lines[i + 1]).group(1)
                found[rule] = literal.split("/", 2)[2].removesuffix(
                    ".tsv"
                )  # no "benchmarks/<run>/"
    return found


#: Rules that do no work of their own (prefetch merges the fetch_hub records into a manifest).
UNTIMED = {"prefetch"}
STAGE_OF = {
    "prepare_dataset": "data", "tokenizer": "data", "eval_tasks": "data",
    "templify_ft_collection": "data", "mixture": "data", "pack": "data", "fetch_hub": "data",
    "split_synthesizer_data": "synthesizer", "finetune_synthesizer": "synthesizer",
    "synthesizer_generations": "synthesizer", "evaluate_synthesizer": "synthesizer",
    "split_corpus": "synthesis", "synthesize": "synthesis", "rule_based_synthesis": "synthesis",
    "templify": "synthesis", "base_model": "stand-ins",
    "ceiling_data": "ceilings", "ceiling_tune": "ceilings", "ceiling_pretrain": "ceilings",
    "oracle_synthesis": "ceilings",
    "pretrain_from_scratch": "compared models", "continual_pretrain": "compared models",
    "instruction_tune": "compared models", "evaluate": "evaluation",
    "data_quality": "evaluation", "contamination": "evaluation",
}  # fmt: skip


def test_every_rule_that_works_is_benchmarked_and_classified():
    paths = benchmark_paths()
    rules = {
        m.group(1)
        for smk in (ROOT / "rules").glob("*.smk")
        for m in re.finditer(r"^rule (\w+):", smk.read_text(), re.MULTILINE)
    }
    assert rules - set(paths) == UNTIMED
    for rule, path in paths.items():
        sample = re.sub(r"\{(\w+)\}", lambda m: "0" if m.group(1) == "shard" else "w", path)
        sample = re.sub(r"\{[^}]+\}", "w", sample)  # f-string expressions
        got_rule, stage = timing.classify(sample)
        assert got_rule == rule, (path, sample)
        expected = (
            "reports" if rule.startswith("report_") or rule in ("seeds_report", "plan") else None
        )
        assert stage == (expected or STAGE_OF[rule]), rule


# ----------------------------------------------------------------------------- the summary


JOBS = [
    job("compared models", "pretrain_from_scratch", 100.0, 90.0, 800.0),
    job("stand-ins", "base_model", 200.0, 180.0, 900.0),
    job("data", "pack", 10.0, 6.0, 300.0),
    job("data", "prepare_dataset", 3.0, None, None),  # not sampled
    job("compared models", "continual_pretrain", 50.0, 24.0, 700.0),
]


def test_summary_by_stage_and_rule():
    stages = timing.summarise(JOBS)
    assert list(stages) == ["data", "stand-ins", "compared models", "total"]
    assert (stages["data"].jobs, stages["data"].wall_s, stages["data"].cpu_s) == (2, 13.0, 6.0)
    assert stages["data"].not_sampled == 1 and stages["data"].max_rss_mib == 300.0
    total = stages["total"]
    assert (total.jobs, total.wall_s, total.cpu_s) == (5, 363.0, 300.0)
    assert total.max_rss_mib == 900.0 and total.not_sampled == 1
    assert timing.share(stages["stand-ins"], total) == pytest.approx(60.0)
    assert timing.share(stages["compared models"], total) == pytest.approx(38.0)
    assert sum(timing.share(t, total) for k, t in stages.items() if k != "total") == pytest.approx(
        100.0
    )
    rules = timing.summarise(JOBS, "rule")
    assert list(rules) == [
        "pack", "prepare_dataset", "base_model", "continual_pretrain", "pretrain_from_scratch",
        "total",
    ]  # fmt: skip
    assert rules["continual_pretrain"].cpu_s == 24.0
    assert timing.share(timing.Total(), timing.Total()) == 0.0  # nothing sampled: no division


def test_report_of_one_run(tmp_path):
    out_csv, out_md = tmp_path / "timing.csv", tmp_path / "timing.md"
    dropped = Counter({"no data row (empty file or header only)": 1})
    timing.write_report(list(reversed(JOBS)), dropped, out_csv, out_md, run="r", bench_dir="b/r")
    back = timing.read_csv(out_csv)
    assert back == timing.sort_jobs(JOBS)  # every job, in report order, numbers kept
    assert out_csv.read_text().splitlines()[0] == ",".join(timing.CSV_FIELDS)
    md = out_md.read_text()
    assert "| stand-ins | 1 | 200 | 180 | 60.0% | 900 |" in md
    assert "| **total** | 5 | 363 | 300 | 100.0% | 900 |" in md
    assert "| `continual_pretrain` | compared models | 1 | 50 | 24 | 8.0% | 50 |" in md
    assert "1 job(s): CPU and memory not sampled" in md
    assert "Left out: 1 file(s), no data row (empty file or header only)." in md
    timing.write_report(JOBS, dropped, tmp_path / "again.csv", tmp_path / "again.md", run="r",
                        bench_dir="b/r")  # fmt: skip
    assert (tmp_path / "again.csv").read_bytes() == out_csv.read_bytes()  # deterministic


def test_read_csv_errors_name_the_line(tmp_path):
    path = tmp_path / "t.csv"
    timing.write_csv(path, JOBS)
    text = path.read_text().splitlines()
    text[2] = text[2].replace("stand-ins", "training")
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"t\.csv:3: column 'stage' is 'training'"):
        timing.read_csv(path)
    path.write_text("run,rule\n")
    with pytest.raises(DataError, match=r"t\.csv:1: header"):
        timing.read_csv(path)


def test_report_over_seeds_per_run_and_in_total(tmp_path):
    bench = tmp_path / "benchmarks"
    tsv(bench / "m-s7" / "models" / "base-x.tsv", ("100", "500", "90"))
    tsv(bench / "m-s7" / "eval" / "base-x" / "general.tsv", ("20", "400", "10"))
    tsv(bench / "m-s11" / "models" / "base-x.tsv", ("120", "500", "110"))
    tsv(bench / "m-s11" / "eval" / "base-x" / "general.tsv", ("25", "400", "NA"))
    dirs = {r: bench / r for r in ("m-s7", "m-s11", "m-seeds")}  # the aggregate: not run yet
    out_csv, out_md = tmp_path / "timing.csv", tmp_path / "timing.md"
    jobs = timing.write_runs_report(dirs, out_csv, out_md, title="T")
    assert len(jobs) == 4 and timing.read_csv(out_csv) == jobs
    md = out_md.read_text()
    assert "| stage (CPU s) | `m-s7` | `m-s11` | `m-seeds` | all runs | share |" in md
    assert "| stand-ins | 90 | 110 | 0 | 200 | 95.2% |" in md
    assert "| evaluation | 10 | 0 | 0 | 10 | 4.8% |" in md
    assert "| **total** | 100 | 110 | 0 | 210 | 100.0% |" in md
    assert "| `m-s11` | 2 | 145 | 110 |" in md and "| **all runs** | 4 | 265 | 210 |" in md
    assert "Left out: 1 × run without a benchmark folder." in md


def test_command_prints_the_stage_table(tmp_path, capsys):
    path = tmp_path / "timing.csv"
    timing.write_csv(path, JOBS)
    assert timing.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| **total** | 5 | 363 | 300 | 100.0% | 900 |" in out
    timing.write_csv(
        path, [job("data", "pack", 4.0, 2.0, run="a-s1"), job("data", "pack", 6.0, 3.0, run="a-s2")]
    )
    assert timing.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| data | 2 | 3 | 5 | 100.0% |" in out and "| **all runs** | 2 | 10 | 5 |" in out
    with pytest.raises(FileNotFoundError, match="timing CSV missing"):
        timing.main([str(tmp_path / "none.csv")])
