"""Instruction Pre-Training (Cheng et al., EMNLP 2024) as a package: the logic under the workflow.

Subpackages follow the pipeline: data, synthesis, training, evaluation, analysis, reports; the
miniature world is world; design holds the experimental design. docs/architecture.md maps them.
"""
