"""An exclusive lock on a job's checkpoint folder, so that two jobs never write into one.

A Snakemake process killed with SIGKILL leaves its jobs running; a rerun then starts the same
job again on the same checkpoint folder. `FolderLock` makes the second one fail at once with a
message naming the folder and the holder (pid, host, start time) instead of letting both write.

The lock is ``fcntl.flock`` on the file ``.lock`` inside the folder: the kernel drops it when the
holder exits, however it dies, so a stale lock never needs removing. The file itself stays (an
unlinked lock file would let a waiting job lock a different inode than the next one). Under
torchrun only rank 0 takes it (the ranks of one job share the folder on purpose; see
`instruct_pt.training.checkpoint`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from instruct_pt.common import DataError

LOCK_NAME = ".lock"
# Locks this process holds, by lock file: a job that failed with an exception may still hold its
# lock (the traceback keeps it alive) when the same process runs the job again; that holder is
# this process, so the new call takes its lock over instead of failing.
_HELD: dict[str, FolderLock] = {}


class FolderLocked(DataError):
    """Another live process holds the folder's lock."""


def holder_id() -> tuple[str, int]:
    """(host, pid) of this process: what temporary names and lock files record."""
    return socket.gethostname(), os.getpid()


class FolderLock:
    """Hold ``folder/.lock`` exclusively until `release` (or the process's end).

    Raises FolderLocked at once (no waiting) when another process holds it. `what` names the
    kind of job in the message ("training", "synthesis"). Within one process a new lock on the
    folder takes over an earlier one (see _HELD).
    """

    def __init__(self, folder: str | os.PathLike, what: str = "job") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        key = os.path.realpath(self.path)
        earlier = _HELD.get(key)
        if earlier is not None and earlier._pid == os.getpid():
            earlier.release()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderLocked(
                f"{self.folder}: checkpoint folder in use by another {what} ({holder}); "
                f"wait for it to end or stop that process, then rerun"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._pid, self._key = fd, os.getpid(), key
        _HELD[key] = self
        host, pid = holder_id()
        info = {"pid": pid, "host": host, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            if _HELD.get(self._key) is self:
                del _HELD[self._key]

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """'pid 123 on host h since ...' from a held lock file (best effort: it may be mid-write)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"pid {info['pid']} on host {info['host']} since {info['since']}"
    except (ValueError, TypeError, KeyError, OSError):
        return "holder unknown"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
