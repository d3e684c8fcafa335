"""Progress lines for long jobs' log files: done/total, rate and time left, without bars.

tqdm bars redraw one line with carriage returns; in a log file that is one line of thousands of
characters. Training and synthesis log these lines instead (through `logging`), every
`log_every` steps or every checkpointed batch of texts; the data jobs (tokenizer corpus,
mixtures, packing, rule-based synthesis, templify) through :class:`Progress` /
:func:`iter_progress`, a bar on a terminal and a line every `EVERY_S` seconds in a log file.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
EVERY_S = 30.0  # seconds between two progress lines of a data job in its log


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
    """No Hugging Face bars (transformers' "Writing model shards", hub downloads, datasets'
    "Generating test split") when stderr is not a terminal: in a job's log file a bar is one
    line of carriage returns."""
    if sys.stderr.isatty():
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers is optional for callers of the pure helpers above
        pass
    else:
        hf_logging.disable_progress_bar()  # also huggingface_hub's
    if "datasets" in sys.modules:  # datasets reads its switch from the environment at import
        sys.modules["datasets"].disable_progress_bars()
    else:
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


class Progress:
    """Progress of a loop: a tqdm bar on a terminal; elsewhere (a job's log file) a progress line
    through `logging` at most every `every_s` seconds and a closing line with the count and
    time, never a carriage return. `total` None: counts without percentage or ETA."""

    def __init__(
        self,
        what: str,
        unit: str,
        total: int | None = None,
        *,
        every_s: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.what, self.unit, self.total = what, unit, total
        self.every_s = EVERY_S if every_s is None else every_s
        self.log = logger or log
        self.done = 0
        self.started = self.last = time.perf_counter()
        self.bar = None
        self.closed = False
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=what, unit=unit)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            self.log.info("%s", self.line(now))

    def _rate(self, elapsed: float) -> str:
        return f"{self.done / elapsed:,.1f} {self.unit}/s" if elapsed > 0 else f"? {self.unit}/s"

    def line(self, now: float | None = None) -> str:
        """'mixture general-mix doc 1200/4844 (25%) 2,400.0 doc/s ETA 2s' (with a total) or
        'pack texts.jsonl chunk 12 3.1 chunk/s' (without)."""
        elapsed = (time.perf_counter() if now is None else now) - self.started
        if self.total is None:
            return f"{self.what} {self.unit} {self.done} {self._rate(elapsed)}"
        eta = eta_seconds(self.done, self.total - self.done, elapsed)
        return progress_line(self.what, self.unit, self.done, self.total, self._rate(elapsed), eta)

    def close(self, finished: bool = True) -> None:
        """Close the bar, or log the closing line (not when the loop was left by an error)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif finished:
            elapsed = time.perf_counter() - self.started
            self.log.info(
                "%s: %d %s in %s (%s)",
                self.what,
                self.done,
                self.unit,
                format_duration(elapsed),
                self._rate(elapsed),
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finished=exc_type is None)


def iter_progress(
    items: Iterable[T],
    what: str,
    unit: str,
    total: int | None = None,
    *,
    weight: Callable[[T], int] | None = None,
    every_s: float | None = None,
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Yield `items` while reporting progress (:class:`Progress`): each item counts 1, or
    `weight(item)` (a chunk's documents, say)."""
    with Progress(what, unit, total, every_s=every_s, logger=logger) as p:
        for item in items:
            yield item
            p.update(weight(item) if weight is not None else 1)
