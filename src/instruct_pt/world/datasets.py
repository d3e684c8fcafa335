"""``generate_dataset``: one miniature training data set by name."""

from __future__ import annotations

import logging

from instruct_pt.common import DataError
from instruct_pt.world.config import DATASETS
from instruct_pt.world.corpora import build_raw_corpus
from instruct_pt.world.entities import build_world
from instruct_pt.world.finetune import build_synth_ft
from instruct_pt.world.instructions import build_general_instructions, build_instruction_tuning

log = logging.getLogger(__name__)


def generate_dataset(name: str, world_cfg: dict | None, seed: int | None = None) -> list[dict]:
    """Generate one miniature data set in its architecture.md record format.

    ``seed`` (optional) overrides ``world_cfg["seed"]``. Each data set is seeded on its own, so the
    result does not depend on which other data sets were generated before.
    """
    if name not in DATASETS:
        raise DataError(f"world: unknown data set {name!r} (known: {', '.join(DATASETS)})")
    world = build_world(world_cfg, seed)
    if name.startswith("raw_"):
        records = build_raw_corpus(world, name.removeprefix("raw_"), name)
    else:
        build = {
            "synth_ft": build_synth_ft,
            "general_instructions": build_general_instructions,
            "instruction_tuning": build_instruction_tuning,
        }[name]
        records = build(world)
    log.info("world: generated %d %s records (seed %s)", len(records), name, world.cfg["seed"])
    return records
