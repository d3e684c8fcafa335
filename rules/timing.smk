# Time per stage, rule and job (paper_figures/{run}/timing.{csv,md}) from the benchmark files of
# the jobs (benchmarks/{run}/): it reads whatever files exist and reruns nothing. Its inputs are
# the run's other report files, so it runs after every job it summarises (and again when one of
# them reran). Several world seeds: each seed's run and the aggregate, per seed and in total.


rule report_timing:
    input:
        report_files(),
    output:
        csv="paper_figures/{run}/timing.csv",
        md="paper_figures/{run}/timing.md",
    log:
        "logs/{run}/reports/timing.log",
    benchmark:
        "benchmarks/{run}/reports/timing.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        bench_dir="benchmarks/{run}",
    script:
        "../workflow/scripts/timing.py"


rule report_timing_seeds:
    input:
        rules.seeds_report.output,
    output:
        csv=f"{SEEDS_DIR}/timing.csv",
        md=f"{SEEDS_DIR}/timing.md",
    log:
        f"logs/{seeds_mod.seeds_run(RUN)}/timing.log",
    benchmark:
        f"benchmarks/{seeds_mod.seeds_run(RUN)}/timing_seeds.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        bench_dirs={
            r: f"benchmarks/{r}" for r in SEED_RUNS + [seeds_mod.seeds_run(RUN)]
        },
        title=f"Time per stage over world seeds {', '.join(map(str, SEEDS))} (`{seeds_mod.seeds_run(RUN)}`)",
    script:
        "../workflow/scripts/timing.py"


TIMING_FILES = expand("paper_figures/{run}/timing.{ext}", run=RUN, ext=["csv", "md"])
