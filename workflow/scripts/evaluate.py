"""Rule evaluate: one model on one evaluation setting through lm-eval; one JSON per task."""

from instruct_pt.common import set_torch_threads, setup_logging
from instruct_pt.training.jobs import start_heartbeat

setup_logging(snakemake.log[0])
start_heartbeat(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.evaluation.runner import evaluate  # noqa: E402

setting = snakemake.params.setting
evaluate(
    snakemake.params.model_path,
    snakemake.input.suite,
    snakemake.output[0],
    model_name=snakemake.wildcards.model,
    suite=setting["suite"],
    batch_size=snakemake.params.batch_size,
    num_fewshot=setting.get("num_fewshot"),
    tasks=setting.get("tasks"),
    limit=setting.get("limit"),
    add_bos_token=snakemake.params.add_bos_token,
    seed=snakemake.params.seed,
    dtype=snakemake.params.dtype,
    device="auto",  # CUDA when the job got GPUs and CUDA is available, else the CPU
    gpus=snakemake.resources.gpu,  # > 1: the model is split over the job's GPUs
)
