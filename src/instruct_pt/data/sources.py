"""Reading a data set from its source (the miniature world, a Hugging Face hub data set, or a local
file) and writing it as JSONL of our records, with its stats.

``prepare_dataset`` turns any source into the record format of one of our data sets
(docs/architecture.md, "Data sets") and writes it as JSONL plus a stats JSON. The config entry
``datasets.<name>`` is the ``spec``:

- ``{"source": "world"}``: ``instruct_pt.world.generate_dataset(name, world_cfg)``.
- ``{"source": "hub", "id": ..., "config"?, "split"?, "revision"?, "streaming"?, "max_docs"?,
  "filter"?, "fields"?}``: ``datasets.load_dataset``; the paper's sources need no ``fields``
  (see :mod:`instruct_pt.data.records`, which maps a source row onto our record).
- ``{"source": "local", "path": ..., "max_docs"?, "filter"?, "fields"?, "cache_dir"?}``: a JSONL,
  JSON, Parquet or CSV file (all but JSONL go through ``datasets``, cached in ``cache_dir``), e.g. a mirror on an air-gapped cluster, or the finance news corpus, which the authors
  did not release.

``fields`` maps our field to the source's field (dotted paths reach into nested dicts, e.g.
``meta.pile_set_name``). ``filter`` keeps rows whose dotted field equals a value (or is one of a
list of values). Rows that are filtered out, lack a required field, or have an empty, non-text or
unencodable (lone surrogate) one are dropped and counted by reason in the stats (numbers in text
fields become strings). Raw texts follow the input rules of :mod:`instruct_pt.data.inputs` (protocol
markers escaped, counted as ``escaped_markers``); the ``instruct-pt-synthesize`` CLI reads its
input through the same code (:func:`prepare_local_texts`).

Records are written as they are read, so memory does not grow with the corpus (8 bytes per record
to find repeated ids; a second pass over the output renames them, only if there are any). A data
set that ends empty, or keeps less than ``min_kept_fraction`` (default 0.5 [ours]) of the rows its
filter selects, fails with the drop counts by reason, and nothing is written.
"""

from __future__ import annotations

import array
import csv
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from instruct_pt import world
from instruct_pt.common import (
    DataError,
    atomic_writer,
    decode_utf8_line,
    iter_jsonl,
    iter_jsonl_offsets,
    stable_hash,
    write_json,
    write_jsonl,
)
from instruct_pt.data.inputs import escape_markers
from instruct_pt.data.records import (
    DATASETS,
    MISSING,
    RAW,
    convert_row,
    field_map,
    get_field,
    matches_filter,
    validate_record,
)
from instruct_pt.progress import iter_progress

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Sources


def _hub_rows(name: str, spec: dict) -> Iterable[dict]:
    if not spec.get("id"):
        raise DataError(f"datasets.{name}.id: a hub source needs the data set id")
    configs = spec.get("configs")
    if configs is not None:
        if spec.get("config") is not None:
            raise DataError(f"datasets.{name}: give either config or configs, not both")
        if not configs or not all(isinstance(c, str) and c for c in configs):
            raise DataError(f"datasets.{name}.configs: must be a non-empty list of config names")
        return _configs_rows(name, spec, configs)
    return _load_hub(name, spec, spec.get("config"))


def _load_hub(name: str, spec: dict, config: str | None) -> Iterable[dict]:
    import datasets  # heavy import, only where a hub source is used

    log.info(
        "loading hub data set %s (config %s, split %s)",
        spec["id"],
        config,
        spec.get("split", "train"),
    )
    try:
        return datasets.load_dataset(
            spec["id"],
            config,
            split=spec.get("split", "train"),
            streaming=spec.get("streaming", True),
            revision=spec.get("revision"),
        )
    except (OSError, ValueError, ConnectionError) as e:
        where = spec["id"] if config is None else f"{spec['id']} (config {config})"
        raise DataError(f"datasets.{name}: could not load hub data set {where!r}: {e}") from e


def _configs_rows(name: str, spec: dict, configs: list[str]) -> Iterator[dict]:
    """Rows of several configs in turn; a row without a "dataset" field gets its config's name
    (the synthesizer collection has one config per source dataset, and few-shot sequences are
    built from examples of the same dataset)."""
    for config in configs:
        for row in _load_hub(name, spec, config):
            if isinstance(row, dict) and not row.get("dataset"):
                row = {**row, "dataset": config}
            yield row


