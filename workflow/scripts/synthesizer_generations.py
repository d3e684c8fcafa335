"""Rule synthesizer_generations (Table 5): one model's generations for the held-out probes.

One job per model, so each engine's GPU memory goes with its process (vLLM keeps it until exit).
"""

from instruct_pt.common import set_torch_threads, setup_logging
from instruct_pt.training.jobs import start_heartbeat

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.analysis.synthesizer_eval import synthesizer_generations  # noqa: E402

if __name__ == "__main__":  # the vLLM engine spawns worker processes
    start_heartbeat(snakemake.log[0])
    synthesizer_generations(
        snakemake.wildcards.which,
        snakemake.input.model,
        snakemake.input.heldout,
        snakemake.output[0],
        n_examples=snakemake.params.n_examples,
        shots=snakemake.params.shots,
        engine_cfg=snakemake.params.engine,
        max_new_tokens=snakemake.params.max_new_tokens,
        max_model_len=snakemake.params.max_model_len,
        seed=snakemake.params.seed,
        gpus=snakemake.resources.gpu,
    )
