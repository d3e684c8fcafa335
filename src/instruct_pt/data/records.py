"""The record format of each data set: its fields, how a source row maps onto them, and the check
every written record passes.

Our record formats are listed in docs/architecture.md ("Data sets"). A source row (a hub data
set's, or a local file's) is mapped field by field: ``DEFAULT_FIELDS`` names the candidate source
fields of each of ours (first present wins), ``HUB_FIELDS`` the paper's hub sources whose fields
differ, and a data set's ``fields`` setting overrides both (dotted paths reach into nested dicts).
:func:`convert_row` drops a row that lacks a required field or has an empty, non-text or
unencodable one, counting the reason; :func:`validate_record` is the contract of an output line.
Reading the sources and writing the records is :mod:`instruct_pt.data.sources`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from instruct_pt import world
from instruct_pt.common import DataError
from instruct_pt.data.inputs import encodable
from instruct_pt.synthesis.protocol import question_format

RAW = ("raw_general", "raw_biomedicine", "raw_finance")
DATASETS = world.DATASETS

# Our field -> candidate source fields, first present wins; spec["fields"] overrides.
DEFAULT_FIELDS: dict[str, dict[str, list[str]]] = {
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
HUB_FIELDS: dict[str, dict[str, str]] = {
    "tiiuae/falcon-refinedweb": {"text": "content"},
    "EleutherAI/pile": {"text": "text"},  # filter: {"meta.pile_set_name": "PubMed Abstracts"}
    "Open-Orca/OpenOrca": {"question": "question", "response": "response"},
}

REQUIRED: dict[str, tuple[str, ...]] = {
    **{name: ("text",) for name in RAW},
    "general_instructions": ("question", "response"),
    "instruction_tuning": ("instruction", "response"),
    "synth_ft": ("context", "pairs"),
}

PAIR_FORMATS = ("free", "mc", "cot", "mc_cot")


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
            if pair.get("format") not in PAIR_FORMATS:
                raise DataError(f"{where}: pairs[{j}].format must be one of {PAIR_FORMATS}")
    else:
        raise DataError(f"{where}: unknown data set {name!r} (known: {', '.join(DATASETS)})")


# --------------------------------------------------------------------------------------------
# Field mapping


MISSING = object()


def get_field(row: dict, path: str) -> Any:
    """``row[a][b]`` for path ``"a.b"`` (a key with a literal dot wins); MISSING if absent."""
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def matches_filter(row: dict, filt: dict[str, Any]) -> bool:
    for path, wanted in filt.items():
        value = get_field(row, path)
        if isinstance(wanted, list | tuple) and not isinstance(value, list | tuple):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


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
                "format": fmt if fmt in PAIR_FORMATS else question_format(q),
            }
        )
    return pairs


def field_map(name: str, spec: dict) -> dict[str, list[str]]:
    fields = {k: list(v) for k, v in DEFAULT_FIELDS[name].items()}
    hub = {k: v for k, v in HUB_FIELDS.get(spec.get("id", ""), {}).items() if k in fields}
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


def convert_row(
    name: str, row: dict, fields: dict[str, list[str]], spec: dict, origin: str, dropped: Counter
) -> dict | None:
    """One source row -> our record without id (None if dropped; the reason is counted)."""
    values = {}
    for ours, candidates in fields.items():
        values[ours] = next(
            (v for v in (get_field(row, c) for c in candidates) if v is not MISSING), MISSING
        )
    for key in REQUIRED[name]:
        value = values[key]
        if value is MISSING or value is None:
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
        if not encodable(value):
            dropped[f"invalid_unicode_{key}"] += 1
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
