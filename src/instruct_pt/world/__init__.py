"""The miniature world: a seeded generator of every data set the workflow needs at CPU scale.

At paper scale the workflow reads RefinedWeb, PubMed abstracts, financial news, OpenOrca, FLAN and
the synthesizer's fine-tuning collection from the hub, and evaluates on public benchmarks. At
miniature scale this package replaces all of them with small synthetic data sets in exactly the
same record formats (docs/architecture.md), built from one fictional world:

- general: people with six attributes (biographies),
- biomedicine: experimental drugs acting on genes, used for diseases, tested in trials,
- finance: companies with a sector, a chief executive, a home city and quarterly results.

Each domain's entities are split once: a fraction (``ft_fraction``) is reserved for the
synthesizer's fine-tuning collection and the general instructions; the rest fill the raw corpora
and are the only entities the evaluation asks about. Questions in the evaluation use phrasings
(``HELD_OUT_TEMPLATES``) that no training set contains, so a model has to *know* a fact from
pre-training, not recognise a memorised question.

Determinism: every data set draws from ``random.Random(stable_hash(seed, <purpose>))``, so each can be
generated alone, in any order, with the same bytes out.

Modules (each imports only those above it):

- ``config``: ``DEFAULT_WORLD``, ``resolve_config``, the catalogue (``DATASETS``, ``EVAL_TASKS``,
  ``RELATIONS``) and the seeded random source;
- ``vocabulary``: value pools, statement templates, question phrasings (``HELD_OUT_TEMPLATES``);
- ``entities``: ``Entity``, ``World``, ``build_world`` (the corpus / reserve split);
- ``corpora``: documents rendered from an entity's facts, the raw corpora;
- ``qa``: question-answer pairs shared by the training sets;
- ``finetune``: ``synth_ft``, the synthesizer's fine-tuning collection (``FT_DATASETS``);
- ``instructions``: ``general_instructions`` and ``instruction_tuning``;
- ``datasets``: ``generate_dataset`` (any name of ``DATASETS``);
- ``tasks``: the evaluation suites (``eval_records``, ``write_eval_suite``);
- ``ceiling``: the ceilings' training splits (``train_records``, ``write_train_split``).

This module holds the public API only.
"""

from instruct_pt.world.config import DATASETS, DEFAULT_WORLD, EVAL_TASKS, RELATIONS, resolve_config
from instruct_pt.world.corpora import render_document
from instruct_pt.world.datasets import generate_dataset
from instruct_pt.world.entities import Entity, World, build_world
from instruct_pt.world.finetune import FT_DATASETS
from instruct_pt.world.tasks import eval_records, write_eval_suite
from instruct_pt.world.vocabulary import HELD_OUT_TEMPLATES

__all__ = [
    "DATASETS",
    "DEFAULT_WORLD",
    "EVAL_TASKS",
    "FT_DATASETS",
    "HELD_OUT_TEMPLATES",
    "RELATIONS",
    "Entity",
    "World",
    "build_world",
    "eval_records",
    "generate_dataset",
    "render_document",
    "resolve_config",
    "write_eval_suite",
]
