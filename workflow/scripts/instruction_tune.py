"""Rule instruction_tune (Fig. 4): instruction tuning with a checkpoint at each save step."""

from instruct_pt.common import set_torch_threads, setup_logging

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.training import instruction_tune  # noqa: E402

instruction_tune(
    snakemake.input.data,
    snakemake.input.base,
    snakemake.output[0],
    snakemake.params.train,
    snakemake.params.save_steps,
    snakemake.params.checkpoint_dir,
    snakemake.params.seed,
    seq_len=snakemake.params.seq_len,
    threads=snakemake.threads,
)
