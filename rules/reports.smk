# Every table and figure of the paper that holds numbers, with the paper's values beside ours,
# and the claims scorecard. Reports read only result files: `snakemake paper_figures` rebuilds
# them from existing results without retraining.
# `snakemake --report paper_figures/<run>/report.html` (make report) gathers them into one HTML
# file: the outputs marked report() below, with the captions of workflow/report/.


report: "../workflow/report/workflow.rst"


rule report_table1:
    input:
        eval_dirs(design.scratch_models(config), "general"),
        ceiling_eval_dirs(["general"]),
    output:
        csv="paper_figures/{run}/table1.csv",
        md="paper_figures/{run}/table1.md",
    log:
        "logs/{run}/reports/table1.log",
    benchmark:
        "benchmarks/{run}/reports/table1.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table1",
        kwargs={
            "eval_dir": f"results/{RUN}/eval",
            "rows": table1_rows(),
            "ceiling": ceiling_row(["general"]),
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table2:
    input:
        eval_dirs([row["model"] for row in table2_rows()], "general"),
        [row["model_dir"] for row in table2_rows() if "model_dir" in row],
        ceiling_eval_dirs(["general"]),
    output:
        csv="paper_figures/{run}/table2.csv",
        md="paper_figures/{run}/table2.md",
    log:
        "logs/{run}/reports/table2.log",
    benchmark:
        "benchmarks/{run}/reports/table2.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table2",
        kwargs={
            "eval_dir": f"results/{RUN}/eval",
            "rows": table2_rows(),
            "ceiling": ceiling_row(["general"]),
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table3:
    input:
        rows_eval_dirs(table3_rows()),
        ceiling_eval_dirs(DOMAINS),
    output:
        csv="paper_figures/{run}/table3.csv",
        md="paper_figures/{run}/table3.md",
    log:
        "logs/{run}/reports/table3.log",
    benchmark:
        "benchmarks/{run}/reports/table3.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table3",
        kwargs={
            "eval_dir": f"results/{RUN}/eval",
            "rows": table3_rows(),
            "ceiling": ceiling_row(DOMAINS),
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table4:
    input:
        rows_eval_dirs(table4_rows()),
        ceiling_eval_dirs(DOMAINS),
    output:
        csv="paper_figures/{run}/table4.csv",
        md="paper_figures/{run}/table4.md",
    log:
        "logs/{run}/reports/table4.log",
    benchmark:
        "benchmarks/{run}/reports/table4.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table4",
        kwargs={
            "eval_dir": f"results/{RUN}/eval",
            "rows": table4_rows(),
            "ceiling": ceiling_row(DOMAINS),
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table5:
    input:
        "results/{run}/synthesizer/eval.json",
    output:
        csv="paper_figures/{run}/table5.csv",
        md="paper_figures/{run}/table5.md",
    log:
        "logs/{run}/reports/table5.log",
    benchmark:
        "benchmarks/{run}/reports/table5.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table5",
        kwargs={"synth_eval_json": f"results/{RUN}/synthesizer/eval.json"},
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table6:
    input:
        expand("results/{{run}}/analysis/quality/{corpus}.json", corpus=design.CORPORA),
    output:
        csv="paper_figures/{run}/table6.csv",
        md="paper_figures/{run}/table6.md",
    log:
        "logs/{run}/reports/table6.log",
    benchmark:
        "benchmarks/{run}/reports/table6.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table6",
        kwargs={
            "quality_jsons": {
                c: f"results/{RUN}/analysis/quality/{c}.json" for c in design.CORPORA
            }
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_table9:
    input:
        "results/{run}/analysis/contamination.json",
    output:
        csv="paper_figures/{run}/table9.csv",
        md="paper_figures/{run}/table9.md",
    log:
        "logs/{run}/reports/table9.log",
    benchmark:
        "benchmarks/{run}/reports/table9.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="table9",
        kwargs={"contamination_json": f"results/{RUN}/analysis/contamination.json"},
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_figure4:
    input:
        figure4_eval_dirs(),
    output:
        csv="paper_figures/{run}/figure4.csv",
        md="paper_figures/{run}/figure4.md",
        png=report(
            "paper_figures/{run}/figure4.png",
            caption="../workflow/report/figure4.rst",
            category="3. Figures",
            subcategory="Figure 4",
        ),
        pdf="paper_figures/{run}/figure4.pdf",
    log:
        "logs/{run}/reports/figure4.log",
    benchmark:
        "benchmarks/{run}/reports/figure4.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="figure4",
        kwargs={
            "eval_dir": f"results/{RUN}/eval",
            "curves": figure4_curves(),
            "settings": {"zero-shot": "probe_zeroshot", "few-shot": "probe_fewshot"},
            "task": probe_task(),
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_figure6:
    input:
        expand("results/{{run}}/analysis/quality/{corpus}.json", corpus=design.CORPORA),
    output:
        csv="paper_figures/{run}/figure6.csv",
        md="paper_figures/{run}/figure6.md",
        png=report(
            "paper_figures/{run}/figure6.png",
            caption="../workflow/report/figure6.rst",
            category="3. Figures",
            subcategory="Figure 6",
        ),
        pdf="paper_figures/{run}/figure6.pdf",
    log:
        "logs/{run}/reports/figure6.log",
    benchmark:
        "benchmarks/{run}/reports/figure6.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        report="figure6",
        kwargs={
            "quality_jsons": {
                c: f"results/{RUN}/analysis/quality/{c}.json" for c in design.CORPORA
            },
        },
        scale=lambda wc: config["scale"],
    script:
        "../workflow/scripts/report.py"


rule report_claims:
    input:
        expand(
            "paper_figures/{{run}}/{name}.csv",
            name=REPORTS + FIGURES,
        ),
    output:
        json="paper_figures/{run}/claims.json",
        md="paper_figures/{run}/claims.md",
    log:
        "logs/{run}/reports/claims.log",
    benchmark:
        "benchmarks/{run}/reports/claims.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        tables={name: f"paper_figures/{RUN}/{name}.csv" for name in REPORTS + FIGURES},
        scale=lambda wc: config["scale"],
        seed=config["seed"],
    script:
        "../workflow/scripts/claims.py"


# Each Markdown file above (and the timing report) as a standalone HTML page, figures embedded:
# what the Snakemake report shows in the browser (it offers Markdown only as a download).
rule report_html:
    input:
        md=expand(
            "paper_figures/{{run}}/{name}.md",
            name=REPORTS + FIGURES + ["claims", "timing"],
        ),
        png=expand("paper_figures/{{run}}/{name}.png", name=FIGURES),
    output:
        claims=report(
            "paper_figures/{run}/html/claims.html",
            caption="../workflow/report/claims.rst",
            category="1. Claims scorecard",
        ),
        table1=report(
            "paper_figures/{run}/html/table1.html",
            caption="../workflow/report/table1.rst",
            category="2. Tables",
            subcategory="General (Tables 1-2)",
        ),
        table2=report(
            "paper_figures/{run}/html/table2.html",
            caption="../workflow/report/table2.rst",
            category="2. Tables",
            subcategory="General (Tables 1-2)",
        ),
        table3=report(
            "paper_figures/{run}/html/table3.html",
            caption="../workflow/report/table3.rst",
            category="2. Tables",
            subcategory="Domains (Tables 3-4)",
        ),
        table4=report(
            "paper_figures/{run}/html/table4.html",
            caption="../workflow/report/table4.rst",
            category="2. Tables",
            subcategory="Domains (Tables 3-4)",
        ),
        table5=report(
            "paper_figures/{run}/html/table5.html",
            caption="../workflow/report/table5.rst",
            category="2. Tables",
            subcategory="Synthesizer and data (Tables 5, 6, 9)",
        ),
        table6=report(
            "paper_figures/{run}/html/table6.html",
            caption="../workflow/report/table6.rst",
            category="2. Tables",
            subcategory="Synthesizer and data (Tables 5, 6, 9)",
        ),
        table9=report(
            "paper_figures/{run}/html/table9.html",
            caption="../workflow/report/table9.rst",
            category="2. Tables",
            subcategory="Synthesizer and data (Tables 5, 6, 9)",
        ),
        figure4=report(
            "paper_figures/{run}/html/figure4.html",
            caption="../workflow/report/figure4_data.rst",
            category="3. Figures",
            subcategory="Figure 4",
        ),
        figure6=report(
            "paper_figures/{run}/html/figure6.html",
            caption="../workflow/report/figure6_data.rst",
            category="3. Figures",
            subcategory="Figure 6",
        ),
        timing=report(
            "paper_figures/{run}/html/timing.html",
            caption="../workflow/report/timing.rst",
            category="4. Run",
        ),
        config=report(
            "paper_figures/{run}/html/config.html",
            caption="../workflow/report/config.rst",
            category="4. Run",
        ),
    log:
        "logs/{run}/reports/html.log",
    benchmark:
        "benchmarks/{run}/reports/html.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    params:
        config=config,
        configfiles=[str(f) for f in workflow.configfiles],
    script:
        "../workflow/scripts/report_html.py"
