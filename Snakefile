# Instruction Pre-Training (Cheng et al., EMNLP 2024): the whole paper as one workflow.
# Paper scale:  snakemake --cores all
# Miniature:    snakemake --cores 2 --configfile presets/tiny.yaml
# One table:    snakemake --cores all table3
# The plan:     snakemake --cores 1 plan   (GPUs, memory, GPU-hours, disk of every job; runs nothing)
# The authors' released models beside the paper's numbers (no training): snakemake --cores all released
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/prefetch.smk"
include: "rules/data.smk"
include: "rules/synthesizer.smk"
include: "rules/synthesis.smk"
include: "rules/mixtures.smk"
include: "rules/base_models.smk"
include: "rules/pretrain.smk"
include: "rules/continual_pretrain.smk"
include: "rules/ablations.smk"
include: "rules/instruction_tuning.smk"
include: "rules/ceilings.smk"
include: "rules/evaluation.smk"
include: "rules/analysis.smk"
include: "rules/reports.smk"
include: "rules/released.smk"
include: "rules/plan.smk"
include: "rules/seeds.smk"
include: "rules/timing.smk"


# ------------------------------------------------------------------ targets users ask for


rule all:
    default_target: True
    input:
        report_files(),
        TIMING_FILES,
        html_pages(),


rule paper_figures:
    input:
        report_files(),
        TIMING_FILES,
        html_pages(),


rule table1:
    input:
        report_target("table1"),


rule table2:
    input:
        report_target("table2"),


rule table3:
    input:
        report_target("table3"),


rule table4:
    input:
        report_target("table4"),


rule table5:
    input:
        report_target("table5"),


rule table6:
    input:
        report_target("table6"),


rule table9:
    input:
        report_target("table9"),


rule figure4:
    input:
        report_target("figure4"),


rule figure6:
    input:
        report_target("figure6"),


rule claims:
    input:
        report_target("claims"),


# The report's HTML pages of a finished run (`make report`, then `snakemake --report`).
rule report_pages:
    input:
        html_pages(),


# Several world seeds aggregated (`make demo-seeds` builds the runs {run}-s{seed} first).
rule paper_figures_seeds:
    input:
        rules.seeds_report.output,
        rules.report_timing_seeds.output,


rule ablation_wo_corpora:
    input:
        ablation_target("wo_corpora"),


rule ablation_rule_based:
    input:
        ablation_target("rule_based"),


rule ablation_one_shot:
    input:
        ablation_target("one_shot"),


# The authors' released checkpoints evaluated beside the paper's numbers (no training).
rule released:
    input:
        expand("paper_figures/{run}/released.{ext}", run=RUN, ext=["csv", "md"]),
