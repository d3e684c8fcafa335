"""Rule contamination (paper Table 9): n-gram overlap of synthesized pairs with eval sets."""

from pathlib import Path

from instruct_pt.common import setup_logging
from instruct_pt.quality import contamination

setup_logging(snakemake.log[0])
eval_files = {
    f"{Path(d).name}/{f.stem}": str(f)
    for d in snakemake.input.suites
    for f in sorted(Path(d).glob("*.jsonl"))
}
contamination(
    list(snakemake.input.synthesized), eval_files, snakemake.output[0], n=snakemake.params.ngram
)
