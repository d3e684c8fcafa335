"""Rules report_timing / report_timing_seeds: time per stage, rule and job from the benchmark
files of one run, or of each world seed's run and the aggregate."""

from instruct_pt.common import setup_logging
from instruct_pt.reports.timing import collect, write_report, write_runs_report

setup_logging(snakemake.log[0])
if "bench_dirs" in snakemake.params.keys():
    write_runs_report(
        snakemake.params.bench_dirs,
        snakemake.output.csv,
        snakemake.output.md,
        title=snakemake.params.title,
    )
else:
    jobs, dropped = collect(snakemake.params.bench_dir, snakemake.wildcards.run)
    write_report(
        jobs,
        dropped,
        snakemake.output.csv,
        snakemake.output.md,
        run=snakemake.wildcards.run,
        bench_dir=snakemake.params.bench_dir,
    )
