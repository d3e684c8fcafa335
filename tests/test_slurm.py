"""A real Slurm (issue #12): the smoke preset's synthesizer branch submitted through
profiles/slurm to a single-node cluster without accounting (`make check-slurm` starts one with
.ci/slurm-up.sh), its training cancelled once with scancel mid-run, and the outputs compared
byte for byte with the local smoke run's.

Runs only with IPT_SLURM=1 (`make check-slurm`, after the unit tests; a missing or broken cluster
then fails the test rather than skipping it); otherwise skipped, so that the unit tests' time
does not depend on whether a cluster happens to be up. The branch is the 14-job DAG of
results/<run>/synthesis/biomedicine/model/shard0.jsonl (data, tokenizer, the synthesizer's base
stand-in, the synthesizer, one synthesized shard; the target `make check-vllm` builds too), not
the whole 148-job DAG: every Slurm job starts Snakemake again (~4 CPU-s) and waits for a status
check, which on 2 cores would put the whole DAG far beyond CI's time. The local reference is
the test suite's smoke run (tests/test_workflow.py, run pytest-smoke): the same target is
requested there first, which costs nothing after that test and builds it locally otherwise."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
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
RUN = "pytest-slurm"
REFERENCE = "pytest-smoke"  # tests/test_workflow.py's smoke run
TARGET = "results/{run}/synthesis/biomedicine/model/shard0.jsonl"
TRAINING = "finetune_synthesizer"  # the job cancelled once (245 steps, a checkpoint every 10)
CHECKPOINTS = "results/{run}/checkpoints/synthesizer"
SLURM = ("--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-ci")
SMOKE = ("--configfile", "presets/smoke.yaml")
#: What may differ between two runs of the same job: this attempt's numbers (resumed step,
#: tokens/s, wall times; training.RUN_KEYS) and per-step timings. Everything else is compared.
ATTEMPT_FILES = {"train_run.json", "timing.jsonl"}
#: Rules whose jobs profiles/slurm sends to its `gpu` partition (the others: `cpu`).
GPU_RULES = {"base_model", "finetune_synthesizer", "synthesize"}
TIMEOUT_S = 1500  # a guard against hangs (~7 min on 2 cores), not a budget


def _cluster_problem() -> str | None:
    if not shutil.which("sinfo"):
        return "sinfo not found"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a %t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo timed out"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip()[:200]}"
    rows = [line.split() for line in out.stdout.splitlines()]
    parts = {r[0].rstrip("*") for r in rows if r[1] == "up" and r[2] in ("idle", "mix", "alloc")}
    missing = {"cpu", "gpu"} - parts
    if missing:
        return f"no usable partition {sorted(missing)} (profiles/slurm's): sinfo says {rows}"
    return None


_PROBLEM = _cluster_problem()
if os.environ.get("IPT_SLURM") != "1":
    pytest.skip(
        f"IPT_SLURM is not 1 (cluster here: {_PROBLEM or 'usable'}); `make check-slurm` starts a "
        "single-node one (.ci/slurm-up.sh, root) and runs this test with IPT_SLURM=1",
        allow_module_level=True,
    )


def snakemake(*args, timeout=1800):
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def squeue(*args) -> list[list[str]]:
    """Rows of `squeue -h -o %i|%k|%T|%P` (job id, comment = rule_<name>..., state, partition)."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%k|%T|%P", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]


def rule_of(comment: str) -> str:
    """The rule of a job from the executor's comment: rule_<name>[_wildcards_<values>]."""
    return re.match(r"rule_(\w+?)(?:_wildcards_|$)", comment).group(1)


def checkpoint_steps(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name[4:]) for p in folder.glob("step*") if p.name[4:].isdigit())


def compared_files(run_dir: Path) -> list[Path]:
    """Every file of a run's results (relative paths) but the per-attempt ones."""
    return sorted(
        p.relative_to(run_dir)
        for p in run_dir.rglob("*")
        if p.is_file() and p.name not in ATTEMPT_FILES
    )


