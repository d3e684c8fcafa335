"""Running a model on a suite with lm-evaluation-harness and writing one result per task.

`evaluate` (rule evaluate) runs one model on a suite folder (instruct_pt.evaluation.suites) with
a single `lm_eval.simple_evaluate` call (the harness costs ~10 s to start) and writes one small
JSON per task, which is all that tables, figures and claims read, plus the per-document metric
items beside it. The model is lm-eval's own "hf" wrapper, built here so that the domain choice
tasks can count answer tokens with it (`instruct_pt.evaluation.lm_tasks`); `hf_placement` puts it
on the job's device(s). Also here: loading a suite's tasks into lm-eval (`task_manager`,
`load_task`, shared with instruct_pt.evaluation.render), reading lm-eval's reported metrics, and
`task_hash`, the fingerprint of a task's definition and data written into every result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError, read_json, sha256_file, write_json, write_jsonl
from instruct_pt.evaluation.hooks import AGGREGATIONS, aggregate_items
from instruct_pt.evaluation.task_yaml import load_task_yaml_plain

log = logging.getLogger(__name__)


def evaluate(
    model_dir: str,
    suite_dir: str,
    out_dir: str,
    model_name: str,
    suite: str,
    batch_size: int | str = 8,
    device: str = "auto",
    limit: int | None = None,
    num_fewshot: int | None = None,
    tasks: list[str] | None = None,
    add_bos_token: bool = True,
    seed: int = 1234,
    dtype: str = "float32",
    max_length: int | None = None,
    gpus: int | None = None,
) -> list[dict]:
    """Evaluate the model saved in `model_dir` on a suite; write `out_dir/{task}.json` per task.

    One `simple_evaluate` call covers all selected tasks: each task object gets its own number
    of shots (`num_fewshot` overrides the suite's for all of them, as for the zero- and
    few-shot MMLU curves of Fig. 4). `add_bos_token` is on by default because instruction-
    pretrained models were trained with BOS (paper §2.3). Values and stderrs are x100; a
    missing or NaN stderr (e.g. for corpus-level F1) is null. Returns the written records.

    Beside each `{task}.json`, `{task}.docs.jsonl` holds one line per evaluated document, in
    lm-eval's document order: `{"doc": index (a group's: "leaf task/index"), "item": the metric's
    per-document item}`; the record's `aggregation` names the function that turns the items
    into the value (`aggregate_items`; checked here against lm-eval's number).

    The model is lm-eval's "hf" (HFLM), built here rather than inside `simple_evaluate` so that
    the domain choice tasks can count answer tokens with it (`instruct_pt.evaluation.lm_tasks`).
    `max_length` (the model window; prompts are left-truncated to it, generation prompts to
    max_length - max_gen_toks) defaults to the suite's `max_length` (AdaptLLM: 2048), else to
    what lm-eval reads from the model config.

    Placement (`hf_placement`): `gpus` is what the job got (the rule's `gpu` resource); `device`
    "auto" is CUDA when available and the job has GPUs, else the CPU; over more than one GPU the
    model is split across them (lm-eval's `parallelize=True`).
    """
    import lm_eval
    from lm_eval.api.registry import get_model

    from instruct_pt.evaluation.lm_tasks import scoring_model
    from instruct_pt.progress import quiet_progress_bars

    quiet_progress_bars()  # no model-loading or dataset bars in the job's log

    sdir = Path(suite_dir).resolve()
    meta = read_json(sdir / "suite.json")
    if meta.get("suite") != suite:
        raise DataError(f"{sdir / 'suite.json'}: holds suite {meta.get('suite')!r}, not {suite!r}")
    names = list(tasks) if tasks else sorted(meta["tasks"])
    unknown = [t for t in names if t not in meta["tasks"]]
    if unknown:
        raise DataError(f"{sdir / 'suite.json'}: no task(s) {unknown}")
    entries = {t: meta["tasks"][t] for t in names}
    lm_names = [e["lm_eval_task"] for e in entries.values()]
    if len(set(lm_names)) != len(lm_names):
        raise DataError(f"{sdir / 'suite.json'}: selected tasks share an lm-eval task: {lm_names}")
    if add_bos_token:
        _warn_if_no_bos(model_dir)
    manager, local = task_manager(sdir, lm_names)
    objects, leaves, tops = [], {}, {}
    for task, entry in entries.items():
        obj, leaves[task] = load_task(manager, sdir, entry["lm_eval_task"])
        tops[task] = obj
        shots = int(entry["num_fewshot"] if num_fewshot is None else num_fewshot)
        for leaf in leaves[task]:
            leaf.set_config(key="num_fewshot", value=shots)
        objects.append(obj)

    model_args: dict[str, Any] = {
        "pretrained": model_dir,
        "dtype": dtype,
        "add_bos_token": add_bos_token,
    }
    if max_length is None:
        max_length = meta.get("max_length")
    if max_length is not None:
        model_args["max_length"] = int(max_length)
    placement, device = hf_placement(device, gpus)
    model_args.update(placement)
    log.info(
        "lm-eval on %s: %s (limit=%s; device %s%s)",
        model_name,
        ", ".join(lm_names),
        limit,
        device,
        f", split over {gpus} GPUs" if placement.get("parallelize") else "",
    )
    # What simple_evaluate(model="hf", model_args=...) would build (max_batch_size: its default).
    lm = get_model("hf").create_from_arg_obj(
        model_args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
    )
    with scoring_model(lm), harness_bars_off():
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=objects,
            num_fewshot=None,  # set per task above
            batch_size=batch_size,
            device=device,
            limit=limit,
            # Per-document metric items for the docs files. The requests' prompts and
            # responses stay in memory for the whole run anyway; the samples only refer to them
            # (plus three short hashes per document) and are dropped once the items are written.
            log_samples=True,
            task_manager=manager,
            bootstrap_iters=1000,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    if res is None:  # non-zero rank of a distributed run: rank 0 writes
        return []

    harness = f"lm-eval {lm_eval.__version__}"
    samples = res.pop("samples")  # the per-document records (log_samples=True), read once here
    records = []
    for task, entry in entries.items():
        lm_task, metric = entry["lm_eval_task"], entry["metric"]
        value, stderr = read_metric(res["results"].get(lm_task, {}), metric, lm_task)
        docs_path = Path(out_dir) / f"{task}.docs.jsonl"
        aggregation = _write_doc_items(docs_path, samples, tops[task], leaves[task], metric, value)
        rec = {
            "model": model_name,
            "suite": suite,
            "task": task,
            "paper_name": entry["paper_name"],
            "metric": metric,
            "value": 100.0 * value,
            "stderr": None if stderr is None else 100.0 * stderr,
            "n": sum(int(res["n-samples"][t.task_name]["effective"]) for t in leaves[task]),
            "num_fewshot": int(leaves[task][0].get_config("num_fewshot")),
            "harness": harness,
            "task_hash": task_hash(sdir, lm_task, leaves[task], lm_task in local),
            "aggregation": aggregation,
        }
        write_json(Path(out_dir) / f"{task}.json", rec)
        records.append(rec)
        log.info("%s %s: %s = %.2f (n=%d)", model_name, task, metric, rec["value"], rec["n"])
    return records


@contextlib.contextmanager
def harness_bars_off() -> Iterator[list[str]]:
    """lm-eval's tqdm bars off while the harness runs, when stderr is not a terminal (a job's
    log file, where each bar is one line of carriage returns).

    lm-eval has no global switch: its models take ``disable_tqdm``, which ``simple_evaluate``
    never passes, and the request-building and bootstrap loops take none. So every loaded
    ``lm_eval`` module's ``tqdm`` is swapped for one that is always disabled, and put back after.
    Yields the patched modules' names. On a terminal nothing changes."""
    if sys.stderr.isatty():
        yield []
        return
    import tqdm as tqdm_pkg
    import tqdm.auto

    bars = (tqdm_pkg.tqdm, tqdm.auto.tqdm)

    def off(*args: Any, **kwargs: Any) -> Any:
        kwargs["disable"] = True
        return tqdm_pkg.tqdm(*args, **kwargs)

    saved = {
        mod: mod.tqdm
        for name, mod in list(sys.modules.items())
        if name.split(".")[0] == "lm_eval"
        and any(getattr(mod, "tqdm", None) is bar for bar in bars)
    }
    for mod in saved:
        mod.tqdm = off
    try:
        yield sorted(mod.__name__ for mod in saved)
    finally:
        for mod, bar in saved.items():
            mod.tqdm = bar


def hf_placement(device: str = "auto", gpus: int | None = None) -> tuple[dict[str, Any], str]:
    """(model args placing lm-eval's HF model, the device it gets) for a job with `gpus` GPUs.

    One device (the CPU, or one GPU: "cuda"): no extra model args. More than one GPU (a model
    too large for one, e.g. Llama3-70B in bf16, ~140 GB): `parallelize=True`, lm-eval's naive
    model parallelism (accelerate's `device_map="auto"` over the visible GPUs, the job's own on
    a cluster) with inputs on "cuda" (the first GPU). `device` and `gpus` as
    `instruct_pt.devices.resolve_device`; fewer visible GPUs than `gpus` is an error.
    """
    from instruct_pt.devices import resolve_device, visible_gpus

    resolved = resolve_device(device, gpus)
    if resolved.startswith("cuda") and gpus is not None and gpus > 1:
        visible_gpus(gpus)
        return {"parallelize": True}, "cuda"
    return {}, resolved


def task_manager(sdir: Path, lm_names: list[str]) -> tuple[Any, set[str]]:
    """(TaskManager, the names defined in the suite folder). It indexes only what the suite
    needs: the folder for its own YAMLs, lm-eval's built-ins (thousands of files, seconds to
    scan) only if some task is one."""
    from lm_eval.tasks import TaskManager

    local = {n for n in lm_names if (sdir / f"{n}.yaml").exists()}
    manager = TaskManager(
        include_path=str(sdir) if local else None,
        include_defaults=bool(set(lm_names) - local),
    )
    return manager, local


def load_task(manager: Any, sdir: Path, lm_task: str) -> tuple[Any, list]:
    """(task or group object, its leaf tasks) of one lm-eval task name."""
    from lm_eval.api.group import Group

    loaded = manager.load([lm_task])
    groups = loaded.get("groups", {})
    obj = groups[lm_task] if lm_task in groups else loaded["tasks"].get(lm_task)
    if obj is None:
        raise DataError(f"{sdir / 'suite.json'}: {lm_task} is an lm-eval tag; name a task or group")
    return obj, obj.get_all_tasks() if isinstance(obj, Group) else [obj]


def _metric_key(result: dict, metric: str, lm_task: str) -> str:
    """The 'metric,filter' key reported for `metric` (filter "none" first)."""
    keys = sorted(k for k in result if k.split(",")[0] == metric)
    if not keys:
        raise DataError(f"lm-eval reported no {metric!r} for {lm_task} (got {sorted(result)})")
    return f"{metric},none" if f"{metric},none" in keys else keys[0]


def read_metric(result: dict, metric: str, lm_task: str) -> tuple[float, float | None]:
    """(value, stderr or None) of `metric` from one lm-eval result dict ('metric,filter' keys)."""
    key = _metric_key(result, metric, lm_task)
    stderr = result.get(key.replace(",", "_stderr,", 1))
    ok = isinstance(stderr, int | float) and math.isfinite(stderr)
    return float(result[key]), float(stderr) if ok else None


def _aggregation_name(leaf: Any, metric: str) -> str | None:
    """The AGGREGATIONS name of a leaf task's aggregation of `metric`, None if not one of ours."""
    from lm_eval.api.registry import get_aggregation

    fn = leaf.aggregation().get(metric)
    if fn is None:
        return None
    if fn is get_aggregation("mean"):
        return "mean"
    name = getattr(fn, "__name__", "")
    return name if name in AGGREGATIONS and name != "mean" else None


def _write_doc_items(
    path: Path, samples: dict, top: Any, leaves: list, metric: str, value: float
) -> str | None:
    """Write `{task}.docs.jsonl` (see `evaluate`); return the aggregation name, or None when the
    value cannot be recomputed from the items (a group not weighted by size, a foreign
    aggregation; the items are written all the same). A recomputed value that differs from
    lm-eval's is a DataError."""
    from lm_eval.api.group import Group

    is_group = isinstance(top, Group)
    names = {_aggregation_name(leaf, metric) for leaf in leaves}
    aggregation = names.pop() if len(names) == 1 else None
    if is_group:
        weighted = [
            a.weight_by_size for a in (top.aggregate_metric_list or []) if a.metric == metric
        ]
        if aggregation != "mean" or weighted != [True]:
            aggregation = None
    lines, items = [], []
    for leaf in leaves:
        filters = {s["filter"] for s in samples.get(leaf.task_name, [])}
        if not filters:
            raise DataError(f"lm-eval logged no samples for {leaf.task_name}")
        # The filter lm-eval reports for this metric ("none" first, as read_metric).
        key = _metric_key({f"{metric},{f}": 0 for f in filters}, metric, leaf.task_name)
        chosen = key.split(",", 1)[1]
        # In document order (a data-parallel run gathers the samples rank by rank).
        for sample in sorted(samples[leaf.task_name], key=lambda x: x["doc_id"]):
            if sample["filter"] != chosen:
                continue
            doc = f"{leaf.task_name}/{sample['doc_id']}" if is_group else sample["doc_id"]
            lines.append({"doc": doc, "item": sample[metric]})
            items.append(sample[metric])
    if aggregation is not None:
        recomputed = aggregate_items(aggregation, json.loads(json.dumps(items)))
        if not math.isclose(recomputed, value, rel_tol=1e-9, abs_tol=1e-12):
            raise DataError(
                f"{path}: {aggregation} over {len(items)} per-document items gives {recomputed!r}, "
                f"lm-eval reported {value!r} for {metric}"
            )
    else:
        log.warning("%s: %s cannot be recomputed from per-document items", path, metric)
    write_jsonl(path, lines)
    return aggregation


def task_hash(sdir: Path, lm_task: str, leaves: list, local: bool) -> str:
    """sha256 identifying a task's definition and data, stable across rebuilds and machines.

    For a generated YAML: its text with the suite folder's path written as `<suite_dir>` and the
    paths of data files elsewhere (local_data) as `<{split} data>`, plus the sha256 of each local
    data file it reads; for a local group, the same for each member YAML in the folder
    `{lm_task}/`. For a built-in task (or group): the config dump of each leaf task, without
    run-time settings (shots) and install paths (metadata).
    """
    h = hashlib.sha256()
    if local:
        paths = [sdir / f"{lm_task}.yaml"]
        if (sdir / lm_task).is_dir():  # a local group's members (instruct_pt.evaluation.local)
            paths += sorted((sdir / lm_task).rglob("*.yaml"))
        for i, path in enumerate(paths):
            raw = path.read_text(encoding="utf-8")
            files = (load_task_yaml_plain(raw).get("dataset_kwargs") or {}).get("data_files") or {}
            text = raw.replace(str(sdir), "<suite_dir>")
            for split in sorted(files):
                text = text.replace(str(files[split]), f"<{split} data>")
            if i:
                h.update(f"\n{path.relative_to(sdir).as_posix()}\n".encode())
            h.update(text.encode("utf-8"))
            for split in sorted(files):
                data = Path(files[split])
                if data.is_absolute() and data.exists():
                    h.update(f"\n{split} {sha256_file(data)}".encode())
    else:
        dumps = []
        for leaf in sorted(leaves, key=lambda t: t.task_name):
            cfg = {
                k: v for k, v in leaf.dump_config().items() if k not in ("metadata", "num_fewshot")
            }
            dumps.append(cfg)
        h.update(json.dumps(dumps, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()


def _warn_if_no_bos(model_dir: str) -> None:
    """add_bos_token only helps if the tokenizer's post-processor really prepends BOS."""
    if not os.path.isdir(model_dir):
        return
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok("a", add_special_tokens=True)["input_ids"]
    if tok.bos_token_id is None or not ids or ids[0] != tok.bos_token_id:
        log.warning(
            "%s: tokenizer does not prepend BOS even with add_special_tokens=True", model_dir
        )
