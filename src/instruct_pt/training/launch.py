"""Run a training entry point on one process, or on N processes of this node under torchrun.

Snakemake rules ask for GPUs with `resources: gpu=N`; a `script:` rule is one process. `launch`
makes the N GPUs count: with N > 1 it starts `torchrun --standalone --nproc-per-node N` on this
module, whose processes call the same `instruct_pt.training.stages` function with the same
arguments (FSDP, one GPU each: see `training.distributed`). With N <= 1, or when already inside
torchrun, it calls the function directly. Multi-node runs start this module under `srun` themselves (README, "Slurm").
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile

from instruct_pt.common import DataError

log = logging.getLogger(__name__)

ENTRY_POINTS = ("pretrain", "finetune_synthesizer", "instruction_tune", "ceiling_tune")


def _call(entry: str, kwargs: dict):
    from instruct_pt.training import stages

    if entry not in ENTRY_POINTS:
        raise DataError(f"launch: unknown entry point {entry!r} (one of {', '.join(ENTRY_POINTS)})")
    return getattr(stages, entry)(**kwargs)


def launch(entry: str, kwargs: dict, nproc: int = 1, backend_env: dict | None = None):
    """`stages.<entry>(**kwargs)` on `nproc` local processes; returns its summary (rank 0)."""
    if nproc <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _call(entry, kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        args = os.path.join(tmp, "args.json")
        with open(args, "w", encoding="utf-8") as f:
            json.dump({"entry": entry, "kwargs": kwargs}, f)
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "instruct_pt.training.launch", args,
        ]  # fmt: skip
        log.info("launching %s on %d processes: %s", entry, nproc, " ".join(cmd))
        env = {**os.environ, **(backend_env or {})}
        subprocess.run(cmd, check=True, env=env)
    # the summary rank 0 returned: train_summary.json plus this attempt's train_run.json
    out = {}
    for name in ("train_summary.json", "train_run.json"):
        path = os.path.join(kwargs["out_dir"], name)
        if name == "train_summary.json" or os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                out.update(json.load(f))
    return out


def main(argv: list[str] | None = None) -> None:
    """torchrun's per-process entry: `python -m instruct_pt.training.launch ARGS.json`."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _call(spec["entry"], spec["kwargs"])


if __name__ == "__main__":
    main()
