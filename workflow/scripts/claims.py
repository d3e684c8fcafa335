"""Rule report_claims: the paper's claims on this run (effect, interval, verdict) and the numbers
behind them; the bootstrap reads the per-document items beside the result JSONs."""

from instruct_pt.common import setup_logging
from instruct_pt.reports.claims import default_claims_path, score_claims

setup_logging(snakemake.log[0])
score_claims(
    snakemake.params.tables,
    default_claims_path(),
    snakemake.output.json,
    snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
    seed=snakemake.params.seed,
)
