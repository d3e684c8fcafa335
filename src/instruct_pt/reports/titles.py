"""A report's title: the paper's own at paper scale; at miniature scale, what this run is.

At miniature scale a title says what the run trained (sizes and token counts from the models'
train_summary.json), how many questions a task has (from the result files) and who judged the
data (the quality JSON's method); the paper's title becomes a "Paper:" line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from instruct_pt.common import DataError, read_json
from instruct_pt.reports.cells import human_count
from instruct_pt.reports.paper import paper_table

log = logging.getLogger(__name__)

KIND_WORDS = {
    "pretrain": "pre-trained",
    "continual_pretrain": "continually pre-trained",
    "instruction_tune": "instruction-tuned",
    "finetune_synthesizer": "fine-tuned (synthesizer)",
}


def join_words(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _counts(values: Iterable[float], unit: str) -> str:
    """[8e5, 1.6e6, 8e5] -> '0.8M and 1.6M parameters' (distinct values, ascending)."""
    texts = list(dict.fromkeys(human_count(v) for v in sorted(values)))
    return f"{join_words(texts)} {unit}" if texts else ""


def _summary_path(models_dir: str | os.PathLike, model: str) -> Path:
    """train_summary.json of a model id (an instruction-tuning step's lives in its run folder)."""
    parts = model.rsplit("-step", 1)
    folder = parts[0] if model.startswith("it-") and len(parts) == 2 else model
    return Path(models_dir) / folder / "train_summary.json"


def trained(models_dir: str | os.PathLike, models: Iterable[str]) -> dict[str, dict]:
    """model -> its train_summary.json: what this run trained. A model without one (a reference
    checkpoint evaluated as it is) is left out, with a log line naming the file looked for."""
    out = {}
    for model in dict.fromkeys(models):
        path = _summary_path(models_dir, model)
        if not path.is_file():
            log.info("%s: no training summary (not trained in this run?); not in the title", path)
            continue
        summary = read_json(path)
        if not isinstance(summary, dict) or not isinstance(summary.get("parameters"), int | float):
            raise DataError(f"{path}: expected a JSON object with a numeric 'parameters'")
        out[model] = summary
    return out


def _summary_tokens(summary: dict) -> float | None:
    tokens = summary.get("tokens")
    if tokens is not None:
        return tokens
    # tokens_trained: every step's tokens, resumed or not (older summaries: tokens_this_run)
    return summary.get("tokens_trained", summary.get("tokens_this_run"))


def models_phrase(summaries: dict[str, dict]) -> str:
    """'pre-trained here: 0.8M and 1.6M parameters, 0.6M tokens', one clause per training kind."""
    by_kind: dict[str, list[dict]] = {}
    for summary in summaries.values():
        by_kind.setdefault(str(summary.get("kind", "trained")), []).append(summary)
    clauses = []
    for kind, group in by_kind.items():
        params = _counts((s["parameters"] for s in group), "parameters")
        tokens = [t for t in (_summary_tokens(s) for s in group) if t is not None]
        what = ", ".join(x for x in (params, _counts(tokens, "tokens")) if x)
        clauses.append(f"{KIND_WORDS.get(kind, kind)} here: {what}")
    return "; ".join(clauses) if clauses else "no model trained in this run"


def n_phrase(ns: Iterable[int | float | None], unit: str = "questions per task") -> str:
    """'500 questions per task', or '40-500 questions per task' when tasks differ."""
    values = sorted({int(n) for n in ns if n is not None})
    if not values:
        return ""
    return f"{values[0]}{'' if len(values) == 1 else f'-{values[-1]}'} {unit}"


def table_title(name: str, run: str, scale: str, what: str) -> tuple[str, str | None]:
    """(title, paper title for a "Paper:" line): the paper's own title at paper scale."""
    paper_title = paper_table(name).title
    if scale == "paper":
        return paper_title, None
    label = paper_title.split(":", 1)[0]
    return f"{label} (miniature run `{run}`): {what}", paper_title


def figure_title(label: str, run: str, scale: str, paper_what: str, what: str) -> str:
    """The paper's caption at paper scale; at miniature scale what this run's figure shows."""
    if scale == "paper":
        return f"{label}: {paper_what}"
    return f"{label} (miniature run `{run}`): {what}"


def method_words(method: str) -> str:
    """The quality JSON's ``method`` in words (a miniature title says who judged)."""
    if method == "world-ground-truth":
        return "world ground truth (not an LLM judge)"
    if method.startswith("llm-judge:"):
        return f"LLM judge {method.split(':', 1)[1]}"
    return method or "method not recorded"
