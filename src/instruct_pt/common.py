"""Shared helpers: deterministic JSON(L) I/O, stable hashing, clear data errors, logging."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


class DataError(ValueError):
    """Bad input data. The message names the file and line (or key) at fault."""


def stable_hash(*parts: Any) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash()`` of a str)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def follow_umask(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the mode a plain ``open()`` would (0644 under umask 022).

    For folders that libraries assemble (``save_pretrained``: safetensors writes its file 0600),
    so that results stay readable by colleagues like every file :func:`atomic_writer` writes.
    """
    mask = os.umask(0)
    os.umask(mask)
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~mask)


def atomic_writer(path: str | os.PathLike):
    """(path, open text file, temp path): write, close, then ``os.replace(temp, path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates 0600 files, and results must be readable by colleagues;
    # os.open with 0o666 lets the process umask decide (0644 under umask 022), as open() does.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")
    return path, os.fdopen(fd, "w", encoding="utf-8", newline="\n"), tmp


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write records atomically (temp file + rename); returns the number written."""
    path, f, tmp = atomic_writer(path)
    n = 0
    try:
        with f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return n


def iter_jsonl(path: str | os.PathLike, required: Iterable[str] = ()) -> Iterator[dict]:
    """Yield records; a malformed line or a missing required key raises DataError(file:line)."""
    for _, _, rec in iter_jsonl_offsets(path, required):
        yield rec


def iter_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw bytes) of each non-blank line, unparsed, a file-opening
    UTF-8 BOM removed (``.gz`` files are decompressed; offsets are then positions in the
    decompressed stream). A reader that parses elsewhere (in worker processes) pairs this with
    :func:`parse_jsonl_line`."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        pos = 0
        for lineno, raw in enumerate(f, 1):
            start, pos = pos, pos + len(raw)
            if start == 0 and raw.startswith(codecs.BOM_UTF8):  # a BOM may open a file
                raw = raw[len(codecs.BOM_UTF8) :]
            if raw.strip():
                yield lineno, start, raw


def parse_jsonl_line(
    raw: bytes, path: str | os.PathLike, lineno: int | None, required: Iterable[str] = ()
) -> dict:
    """The one JSONL line parser: ``raw`` (one line's bytes) as a JSON object. Bad JSON, bytes that
    are not UTF-8 (the first bad byte and its column are named), a value that is not an object or
    a missing required key raise DataError(file:line) (``lineno`` None: the file alone)."""
    line = decode_utf8_line(raw, path, lineno)
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{_where(path, lineno)}: not valid JSON ({e.msg})") from None
    if not isinstance(rec, dict):
        raise DataError(f"{_where(path, lineno)}: expected a JSON object, got {type(rec).__name__}")
    missing = [k for k in required if k not in rec]
    if missing:
        raise DataError(f"{_where(path, lineno)}: missing key(s) {', '.join(missing)}")
    return rec


def decode_utf8_line(raw: bytes, path: str | os.PathLike, lineno: int | None) -> str:
    """``raw`` decoded as UTF-8, or DataError(file:line) naming the first bad byte and its column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{_where(path, lineno)}: not UTF-8 (byte 0x{raw[e.start]:02x} at column "
            f"{len(raw[: e.start].decode('utf-8', 'replace')) + 1}); convert the file to UTF-8"
        ) from None


def _where(path: str | os.PathLike, lineno: int | None) -> str:
    return f"{path}:{lineno}" if lineno is not None else str(path)


def iter_jsonl_offsets(
    path: str | os.PathLike, required: Iterable[str] = ()
) -> Iterator[tuple[int, int, dict]]:
    """(line number, byte offset, record) of each non-blank line, so a reader can seek back to a
    record; a malformed line (see :func:`parse_jsonl_line`) raises DataError(file:line)."""
    required = tuple(required)
    for lineno, start, raw in iter_jsonl_lines(path):
        yield lineno, start, parse_jsonl_line(raw, path, lineno, required)


def read_jsonl_at(f: BinaryIO, offset: int, path: str | os.PathLike) -> dict:
    """The record whose line starts at byte ``offset`` of ``f`` (a binary handle on ``path``), as
    found by :func:`iter_jsonl_offsets`."""
    f.seek(offset)
    raw = f.readline()
    if offset == 0 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    return parse_jsonl_line(raw, path, None)


def iter_log_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """(line, record) of each whole line of a training log (``metrics.jsonl``, ``timing.jsonl``)
    that a job appends to while it runs: a line cut short by a kill is skipped, not an error."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            yield line, rec


def read_jsonl(path: str | os.PathLike, required: Iterable[str] = ()) -> list[dict]:
    return list(iter_jsonl(path, required))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    path, f, tmp = atomic_writer(path)
    try:
        with f:
            json.dump(obj, f, ensure_ascii=False, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    path, f, tmp = atomic_writer(path)
    with f:
        f.write(text)
    os.replace(tmp, path)


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send logging (and stderr, so tracebacks and tqdm bars too) to a rule's log file."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        sys.stderr = stream
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def set_torch_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads to what the rule was given (Snakemake `threads`)."""
    if not threads:
        return
    import torch

    torch.set_num_threads(max(1, int(threads)))


def dir_identity(path: str | os.PathLike) -> str:
    """A cheap identity of a model folder's contents (names, sizes, modification times).

    Resumable jobs put it in their checkpoint fingerprint, so that retraining a model they read
    (a synthesizer, a base model) invalidates their checkpoints, without hashing gigabytes.
    """
    root = Path(path)
    if not root.is_dir():
        return str(root)
    entries = []
    for f in sorted(root.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            st = f.stat()
            entries.append(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()
