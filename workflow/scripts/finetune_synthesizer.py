"""Rule finetune_synthesizer: few-shot sequences, loss only on instruction-response pairs."""

from instruct_pt.common import set_torch_threads, setup_logging

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.training import finetune_synthesizer  # noqa: E402

finetune_synthesizer(
    snakemake.input.data,
    snakemake.input.base,
    snakemake.output[0],
    snakemake.params.train,
    snakemake.params.checkpoint_dir,
    snakemake.params.seed,
    max_per_dataset=snakemake.params.max_per_dataset,
    seq_len=snakemake.params.seq_len,
    threads=snakemake.threads,
)
