"""Rule synthesize: M-round synthesis of one shard (resumable from its checkpoint folder)."""

from instruct_pt.common import set_torch_threads, setup_logging
from instruct_pt.training.jobs import finish_checkpoints, keep_finished_checkpoints, start_heartbeat

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.synthesis.multi_round import synthesize_shard  # noqa: E402

if __name__ == "__main__":  # the vLLM engine spawns worker processes
    start_heartbeat(snakemake.log[0])
    synthesize_shard(
        snakemake.input.shard,
        snakemake.input.synthesizer,
        snakemake.output[0],
        rounds=snakemake.params.rounds,
        engine_cfg=snakemake.params.engine,
        max_new_tokens=snakemake.params.max_new_tokens,
        max_model_len=snakemake.params.max_model_len,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        seed=snakemake.params.seed,
    )
    # Only now, with the shard written: a job killed before this line resumes from them.
    finish_checkpoints(
        snakemake.params.checkpoint_dir,
        snakemake.output,
        keep_finished_checkpoints(snakemake.config),
    )
