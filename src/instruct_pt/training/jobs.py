"""What a rule's job does around its work: remove its checkpoints once its outputs are complete
(unless the config keeps them), and show on the console that a long job is alive.

Checkpoints (`results/<run>/checkpoints/...`) exist so that a killed or preempted job resumes.
Once the job's outputs are all written they are only disk (883 MB of the tiny run's 1.1 GB), so
a training or synthesis script calls :func:`finish_checkpoints` as its last step. A job killed
before that point keeps them and resumes. `compute.keep_finished_checkpoints: true` keeps them (e.g. to
re-export a finished training in another `train.export_dtype` without retraining). It is read
from the config inside the job, not passed as a rule param, so that changing it reruns nothing.

The console: a job's logging goes to its log file (`setup_logging`); :func:`start_heartbeat`
prints, every `IPT_HEARTBEAT_S` seconds (default 60; 0 turns it off), the log's newest line to
the console Snakemake shows, prefixed by the elapsed time and the log's path.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from instruct_pt.common import DataError

log = logging.getLogger(__name__)

HEARTBEAT_ENV = "IPT_HEARTBEAT_S"
DEFAULT_HEARTBEAT_S = 60.0


def keep_finished_checkpoints(config: dict) -> bool:
    """`compute.keep_finished_checkpoints` (default false); anything but a boolean is an error."""
    value = (config.get("compute") or {}).get("keep_finished_checkpoints", False)
    if not isinstance(value, bool):
        raise DataError(
            f"config key 'compute.keep_finished_checkpoints': {value!r} is not a boolean"
        )
    return value


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def finish_checkpoints(checkpoint_dir: str | os.PathLike, outputs, keep: bool) -> int:
    """Remove a finished job's checkpoint folder; returns the bytes removed (0 when kept).

    Only after every output exists (a missing one keeps the folder, so a rerun resumes), and only
    a folder with a `checkpoints` component in its path (never a mistyped path elsewhere)."""
    ckpt = Path(checkpoint_dir)
    if "checkpoints" not in ckpt.parts:
        raise DataError(f"{ckpt}: not under a 'checkpoints' folder; refusing to remove it")
    if not ckpt.exists():
        return 0
    missing = [str(o) for o in outputs if not Path(o).exists()]
    if missing:
        log.warning("%s: kept, the job's outputs are incomplete (%s)", ckpt, ", ".join(missing))
        return 0
    size = _size(ckpt)
    if keep:
        log.info("%s: kept (%.1f MB; compute.keep_finished_checkpoints: true)", ckpt, size / 1e6)
        return 0
    failed = []
    shutil.rmtree(ckpt, onerror=lambda _f, p, e: failed.append(f"{p}: {e[1]}"))
    if failed:  # the outputs are complete: a leftover file is disk, not a failed job
        log.warning("%s: could not remove everything: %s", ckpt, "; ".join(failed[:3]))
        return 0
    log.info(
        "%s: removed (%.1f MB), the outputs are complete (compute.keep_finished_checkpoints: true keeps "
        "them)",
        ckpt,
        size / 1e6,
    )
    return size


def last_line(path: str | os.PathLike, tail_bytes: int = 8192, width: int = 160) -> str:
    """The newest non-empty line of a log: the text after its last carriage return (a tqdm
    bar's latest state), at most `width` characters."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - tail_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(text.split("\n")):
        line = next((p.strip() for p in reversed(line.split("\r")) if p.strip()), "")
        if line:
            return line if len(line) <= width else line[: width - 3] + "..."
    return ""


def heartbeat_interval() -> float:
    raw = os.environ.get(HEARTBEAT_ENV, "")
    if not raw:
        return DEFAULT_HEARTBEAT_S
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"environment variable {HEARTBEAT_ENV}: {raw!r} is not a number") from None
    return max(0.0, value)


def start_heartbeat(log_path: str | None, interval: float | None = None, stream=None):
    """A daemon thread printing `[alive 3m00s] <log path>: <newest log line>` to the console
    (the process's original stderr) every `interval` seconds while the log grows; returns a
    threading.Event that stops it, or None when off (no log, or interval 0)."""
    interval = heartbeat_interval() if interval is None else interval
    if not log_path or interval <= 0:
        return None
    stream = stream or sys.__stderr__
    stop = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        last_size = -1
        while not stop.wait(interval):
            try:
                size = os.path.getsize(log_path)
            except OSError:
                continue
            if size == last_size:
                continue
            last_size = size
            elapsed = int(time.monotonic() - start)
            line = last_line(log_path)
            try:
                stream.write(f"[alive {elapsed // 60}m{elapsed % 60:02d}s] {log_path}: {line}\n")
                stream.flush()
            except (OSError, ValueError):
                return

    threading.Thread(target=beat, name="ipt-heartbeat", daemon=True).start()
    return stop