_LOCAL_FORMATS = {".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _local_rows(name: str, spec: dict) -> Iterable[dict]:
    path = spec.get("path")
    if not path:
        raise DataError(f"datasets.{name}.path: a local source needs a path")
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found (set datasets.{name}.path)")
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return iter_jsonl(path)  # names file:line of a malformed line
    if suffix not in _LOCAL_FORMATS:
        raise DataError(
            f"{path}: unsupported file type {suffix!r} (datasets.{name}.path: .jsonl, .json, .parquet, .csv)"
        )
    if suffix in (".json", ".csv"):
        _check_utf8(path, name)
    import datasets

    kwargs: dict[str, Any] = {}
    if suffix == ".csv":  # read every column as text: pandas would turn "4" into 4 and "" into NaN
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
        if not header:
            raise DataError(f"{path}: empty CSV file, no header (datasets.{name}.path)")
        kwargs["features"] = datasets.Features({col: datasets.Value("string") for col in header})
    try:
        return datasets.load_dataset(
            _LOCAL_FORMATS[suffix],
            data_files=str(path),
            split="train",
            cache_dir=spec.get("cache_dir"),
            **kwargs,
        )
    except Exception as e:  # the builders raise many types; name the file either way
        raise DataError(
            f"{path}: could not read as {_LOCAL_FORMATS[suffix]} (datasets.{name}.path): {e}"
        ) from e


def _check_utf8(path: str, name: str) -> None:
    """Fail at the first line of a text file that is not UTF-8 (the ``datasets`` readers would
    name neither file nor line)."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                decode_utf8_line(raw, path, lineno)
            except DataError as e:
                raise DataError(f"{e} (datasets.{name}.path)") from None


MIN_KEPT_FRACTION = 0.5  # [ours] default of datasets.<name>.min_kept_fraction (see _check_kept)


class _Tally:
    """Counts of one pass over a source: rows read, rows kept, rows dropped by reason."""

    def __init__(self) -> None:
        self.read = 0
        self.kept = 0
        self.dropped: Counter = Counter()
        self.escaped = 0  # raw texts whose protocol markers were escaped
        self.rows = array.array("Q")  # source row number (1-based) of each kept record

    def eligible(self) -> int:
        """Rows read that the configured filter selected (what the kept share is measured on)."""
        return self.read - self.dropped["filtered_out"]


def _converted(name: str, rows: Iterable[dict], spec: dict, origin: str, tally: _Tally):
    """Map, filter and cap the source rows, one at a time: yields (raw id, record without id).

    The raw id is the source's id, or ``{name}-{k:07d}`` for the k-th kept record without one;
    duplicates are renamed later (``_rename_duplicates``), as they are only known at the end.
    """
    fields = field_map(name, spec)
    filt = spec.get("filter") or {}
    if not isinstance(filt, dict):
        raise DataError(f"datasets.{name}.filter: must be a mapping of field -> value(s)")
    max_docs = spec.get("max_docs")
    if max_docs is not None and max_docs <= 0:
        return
    for row in iter_progress(rows, f"prepare {name}", "rec"):
        tally.read += 1
        if not isinstance(row, dict):
            tally.dropped["not_an_object"] += 1
            continue
        if filt and not matches_filter(row, filt):
            tally.dropped["filtered_out"] += 1
            continue
        rec = convert_row(name, row, fields, spec, origin, tally.dropped)
        if rec is None:
            continue
        if name in RAW:
            rec["text"], n_markers = escape_markers(rec["text"])
            tally.escaped += n_markers > 0
        source_id = next(
            (get_field(row, c) for c in fields["id"] if get_field(row, c) is not MISSING), None
        )
        raw_id = str(source_id) if source_id not in (None, "") else f"{name}-{tally.kept:07d}"
        tally.kept += 1
        tally.rows.append(tally.read)
        yield raw_id, rec
        if max_docs is not None and tally.kept >= max_docs:
            return


def _check_kept(name: str, spec: dict, origin: str, tally: _Tally) -> None:
    """Fail if the data set ended empty, or kept less than ``min_kept_fraction`` of its rows.

    The share is measured on the rows the configured ``filter`` selected (a filter is meant to
    drop rows). The default 0.5 [ours] sits far from both failure and health: a changed hub schema
    or a wrong ``fields`` mapping drops (nearly) every row as ``missing_*``, while the paper's
    sources lose at most a few percent to empty texts or unusable pairs.
    """
    frac = spec.get("min_kept_fraction", MIN_KEPT_FRACTION)
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac <= 1:
        raise DataError(
            f"datasets.{name}.min_kept_fraction: must be a number in [0, 1], got {frac!r}"
        )
    dropped = dict(sorted((k, v) for k, v in tally.dropped.items() if v))
    counts = f"read {tally.read} rows, kept {tally.kept}, dropped {dropped or 'none'}"
    filt = spec.get("filter")
    if tally.kept == 0 and tally.read and tally.dropped["filtered_out"] == tally.read:
        raise DataError(
            f"datasets.{name}: no records from {origin}: datasets.{name}.filter {filt!r} matches "
            f"none of its {tally.read} rows ({counts}). A filter written for a hub source "
            "(e.g. meta.pile_set_name) rarely fits a local file: remove it or fix the field."
        )
    if tally.kept == 0:
        raise DataError(
            f"datasets.{name}: no records from {origin} ({counts}). Check the source and its "
            f"datasets.{name}.fields / filter (a changed hub schema drops every row as missing_*)."
        )
    eligible = tally.eligible()
    if eligible and tally.kept < frac * eligible:
        raise DataError(
            f"datasets.{name}: kept only {tally.kept} of the {eligible} rows selected from "
            f"{origin} ({tally.kept / eligible:.1%} < datasets.{name}.min_kept_fraction={frac}; "
            f"{counts}). Check datasets.{name}.fields, or lower min_kept_fraction if the source "
            "really is this sparse."
        )


_ID_PREFIX = '{"id": '  # every output line starts with its id (write order of the record keys)


def _rename_duplicates(
    tmp_path: str, out_path: str, hashes: array.array
) -> tuple[int, list[tuple[int, str, str]]]:
    """Rewrite ``tmp_path`` to ``out_path`` giving repeated ids the suffix -1, -2, ...; returns
    the number renamed and (output line index, id, new id) of the first few renamed.

    A record keeps its id unless an earlier record already has it as its final id; then it
    gets the first free ``{id}-{k}``. An id x is taken before line i iff an earlier record was
    renamed to x or x occurs as the raw id of an earlier line (the first such line kept x, or x
    was taken before it). So only the renamed ids and the ids whose 8-byte hash repeats are held
    as strings; every other id is looked up by hash in a sorted array (8 + 8 bytes per record).
    """
    import numpy as np

    h = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(h, kind="stable")
    sorted_h = h[order]
    firsts = np.ones(len(h), dtype=bool)
    firsts[1:] = sorted_h[1:] != sorted_h[:-1]
    repeated = set(sorted_h[1:][~firsts[1:]].tolist())
    uniq_h, first_pos = sorted_h[firsts], order[firsts]  # the stable sort puts the first line first
    del order, sorted_h, firsts

    seen_repeated: set[str] = set()  # raw ids whose hash repeats, seen so far
    renamed_ids: set[str] = set()

    def raw_before(x: str, i: int) -> bool:
        hx = stable_hash(x)
        if hx in repeated:
            return x in seen_repeated
        j = int(np.searchsorted(uniq_h, hx))
        return j < len(uniq_h) and int(uniq_h[j]) == hx and int(first_pos[j]) < i

    decoder = json.JSONDecoder()
    n_renamed = 0
    examples: list[tuple[int, str, str]] = []
    path, out, tmp2 = atomic_writer(out_path)
    try:
        with out, open(tmp_path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                raw_id, end = decoder.raw_decode(line, len(_ID_PREFIX))
                rec_id = raw_id
                if rec_id in renamed_ids or raw_before(rec_id, i):
                    k = 1
                    while f"{raw_id}-{k}" in renamed_ids or raw_before(f"{raw_id}-{k}", i):
                        k += 1
                    rec_id = f"{raw_id}-{k}"
                    renamed_ids.add(rec_id)
                    n_renamed += 1
                    if len(examples) < _RENAME_EXAMPLES:
                        examples.append((i, raw_id, rec_id))
                    line = _ID_PREFIX + json.dumps(rec_id, ensure_ascii=False) + line[end:]
                if stable_hash(raw_id) in repeated:
                    seen_repeated.add(raw_id)
                out.write(line)
        os.replace(tmp2, path)
    except BaseException:
        if os.path.exists(tmp2):
            os.unlink(tmp2)
        raise
    return n_renamed, examples


_RENAME_EXAMPLES = 3  # renamed ids named, with their source row, in the log


def _row_location(spec: dict, row: int) -> str:
    """Where source row ``row`` (1-based, as counted by ``_Tally.read``) is: ``file:line`` for a
    local JSONL file (blank lines are skipped when reading, so the line is looked up), else the
    row number."""
    path = spec.get("path")
    if spec.get("source") == "local" and path and Path(path).suffix.lower() == ".jsonl":
        for k, (lineno, _, _) in enumerate(iter_jsonl_offsets(path), 1):
            if k == row:
                return f"{path}:{lineno}"
    return f"row {row} of {path or spec.get('id')}"


def _write_streaming(
    name: str, rows: Iterable[dict], spec: dict, origin: str, out_path: str, tally: _Tally
) -> int:
    """Write the records of a hub or local source to ``out_path`` as they come; returns the
    number of renamed ids.

    Memory does not grow with the corpus beyond 8 bytes per record (the id hashes; 16 while
    renaming, and the repeated ids themselves): one pass over the source writes a temporary
    file, and only if some id hash repeats does a second pass over that file rename ids.
    Nothing is written to ``out_path`` if the data set fails ``_check_kept``.
    """
    hashes = array.array("Q")
    path, f, tmp = atomic_writer(out_path)
    try:
        with f:
            for i, (raw_id, rec) in enumerate(_converted(name, rows, spec, origin, tally)):
                rec = {"id": raw_id, **rec}
                validate_record(name, rec, f"{out_path}:{i + 1}")
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                hashes.append(stable_hash(raw_id))
        _check_kept(name, spec, origin, tally)
        if not _has_repeat(hashes):
            os.replace(tmp, path)
            return 0
        renamed, examples = _rename_duplicates(tmp, out_path, hashes)
        for i, old, new in examples:
            log.warning(
                "datasets.%s: id %r at %s repeats an earlier id; renamed to %r",
                name,
                old,
                _row_location(spec, tally.rows[i]),
                new,
            )
        if renamed > len(examples):
            log.warning("datasets.%s: %d repeated ids renamed in all", name, renamed)
        return renamed
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _has_repeat(hashes: array.array) -> bool:
    import numpy as np

    ordered = np.sort(np.frombuffer(hashes, dtype=np.uint64))
    return bool((ordered[1:] == ordered[:-1]).any())


def prepare_dataset(
    name: str, spec: dict, world_cfg: dict | None, out_path: str, seed: int | None = None
) -> dict:
    """Write data set ``name`` from ``spec``'s source to ``out_path`` (JSONL); return its stats.

    Stats ``{"dataset", "source", "records", "dropped": {reason: n}, "read", "renamed_ids"}``
    (raw texts also ``"escaped_markers"``: texts whose protocol markers were escaped) are also
    written to ``out_path + ".stats.json"``. ``seed`` (optional) overrides the world seed.
    """
    if name not in DATASETS:
        raise DataError(f"datasets.{name}: unknown data set (known: {', '.join(DATASETS)})")
    source = spec.get("source")
    tally = _Tally()
    renamed = 0
    if source == "world":
        origin = "world"
        records = world.generate_dataset(name, world_cfg, seed)
        tally.read = tally.kept = len(records)
        if name in RAW:
            for rec in records:
                rec["text"], n_markers = escape_markers(rec["text"])
                tally.escaped += n_markers > 0
        _check_kept(name, spec, origin, tally)
        for i, rec in enumerate(records):
            validate_record(name, rec, f"{out_path}:{i + 1}")
        write_jsonl(out_path, records)
    elif source in ("hub", "local"):
        origin = f"hub:{spec.get('id')}" if source == "hub" else f"local:{spec.get('path')}"
        rows = _hub_rows(name, spec) if source == "hub" else _local_rows(name, spec)
        renamed = _write_streaming(name, rows, spec, origin, out_path, tally)
    else:
        raise DataError(f"datasets.{name}.source: must be world, hub or local, got {source!r}")
    dropped, n_read = tally.dropped, tally.read
    stats = {
        "dataset": name,
        "source": origin,
        "records": tally.kept,
        "dropped": dict(sorted((k, v) for k, v in dropped.items() if v)),
        "read": n_read,
        "renamed_ids": renamed,
    }
    if name in RAW:
        stats["escaped_markers"] = tally.escaped  # texts whose protocol markers were escaped
    write_json(out_path + ".stats.json", stats)
    log.info(
        "%s: %d records from %s, dropped %s", name, tally.kept, origin, stats["dropped"] or "none"
    )
    return stats


def prepare_local_texts(
    path: str,
    out_path: str,
    text_field: str = "text",
    min_kept_fraction: float = MIN_KEPT_FRACTION,
) -> dict:
    """The ``instruct-pt-synthesize`` CLI's first step: the user's file read as the workflow reads
    a local ``raw_general`` source (same drops, counts, escaping, id rules and failures), written
    to ``out_path`` with its stats beside it. Returns the stats."""
    spec = {
        "source": "local",
        "path": path,
        "fields": {"text": text_field},
        "min_kept_fraction": min_kept_fraction,
    }
    try:
        return prepare_dataset("raw_general", spec, None, out_path)
    except DataError as e:  # name the CLI's options, not the workflow's config keys
        msg = str(e)
        for key, option in _CLI_OPTIONS:
            msg = msg.replace(key, option)
        raise DataError(msg) from None


_CLI_OPTIONS = (
    ("datasets.raw_general.path", "--input"),
    ("datasets.raw_general.fields", "--text-field"),
    ("datasets.raw_general.min_kept_fraction", "--min-kept-fraction"),
    ("datasets.raw_general", "--input"),
)
