"""Rule evaluate_synthesizer (Table 5): base model vs synthesizer, scored from their generations."""

from instruct_pt.common import setup_logging

setup_logging(snakemake.log[0])

from instruct_pt.analysis.synthesizer_eval import score_synthesizer  # noqa: E402

score_synthesizer(
    {"base": snakemake.input.base, "synthesizer": snakemake.input.synthesizer},
    snakemake.input.heldout,
    snakemake.output[0],
    n_examples=snakemake.params.n_examples,
    shots=snakemake.params.shots,
    max_new_tokens=snakemake.params.max_new_tokens,
    max_model_len=snakemake.params.max_model_len,
    seed=snakemake.params.seed,
)
