"""Rule base_model: fetch hub weights (paper scale) or pre-train a stand-in (miniature)."""

from instruct_pt.common import set_torch_threads, setup_logging

setup_logging(snakemake.log[0])
set_torch_threads(snakemake.threads)

from instruct_pt.base_models import prepare_base_model  # noqa: E402

prepare_base_model(
    snakemake.params.spec,
    snakemake.output[0],
    packed_dir=snakemake.input.get("packed"),
    tokenizer_dir=snakemake.input.get("tokenizer"),
    train=snakemake.params.train,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
