"""One loader for every data set: the miniature world, a Hugging Face hub data set, or a local file.

``prepare_dataset`` turns any source into the record format of one of our data sets
(docs/architecture.md, "Data sets") and writes it as JSONL plus a stats JSON. The config entry
``datasets.<name>`` is the ``spec``:

- ``{"source": "world"}``: ``instruct_pt.world.generate_dataset(name, world_cfg)``.
- ``{"source": "hub", "id": ..., "config"?, "split"?, "revision"?, "streaming"?, "max_docs"?,
  "filter"?, "fields"?}``: ``datasets.load_dataset``; the paper's sources need no ``fields``
  (see ``_DEFAULT_FIELDS`` / ``_HUB_FIELDS``).
- ``{"source": "local", "path": ..., "max_docs"?, "filter"?, "fields"?, "cache_dir"?}``: a JSONL,
  JSON, Parquet or CSV file (all but JSONL go through ``datasets``, cached in ``cache_dir``), e.g. a mirror on an air-gapped cluster, or the finance news corpus, which the authors
  did not release.

``fields`` maps our field to the source's field (dotted paths reach into nested dicts, e.g.
``meta.pile_set_name``). ``filter`` keeps rows whose dotted field equals a value (or is one of a
list of values). Rows that are filtered out, lack a required field, or have an empty or non-text
one are dropped and counted by reason in the stats (numbers in text fields become strings).
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from instruct_pt import world
from instruct_pt.common import DataError, iter_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

RAW = ("raw_general", "raw_biomedicine", "raw_finance")
DATASETS = world.DATASETS

# Our field -> candidate source fields, first present wins; spec["fields"] overrides.
_DEFAULT_FIELDS: dict[str, dict[str, list[str]]] = {
    # RefinedWeb stores the text in "content"; The Pile and most corpora in "text".
    **{name: {"id": ["id"], "text": ["text", "content"], "meta": ["meta"]} for name in RAW},
    # OpenOrca: id, system_prompt, question, response.
    "general_instructions": {"id": ["id"], "question": ["question"], "response": ["response"]},
    # FLAN-style collections: inputs, targets, task_name (our own field names also accepted).
    "instruction_tuning": {
        "id": ["id"],
        "task": ["task_name", "task"],
        "instruction": ["inputs", "instruction"],
        "response": ["targets", "response"],
    },
    # The synthesizer collection's schema is not documented. LMOps' own reader
    # (instruction_pretrain/utils/read_compre.py) works on {"context", "QA_list": [{"Q", "A"}]}, so
    # we assume that and also accept our own {"pairs": [{"question", "answer"}]}. If the released
    # files differ, point spec["fields"]["context"] / ["pairs"] at the right fields.
    "synth_ft": {
        "id": ["id"],
        "dataset": ["dataset"],
        "task_type": ["task_type"],
        "seen": ["seen"],
        "context": ["context"],
        "pairs": ["pairs", "QA_list"],
    },
}

# Hub ids of the paper's sources whose fields differ from the defaults above.
_HUB_FIELDS: dict[str, dict[str, str]] = {
    "tiiuae/falcon-refinedweb": {"text": "content"},
    "EleutherAI/pile": {"text": "text"},  # filter: {"meta.pile_set_name": "PubMed Abstracts"}
    "Open-Orca/OpenOrca": {"question": "question", "response": "response"},
}

_REQUIRED: dict[str, tuple[str, ...]] = {
    **{name: ("text",) for name in RAW},
    "general_instructions": ("question", "response"),
    "instruction_tuning": ("instruction", "response"),
    "synth_ft": ("context", "pairs"),
}

_PAIR_FORMATS = ("free", "mc", "cot", "mc_cot")


# --------------------------------------------------------------------------------------------
# Record validation (the contract every output line satisfies)


def validate_record(name: str, rec: dict, where: str) -> None:
    """Raise DataError(``where``: ...) unless ``rec`` has the keys and types of data set ``name``."""

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in rec:
            raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(rec[key], kind) or (kind is int and isinstance(rec[key], bool)):
            raise DataError(
                f"{where}: key {key!r} must be {getattr(kind, '__name__', kind)}, got {type(rec[key]).__name__}"
            )
        return rec[key]

    need("id", str)
    if name in RAW:
        need("text", str)
        need("meta", dict)
    elif name == "general_instructions":
        need("question", str)
        need("response", str)
    elif name == "instruction_tuning":
        for key in ("task", "instruction", "response"):
            need(key, str)
    elif name == "synth_ft":
        for key in ("dataset", "task_type", "context"):
            need(key, str)
        need("seen", bool)
        for j, pair in enumerate(need("pairs", list)):
            if not isinstance(pair, dict) or not all(
                isinstance(pair.get(k), str) for k in ("question", "answer")
            ):
                raise DataError(f"{where}: pairs[{j}] must have string question and answer")
            if pair.get("format") not in _PAIR_FORMATS:
                raise DataError(f"{where}: pairs[{j}].format must be one of {_PAIR_FORMATS}")
    else:
        raise DataError(f"{where}: unknown data set {name!r} (known: {', '.join(DATASETS)})")


# --------------------------------------------------------------------------------------------
# Field mapping


_MISSING = object()


def _get(row: dict, path: str) -> Any:
    """``row[a][b]`` for path ``"a.b"`` (a key with a literal dot wins); _MISSING if absent."""
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _matches(row: dict, filt: dict[str, Any]) -> bool:
    for path, wanted in filt.items():
        value = _get(row, path)
        if isinstance(wanted, list | tuple) and not isinstance(value, list | tuple):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def infer_pair_format(question: str) -> str:
    """free / mc / cot / mc_cot from the synthesizer's output conventions (paper-facts §1.2)."""
    cot = question.rstrip().endswith("Let's think step by step.")
    mc = "\nOptions:\n" in question
    return {
        (False, False): "free",
        (True, False): "mc",
        (False, True): "cot",
        (True, True): "mc_cot",
    }[(mc, cot)]