@pytest.mark.slow
def test_smoke_branch_on_slurm_survives_a_scancel_and_equals_the_local_run(tmp_path):
    assert _PROBLEM is None, f"IPT_SLURM=1 but the cluster is not usable: {_PROBLEM}"
    # The local reference (nothing to do when tests/test_workflow.py's smoke run is there).
    ref = snakemake(
        TARGET.format(run=REFERENCE), "--cores", "2", *SMOKE, "--config", f"run={REFERENCE}"
    )
    assert ref.returncode == 0, (ref.stdout + ref.stderr)[-4000:]

    for folder in ("results", "logs", "benchmarks"):
        shutil.rmtree(ROOT / folder / RUN, ignore_errors=True)
    log_path = tmp_path / "snakemake.log"
    checkpoints = ROOT / CHECKPOINTS.format(run=RUN)
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), TARGET.format(run=RUN), *SLURM, *SMOKE, "--config",
             f"run={RUN}"],
            cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        run_id, cancelled = None, None  # (job id, checkpoint step seen) of the scancel
        seen = {}  # job id -> (rule, last state seen, partition); squeue forgets after MinJobAge
        try:
            while proc.poll() is None:
                assert time.monotonic() - started < TIMEOUT_S, "the Slurm run hangs"
                time.sleep(2)
                if run_id is None:
                    found = re.search(r"SLURM run ID: (\S+)", log_path.read_text())
                    run_id = found and found.group(1)
                    continue
                for job, comment, state, partition in squeue("--name", run_id, "--states", "all"):
                    seen[job] = (rule_of(comment), state, partition)
                if cancelled is not None:
                    continue
                # the training, running, with a checkpoint written: cancel it once
                steps = checkpoint_steps(checkpoints)
                running = [j for j, (r, st, _) in seen.items() if r == TRAINING and st == "RUNNING"]
                if steps and running:
                    subprocess.run(["scancel", running[0]], check=True, timeout=30)
                    cancelled = (running[0], steps[-1])
            proc.wait()
        finally:
            if proc.poll() is None:  # a failed assertion: stop Snakemake and its jobs
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if run_id:
                    subprocess.run(["scancel", "--name", run_id], timeout=30)
        if run_id:
            for job, comment, state, partition in squeue("--name", run_id, "--states", "all"):
                seen[job] = (rule_of(comment), state, partition)
    out = log_path.read_text()
    wall = time.monotonic() - started
    assert proc.returncode == 0, f"Slurm run failed after {wall:.0f} s:\n{out[-6000:]}"
    assert cancelled, f"{TRAINING} never ran with a checkpoint written:\n{out[-3000:]}"

    # Slurm saw the cancel, Snakemake retried the job (profiles/slurm: retries 2)
    job_id, step_seen = cancelled
    assert re.search(rf"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED", out), out
    training = sorted(st for r, st, _ in seen.values() if r == TRAINING)
    assert training == ["CANCELLED", "COMPLETED"], seen
    # 14 jobs and the retry, each sent once; none failed in another way
    assert len(seen) == 15, seen
    assert {st for _, st, _ in seen.values()} == {"COMPLETED", "CANCELLED"}, seen
    for rule, _, partition in seen.values():  # GPU rules to the gpu partition, the rest to cpu
        assert partition == ("gpu" if rule in GPU_RULES else "cpu"), (rule, partition)

    # ... and the retry resumed from the checkpoint, which is gone once the job succeeded
    results, reference = ROOT / "results" / RUN, ROOT / "results" / REFERENCE
    attempt = json.loads((results / "models" / "synthesizer" / "train_run.json").read_text())
    assert attempt["resumed_from_step"] >= step_seen > 0, (attempt, step_seen)
    assert not checkpoints.exists(), "checkpoints left after the job succeeded"

    # The outputs are the local run's, byte for byte (the resumed model and its logs included)
    files = compared_files(results)
    names = {p.as_posix() for p in files}
    assert {"models/synthesizer/model.safetensors", "models/synthesizer/metrics.jsonl"} <= names
    assert "synthesis/biomedicine/model/shard0.jsonl" in names
    differ = [
        p.as_posix()
        for p in files
        if not (reference / p).is_file()
        or (results / p).read_bytes() != (reference / p).read_bytes()
    ]
    assert not differ, f"differ from results/{REFERENCE}: {differ}"
    print(f"slurm branch: {len(files)} files equal, cancelled at step {step_seen}, "
          f"resumed from {attempt['resumed_from_step']}, {wall:.0f} s")  # fmt: skip
