"""Rule report_claims: the paper's claims, held or not on this run, with the numbers behind them."""

from instruct_pt.claims import default_claims_path, score_claims
from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])
score_claims(
    snakemake.params.tables,
    default_claims_path(),
    snakemake.output.json,
    snakemake.output.md,
    run=snakemake.wildcards.run,
    scale=snakemake.params.scale,
)
