"""Suite documents rendered as lm-eval shows them to a model, for the contamination check.

`render_examples` loads every task of a suite folder through lm-eval (its own prompt templates,
so world, AdaptLLM, built-in and local tasks alike) and returns each evaluated document's query,
choices and answer text; the contamination analysis (Table 9) compares these with the
instruction-augmented corpora.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError, read_json
from instruct_pt.evaluation.runner import load_task, task_manager

log = logging.getLogger(__name__)


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
    manager, _ = task_manager(sdir, [e["lm_eval_task"] for e in entries.values()])
    for task, entry in sorted(entries.items()):
        try:
            _, leaves = load_task(manager, sdir, entry["lm_eval_task"])
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