def _map_pairs(value: Any, dropped: Counter) -> list[dict] | None:
    """Our pair list from {question, answer} or {Q, A} items; bad items are dropped and counted."""
    if not isinstance(value, list):
        return None
    pairs = []
    for item in value:
        if not isinstance(item, dict):
            dropped["bad_pair"] += 1
            continue
        q = item.get("question", item.get("Q"))
        a = item.get("answer", item.get("A"))
        if not isinstance(q, str) or not isinstance(a, str) or not q.strip() or not a.strip():
            dropped["bad_pair"] += 1
            continue
        fmt = item.get("format")
        pairs.append(
            {
                "question": q,
                "answer": a,
                "format": fmt if fmt in _PAIR_FORMATS else infer_pair_format(q),
            }
        )
    return pairs


def _field_map(name: str, spec: dict) -> dict[str, list[str]]:
    fields = {k: list(v) for k, v in _DEFAULT_FIELDS[name].items()}
    hub = {k: v for k, v in _HUB_FIELDS.get(spec.get("id", ""), {}).items() if k in fields}
    overrides = spec.get("fields") or {}
    if not isinstance(overrides, dict):
        raise DataError(f"datasets.{name}.fields: must be a mapping of our field -> source field")
    for ours, theirs in {**hub, **overrides}.items():
        if ours not in fields:
            raise DataError(
                f"datasets.{name}.fields: unknown field {ours!r} (known: {', '.join(fields)})"
            )
        if not isinstance(theirs, str):
            raise DataError(f"datasets.{name}.fields.{ours}: must be a field name, got {theirs!r}")
        fields[ours] = [theirs]
    return fields


def _convert(
    name: str, row: dict, fields: dict[str, list[str]], spec: dict, origin: str, dropped: Counter
) -> dict | None:
    """One source row -> our record without id (None if dropped; the reason is counted)."""
    values = {}
    for ours, candidates in fields.items():
        values[ours] = next(
            (v for v in (_get(row, c) for c in candidates) if v is not _MISSING), _MISSING
        )
    for key in _REQUIRED[name]:
        value = values[key]
        if value is _MISSING or value is None:
            dropped[f"missing_{key}"] += 1
            return None
        if key == "pairs":
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = values[key] = str(value)  # CSV/Parquet readers type "4" as a number
        if not isinstance(value, str):
            dropped[f"not_a_string_{key}"] += 1
            return None
        if not value.strip():
            dropped[f"empty_{key}"] += 1
            return None

    def opt_str(key: str, default: str) -> str:
        value = values[key]
        return value if isinstance(value, str) and value.strip() else default

    if name in RAW:
        meta = dict(values["meta"]) if isinstance(values["meta"], dict) else {}
        meta.setdefault("source", origin)
        return {"text": values["text"], "meta": meta}
    if name == "general_instructions":
        return {"question": values["question"], "response": values["response"]}
    if name == "instruction_tuning":
        return {
            "task": opt_str("task", "unknown"),
            "instruction": values["instruction"],
            "response": values["response"],
        }
    pairs = _map_pairs(values["pairs"], dropped)
    if pairs is None:
        dropped["not_a_list_pairs"] += 1
        return None
    if not pairs:
        dropped["no_valid_pairs"] += 1
        return None
    seen = values["seen"]
    return {
        "dataset": opt_str("dataset", spec.get("config") or "unknown"),
        "task_type": opt_str("task_type", "unknown"),
        "seen": seen if isinstance(seen, bool) else True,
        "context": values["context"],
        "pairs": pairs,
    }


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
    import datasets

    kwargs: dict[str, Any] = {}
    if suffix == ".csv":  # read every column as text: pandas would turn "4" into 4 and "" into NaN
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
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


