"""Checkpoints: atomic sharded saves, loads, resume, and the lock that keeps one job per folder.

A checkpoint holds everything a bit-identical resume needs: the step, the model and optimizer
states (torch.distributed.checkpoint: each rank writes and reads only its shard, and a different
number of processes reshards) and every rank's RNG states. Which rows make up a step's batch and
the learning rate are pure functions of the step (`batches.BatchPlan`, `settings.lr_at`), so
nothing else is needed: a run killed at any point and rerun continues from its last checkpoint
to the same final bytes (on CPU). A folder named step{N} is complete (written under a temporary
name and renamed); `resumable` discards checkpoints of another run (data, seed or settings
changed) instead of resuming them. The logs a resumed run rewrites (`METRICS_LOG`,
`TIMING_LOG`) are cut back to the checkpoint's step (`trim_logs`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from instruct_pt.common import iter_log_jsonl, stable_hash, write_json
from instruct_pt.training.dirlock import FolderLock, FolderLocked, holder_id, pid_alive
from instruct_pt.training.distributed import Dist, barrier

log = logging.getLogger(__name__)

CKPT_PREFIX = "step"
CKPT_FORMAT = "dcp-1"  # state.json "format": checkpoints of another layout are not resumed
METRICS_LOG = "metrics.jsonl"  # per log step: loss, lr, grad_norm, tokens (the same on resume)
TIMING_LOG = "timing.jsonl"  # per log step: tokens_per_s, mfu, elapsed_s (this machine's speed)


def list_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints (renamed into place), oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(CKPT_PREFIX) :]))


def _rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rng_file(path: Path, rank: int) -> Path:
    return path / f"rng-rank{rank:05d}.pt"


def _rank0_holder(d: Dist) -> tuple[str, int]:
    """Rank 0's (host, pid), on every rank (names the temporary folder they all write into)."""
    if d.world == 1:
        return holder_id()
    import torch.distributed as dist

    box = [holder_id()]
    dist.broadcast_object_list(box, src=0)
    host, pid = box[0]
    return str(host), int(pid)


def tmp_name(step: int, host: str, pid: int) -> str:
    return f".tmp-{CKPT_PREFIX}{step:08d}-{host}-{pid}"


def tmp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from a `tmp_name`; None for another layout (older names: no host)."""
    head = f".tmp-{CKPT_PREFIX}"
    rest = name[len(head) :] if name.startswith(head) else ""
    step, _, owner = rest.partition("-")
    host, _, pid = owner.rpartition("-")
    if len(step) != 8 or not step.isdigit() or not host or not pid.isdigit():
        return None
    return host, int(pid)


def save_checkpoint(
    checkpoint_dir: Path, step: int, model, optimizer, state: dict, keep: int, d: Dist
):
    """Write step{N}/ atomically, then drop all but the newest `keep` checkpoints.

    torch.distributed.checkpoint (DCP): every rank writes its own shards of the model and
    optimizer (no rank ever holds the full state) and its RNG states, into a temporary folder
    named after rank 0's host and pid; after a barrier rank 0 adds state.json and renames the folder into
    place. A folder named step{N} is therefore complete. One process writes the same way.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = checkpoint_dir / f"{CKPT_PREFIX}{step:08d}"
    tmp = checkpoint_dir / tmp_name(step, *_rank0_holder(d))
    if d.main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    barrier(d)
    msd, osd = get_state_dict(model, optimizer)  # this rank's shards (plain tensors on 1 process)
    with warnings.catch_warnings():  # one process: DCP warns that it saves without a group
        warnings.filterwarnings("ignore", "torch.distributed is disabled")
        dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=str(tmp), no_dist=d.world == 1)
    torch.save(_rng_state(), _rng_file(tmp, d.rank))
    barrier(d)
    if d.main:
        write_json(tmp / "state.json", {**state, "format": CKPT_FORMAT, "world_size": d.world})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(checkpoint_dir)[:-keep]:
            shutil.rmtree(old)
    barrier(d)


