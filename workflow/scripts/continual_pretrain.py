"""Rule continual_pretrain: domain-adaptive continual pre-training from the base model."""

from instruct_pt.common import set_torch_threads, setup_logging

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.training import pretrain  # noqa: E402

pretrain(
    snakemake.input.packed,
    snakemake.output[0],
    snakemake.input.tokenizer,
    snakemake.params.train,
    snakemake.params.checkpoint_dir,
    snakemake.params.seed,
    init_from=snakemake.input.base,
    threads=snakemake.threads,
)
