"""lm-eval's built-in tasks on local copies of their data (an `lm_eval` suite's `local_data`).

`instruct_pt.evaluation.suites.build_suite` calls `write_local_tasks` for an `lm_eval`-source
suite whose spec has `local_data`. For each task mapped there it writes into the suite folder
lm-eval's own definition of the task (the YAML shipped in the lm_eval package, its `include`s
merged) with these changes only:

- the name: `ipt_{suite}_{task}`, so `evaluate` runs it as a local task. A group (MMLU) keeps
  its hierarchy: its subgroups and tasks become `ipt_{suite}_{task}__{lm-eval name}`, written
  to a folder of the group's name next to the group's YAML; a tag among a group's members (as
  `mmlu_stem_tasks`) is expanded into the tasks that carry it;
- the data: `dataset_path: json`, `dataset_kwargs.data_files` = absolute paths of
  `{folder}/{split}.jsonl` (a group's task: `{folder}/{dataset_name}/{split}.jsonl`, its hub
  config) for the split lm-eval evaluates (test, else validation) and the split it draws
  few-shot examples from (fewshot_split, else train, else validation, else test). Both must
  exist even for 0 shots: lm-eval loads the few-shot pool when it builds a task;
- `tag` dropped (an index entry, not part of the task), and `!function` hooks written as dotted
  imports (`lm_eval.tasks.winogrande.preprocess_winogrande.doc_to_text`), as the YAML no longer
  sits next to their module.

Everything else (prompt, choices, target, metrics, aggregation, few-shot sampler, version) is
lm-eval's, so the numbers are those of the hub run on the same records. One addition: a
configured `acc` or `acc_norm` that a multiple-choice task does not list is appended to its
metric_list with a warning (lm-eval's social_iqa lists only `acc`; lm-eval computes both from
the same log-likelihoods, the listed metrics are unchanged).

`instruct_pt.data.mirrors` exports such folders for the general suite's nine benchmarks.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from instruct_pt.common import DataError, iter_jsonl
from instruct_pt.evaluation.task_yaml import YamlFunction, task_name, write_task_yaml

log = logging.getLogger(__name__)

DATA_SUFFIX = ".jsonl"
# lm-eval computes both for every multiple-choice task (see the module docstring).
_CHOICE_METRICS = ("acc", "acc_norm")
# Keys of a built-in task that describe where its data comes from (replaced) or how the index
# lists it (dropped).
_SOURCE_KEYS = ("task", "tag", "dataset_path", "dataset_name", "dataset_kwargs")


def local_data_folders(suite: str, local_data: Any, tasks: list[str]) -> dict[str, Path]:
    """Our task -> absolute data folder, from `spec["local_data"]`.

    Either a folder holding one folder per task, named as the task (every task of the suite is
    then local), or a mapping task -> folder (unmapped tasks stay on the hub). Relative paths
    resolve from the working directory (the workflow's: the repository root).
    """
    key = f"suite {suite}: spec['local_data']"
    if isinstance(local_data, str | os.PathLike):
        root = Path(local_data).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"{key} = {str(local_data)!r}: no such folder ({root})")
        folders = {task: root / task for task in tasks}
        for task, folder in folders.items():
            if not folder.is_dir():
                raise DataError(
                    f"{key} = {str(local_data)!r} has no folder for task {task!r}: {folder}"
                )
        return folders
    if isinstance(local_data, dict):
        unknown = sorted(set(local_data) - set(tasks))
        if unknown:
            raise DataError(
                f"{key} maps unknown task(s) {unknown}; the suite's tasks are {sorted(tasks)}"
            )
        folders = {}
        for task, value in local_data.items():
            if not isinstance(value, str | os.PathLike):
                raise DataError(f"{key}[{task!r}] must be a folder, got {value!r}")
            folders[task] = Path(value).expanduser().resolve()
            if not folders[task].is_dir():
                raise DataError(
                    f"{key}[{task!r}] = {str(value)!r}: no such folder ({folders[task]})"
                )
        return folders
    raise DataError(f"{key} must be a folder or a mapping task -> folder, got {local_data!r}")


def write_local_tasks(
    suite: str, entries: dict[str, dict], folders: dict[str, Path], out: Path
) -> dict[str, str]:
    """Write the task YAMLs of the tasks in `folders` into `out`; return task -> lm-eval name.

    `entries` are the suite.json entries of the suite's tasks (`lm_eval_task` is the built-in
    task or group, `metric` the headline metric, which the task must report).
    """
    import lm_eval

    index = _builtin_index()
    names = {}
    for task in sorted(folders):
        entry = entries[task]
        where = f"suite {suite}: task {task!r} (lm_eval_task {entry['lm_eval_task']!r})"
        top = task_name(suite, task)
        members = out / top
        if members.exists():  # members of an earlier build (a group's set may have changed)
            shutil.rmtree(members)
        writer = _Writer(index, top, out, where, entry.get("output_type", "multiple_choice"))
        cfg, kind = writer.convert(entry["lm_eval_task"], top, folders[task], member=False)
        note = _check_metric(cfg, kind, entry["metric"], where)
        hub = writer.hub.get(entry["lm_eval_task"], "")
        header = (
            f"{entry['paper_name']}: lm-eval {lm_eval.__version__} built-in {kind} "
            f"{entry['lm_eval_task']} ({hub}) on local data{note}"
        )
        write_task_yaml(out / f"{top}.yaml", cfg, header)
        names[task] = top
        log.info("suite %s: %s -> %s on %s", suite, entry["lm_eval_task"], top, folders[task])
    return names


class _Writer:
    """Converts one built-in task or group (recursively) into local task YAMLs."""

    def __init__(self, index: dict, top: str, out: Path, where: str, output_type: str):
        self.index, self.top, self.out, self.where = index, top, out, where
        self.output_type = output_type
        self.written: set[str] = set()
        self.hub: dict[str, str] = {}

    def convert(self, builtin: str, name: str, data: Path, member: bool) -> tuple[dict, str]:
        """(config of `builtin` renamed `name` reading `data`, "task" or "group").

        Members are written here; the caller writes the top-level YAML (after its metric check).
        """
        if name in self.written:
            raise DataError(f"{self.where}: lm-eval {builtin} is reached twice in the group")
        self.written.add(name)
        entry = self.index.get(builtin)
        kind = getattr(getattr(entry, "kind", None), "name", None)
        if entry is None or entry.yaml_path is None or kind not in ("TASK", "GROUP"):
            what = "unknown" if entry is None else f"a {str(kind).lower()} entry"
            raise DataError(
                f"{self.where}: {builtin!r} is {what} in lm-eval's built-in index; local_data "
                "needs a built-in YAML task or group"
            )
        cfg = _load_builtin_yaml(Path(entry.yaml_path), self.where)
        if kind == "GROUP":
            out, kind = self._group(cfg, builtin, name, data), "group"
        else:
            out, kind = self._task(cfg, builtin, name, data, member), "task"
        if member:
            header = f"lm-eval built-in {kind} {builtin} ({self.hub.get(builtin, '')}), member of {self.top}"
            write_task_yaml(self.out / self.top / f"{name}.yaml", out, header)
        return out, kind

    def _group(self, cfg: dict, builtin: str, name: str, data: Path) -> dict:
        members = []
        for child in cfg.get("task") or []:
            if not isinstance(child, str):
                raise DataError(
                    f"{self.where}: lm-eval group {builtin} lists an inline task config; "
                    "local_data supports named members only"
                )
            entry = self.index.get(child)
            is_tag = entry is not None and entry.kind.name == "TAG"
            for sub in sorted(entry.tags) if is_tag else [child]:
                sub_name = f"{self.top}__{sub}"
                self.convert(sub, sub_name, data, member=True)
                members.append(sub_name)
        if not members:
            raise DataError(f"{self.where}: lm-eval group {builtin} has no member task")
        self.hub[builtin] = f"group of {len(members)}"
        rest = {k: v for k, v in cfg.items() if k not in ("group", "task", "tag")}
        return {"group": name, "task": members, **rest}

    def _task(self, cfg: dict, builtin: str, name: str, data: Path, member: bool) -> dict:
        for key in ("class", "custom_dataset"):
            if cfg.get(key) is not None:
                raise DataError(
                    f"{self.where}: lm-eval task {builtin} sets {key!r}; local_data supports "
                    "YAML tasks that read a dataset"
                )
        output_type = cfg.get("output_type", "generate_until")  # lm-eval's TaskConfig default
        if output_type != self.output_type:
            raise DataError(
                f"{self.where}: lm-eval task {builtin} is {output_type}, the suite says "
                f"{self.output_type}"
            )
        hub = " ".join(str(cfg[k]) for k in ("dataset_path", "dataset_name") if cfg.get(k))
        self.hub[builtin] = hub
        if member:  # a group's task reads the subfolder named as its hub config
            data = data / str(cfg.get("dataset_name") or builtin)
            if not data.is_dir():
                raise DataError(
                    f"{self.where}: {data} is missing: lm-eval's {builtin} ({hub}) reads its "
                    f"data from a folder named {data.name!r}"
                )
        files = {}
        for role, split in _needed_splits(cfg, builtin, self.where):
            path = data / f"{split}{DATA_SUFFIX}"
            if not path.is_file():
                raise DataError(
                    f"{self.where}: {path} is missing: lm-eval's {builtin} ({hub}) reads its "
                    f"{role} from split {split!r}"
                )
            files[split] = str(path)
        _check_files(files, self.where)
        out: dict[str, Any] = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": files},
        }
        out.update({k: v for k, v in cfg.items() if k not in _SOURCE_KEYS})
        return out


def _needed_splits(cfg: dict, builtin: str, where: str) -> list[tuple[str, str]]:
    """[(role, split)]: the evaluated split and, if different, the few-shot pool's (lm-eval's
    rules: ConfigurableTask.eval_docs and fewshot_docs)."""
    evaluated = cfg.get("test_split") or cfg.get("validation_split")
    if not evaluated:
        raise DataError(
            f"{where}: lm-eval task {builtin} has neither test_split nor validation_split"
        )
    fewshot_cfg = cfg.get("fewshot_config") or {}
    fewshot = fewshot_cfg.get("split") or cfg.get("fewshot_split")
    if fewshot is None and fewshot_cfg.get("samples") is None:
        fewshot = cfg.get("training_split") or cfg.get("validation_split") or cfg.get("test_split")
    needed = [("evaluation documents", str(evaluated))]
    if fewshot and fewshot != evaluated:
        needed.append(("few-shot examples", str(fewshot)))
    return needed


def _check_files(files: dict[str, str], where: str) -> None:
    """Each file starts with a JSON object, with the same keys in every split (the json loader
    takes the first split's columns for all of them and fails on the others)."""
    keys = {}
    for split, path in files.items():
        rec = next(iter_jsonl(path), None)  # a bad first line: DataError naming file and line
        if rec is None:
            raise DataError(f"{where}: {path} holds no records")
        keys[split] = sorted(rec)
    if len({tuple(k) for k in keys.values()}) > 1:
        raise DataError(f"{where}: the splits' records have different fields: {keys}")


def _check_metric(cfg: dict, kind: str, metric: str, where: str) -> str:
    """Fail unless the task reports `metric` (see the module docstring for acc/acc_norm)."""
    if kind == "group":
        reported = [m.get("metric") for m in cfg.get("aggregate_metric_list") or []]
        if metric not in reported:
            raise DataError(f"{where}: the lm-eval group aggregates {reported}, not {metric!r}")
        return ""
    listed = cfg.get("metric_list")
    if listed is None:  # lm-eval's defaults for the output type
        return ""
    reported = [m.get("metric") for m in listed]
    if metric in reported:
        return ""
    if cfg.get("output_type") == "multiple_choice" and metric in _CHOICE_METRICS:
        log.warning(
            "%s: lm-eval lists %s only; adding %s (its standard definition)",
            where,
            reported,
            metric,
        )
        cfg["metric_list"] = [
            *listed,
            {"metric": metric, "aggregation": "mean", "higher_is_better": True},
        ]
        return f"; {metric} added to lm-eval's metric_list {reported}"
    raise DataError(f"{where}: the lm-eval task reports {reported}, not {metric!r}")


@functools.lru_cache(maxsize=1)
def _builtin_index() -> dict:
    """lm-eval's index of its built-in tasks, groups and tags (~8 s to build: once a process)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=True).task_index


def _load_builtin_yaml(path: Path, where: str, seen: frozenset[Path] = frozenset()) -> dict:
    """A built-in task YAML with its includes merged (as lm-eval's `load_yaml` merges them) and
    its `!function` hooks as dotted import names."""
    path = path.resolve()
    if path in seen:
        raise DataError(f"{where}: include cycle at {path}")
    try:
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader(path.parent))  # noqa: S506
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{where}: cannot read lm-eval's {path}: {e}") from None
    if not isinstance(cfg, dict):
        raise DataError(f"{where}: lm-eval's {path} is not a mapping")
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged: dict = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_cfg = _load_builtin_yaml(path.parent / inc, where, seen | {path})
        inc_cfg.pop("task_list", None)
        merged.update(inc_cfg)
    merged.update(cfg)
    return merged


@functools.cache
def _loader(base_dir: Path) -> type[yaml.SafeLoader]:
    """A SafeLoader whose `!function mod.fn` names lm-eval's module `base_dir/mod.py` by its
    dotted import path (lm-eval itself looks next to the YAML first, then imports `mod`)."""
    import lm_eval

    package_parent = Path(lm_eval.__file__).resolve().parent.parent

    def function(loader: yaml.SafeLoader, node: yaml.Node) -> YamlFunction:
        spec = str(loader.construct_scalar(node))
        module, _, fn = spec.rpartition(".")
        local = base_dir / f"{module.replace('.', '/')}.py"
        if not local.is_file():
            return YamlFunction(spec)  # already an importable dotted name
        try:
            rel = local.resolve().relative_to(package_parent)
        except ValueError:
            raise DataError(f"{local}: hook module outside the lm_eval package") from None
        return YamlFunction(".".join((*rel.with_suffix("").parts, fn)))

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", function)
    return Loader
