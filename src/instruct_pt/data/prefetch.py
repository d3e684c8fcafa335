"""Put every hub artefact a later job reads into the shared Hugging Face caches (rules/prefetch.smk).

Compute nodes of many clusters are offline: a job that reads a hub model, tokenizer or data set
there finds it only if the submitting host (a login node, with the network) fetched it into the
caches the nodes share (``HF_HOME``: the hub cache for models and tokenizers, the datasets cache
for data sets). Offline, ``huggingface_hub``, ``transformers`` and ``datasets`` fall back to those
caches (``datasets``: "Using the latest cached version of the dataset").

What a config reads from the hub (``plan``), grouped by the job that reads it:

- ``dataset-<name>``: ``datasets.<name>`` with ``source: hub``, one ``load_dataset`` per config
  (``configs``: the synthesizer collection has one per source data set). Loaded in full, not
  streamed: only a prepared data set is found offline.
- ``tokenizer-<name>`` / ``model-<name>``: ``tokenizers`` / ``base_models`` with ``source: hub``,
  ``snapshot_download`` of the files ``AutoTokenizer`` / rule ``base_model`` read.
- ``suite-<suite>``: an lm-eval suite (``source: lm_eval`` without ``local_data``): every leaf task
  of each configured lm-eval task or group (MMLU: 57 subjects), its ``dataset_path`` /
  ``dataset_name`` / ``dataset_kwargs`` as lm-eval's own task YAMLs name them, loaded the way
  lm-eval loads them; an AdaptLLM suite: its test sets (``ADAPTLLM_DATASETS``, one config per
  task), resolved in the job (``plan`` runs when Snakemake parses the workflow: stdlib only).

``fetch`` does it and returns a manifest entry per artefact (the snapshot's commit sha for models
and tokenizers; the cache folder, its commit sha and the row counts for data sets).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError

log = logging.getLogger(__name__)

# The files rule base_model takes from a hub snapshot (instruct_pt.training.base_models), and
# the subset AutoTokenizer reads (no weights).
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
TOKENIZER_PATTERNS = ["*.json", "*.model", "*.txt", "*.tiktoken"]


def plan(config: dict, models: set[str] | None = None) -> dict[str, list[dict]]:
    """{group: [artefact, ...]} of every hub artefact the config's jobs read (sorted, stable).

    ``models``: the base models the workflow reads (rules/common.smk ``base_models_read``);
    None: every one in ``base_models``."""
    groups: dict[str, list[dict]] = {}
    for name, spec in sorted(config["datasets"].items()):
        if spec.get("source") != "hub":
            continue
        configs = spec.get("configs") or [spec.get("config")]
        groups[f"dataset-{name}"] = [
            {
                "kind": "dataset",
                "key": f"datasets.{name}",
                "id": spec["id"],
                "config": c,
                "split": spec.get("split", "train"),
                "revision": spec.get("revision"),
            }
            for c in configs
        ]
    for section, kind in (("tokenizers", "tokenizer"), ("base_models", "model")):
        for name, spec in sorted(config[section].items()):
            if kind == "model" and models is not None and name not in models:
                continue
            if spec.get("source") == "hub":
                groups[f"{kind}-{name}"] = [
                    {
                        "kind": kind,
                        "key": f"{section}.{name}",
                        "id": spec["id"],
                        "revision": spec.get("revision"),
                    }
                ]
    for suite, spec in sorted(config["evaluation"]["suites"].items()):
        if spec["source"] == "lm_eval" and spec.get("local_data") is None:
            groups[f"suite-{suite}"] = [
                {
                    "kind": "lm_eval_task",
                    "key": f"evaluation.suites.{suite}.tasks.{task}",
                    "task": entry["lm_eval_task"],
                }
                for task, entry in sorted((spec.get("tasks") or {}).items())
            ]
        elif spec["source"] == "adaptllm":  # its hub id and configs: resolved in the job
            groups[f"suite-{suite}"] = [
                {
                    "kind": "adaptllm_suite",
                    "key": f"evaluation.suites.{suite}",
                    "suite": suite,
                    "tasks": sorted(spec.get("tasks") or []) or None,
                }
            ]
    return groups


def adaptllm_datasets(suite: str, tasks: list[str] | None) -> list[dict]:
    """The AdaptLLM test sets of a suite as rule eval_tasks writes them into its task YAMLs
    (instruct_pt.evaluation.suites: one hub config per task of ``ADAPTLLM_DATASETS[suite]``)."""
    from instruct_pt.evaluation.suites import ADAPTLLM_DATASETS, ADAPTLLM_TASKS

    if suite not in ADAPTLLM_TASKS:
        raise DataError(
            f"evaluation.suites.{suite}: AdaptLLM tasks exist for {sorted(ADAPTLLM_TASKS)}"
        )
    table = ADAPTLLM_TASKS[suite]
    unknown = sorted(set(tasks or []) - set(table))
    if unknown:
        raise DataError(f"evaluation.suites.{suite}.tasks: unknown AdaptLLM task(s) {unknown}")
    return [
        {"path": ADAPTLLM_DATASETS[suite], "name": table[t][0], "kwargs": {}}
        for t in sorted(tasks or table)
    ]


def lm_eval_datasets(task: str, index: dict) -> list[dict]:
    """The (dataset_path, dataset_name, dataset_kwargs) of every leaf task of an lm-eval task,
    group or tag, read from lm-eval's task index (its YAMLs, includes resolved), in order."""
    out: list[dict] = []

    def leaf(cfg: dict, name: str) -> None:
        if not cfg.get("dataset_path"):
            raise DataError(f"lm-eval task {name} names no dataset_path (task {task})")
        kwargs = dict(cfg.get("dataset_kwargs") or {})
        kwargs.pop("trust_remote_code", None)  # lm-eval drops it for datasets >= 4
        item = {"path": cfg["dataset_path"], "name": cfg.get("dataset_name"), "kwargs": kwargs}
        if item not in out:
            out.append(item)

    def visit(item: Any, overrides: dict, depth: int) -> None:
        if depth > 20:
            raise DataError(f"lm-eval task {task}: groups nest too deeply")
        if isinstance(item, dict):
            name = item.get("task") if isinstance(item.get("task"), str) else item.get("group")
            rest = {k: v for k, v in item.items() if k not in ("task", "group")}
            if name not in index and isinstance(item.get("task"), list):  # inline group
                for child in item["task"]:
                    visit(child, {**overrides, **rest}, depth + 1)
                return
            item, overrides = name, {**overrides, **rest}
        entry = index.get(item)
        if entry is None:
            raise DataError(f"lm-eval has no task, group or tag {item!r} (needed by {task})")
        kind = entry.kind.name
        if kind == "TAG":
            for member in sorted(entry.tags):
                visit(member, overrides, depth + 1)
        elif kind == "GROUP":
            members = entry.cfg.get("task") or []
            for child in members if isinstance(members, list) else [members]:
                visit(child, overrides, depth + 1)
        else:
            leaf({**(entry.cfg or {}), **overrides}, entry.name)

    visit(task, {}, 0)
    return out


