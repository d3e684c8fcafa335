"""Rule ceiling_tune: a compared model fine-tuned on its suite's task-format training split."""

from instruct_pt.common import setup_logging
from instruct_pt.jobs import finish_checkpoints, keep_finished_checkpoints, start_heartbeat
from instruct_pt.launch import launch

setup_logging(snakemake.log[0])
start_heartbeat(snakemake.log[0])
launch(
    "ceiling_tune",
    dict(
        train_path=snakemake.input.data,
        base_model_dir=snakemake.input.base,
        out_dir=snakemake.output[0],
        train=snakemake.params.train,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        seed=snakemake.params.seed,
        seq_len=snakemake.params.seq_len,
        threads=snakemake.threads,
    ),
    nproc=snakemake.resources.gpu,
)
# Only now, with every output written: a job killed before this line resumes from them.
finish_checkpoints(
    snakemake.params.checkpoint_dir, snakemake.output, keep_finished_checkpoints(snakemake.config)
)
