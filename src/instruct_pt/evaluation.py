"""Evaluation through lm-evaluation-harness, with every task declared as data.

Two steps, one per workflow rule:

- `build_suite` writes a suite folder: one lm-eval task YAML per task (absolute data paths, so
  the harness finds the data whatever its working directory) and `suite.json`, which names each
  task's lm-eval task, headline metric, number of shots and name in the paper. Three sources:
  the miniature world's evaluation files (`"world"`), lm-eval's built-in general benchmarks
  (`"lm_eval"`, paper scale; from the hub, or with `local_data` from local copies, offline:
  instruct_pt.local_benchmarks) and the AdaptLLM domain test sets on the hub (`"adaptllm"`).
- `evaluate` runs one model on a suite with a single `lm_eval.simple_evaluate` call (the
  harness costs ~10 s to start) and writes one small JSON per task, which is all that tables,
  figures and claims read. The model is lm-eval's own "hf" wrapper.

Metrics that lm-eval does not have (the domain tasks' F1 variants, numeric exact match) are
plugged in through lm-eval's `!function` hooks, which import the `lm_*` functions of this
module by dotted name; the arithmetic lives in `instruct_pt.metrics`.

Choice scoring. lm-eval scores each option, appended to the prompt as ' ' + option, by its
summed log-likelihood (`acc`) or by that sum divided by the option's length in characters
(`acc_norm`); the general tasks use these, lm-eval's own. The domain metrics (`accuracy`, the F1
variants) predict as the paper does (AdaptLLM's `inference.py`, `choice_losses`): the option with
the lowest mean per-token NLL, -loglikelihood / number of answer tokens. Their task YAMLs use
`instruct_pt.lm_tasks.DomainTask`, which appends each option's token count (as lm-eval's HF
model splits context and continuation) to the results our `lm_mc_*` hooks receive; `evaluate`
lends it the model it runs (see that module).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from instruct_pt import metrics as M
from instruct_pt.common import (
    DataError,
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
    write_jsonl,
    write_text,
)

log = logging.getLogger(__name__)

OUTPUT_TYPES = ("multiple_choice", "generate_until")
# World task types (instruct_pt.world contract) -> lm-eval output types.
_WORLD_TYPES = {"multiple_choice": "multiple_choice", "generate": "generate_until"}
SUITE_TASK_KEYS = ("lm_eval_task", "metric", "num_fewshot", "paper_name")

# Paper §4.3: greedy, stop at a newline, at most 100 new tokens.
GENERATION_KWARGS = {"until": ["\n"], "max_gen_toks": 100, "do_sample": False}

# AdaptLLM domain test sets (paper §4.3; LMOps adaptllm/src/dataset_readers/task.py):
# our name -> (hub config, lm-eval output type, metric, paper name).
ADAPTLLM_DATASETS = {"biomedicine": "AdaptLLM/medicine-tasks", "finance": "AdaptLLM/finance-tasks"}
# AdaptLLM's reader works in a 2048-token window [P] (inference_dsr.py: max_length=n_tokens=2048,
# generate_max_len=100): generation prompts are left-truncated to 2048 - 100 tokens. lm-eval's
# HF model does the same when its max_length is 2048 (generate_until keeps the last
# max_length - max_gen_toks prompt tokens), so AdaptLLM suites ask `evaluate` for that length.
ADAPTLLM_MAX_LENGTH = 2048
ADAPTLLM_TASKS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "biomedicine": {
        "pubmedqa": ("PubMedQA", "multiple_choice", "accuracy", "PubMedQA"),
        "chemprot": ("ChemProt", "multiple_choice", "micro_f1", "ChemProt"),
        "mqp": ("MQP", "multiple_choice", "accuracy", "MQP"),
        "rct": ("RCT", "multiple_choice", "micro_f1", "RCT"),
        "usmle": ("USMLE", "multiple_choice", "accuracy", "USMLE"),
    },
    "finance": {
        "convfinqa": ("ConvFinQA", "generate_until", "numeric_em", "ConvFinQA"),
        "fpb": ("FPB", "multiple_choice", "weighted_f1", "FPB"),
        "fiqa_sa": ("FiQA_SA", "multiple_choice", "weighted_f1", "FiQA SA"),
        "headline": ("Headline", "multiple_choice", "mean_weighted_f1", "Headline"),
        "ner": ("NER", "generate_until", "entity_f1", "NER"),
    },
}

# ---------------------------------------------------------------------------- lm-eval hooks
# lm-eval calls process_results(doc, results) once per document and then the metric's
# aggregation on the list of what it returned. `results` is [generated_text] for generation and,
# for multiple choice, one (loglikelihood, is_greedy, n_tokens) triple per option: DomainTask
# (instruct_pt.lm_tasks) appends n_tokens to lm-eval's (loglikelihood, is_greedy) pair.


def _gold_index(doc: dict) -> int:
    """Gold option index: world records carry `gold`, AdaptLLM records `gold_index`."""
    return int(doc["gold"] if "gold" in doc else doc["gold_index"])


def _choices(doc: dict) -> list[str]:
    return list(doc["choices"] if "choices" in doc else doc["options"])


def mean_nll(loglikelihood: float, n_tokens: int) -> float:
    """An option's mean per-token negative log-likelihood (the paper's choice score)."""
    if n_tokens < 1:
        raise DataError(f"an option scored over {n_tokens} tokens has no mean NLL")
    return -loglikelihood / n_tokens


def _pred_index(doc: dict, results: Sequence[tuple[float, bool, int]]) -> int:
    """The option with the lowest mean per-token NLL (paper; AdaptLLM's choice_losses)."""
    n_choices = len(_choices(doc))
    if len(results) != n_choices or any(len(r) != 3 for r in results):
        raise DataError(
            f"document {doc.get('id')!r}: expected {n_choices} (loglikelihood, is_greedy, "
            f"n_tokens) results, got {list(results)!r}: a domain choice task's YAML must name "
            "class instruct_pt.lm_tasks.DomainTask (rebuild suites written before it, rule "
            "eval_tasks) and run through instruct_pt.evaluation.evaluate"
        )
    losses = [mean_nll(ll, n) for ll, _, n in results]
    return min(range(n_choices), key=losses.__getitem__)  # first of ties, like torch.argmin


def lm_answer(doc: dict) -> str:
    """Gold answer text: world `answer`, or AdaptLLM `label` (a string or a list, first wins)."""
    if "answer" in doc:
        return str(doc["answer"])
    label = doc["label"]
    return str(label if isinstance(label, str) else label[0])


def lm_mc_micro_f1(doc: dict, results: list) -> dict:
    return {"micro_f1": (_gold_index(doc), _pred_index(doc, results))}


def lm_mc_weighted_f1(doc: dict, results: list) -> dict:
    return {"weighted_f1": (_gold_index(doc), _pred_index(doc, results))}


def _subtask(doc: dict) -> str:
    """Headline's sub-question: `subtask`, AdaptLLM's `class_id`, or the middle of a world id
    (`{task}-{subtask}-{index}`)."""
    if "subtask" in doc:
        return str(doc["subtask"])
    if "class_id" in doc:
        return str(doc["class_id"])
    parts = str(doc.get("id", "")).split("-")
    if len(parts) >= 3:
        return parts[-2]
    raise DataError(f"document {doc.get('id')!r} names no sub-question (subtask/class_id/id)")


def lm_mc_accuracy(doc: dict, results: list) -> dict:
    """The domain tasks' accuracy, predicting by mean per-token NLL (see top)."""
    return {"accuracy": float(_gold_index(doc) == _pred_index(doc, results))}


def lm_mc_mean_weighted_f1(doc: dict, results: list) -> dict:
    return {"mean_weighted_f1": (_subtask(doc), _gold_index(doc), _pred_index(doc, results))}


def lm_gen_numeric_em(doc: dict, results: list) -> dict:
    return {"numeric_em": M.numeric_em(results[0], lm_answer(doc))}


def lm_gen_numeric_em_adaptllm(doc: dict, results: list) -> dict:
    """ConvFinQA as AdaptLLM scores it: any number of the answer line, '%' read as /100."""
    score = M.numeric_em(results[0], lm_answer(doc), any_number=True, percent_as_fraction=True)
    return {"numeric_em": score}


def lm_gen_exact_match(doc: dict, results: list) -> dict:
    return {"exact_match": M.exact_match(results[0], lm_answer(doc))}


def lm_gen_token_f1(doc: dict, results: list) -> dict:
    return {"token_f1": M.token_f1(results[0], lm_answer(doc))}


def lm_gen_entity_f1(doc: dict, results: list) -> dict:
    gold = [tuple(e) for e in M.parse_entities(lm_answer(doc))]
    pred = [tuple(e) for e in M.parse_entities(results[0])]
    return {"entity_f1": (gold, pred)}


def lm_agg_micro_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.micro_f1(golds, preds)


def lm_agg_weighted_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.weighted_f1(golds, preds)


def lm_agg_mean_weighted_f1(items: list) -> float:
    subs, golds, preds = zip(*items, strict=True) if items else ((), (), ())
    return M.mean_weighted_f1(subs, golds, preds)


def lm_agg_entity_f1(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.entity_f1(golds, preds, average="micro")


def lm_agg_entity_f1_doc(items: list) -> float:
    golds, preds = zip(*items, strict=True) if items else ((), ())
    return M.entity_f1(golds, preds, average="doc")


# (output type, metric) -> (process_results hook or None for lm-eval's own, aggregation).
# "mean" is lm-eval's registered mean (which also gets a closed-form stderr).
_METRIC_HOOKS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("multiple_choice", "acc"): (None, "mean"),
    ("multiple_choice", "acc_norm"): (None, "mean"),
    ("multiple_choice", "accuracy"): ("lm_mc_accuracy", "mean"),
    ("multiple_choice", "micro_f1"): ("lm_mc_micro_f1", "lm_agg_micro_f1"),
    ("multiple_choice", "weighted_f1"): ("lm_mc_weighted_f1", "lm_agg_weighted_f1"),
    ("multiple_choice", "mean_weighted_f1"): ("lm_mc_mean_weighted_f1", "lm_agg_mean_weighted_f1"),
    ("generate_until", "numeric_em"): ("lm_gen_numeric_em", "mean"),
    ("generate_until", "exact_match"): ("lm_gen_exact_match", "mean"),
    ("generate_until", "token_f1"): ("lm_gen_token_f1", "mean"),
    ("generate_until", "entity_f1"): ("lm_gen_entity_f1", "lm_agg_entity_f1"),
}
# AdaptLLM's own scorers differ from our defaults for two metrics (see instruct_pt.metrics).
_ADAPTLLM_HOOKS = {
    ("generate_until", "numeric_em"): ("lm_gen_numeric_em_adaptllm", "mean"),
    ("generate_until", "entity_f1"): ("lm_gen_entity_f1", "lm_agg_entity_f1_doc"),
}
METRICS = sorted({m for _, m in _METRIC_HOOKS})


# ---------------------------------------------------------------------------- YAML writing


class _Function(str):
    """A dotted function name written as lm-eval's `!function` YAML tag."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, lambda d, v: d.represent_scalar("!function", str(v)))


def _fn(name: str) -> _Function:
    return _Function(f"{__name__}.{name}")


# The lm-eval task class of the domain suites (mean-NLL choice scoring, AdaptLLM field checks).
DOMAIN_TASK_CLASS = _Function("instruct_pt.lm_tasks.DomainTask")


def _metric_block(output_type: str, metric: str, adaptllm: bool = False) -> dict[str, Any]:
    """process_results / metric_list entries of a task YAML for its headline metric."""
    key = (output_type, metric)
    hooks = {**_METRIC_HOOKS, **_ADAPTLLM_HOOKS} if adaptllm else _METRIC_HOOKS
    if key not in hooks:
        allowed = sorted(m for t, m in hooks if t == output_type)
        raise DataError(
            f"metric {metric!r} is not available for {output_type} (use one of {allowed})"
        )
    process, agg = hooks[key]
    if process is None:  # lm-eval's built-in choice metrics: report acc and acc_norm together
        names = ["acc", "acc_norm"]
        return {"metric_list": [_metric_entry(n, "mean") for n in names]}
    block: dict[str, Any] = {}
    if output_type == "multiple_choice":  # our hooks rank by mean NLL: they need token counts
        block["class"] = DOMAIN_TASK_CLASS
    block.update({"process_results": _fn(process), "metric_list": [_metric_entry(metric, agg)]})
    return block


def _metric_entry(metric: str, agg: str) -> dict[str, Any]:
    return {
        "metric": metric,
        "aggregation": agg if agg == "mean" else _fn(agg),
        "higher_is_better": True,
    }


def _write_task_yaml(path: Path, cfg: dict[str, Any], header: str) -> None:
    body = yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    write_text(path, f"# {header}\n# Generated by instruct_pt.evaluation.build_suite.\n{body}")


def _task_name(suite: str, task: str) -> str:
    return f"ipt_{suite}_{task}"


# ---------------------------------------------------------------------------- build_suite


def build_suite(suite: str, spec: dict, out_dir: str, world_cfg: dict | None = None) -> dict:
    """Write the evaluation suite `suite` into `out_dir` and return its `suite.json` content.

    `spec["source"]` selects where the tasks come from:
    - "world": the miniature world writes `{out_dir}/{task}.jsonl`; one YAML per task.
      Optional `spec["num_fewshot"]` (default 0), per-task `spec["tasks"][task]["num_fewshot"]`,
      `spec["max_gen_toks"]` (default 100) and `spec["seed"]` (passed on to the world).
    - "lm_eval": built-in lm-eval tasks, `spec["tasks"] = {name: {"lm_eval_task", "metric",
      "num_fewshot", "paper_name"[, "output_type"]}}`; only suite.json is written, unless
      `spec["local_data"]` (a folder of task folders, or a mapping task -> folder) maps tasks
      to local copies of their data: those get lm-eval's own task YAMLs reading the local files
      (instruct_pt.local_benchmarks; `python -m instruct_pt.mirrors export` writes the copies),
      so the general suite runs offline.
    - "adaptllm": the paper's domain test sets on the hub (suite "biomedicine" or "finance");
      optional `spec["tasks"]` = list of our task names to keep (default: all five).
      suite.json also gets `"max_length": ADAPTLLM_MAX_LENGTH`, the model window `evaluate`
      then uses (AdaptLLM's left-truncation of generation prompts).
    """
    source = spec.get("source")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if source == "world":
        tasks = _build_world(suite, spec, out, world_cfg)
    elif source == "lm_eval":
        tasks = _build_lm_eval(suite, spec, out)
    elif source == "adaptllm":
        tasks = _build_adaptllm(suite, spec, out)
    else:
        raise DataError(
            f"suite {suite}: spec['source'] must be world, lm_eval or adaptllm, got {source!r}"
        )
    _remove_stale_yamls(out, suite, {t["lm_eval_task"] for t in tasks.values()})
    meta: dict[str, Any] = {"suite": suite, "tasks": {k: tasks[k] for k in sorted(tasks)}}
    if source == "adaptllm":
        meta["max_length"] = ADAPTLLM_MAX_LENGTH
    write_json(out / "suite.json", meta)
    log.info("suite %s: %d task(s) written to %s", suite, len(tasks), out)
    return meta


def _remove_stale_yamls(out: Path, suite: str, keep: set[str]) -> None:
    """Drop task YAMLs of an earlier build that are no longer in the suite (lm-eval would index them)."""
    for path in sorted(out.glob(f"{_task_name(suite, '')}*.yaml")):
        if path.stem not in keep:
            log.info("removing stale task file %s", path)
            path.unlink()
    for path in sorted(out.glob(f"{_task_name(suite, '')}*/")):  # a local group's members
        if path.name not in keep:
            log.info("removing stale task folder %s", path)
            shutil.rmtree(path)


def _build_world(suite: str, spec: dict, out: Path, world_cfg: dict | None) -> dict[str, dict]:
    world = importlib.import_module("instruct_pt.world")
    kwargs = {}
    if "seed" in spec and "seed" in inspect.signature(world.write_eval_suite).parameters:
        kwargs["seed"] = int(spec["seed"])
    described = world.write_eval_suite(suite, world_cfg, str(out), **kwargs)
    if not described:
        raise DataError(f"suite {suite}: the world wrote no evaluation task")
    shots_default = int(spec.get("num_fewshot", 0))
    per_task = spec.get("tasks") or {}
    gen_kwargs = {**GENERATION_KWARGS, "max_gen_toks": int(spec.get("max_gen_toks", 100))}
    tasks = {}
    for task in sorted(described):
        info = described[task]
        for key in ("type", "metric", "paper_name"):
            if key not in info:
                raise DataError(f"suite {suite}: world task {task} lacks key {key!r}")
        if info["type"] not in _WORLD_TYPES:
            raise DataError(f"suite {suite}: world task {task} has unknown type {info['type']!r}")
        output_type = _WORLD_TYPES[info["type"]]
        data = out / f"{task}.jsonl"
        _check_world_records(data, output_type)
        name = _task_name(suite, task)
        cfg: dict[str, Any] = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test",
            # Few-shot examples come from the test file; lm-eval's sampler leaves out the
            # document being evaluated.
            "fewshot_split": "test",
            "output_type": output_type,
            "doc_to_text": "query",
            "doc_to_target": "gold" if output_type == "multiple_choice" else "answer",
            "target_delimiter": " ",  # lm-eval's default fewshot_delimiter "\n\n" applies
        }
        if output_type == "multiple_choice":
            cfg["doc_to_choice"] = "choices"
        else:
            cfg["generation_kwargs"] = gen_kwargs
        cfg.update(_metric_block(output_type, info["metric"]))
        cfg["metadata"] = {"version": 1.0}
        header = f"{info['paper_name']}: {info.get('description', '')}".strip().replace("\n", " ")
        _write_task_yaml(out / f"{name}.yaml", cfg, header)
        shots = (per_task.get(task) or {}).get("num_fewshot", shots_default)
        tasks[task] = _suite_entry(name, info["metric"], shots, info["paper_name"], output_type)
    return tasks


def _check_world_records(path: Path, output_type: str) -> None:
    """Fail early, naming file:line, on a record lm-eval would choke on (or silently misscore)."""
    if not path.exists():
        raise DataError(f"{path}: the world did not write this evaluation file")
    mc = output_type == "multiple_choice"
    required = ("id", "query", "choices", "gold") if mc else ("id", "query", "answer")
    records = read_jsonl(path, required=required)
    if not records:
        raise DataError(f"{path}: no evaluation records")
    for lineno, rec in enumerate(records, 1):
        if mc and not (isinstance(rec["gold"], int) and 0 <= rec["gold"] < len(rec["choices"])):
            raise DataError(f"{path}:{lineno}: gold {rec['gold']!r} is not an index into choices")


def _suite_entry(name: str, metric: str, shots: Any, paper_name: str, output_type: str) -> dict:
    return {
        "lm_eval_task": name,
        "metric": metric,
        "num_fewshot": int(shots),
        "paper_name": paper_name,
        "output_type": output_type,
    }


def _build_lm_eval(suite: str, spec: dict, out: Path) -> dict[str, dict]:
    entries = spec.get("tasks") or {}
    if not entries:
        raise DataError(f"suite {suite}: spec['tasks'] is empty")
    tasks = {}
    for task, entry in entries.items():
        missing = [k for k in SUITE_TASK_KEYS if k not in entry]
        if missing:
            raise DataError(f"suite {suite}: spec['tasks'][{task!r}] lacks {', '.join(missing)}")
        output_type = entry.get("output_type", "multiple_choice")
        if output_type not in OUTPUT_TYPES:
            raise DataError(
                f"suite {suite}: spec['tasks'][{task!r}] has output_type {output_type!r}"
            )
        tasks[task] = _suite_entry(
            entry["lm_eval_task"],
            entry["metric"],
            entry["num_fewshot"],
            entry["paper_name"],
            output_type,
        )
    if spec.get("local_data") is not None:
        from instruct_pt.local_benchmarks import local_data_folders, write_local_tasks

        folders = local_data_folders(suite, spec["local_data"], sorted(tasks))
        for task, name in write_local_tasks(suite, tasks, folders, out).items():
            tasks[task]["lm_eval_task"] = name
    return tasks


def _build_adaptllm(suite: str, spec: dict, out: Path) -> dict[str, dict]:
    if suite not in ADAPTLLM_TASKS:
        raise DataError(f"suite {suite}: AdaptLLM tasks exist for {sorted(ADAPTLLM_TASKS)}")
    table = ADAPTLLM_TASKS[suite]
    keep = spec.get("tasks") or sorted(table)
    unknown = sorted(set(keep) - set(table))
    if unknown:
        raise DataError(f"suite {suite}: spec['tasks'] names unknown AdaptLLM task(s) {unknown}")
    tasks = {}
    for task in sorted(keep):
        config, output_type, metric, paper_name = table[task]
        name = _task_name(suite, task)
        # Field names as AdaptLLM's own reader uses them [P] (LMOps adaptllm/src/dataset_readers/
        # task.py + inference_dsr.py, utils/metric.py): the prompt is `input` (pre-templatized,
        # its few-shot demonstrations included, hence 0 shots); choice records carry `options`
        # and `gold_index`, Headline records also `class_id` (its sub-question, 0-8);
        # generation records carry `label`, a string or a list whose first element is the
        # answer. Options are scored after a ' ' separator, as LMOps does. ASSUMPTION: checked
        # against that code, not against the hub data (out of reach here), so DomainTask checks
        # the fields at load time and names any missing one with the dataset and config.
        fields = ["input", "options", "gold_index"]
        if output_type != "multiple_choice":
            fields = ["input", "label"]
        if task == "headline":
            fields.append("class_id")
        cfg: dict[str, Any] = {
            "class": DOMAIN_TASK_CLASS,
            "task": name,
            "dataset_path": ADAPTLLM_DATASETS[suite],
            "dataset_name": config,
            "test_split": "test",
            "output_type": output_type,
            "doc_to_text": "input",
            "target_delimiter": " ",
        }
        if output_type == "multiple_choice":
            cfg["doc_to_choice"] = "options"
            cfg["doc_to_target"] = "gold_index"
        else:
            cfg["doc_to_target"] = _fn("lm_answer")
            cfg["generation_kwargs"] = dict(GENERATION_KWARGS)
        cfg.update(_metric_block(output_type, metric, adaptllm=True))  # same class, same place
        cfg["metadata"] = {"version": 1.0, "required_fields": fields}
        _write_task_yaml(out / f"{name}.yaml", cfg, f"{paper_name} (AdaptLLM {config})")
        tasks[task] = _suite_entry(name, metric, 0, paper_name, output_type)
    return tasks


# ---------------------------------------------------------------------------- evaluate


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
    the domain choice tasks can count answer tokens with it (`instruct_pt.lm_tasks`).
    `max_length` (the model window; prompts are left-truncated to it, generation prompts to
    max_length - max_gen_toks) defaults to the suite's `max_length` (AdaptLLM: 2048), else to
    what lm-eval reads from the model config.

    Placement (`hf_placement`): `gpus` is what the job got (the rule's `gpu` resource); `device`
    "auto" is CUDA when available and the job has GPUs, else the CPU; over more than one GPU the
    model is split across them (lm-eval's `parallelize=True`).
    """
    import lm_eval
    from lm_eval.api.registry import get_model

    from instruct_pt.lm_tasks import scoring_model
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
    manager, local = _task_manager(sdir, lm_names)
    objects, leaves, tops = [], {}, {}
    for task, entry in entries.items():
        obj, leaves[task] = _load_task(manager, sdir, entry["lm_eval_task"])
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
        value, stderr = _read_metric(res["results"].get(lm_task, {}), metric, lm_task)
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
            "task_hash": _task_hash(sdir, lm_task, leaves[task], lm_task in local),
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


def _task_manager(sdir: Path, lm_names: list[str]) -> tuple[Any, set[str]]:
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


def _load_task(manager: Any, sdir: Path, lm_task: str) -> tuple[Any, list]:
    """(task or group object, its leaf tasks) of one lm-eval task name."""
    from lm_eval.api.group import Group

    loaded = manager.load([lm_task])
    groups = loaded.get("groups", {})
    obj = groups[lm_task] if lm_task in groups else loaded["tasks"].get(lm_task)
    if obj is None:
        raise DataError(f"{sdir / 'suite.json'}: {lm_task} is an lm-eval tag; name a task or group")
    return obj, obj.get_all_tasks() if isinstance(obj, Group) else [obj]


def render_examples(suite_dir: str | os.PathLike) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Every evaluated document of a suite as lm-eval renders it, for contamination (Table 9).

    Returns ``({task: [{"query", "choices", "answer"}]}, {task: why it could not be loaded})``:
    a task whose data cannot be loaded here (a hub data set offline) is reported, not skipped.
    Works for every source: world and AdaptLLM YAMLs, built-in tasks, and local mirrors.
    """
    sdir = Path(suite_dir).resolve()
    meta = read_json(sdir / "suite.json")
    entries = meta["tasks"]
    examples: dict[str, list[dict]] = {}
    unavailable: dict[str, str] = {}
    manager, _ = _task_manager(sdir, [e["lm_eval_task"] for e in entries.values()])
    for task, entry in sorted(entries.items()):
        try:
            _, leaves = _load_task(manager, sdir, entry["lm_eval_task"])
            examples[task] = [_render(leaf, doc) for leaf in leaves for doc in leaf.eval_docs]
        except (OSError, ValueError, ConnectionError, DataError) as e:
            unavailable[task] = f"{type(e).__name__}: {e}"[:300]
            log.warning("%s: task %s not rendered for contamination: %s", sdir, task, e)
    return examples, unavailable


def _render(leaf: Any, doc: dict) -> dict:
    """query, choices and answer text of one document (lm-eval's own templates)."""
    text, target = leaf.doc_to_text(doc), leaf.doc_to_target(doc)
    choices = leaf.doc_to_choice(doc) if leaf.OUTPUT_TYPE == "multiple_choice" else []
    if isinstance(text, int) and choices:  # WinoGrande: the options are the contexts
        text, target = choices[text], target
    answer = choices[target] if isinstance(target, int) and 0 <= target < len(choices) else target
    return {"query": str(text), "choices": [str(c) for c in choices], "answer": str(answer)}


def _metric_key(result: dict, metric: str, lm_task: str) -> str:
    """The 'metric,filter' key reported for `metric` (filter "none" first)."""
    keys = sorted(k for k in result if k.split(",")[0] == metric)
    if not keys:
        raise DataError(f"lm-eval reported no {metric!r} for {lm_task} (got {sorted(result)})")
    return f"{metric},none" if f"{metric},none" in keys else keys[0]


def _read_metric(result: dict, metric: str, lm_task: str) -> tuple[float, float | None]:
    """(value, stderr or None) of `metric` from one lm-eval result dict ('metric,filter' keys)."""
    key = _metric_key(result, metric, lm_task)
    stderr = result.get(key.replace(",", "_stderr,", 1))
    ok = isinstance(stderr, int | float) and math.isfinite(stderr)
    return float(result[key]), float(stderr) if ok else None


# Aggregation names of the task JSONs' "aggregation" -> the function of the per-doc items.
AGGREGATIONS = {
    "mean": lambda items: sum(items) / len(items),
    "lm_agg_micro_f1": lm_agg_micro_f1,
    "lm_agg_weighted_f1": lm_agg_weighted_f1,
    "lm_agg_mean_weighted_f1": lm_agg_mean_weighted_f1,
    "lm_agg_entity_f1": lm_agg_entity_f1,
    "lm_agg_entity_f1_doc": lm_agg_entity_f1_doc,
}


def _tuples(x: Any) -> Any:
    """JSON lists back into the (hashable) tuples the corpus-level aggregations compare."""
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def aggregate_items(aggregation: str, items: Sequence) -> float:
    """A task's value (0-1) from its per-document items as read back from a docs file.

    `aggregation` is the task JSON's: "mean" (items are numbers) or one of the `lm_agg_*`
    corpus-level F1 functions (items are the tuples their hooks return, JSON lists here).
    """
    if aggregation not in AGGREGATIONS:
        raise DataError(f"unknown aggregation {aggregation!r} (known: {sorted(AGGREGATIONS)})")
    if not items:
        raise DataError(f"aggregation {aggregation!r} of no items")
    if aggregation == "mean":
        return float(AGGREGATIONS["mean"](items))
    return float(AGGREGATIONS[aggregation]([_tuples(i) for i in items]))


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
        # The filter lm-eval reports for this metric ("none" first, as _read_metric).
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


def _task_hash(sdir: Path, lm_task: str, leaves: list, local: bool) -> str:
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
        if (sdir / lm_task).is_dir():  # a local group's members (instruct_pt.local_benchmarks)
            paths += sorted((sdir / lm_task).rglob("*.yaml"))
        for i, path in enumerate(paths):
            raw = path.read_text(encoding="utf-8")
            files = (_load_yaml_plain(raw).get("dataset_kwargs") or {}).get("data_files") or {}
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


class _PlainLoader(yaml.SafeLoader):
    pass


_PlainLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _load_yaml_plain(text: str) -> dict:
    """Parse a task YAML without importing its `!function` hooks."""
    return yaml.load(text, Loader=_PlainLoader) or {}  # noqa: S506 (SafeLoader subclass)


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