def _snapshot_sha(path: str) -> str:
    return Path(path).name  # hub cache: .../snapshots/<commit sha>


def _dataset_record(ds: Any) -> dict:
    """Where a loaded data set lives in the datasets cache, its commit sha, its row counts."""
    splits = ds if hasattr(ds, "keys") and not hasattr(ds, "cache_files") else {"split": ds}
    rows, folder = {}, None
    for split, d in splits.items():
        rows[split] = getattr(d, "num_rows", None)
        files = getattr(d, "cache_files", None) or []
        if files and folder is None:
            folder = str(Path(files[0]["filename"]).parent)
    # datasets cache: .../<namespace___name>/<config>/<version>/<commit sha>/<files>
    return {"cache": folder, "sha": Path(folder).name if folder else None, "rows": rows}


def fetch(artefacts: list[dict], task_index: dict | None = None) -> list[dict]:
    """Fetch every artefact into the HF caches; one manifest entry each (lm-eval tasks: one per
    leaf data set). Tries all, then raises one error naming every failure by config key."""
    if not artefacts:
        return []
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise DataError(
            "prefetch downloads from the hub but HF_HUB_OFFLINE is set: run it where the network "
            "is (the login node), without HF_HUB_OFFLINE / HF_DATASETS_OFFLINE"
        )
    import datasets
    from huggingface_hub import snapshot_download

    records: list[dict] = []
    failures: list[str] = []
    for a in artefacts:
        try:
            if a["kind"] in ("model", "tokenizer"):
                patterns = MODEL_PATTERNS if a["kind"] == "model" else TOKENIZER_PATTERNS
                log.info("%s: snapshot of %s (revision %s)", a["key"], a["id"], a["revision"])
                path = snapshot_download(
                    repo_id=a["id"], revision=a["revision"], allow_patterns=patterns
                )
                records.append({**a, "snapshot": str(path), "sha": _snapshot_sha(str(path))})
            elif a["kind"] == "dataset":
                log.info("%s: %s (config %s)", a["key"], a["id"], a["config"])
                ds = datasets.load_dataset(
                    a["id"], a["config"], split=a["split"], revision=a["revision"]
                )
                records.append({**a, **_dataset_record(ds)})
            elif a["kind"] in ("lm_eval_task", "adaptllm_suite"):
                if a["kind"] == "lm_eval_task":
                    if task_index is None:
                        from lm_eval.tasks import TaskManager

                        task_index = TaskManager().task_index
                    leaves = lm_eval_datasets(a["task"], task_index)
                else:
                    leaves = adaptllm_datasets(a["suite"], a["tasks"])
                for d in leaves:
                    log.info("%s: %s (config %s)", a["key"], d["path"], d["name"])
                    ds = datasets.load_dataset(path=d["path"], name=d["name"], **d["kwargs"])
                    records.append(
                        {"kind": "dataset", "key": a["key"], "task": a.get("task"), **d}
                        | _dataset_record(ds)
                    )  # one per leaf data set
            else:
                raise DataError(f"unknown artefact kind {a['kind']!r}")
        except Exception as e:  # every hub error type: collect, name the key, go on
            what = a.get("id") or a.get("task") or a.get("suite")
            failures.append(f"{a['key']} ({what}): {type(e).__name__}: {e}")
            log.error("could not fetch %s (%s): %s", a["key"], what, e)
    if failures:
        raise DataError("prefetch failed for:\n  " + "\n  ".join(failures))
    return records
