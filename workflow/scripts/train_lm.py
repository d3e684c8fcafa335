"""Rules pretrain_from_scratch and continual_pretrain: next-token pre-training on packed data,
from scratch (params.arch: Vanilla / Mix / Instruct PT of a Mistral model) or continual from
input.base (domain-adaptive continual pre-training)."""

from instruct_pt.common import setup_logging
from instruct_pt.training.jobs import finish_checkpoints, keep_finished_checkpoints, start_heartbeat
from instruct_pt.training.launch import launch

setup_logging(snakemake.log[0])
start_heartbeat(snakemake.log[0])
launch(
    "pretrain",
    dict(
        packed_dir=snakemake.input.packed,
        out_dir=snakemake.output[0],
        tokenizer_dir=snakemake.input.tokenizer,
        train=snakemake.params.train,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        seed=snakemake.params.seed,
        arch=snakemake.params.get("arch"),
        init_from=snakemake.input.get("base"),
        threads=snakemake.threads,
    ),
    nproc=snakemake.resources.gpu,
)
# Only now, with every output written: a job killed before this line resumes from them.
finish_checkpoints(
    snakemake.params.checkpoint_dir, snakemake.output, keep_finished_checkpoints(snakemake.config)
)
