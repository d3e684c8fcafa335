"""Progress lines for long jobs' log files: done/total, rate and time left, without bars.

tqdm bars redraw one line with carriage returns; in a log file that is one line of thousands of
characters. Training and synthesis log these lines instead (through `logging`), every
`log_every` steps or every checkpointed batch of texts.
"""

from __future__ import annotations

import math
import sys


def format_duration(seconds: float) -> str:
    """'1h02m', '3m05s', '12s'; '?' when not known (nan, inf, negative)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def eta_seconds(done: int, remaining: int, elapsed: float) -> float:
    """Time left at this run's pace so far: `done` units took `elapsed` s; nan before any."""
    if done <= 0 or elapsed <= 0:
        return float("nan")
    return remaining * elapsed / done


def progress_line(what: str, unit: str, done: int, total: int, rate: str, eta: float) -> str:
    """'pretrain step 80/245 (33%) <rate> ETA 5m12s'."""
    pct = 100 * done / total if total else 100.0
    return f"{what} {unit} {done}/{total} ({pct:.0f}%) {rate} ETA {format_duration(eta)}"


def quiet_progress_bars() -> None:
    """No Hugging Face bars (transformers' "Writing model shards", hub downloads) when stderr is
    not a terminal: in a job's log file a bar is one line of carriage returns."""
    if sys.stderr.isatty():
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is optional for callers of the pure helpers above
        return
    hf_logging.disable_progress_bar()
