"""Rule evaluate_synthesizer (Table 5): base model vs synthesizer on held-out contexts."""

from instruct_pt.common import set_torch_threads, setup_logging

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.synthesizer_eval import evaluate_synthesizer  # noqa: E402

if __name__ == "__main__":  # the vLLM engine spawns worker processes
    evaluate_synthesizer(
        {"base": snakemake.input.base, "synthesizer": snakemake.input.synthesizer},
        snakemake.input.heldout,
        snakemake.output[0],
        n_examples=snakemake.params.n_examples,
        shots=snakemake.params.shots,
        engine_cfg=snakemake.params.engine,
        max_new_tokens=snakemake.params.max_new_tokens,
        max_model_len=snakemake.params.max_model_len,
        seed=snakemake.params.seed,
    )
