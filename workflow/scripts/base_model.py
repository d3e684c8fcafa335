"""Rule base_model: fetch hub weights (paper scale) or pre-train a stand-in (miniature)."""

from instruct_pt.common import set_torch_threads, setup_logging
from instruct_pt.training.jobs import finish_checkpoints, keep_finished_checkpoints, start_heartbeat

setup_logging(snakemake.log[0])
start_heartbeat(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.training.base_models import prepare_base_model  # noqa: E402

prepare_base_model(
    snakemake.params.spec,
    snakemake.output[0],
    packed_dir=snakemake.input.get("packed"),
    tokenizer_dir=snakemake.input.get("tokenizer"),
    train=snakemake.params.train,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    twin_dir=snakemake.input.get("twin"),
)
# Only now, with every output written: a job killed before this line resumes from them.
finish_checkpoints(
    snakemake.params.checkpoint_dir, snakemake.output, keep_finished_checkpoints(snakemake.config)
)