def _collect(
    name: str, rows: Iterable[dict], spec: dict, origin: str
) -> tuple[list[dict], Counter, int, int]:
    """Map, filter, cap, and give ids; returns (records, dropped, rows read, ids renamed)."""
    fields = _field_map(name, spec)
    filt = spec.get("filter") or {}
    if not isinstance(filt, dict):
        raise DataError(f"datasets.{name}.filter: must be a mapping of field -> value(s)")
    max_docs = spec.get("max_docs")
    dropped: Counter = Counter()
    records: list[dict] = []
    used: set[str] = set()
    n_read = renamed = 0
    rows_iter: Iterator[dict] = iter(rows)
    if max_docs is not None and max_docs <= 0:
        return records, dropped, n_read, renamed
    for row in tqdm(rows_iter, desc=f"prepare {name}", unit="rec", mininterval=5):
        n_read += 1
        if not isinstance(row, dict):
            dropped["not_an_object"] += 1
            continue
        if filt and not _matches(row, filt):
            dropped["filtered_out"] += 1
            continue
        rec = _convert(name, row, fields, spec, origin, dropped)
        if rec is None:
            continue
        source_id = next((_get(row, c) for c in fields["id"] if _get(row, c) is not _MISSING), None)
        rec_id = str(source_id) if source_id not in (None, "") else f"{name}-{len(records):07d}"
        if rec_id in used:
            k = 1
            while f"{rec_id}-{k}" in used:
                k += 1
            rec_id, renamed = f"{rec_id}-{k}", renamed + 1
        used.add(rec_id)
        records.append({"id": rec_id, **rec})
        if max_docs is not None and len(records) >= max_docs:
            break
    return records, dropped, n_read, renamed


def prepare_dataset(
    name: str, spec: dict, world_cfg: dict | None, out_path: str, seed: int | None = None
) -> dict:
    """Write data set ``name`` from ``spec``'s source to ``out_path`` (JSONL); return its stats.

    Stats ``{"dataset", "source", "records", "dropped": {reason: n}, "read", "renamed_ids"}`` are
    also written to ``out_path + ".stats.json"``. ``seed`` (optional) overrides the world seed.
    """
    if name not in DATASETS:
        raise DataError(f"datasets.{name}: unknown data set (known: {', '.join(DATASETS)})")
    source = spec.get("source")
    if source == "world":
        records = world.generate_dataset(name, world_cfg, seed)
        dropped, n_read, renamed, origin = Counter(), len(records), 0, "world"
    elif source in ("hub", "local"):
        origin = f"hub:{spec.get('id')}" if source == "hub" else f"local:{spec.get('path')}"
        rows = _hub_rows(name, spec) if source == "hub" else _local_rows(name, spec)
        records, dropped, n_read, renamed = _collect(name, rows, spec, origin)
    else:
        raise DataError(f"datasets.{name}.source: must be world, hub or local, got {source!r}")
    for i, rec in enumerate(records):
        validate_record(name, rec, f"{out_path}:{i + 1}")
    write_jsonl(out_path, records)
    stats = {
        "dataset": name,
        "source": origin,
        "records": len(records),
        "dropped": dict(sorted(dropped.items())),
        "read": n_read,
        "renamed_ids": renamed,
    }
    write_json(out_path + ".stats.json", stats)
    log.info(
        "%s: %d records from %s, dropped %s", name, len(records), origin, stats["dropped"] or "none"
    )
    return stats
