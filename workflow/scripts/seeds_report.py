"""Rule seeds_report: the per-seed runs' tables, figures and claims aggregated over world seeds."""

from instruct_pt.common import setup_logging
from instruct_pt.reports.claims import default_claims_path
from instruct_pt.reports.seeds import check_world_seeds, seeds_report

setup_logging(snakemake.log[0])
check_world_seeds(snakemake.input.overlays, snakemake.params.seeds)
seeds_report(
    snakemake.params.tables,
    snakemake.params.seeds,
    snakemake.params.out_dir,
    run=snakemake.params.run,
    scale=snakemake.params.scale,
    claims_path=default_claims_path(),
    seed=snakemake.params.seed,
)
