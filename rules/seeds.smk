# The miniature over several world seeds (`make demo-seeds`): each seed is a run of its own,
# {run}-s{seed} ({run} itself for the config's own world seed: `make demo`'s run is reused), built
# first; this rule only aggregates their report CSVs into
# paper_figures/{run}-seeds/ (mean [95% CI] tables, figures with error bars, the claims
# scorecard over the seeds). Seeds: config key `seeds` (default 7, 11, 13).
from instruct_pt.reports import seeds as seeds_mod  # noqa: E402

SEEDS = seeds_mod.parse_seeds(config.get("seeds", list(seeds_mod.DEFAULT_SEEDS)))
SEED_RUNS = [seeds_mod.seed_run(RUN, s, seeds_mod.home_seed(config)) for s in SEEDS]
SEEDS_DIR = f"paper_figures/{seeds_mod.seeds_run(RUN)}"


rule seeds_report:
    input:
        csvs=expand(
            "paper_figures/{seed_run}/{name}.csv",
            seed_run=SEED_RUNS,
            name=REPORTS + FIGURES,
        ),
        overlays=expand("results/{seed_run}/world_seed.yaml", seed_run=SEED_RUNS),
    output:
        expand(f"{SEEDS_DIR}/{{name}}.{{ext}}", name=REPORTS, ext=["csv", "md"])
        + expand(
            f"{SEEDS_DIR}/{{name}}.{{ext}}",
            name=FIGURES,
            ext=["csv", "md", "png", "pdf"],
        )
        + expand(f"{SEEDS_DIR}/claims.{{ext}}", ext=["json", "md"]),
    log:
        f"logs/{seeds_mod.seeds_run(RUN)}/seeds_report.log",
    benchmark:
        f"benchmarks/{seeds_mod.seeds_run(RUN)}/seeds_report.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        tables={
            name: [f"paper_figures/{r}/{name}.csv" for r in SEED_RUNS]
            for name in REPORTS + FIGURES
        },
        seeds=SEEDS,
        out_dir=lambda wc, output: str(Path(output[0]).parent),
        run=seeds_mod.seeds_run(RUN),
        scale=lambda wc: config["scale"],
        seed=config["seed"],
    script:
        "../workflow/scripts/seeds_report.py"
