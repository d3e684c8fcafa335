"""The workflow as a whole: the paper-scale DAG plans every experiment offline, lint and format
are clean, the smoke preset runs the whole DAG for real, and changing one ablation's parameter
plans only that ablation and what depends on it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "TOKENIZERS_PARALLELISM": "false",
}

#: Every experiment of the paper is a rule (issue #2's list).
PAPER_RULES = {
    "prepare_dataset",
    "tokenizer",
    "eval_tasks",
    "fetch_hub",
    "base_model",
    "split_synthesizer_data",
    "finetune_synthesizer",
    "synthesizer_generations",
    "evaluate_synthesizer",
    "split_corpus",
    "synthesize",
    "rule_based_synthesis",
    "templify",
    "templify_ft_collection",
    "mixture",
    "pack",
    "pretrain_from_scratch",
    "continual_pretrain",
    "instruction_tune",
    "evaluate",
    "data_quality",
    "contamination",
    "report_table1",
    "report_table2",
    "report_table3",
    "report_table4",
    "report_table5",
    "report_table6",
    "report_table9",
    "report_figure4",
    "report_figure6",
    "report_claims",
}


def snakemake(*args, timeout=600):
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def planned_jobs(result) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    text = result.stdout + result.stderr
    assert "Job stats" in text or "Nothing to be done" in text, text[-3000:]
    if "Nothing to be done" in text and "Job stats" not in text:
        return {}
    block = text.split("Job stats:")[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_paper_scale_dry_run_plans_every_experiment():
    result = snakemake("-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result)
    missing = PAPER_RULES - set(jobs)
    assert not missing, f"rules without jobs at paper scale: {sorted(missing)}"
    # Vanilla/Mix/Instruct at 500M + Vanilla/Instruct at 1.3B; 2 domains x (2 + 3 ablations).
    assert jobs["pretrain_from_scratch"] == 5
    assert jobs["continual_pretrain"] == 10
    assert jobs["instruction_tune"] == 2
    # The README's job-count table is this dry run's.
    readme = (ROOT / "README.md").read_text()
    section = readme.split("Jobs per rule in the paper-scale dry run")[1].split("Total:")[0]
    documented = dict(re.findall(r"\| `([a-z_]+)` \| (\d+) \|", section))
    for rule in PAPER_RULES - {r for r in PAPER_RULES if r.startswith("report_")}:
        assert int(documented[rule]) == jobs[rule], f"README job count of {rule} is stale"
    assert f"Total: {jobs['total']} jobs" in readme


def test_lint_and_format_are_clean():
    lint = snakemake("--lint")
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr[-3000:]
    paths = ["src", "tests", "perf", "workflow/scripts"]
    for args in (["check"], ["format", "--check"]):
        ruff = subprocess.run(
            [str(BIN / "ruff"), *args, *paths], cwd=ROOT, capture_output=True, text=True
        )
        assert ruff.returncode == 0, f"ruff {' '.join(args)}:\n{ruff.stdout[-3000:]}"


def test_slurm_profile_plans_the_paper_scale_dag():
    result = snakemake("-n", "--profile", "profiles/slurm", "--quiet", "rules")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert planned_jobs(result)["pretrain_from_scratch"] == 5


def test_bad_config_value_fails_with_the_key_named():
    result = snakemake("-n", "--config", "seed=-3")
    assert result.returncode != 0
    assert "'seed'" in result.stderr + result.stdout


RUN = "pytest-smoke"  # its own run name: a fresh, complete run every time, beside the user's


@pytest.mark.slow
def test_smoke_preset_runs_the_whole_dag(tmp_path):
    for folder in ("results", "paper_figures", "logs", "benchmarks"):
        shutil.rmtree(ROOT / folder / RUN, ignore_errors=True)
    smoke = ("--configfile", "presets/smoke.yaml", "--config", f"run={RUN}")
    # alone ~13 min on 2 cores: the timeout guards against hangs, it is not a budget
    result = snakemake("--cores", "2", *smoke, timeout=2400)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    figures = ROOT / "paper_figures" / RUN
    for name in ["table1", "table2", "table3", "table4", "table5", "table6", "table9"]:
        assert (figures / f"{name}.csv").stat().st_size > 0
        assert (figures / f"{name}.md").stat().st_size > 0
    for name in ["figure4", "figure6"]:
        assert (figures / f"{name}.png").stat().st_size > 0
        assert (figures / f"{name}.pdf").stat().st_size > 0
    claims = json.loads((figures / "claims.json").read_text())
    assert claims["claims"], "the scorecard holds the paper's claims"
    # Per-(model, task) results come from lm-eval runs.
    results = list((ROOT / "results" / RUN / "eval").glob("*/*/*.json"))
    assert results
    rec = json.loads(results[0].read_text())
    assert rec["harness"].startswith("lm-eval")

    check_mixtures_and_budgets(ROOT / "results" / RUN, "smoke")

    # Rerunning one ablation: change its parameter, only its jobs (and tables) are planned.
    # (an overlay file, as a user would write: nested --config values reach Snakemake as strings)
    for override, expect in [
        ("ablations: {one_shot: {rounds: 2}}", "one_shot"),
        ("ablations: {wo_corpora: {include_context: true}}", "wo_corpora"),
        ("ablations: {rule_based: {seed: 7}}", "rule_based"),
    ]:
        overlay = tmp_path / f"{expect}.yaml"
        overlay.write_text(override + "\n")
        dry = snakemake(
            "-n", "--configfile", "presets/smoke.yaml", str(overlay), "--config", f"run={RUN}",
            "--quiet", "rules",
        )  # fmt: skip
        jobs = planned_jobs(dry)
        assert jobs, f"{override}: nothing planned"
        trained = {
            r for r in jobs if r in {"pretrain_from_scratch", "base_model", "instruction_tune"}
        }
        assert not trained, f"{override} reran unrelated training: {trained}"
        assert jobs.get("continual_pretrain") == 2, (override, jobs)  # one per domain
        assert jobs.get("evaluate") == 2, (override, jobs)
        assert "report_table1" not in jobs and "report_table3" not in jobs
        assert "report_table4" in jobs
        reasons = dry.stdout + dry.stderr
        assert expect in reasons or "params" in reasons


def check_mixtures_and_budgets(results: Path, preset: str) -> None:
    """The manifests hold the paper's proportions and every comparison trained on one budget.
    (Also usable on a finished tiny run: `check_mixtures_and_budgets(Path("results/tiny"), "tiny")`.)"""
    from instruct_pt import config as cfg
    from instruct_pt import design

    config = cfg.load_config(ROOT / "config.yaml", ROOT / "presets" / f"{preset}.yaml")
    lines = lambda p: sum(1 for _ in open(p, encoding="utf-8"))  # noqa: E731
    manifest = lambda tok, name: json.loads(  # noqa: E731
        (results / "mixtures" / tok / name / "manifest.json").read_text()
    )
    # Instruct PT: 1/5 of the raw texts converted, the other 4/5 kept raw.
    split = results / "synthesis" / "general" / "split"
    n_raw = lines(results / "data" / "raw_general.jsonl")
    converted = sum(lines(p) for p in split.glob("shard*.jsonl"))
    assert converted == round(config["synthesis"]["corpora"]["general"]["fraction"] * n_raw)
    assert converted + lines(split / "rest.jsonl") == n_raw
    # Mix and Instruct PT: the fine-tuning collection repeated x4.
    for variant in ("mix", "instruct"):
        ft = manifest("mistral", f"general-{variant}")["sources"]["ft_collection"]
        assert ft["repeat"] == config["pretrain"]["ft_repeat"] == 4
        assert ft["documents"] == 4 * ft["unique_documents"]
        # the miniature may mix only the collection's first ft_records records (docs/deviations.md)
        assert ft["head"] == config["pretrain"]["ft_records"]
        if ft["head"] is not None:
            assert ft["unique_documents"] == ft["head"] < ft["available_documents"]
        if preset == "tiny":  # the paper's proportions: collection x4 <= 3% of the tokens
            assert ft["tokens"] <= 0.03 * manifest("mistral", f"general-{variant}")["total_tokens"]
    # Domain mixtures: general instructions 1:1 by tokens with the domain corpus, whole documents.
    for domain in config["continual_pretrain"]["domains"]:
        for variant in design.CPT_VARIANTS:
            src = manifest("llama3", f"{domain}-{variant}")["sources"]
            corpus = sum(v["tokens"] for k, v in src.items() if k != "general_instructions")
            ins = src["general_instructions"]
            assert corpus <= ins["tokens"] < corpus + 1000, (domain, variant, corpus, ins)
    # Every variant of one comparison trained on the same token budget.
    trained = lambda model: json.loads(  # noqa: E731
        (results / "models" / model / "train_summary.json").read_text()
    )["tokens"]
    for group in (
        [f"scratch-{size}-{v}" for v in spec["variants"]]
        for size, spec in config["pretrain"]["sizes"].items()
    ):
        assert len({trained(m) for m in group}) == 1, group
    assert len({trained(m) for m in design.cpt_models(config, design.CPT_VARIANTS)}) == 1
