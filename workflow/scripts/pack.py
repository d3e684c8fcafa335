"""Rule pack: tokenize a mixture and pack it into fixed-length sequences (memory-mapped)."""

from instruct_pt.common import setup_logging
from instruct_pt.data.packing import pack

setup_logging(snakemake.log[0])
pack(
    snakemake.input.texts,
    snakemake.input.tokenizer,
    snakemake.output[0],
    int(snakemake.wildcards.seq_len),
    snakemake.params.seed,
    num_workers=snakemake.threads,
)
