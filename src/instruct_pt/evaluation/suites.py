"""Evaluation suites: the tasks of one suite declared as lm-eval task YAMLs plus `suite.json`.

`build_suite` (rule eval_tasks) writes a suite folder: one lm-eval task YAML per task (absolute
data paths, so the harness finds the data whatever its working directory) and `suite.json`,
which names each task's lm-eval task, headline metric, number of shots and name in the paper.
Three sources: the miniature world's evaluation files (`"world"`), lm-eval's built-in general
benchmarks (`"lm_eval"`, paper scale; from the hub, or with `local_data` from local copies,
offline: instruct_pt.evaluation.local) and the AdaptLLM domain test sets on the hub
(`"adaptllm"`).

Metrics that lm-eval does not have (the domain tasks' F1 variants, numeric exact match) are
plugged in through lm-eval's `!function` hooks: the YAMLs name the `lm_*` functions of
`instruct_pt.evaluation.hooks` by dotted name. Choice scoring: lm-eval scores each option,
appended to the prompt as ' ' + option, by its summed log-likelihood (`acc`) or by that sum
divided by the option's length in characters (`acc_norm`); the general tasks use these, lm-eval's
own. The domain metrics (`accuracy`, the F1 variants) predict as the paper does (AdaptLLM's
`inference.py`, `choice_losses`): the option with the lowest mean per-token NLL. Their task YAMLs
use `instruct_pt.evaluation.lm_tasks.DomainTask`, which appends each option's token count to the
results our `lm_mc_*` hooks receive.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import shutil
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError, read_jsonl, write_json
from instruct_pt.evaluation import hooks
from instruct_pt.evaluation.hooks import ADAPTLLM_HOOKS, METRIC_HOOKS
from instruct_pt.evaluation.task_yaml import YamlFunction, task_name, write_task_yaml

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


# The lm-eval task class of the domain suites (mean-NLL choice scoring, AdaptLLM field checks).
DOMAIN_TASK_CLASS = YamlFunction("instruct_pt.evaluation.lm_tasks.DomainTask")


def _hook(name: str) -> YamlFunction:
    """The `!function` name of hook `name` of instruct_pt.evaluation.hooks."""
    if not callable(getattr(hooks, name, None)):
        raise AssertionError(f"{hooks.__name__} has no hook {name}")
    return YamlFunction(f"{hooks.__name__}.{name}")


def _metric_block(output_type: str, metric: str, adaptllm: bool = False) -> dict[str, Any]:
    """process_results / metric_list entries of a task YAML for its headline metric."""
    key = (output_type, metric)
    table = {**METRIC_HOOKS, **ADAPTLLM_HOOKS} if adaptllm else METRIC_HOOKS
    if key not in table:
        allowed = sorted(m for t, m in table if t == output_type)
        raise DataError(
            f"metric {metric!r} is not available for {output_type} (use one of {allowed})"
        )
    process, agg = table[key]
    if process is None:  # lm-eval's built-in choice metrics: report acc and acc_norm together
        names = ["acc", "acc_norm"]
        return {"metric_list": [_metric_entry(n, "mean") for n in names]}
    block: dict[str, Any] = {}
    if output_type == "multiple_choice":  # our hooks rank by mean NLL: they need token counts
        block["class"] = DOMAIN_TASK_CLASS
    block.update({"process_results": _hook(process), "metric_list": [_metric_entry(metric, agg)]})
    return block


def _metric_entry(metric: str, agg: str) -> dict[str, Any]:
    return {
        "metric": metric,
        "aggregation": agg if agg == "mean" else _hook(agg),
        "higher_is_better": True,
    }


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
      (instruct_pt.evaluation.local; `python -m instruct_pt.data.mirrors export` writes the copies),
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
    for path in sorted(out.glob(f"{task_name(suite, '')}*.yaml")):
        if path.stem not in keep:
            log.info("removing stale task file %s", path)
            path.unlink()
    for path in sorted(out.glob(f"{task_name(suite, '')}*/")):  # a local group's members
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
        name = task_name(suite, task)
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
        write_task_yaml(out / f"{name}.yaml", cfg, header)
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
        from instruct_pt.evaluation.local import local_data_folders, write_local_tasks

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
        name = task_name(suite, task)
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
            cfg["doc_to_target"] = _hook("lm_answer")
            cfg["generation_kwargs"] = dict(GENERATION_KWARGS)
        cfg.update(_metric_block(output_type, metric, adaptllm=True))  # same class, same place
        cfg["metadata"] = {"version": 1.0, "required_fields": fields}
        write_task_yaml(out / f"{name}.yaml", cfg, f"{paper_name} (AdaptLLM {config})")
        tasks[task] = _suite_entry(name, metric, 0, paper_name, output_type)
    return tasks
