"""Rules finetune_synthesizer (few-shot sequences, loss only on instruction-response pairs),
instruction_tune (Fig. 4: a model saved at each save step) and ceiling_tune (a compared model
tuned on its suite's task-format training split): the rule's name is the entry point of
`instruct_pt.training.stages`, and the rule's params are its keyword arguments."""

from instruct_pt.common import setup_logging
from instruct_pt.training.jobs import finish_checkpoints, keep_finished_checkpoints, start_heartbeat
from instruct_pt.training.launch import launch

setup_logging(snakemake.log[0])
start_heartbeat(snakemake.log[0])
launch(
    snakemake.rule,
    dict(
        train_path=snakemake.input.data,
        base_model_dir=snakemake.input.base,
        out_dir=snakemake.output[0],
        threads=snakemake.threads,
        **dict(snakemake.params.items()),
    ),
    nproc=snakemake.resources.gpu,
)
# Only now, with every output written: a job killed before this line resumes from them.
finish_checkpoints(
    snakemake.params.checkpoint_dir, snakemake.output, keep_finished_checkpoints(snakemake.config)
)
