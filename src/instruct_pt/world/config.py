"""Configuration of the miniature world and its catalogue.

``DEFAULT_WORLD`` and ``resolve_config`` (the ``world:`` section of the workflow config), the names
the rest of the workflow relies on (``DATASETS``, ``EVAL_TASKS``, ``RELATIONS``), and the seeded
random source every generator draws from.
"""

from __future__ import annotations

import random
from typing import Any

from instruct_pt.common import DataError, stable_hash

DEFAULT_WORLD: dict[str, Any] = {
    "seed": 0,
    "n_people": 120,  # general-domain entities
    "n_drugs": 60,  # biomedicine entities
    "n_companies": 60,  # finance entities
    "docs_per_entity": 3,  # renderings of each entity's document in its raw corpus (or per domain)
    "name_rate": 0.35,  # in raw texts, chance that a later sentence names the entity (else a pronoun)
    "restate_rate": 0.0,  # in general raw texts, chance of a closing sentence restating a value
    "one_off_docs": 0,  # general raw texts about passers-by: random people, each text its own
    "ft_fraction": 0.3,  # share of each domain's entities reserved for synth_ft / instructions only
    "n_ft_examples": 400,  # synth_ft records (contexts with 2-6 pairs each)
    "n_general_instructions": 400,  # OpenOrca-style records
    "n_instruction_tuning": 600,  # FLAN-style records
    "eval_per_task": 40,  # records per evaluation task
}

DATASETS = (
    "raw_general",
    "raw_biomedicine",
    "raw_finance",
    "synth_ft",
    "general_instructions",
    "instruction_tuning",
)

# Relation names in ``meta.facts`` (read by the data-quality analysis: keep them stable).
RELATIONS: dict[str, list[str]] = {
    "general": ["birth_city", "birth_year", "university", "major", "employer", "hobby"],
    "biomedicine": ["target", "mechanism", "treats", "side_effect", "trial_size", "outcome"],
    "finance": ["sector", "hq_city", "ceo", "revenue", "prev_revenue", "growth", "sentiment"],
}

_MC, _GEN = "multiple_choice", "generate"
EVAL_TASKS: dict[str, dict[str, dict[str, str]]] = {
    "general": {
        "reading": {
            "type": _MC,
            "metric": "acc_norm",
            "paper_name": "",
            "description": "a biography passage and a question whose answer the passage states (BoolQ/ARC-style reading)",
        },
        "reasoning": {
            "type": _MC,
            "metric": "acc_norm",
            "paper_name": "",
            "description": "two facts given in the query; compare them (who was born first / later, same attribute?)",
        },
        "knowledge": {
            "type": _MC,
            "metric": "acc_norm",
            "paper_name": "",
            "description": "closed-book 4-way questions about people of the general corpus (our MMLU analogue)",
        },
    },
    "biomedicine": {
        "pubmedqa_like": {
            "type": _MC,
            "metric": "accuracy",
            "paper_name": "PubMedQA",
            "description": "trial context + does the drug help? yes / no / maybe",
        },
        "chemprot_like": {
            "type": _MC,
            "metric": "micro_f1",
            "paper_name": "ChemProt",
            "description": "relation class between a drug and a gene named in a sentence (5 classes)",
        },
        "mqp_like": {
            "type": _MC,
            "metric": "accuracy",
            "paper_name": "MQP",
            "description": "do two medical questions ask for the same information? yes / no",
        },
        "rct_like": {
            "type": _MC,
            "metric": "micro_f1",
            "paper_name": "RCT",
            "description": "section of a trial abstract a sentence comes from (5 classes)",
        },
        "usmle_like": {
            "type": _MC,
            "metric": "accuracy",
            "paper_name": "USMLE",
            "description": "closed-book 4-way questions about the drugs of the biomedicine corpus",
        },
    },
    "finance": {
        "convfinqa_like": {
            "type": _GEN,
            "metric": "numeric_em",
            "paper_name": "ConvFinQA",
            "description": "compute a number (change, total, percent) from revenue figures given in the query",
        },
        "fpb_like": {
            "type": _MC,
            "metric": "weighted_f1",
            "paper_name": "FPB",
            "description": "sentiment of a news sentence: negative / neutral / positive",
        },
        "fiqa_sa_like": {
            "type": _MC,
            "metric": "weighted_f1",
            "paper_name": "FiQA_SA",
            "description": "sentiment of a short investor post: negative / neutral / positive",
        },
        "headline_like": {
            "type": _MC,
            "metric": "mean_weighted_f1",
            "paper_name": "Headline",
            "description": "yes/no sub-questions about a headline (price up / price down); the sub-question is the second part of the id",
        },
        "ner_like": {
            "type": _GEN,
            "metric": "entity_f1",
            "paper_name": "NER",
            "description": "list the company and person names in a sentence, comma separated, in order",
        },
    },
}


def resolve_config(world_cfg: dict | None, seed: int | None = None) -> dict:
    """DEFAULT_WORLD overlaid with ``world_cfg`` (and ``seed`` if given); unknown keys are errors."""
    cfg = dict(DEFAULT_WORLD)
    for key, value in (world_cfg or {}).items():
        if key not in DEFAULT_WORLD:
            raise DataError(
                f"world config: unknown key {key!r} (known: {', '.join(DEFAULT_WORLD)})"
            )
        cfg[key] = value
    if seed is not None:
        cfg["seed"] = seed
    for key, value in cfg.items():
        if key == "docs_per_entity" and isinstance(value, dict):
            if set(value) != set(RELATIONS) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()
            ):
                raise DataError(
                    "world config: docs_per_entity must be a non-negative integer or a mapping "
                    f"of every domain ({', '.join(RELATIONS)}) to one, got {value!r}"
                )
            cfg[key] = {d: value[d] for d in RELATIONS}
        elif key == "ft_fraction":
            if not isinstance(value, int | float) or not 0 <= value < 1:
                raise DataError(f"world config: ft_fraction must be in [0, 1), got {value!r}")
        elif key in ("name_rate", "restate_rate"):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise DataError(f"world config: {key} must be in [0, 1], got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or (value < 0 and key != "seed"):
            raise DataError(f"world config: {key} must be a non-negative integer, got {value!r}")
    return cfg


def docs_per_entity(cfg: dict, domain: str) -> int:
    """Renderings of each corpus entity's document in ``domain``'s raw corpus."""
    value = cfg["docs_per_entity"]
    return value[domain] if isinstance(value, dict) else value


def seeded_rng(cfg: dict, *purpose: Any) -> random.Random:
    return random.Random(stable_hash(cfg["seed"], *purpose))