def load_checkpoint(path: Path, model, optimizer, d: Dist, seed: int, step: int) -> None:
    """Load this rank's shards of a save_checkpoint folder (DCP reshards if the number of
    processes changed) and this rank's RNG states."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    msd, osd = get_state_dict(model, optimizer)
    state = {"model": msd, "optimizer": osd}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(path), no_dist=d.world == 1)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    rng = _rng_file(path, d.rank)
    if rng.exists():
        _set_rng_state(torch.load(rng, map_location="cpu", weights_only=False))
    else:  # saved by fewer processes: a fresh, still deterministic dropout stream
        log.warning("%s: no RNG state of rank %d; reseeding its dropout stream", path, d.rank)
        torch.manual_seed(stable_hash(seed, "resume-rng", step, d.rank) % 2**63)


def resumable(checkpoint_dir: Path, fingerprint: str, d: Dist) -> tuple[Path, dict] | None:
    """The newest checkpoint of this run and its state.json, or None to start from step 0.

    First the temporaries of killed runs go (`clear_temporaries`). Checkpoints of a different
    run (its fingerprint: data, seed or settings changed, for which Snakemake reruns the job) or
    of an older layout are deleted rather than resumed. A collective: every rank calls it."""
    if d.main:
        clear_temporaries(checkpoint_dir)
    barrier(d)
    existing = list_checkpoints(checkpoint_dir)
    if not existing:
        return None
    state = json.loads((existing[-1] / "state.json").read_text(encoding="utf-8"))
    barrier(d)  # every rank has read it before rank 0 may delete it
    if state["fingerprint"] != fingerprint or state.get("format") != CKPT_FORMAT:
        log.warning(
            "%s: checkpoints of a different run (data, seed or train settings "
            "changed, or an older format): discarding them and starting over",
            checkpoint_dir,
        )
        if d.main:
            for old in existing:
                shutil.rmtree(old)
        barrier(d)
        return None
    return existing[-1], state


def clear_temporaries(checkpoint_dir: Path) -> None:
    """Remove the temporary folders of checkpoints that killed runs left half-written.

    Called with the folder's lock held, so no other job writes here; still, a temporary of a
    live process of this host (a writer from before folders were locked) is left alone: only
    those of dead processes, of other hosts (their holder released the lock, so it is gone) and
    of the older unnamed layout are removed."""
    here, me = holder_id()
    for tmp in checkpoint_dir.glob(f".tmp-{CKPT_PREFIX}*"):
        owner = tmp_owner(tmp.name)
        if owner is not None and owner[0] == here and owner[1] != me and pid_alive(owner[1]):
            log.warning("%s: left alone, its writer (pid %d) is still running", tmp, owner[1])
            continue
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def checkpoint_lock(checkpoint_dir: str, d: Dist, what: str = "training"):
    """Hold checkpoint_dir's lock (`dirlock.FolderLock`) for the body. Rank 0 takes it for the
    whole job: every rank of this job goes on, and on every rank of a second job on the same
    folder FolderLocked is raised, naming the holder."""
    lock, error = None, None
    if d.main:
        try:
            lock = FolderLock(checkpoint_dir, what)
        except FolderLocked as e:
            error = str(e)
        except OSError as e:  # every rank must learn of it, not wait in the broadcast
            error = f"{checkpoint_dir}: cannot lock the checkpoint folder ({e})"
    if d.world > 1:
        import torch.distributed as dist

        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise FolderLocked(error)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def trim_logs(checkpoint_dir: Path, upto_step: int) -> None:
    """Keep only log lines of steps <= upto_step (a resumed run rewrites the rest)."""
    for name in (METRICS_LOG, TIMING_LOG):
        path = checkpoint_dir / name
        if not path.exists():
            continue
        kept = [line for line, rec in iter_log_jsonl(path) if rec.get("step", 0) <= upto_step]
        path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")
