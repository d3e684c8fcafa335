"""`make report` on a run whose results are missing: it fails naming what is missing and plans
no job of any other rule than the report's (it never trains), checked with a dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _make_report(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "report", f"SNAKEMAKE={BIN / 'snakemake'} -n",
         *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_report_of_a_run_without_results_fails_naming_them_and_trains_nothing():
    run = f"pytest-no-results-{os.getpid()}"
    done = _make_report(f"RUN={run}", "PRESET=presets/tiny.yaml")
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Missing input files for rule report_" in text
    assert f"results/{run}/eval/" in text  # the missing results, named
    assert f"make report: no report of run '{run}'" in text and "it trains nothing" in text
    assert "Job stats" not in text  # no job planned: not a training job, not a report page
    assert not (ROOT / "results" / run).exists() and not (ROOT / "paper_figures" / run).exists()


def test_report_without_the_runs_config_file_says_so():
    done = _make_report("RUN=pytest-no-preset")
    assert done.returncode != 0
    assert "make report: no config file presets/pytest-no-preset.yaml" in done.stderr
    assert "Traceback" not in done.stderr
