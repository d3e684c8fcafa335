"""The paper's experimental design as data: which sources each mixture combines, and which
models make each table's rows and each figure's curves.

Plain functions of the config dict, without paths: `rules/common.smk` turns the model ids and
the sources named here into files (``locate`` / ``model_path`` arguments). The numbers (repeats,
rounds, ratios) are config keys; docs/paper-facts.md gives the paper's values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from instruct_pt.config import ConfigError, train_settings

DOMAINS = ("biomedicine", "finance")
CORPORA = ("general", *DOMAINS)
ABLATIONS = ("wo_corpora", "rule_based", "one_shot")
#: Table 4 rows, in the paper's order; "instruct" is the full method.
CPT_VARIANTS = ("vanilla", "instruct", *ABLATIONS)
#: Which synthesis output each augmented variant is templified from, and whether the raw text stays.
AUGMENTED_VARIANTS = {
    "instruct": ("model", True),
    "wo_corpora": ("model", False),
    "one_shot": ("one_shot", True),
    "rule_based": ("rule_based", True),
    # miniature only: the world's true pairs (instruct_pt.world.oracle), the general ceiling
    "oracle": ("oracle", True),
}
#: The paper's names of the pre-training variants (Tables 1-3, Fig. 4).
PT_LABELS = {"vanilla": "Vanilla PT", "mix": "Mix PT", "instruct": "Instruct PT"}
#: Table 4's rows: the full method, then each ablation (paper order).
TABLE4_LABELS = {
    "instruct": "Instruct PT",
    "wo_corpora": "w/o Corpora",
    "rule_based": "Rule-based",
    "one_shot": "1-shot",
}
#: The reports the workflow writes: tables (csv, md) and figures (csv, md, png, pdf).
REPORTS = ("table1", "table2", "table3", "table4", "table5", "table6", "table9")
FIGURES = ("figure4", "figure6")

#: A data source of a mixture: ("data", <dataset>) a prepared data set; ("augmented", <corpus>,
#: <variant>) an instruction-augmented corpus; ("rest", <corpus>) the texts synthesis left raw.
Source = tuple[str, ...]


# ----------------------------------------------------------------------------- mixtures


def mixture_components(
    config: dict, mixture: str, locate: Callable[[Source], Any] | None = None
) -> list[dict]:
    """The components of a mixture `{group}-{variant}`, each with its source located by
    ``locate`` under ``path`` (the source tuple itself without ``locate``):

    general-vanilla:  all raw texts                                  (Vanilla PT)
    general-mix:      all raw texts + fine-tuning collection x ft_repeat      (Mix PT)
    general-instruct: augmented part + raw rest + collection x ft_repeat      (Instruct PT)
    general-oracle:   the same with the world's true pairs (miniature ceiling, world.oracle)
    {domain}-vanilla: raw domain texts + general instructions (instruction_ratio by tokens)
    {domain}-{v}:     augmented domain texts (v = instruct or an ablation) + raw rest
                      + general instructions
    """
    locate = locate or (lambda source: source)
    group, variant = mixture.split("-", 1)
    if group not in CORPORA:
        raise ConfigError(f"mixture {mixture!r}: unknown corpus {group!r} ({', '.join(CORPORA)})")

    def part(name: str, source: Source, **extra) -> dict:
        return {"name": name, "path": locate(source), "format": "text", **extra}

    if group == "general":
        if variant not in ("vanilla", "mix", "instruct", "oracle"):
            raise ConfigError(
                f"mixture {mixture!r}: general variants are vanilla, mix, instruct, oracle"
            )
        ft = part("ft_collection", ("data", "synth_ft.templified"))
        ft["repeat"] = config["pretrain"]["ft_repeat"]
        if config["pretrain"].get("ft_records") is not None:
            # miniature: the mixtures take the collection's first ft_records records (docs/deviations.md)
            ft["head"] = config["pretrain"]["ft_records"]
        if variant == "vanilla":
            return [part("raw", ("data", "raw_general"))]
        if variant == "mix":
            return [part("raw", ("data", "raw_general")), ft]
        return [
            part("augmented", ("augmented", "general", variant)),
            part("raw", ("rest", "general")),
            ft,
        ]
    if variant == "vanilla":
        corpus = [part("domain", ("data", f"raw_{group}"))]
    elif variant in AUGMENTED_VARIANTS:
        corpus = [
            part("domain", ("augmented", group, variant)),
            part("domain_raw", ("rest", group)),
        ]
    else:
        raise ConfigError(
            f"mixture {mixture!r}: domain variants are {', '.join(('vanilla', *AUGMENTED_VARIANTS))}"
        )
    instructions = {
        "name": "general_instructions",
        "path": locate(("data", "general_instructions")),
        "format": "instruction",
        "match": [c["name"] for c in corpus],
        "ratio": config["continual_pretrain"]["instruction_ratio"],
    }
    return corpus + [instructions]


def augmented_method(augvariant: str) -> str:
    """The synthesis output (``model``, ``one_shot``, ``rule_based``) a variant is templified from."""
    return AUGMENTED_VARIANTS[augvariant][0]


def include_context(config: dict, augvariant: str) -> bool:
    """Whether the augmented texts keep their raw text (w/o Corpora: as configured)."""
    if augvariant == "wo_corpora":
        return config["ablations"]["wo_corpora"]["include_context"]
    return True


def synthesis_rounds(config: dict, corpus: str, method: str) -> int:
    """M, the synthesis rounds of a corpus (1-shot ablation: its own rounds)."""
    if method == "one_shot":
        return config["ablations"]["one_shot"]["rounds"]
    return config["synthesis"]["corpora"][corpus]["rounds"]


# ----------------------------------------------------------------------------- models


def scratch_models(config: dict) -> list[str]:
    """Table 1: scratch-{size}-{variant}."""
    return [
        f"scratch-{size}-{variant}"
        for size, spec in config["pretrain"]["sizes"].items()
        for variant in spec["variants"]
    ]


def cpt_variants(config: dict) -> list[str]:
    """Table 3's continual pre-training variants (continual_pretrain.variants), in paper order."""
    chosen = config["continual_pretrain"]["variants"]
    return [v for v in CPT_VARIANTS if v in chosen]


def cpt_models(config: dict, variants: tuple[str, ...] | None = None) -> list[str]:
    """cpt-{domain}-{variant}: Table 3's variants by default, or the ones given (Table 4)."""
    variants = variants or tuple(cpt_variants(config))
    return [f"cpt-{d}-{v}" for d in config["continual_pretrain"]["domains"] for v in variants]


def it_models(config: dict) -> list[str]:
    """Fig. 4: it-{size}-{variant}-step{N}, one per saved instruction-tuning checkpoint."""
    it = config["instruction_tuning"]
    return [
        f"it-{it['size']}-{v}-step{s}" for v in it["variants"] for s in sorted(it["save_steps"])
    ]


def base_models_read(config: dict) -> set[str]:
    """The base models the paper's targets read: the synthesizer's base (and the released
    synthesizer when used), the continual pre-training start, the Table 2 / 3 references.
    (`snakemake released` fetches its models itself, through rule base_model.)"""
    names = {config["synthesizer"]["base_model"], config["continual_pretrain"]["base_model"]}
    if config["synthesizer"]["use"] == "released":
        names.add("released_synthesizer")
    names |= {row["model"].removeprefix("base-") for row in table2_rows(config) if not row["ours"]}
    names |= {
        m.removeprefix("base-")
        for row in table3_rows(config)
        for m in row["models"].values()
        if m.startswith("base-")
    }
    return names


# ----------------------------------------------------------------------------- report rows


def table1_rows(config: dict) -> list[dict]:
    """Table 1: every pre-trained size x variant."""
    return [
        {"label": f"{size.upper()} {PT_LABELS[v]}", "model": f"scratch-{size}-{v}"}
        for size, spec in config["pretrain"]["sizes"].items()
        for v in spec["variants"]
    ]


def table2_rows(config: dict, model_path: Callable[[str], Any] | None = None) -> list[dict]:
    """Table 2: ours (Instruct PT per size), then the references. A model trained in this run
    (ours, a miniature stand-in of a reference) carries ``model_dir`` (its folder, by
    ``model_path``; the model id without it): the report counts what was trained. A hub
    reference carries the paper's parameter and token counts from config."""
    model_path = model_path or (lambda model: model)
    rows = []
    for size, spec in config["pretrain"]["sizes"].items():
        if "instruct" in spec["variants"]:
            model = f"scratch-{size}-instruct"
            rows.append(
                {
                    "label": f"Instruct PT {size.upper()}",
                    "model": model,
                    "params": None,
                    "tokens": None,
                    "model_dir": model_path(model),
                    "ours": True,
                }
            )
    for ref in config["evaluation"]["table2_references"]:
        model = f"base-{ref['model']}"
        row = {"label": ref["label"], "model": model, "ours": False}
        if config["base_models"][ref["model"]]["source"] == "pretrain":
            row.update(params=None, tokens=None, model_dir=model_path(model))
        else:
            row.update(params=ref["params"], tokens=ref["tokens"])
        rows.append(row)
    return rows


def domain_rows(config: dict, labels_models: list[tuple[str, str]]) -> list[dict]:
    """Rows of a domain table: (label, model id with ``{domain}``) -> the model per domain."""
    domains = config["continual_pretrain"]["domains"]
    return [
        {"label": label, "models": {d: model.format(domain=d) for d in domains}}
        for label, model in labels_models
    ]


def table3_rows(config: dict) -> list[dict]:
    """Table 3: the CPT start (Llama3-8B), each continual pre-training variant, Llama3-70B."""
    base = config["continual_pretrain"]["base_model"]
    return domain_rows(
        config,
        [
            ("Llama3-8B", f"base-{base}"),
            *((f"{PT_LABELS[v]}-8B", f"cpt-{{domain}}-{v}") for v in cpt_variants(config)),
            ("Llama3-70B", "base-llama3_70b"),
        ],
    )


def table4_rows(config: dict) -> list[dict]:
    """Table 4: Instruct PT and each ablation, per domain."""
    return domain_rows(
        config, [(label, f"cpt-{{domain}}-{v}") for v, label in TABLE4_LABELS.items()]
    )


def figure4_curves(config: dict) -> list[dict]:
    """Fig. 4: one curve per instruction-tuned variant, its model id per saved step."""
    it = config["instruction_tuning"]
    return [
        {
            "label": PT_LABELS[v],
            "variant": v,
            "steps": {s: f"it-{it['size']}-{v}-step{s}" for s in sorted(it["save_steps"])},
        }
        for v in it["variants"]
    ]


def probe_task(config: dict) -> str | None:
    """The task of Fig. 4's probe (the first of evaluation.settings.probe_zeroshot.tasks)."""
    tasks = config["evaluation"]["settings"]["probe_zeroshot"].get("tasks") or []
    return tasks[0] if tasks else None


# ----------------------------------------------------------------------------- ceilings


def ceiling_suites(config: dict) -> list[str]:
    """The evaluation suites with a ceiling row (config `ceilings`; none at paper scale)."""
    suites = list((config.get("ceilings") or {}).get("suites") or {})
    known = list(config["evaluation"]["suites"])
    for suite in suites:
        if suite not in known:
            raise ConfigError(
                f"config key 'ceilings.suites.{suite}': not an evaluation suite "
                f"(evaluation.suites: {', '.join(known)})"
            )
    return suites


def oracle_ceiling_suites(config: dict) -> list[str]:
    """The suites whose ceiling is pre-trained on the oracle's true pairs (``oracle: SIZE``)
    rather than a compared model fine-tuned on the task formats (``model: ...``); general only:
    the oracle augments the general corpus (mixture general-oracle)."""
    out = []
    for suite in ceiling_suites(config):
        spec = config["ceilings"]["suites"][suite]
        if ("oracle" in spec) == ("model" in spec):
            raise ConfigError(
                f"config key 'ceilings.suites.{suite}': give exactly one of 'model' (fine-tune "
                "a compared model) or 'oracle' (pre-train at a size on the true pairs)"
            )
        if "oracle" not in spec:
            continue
        if suite != "general":
            raise ConfigError(
                f"config key 'ceilings.suites.{suite}.oracle': only the general suite's ceiling "
                "can be pre-trained on the oracle's pairs (mixture general-oracle)"
            )
        if spec["oracle"] not in config["pretrain"]["sizes"]:
            raise ConfigError(
                f"config key 'ceilings.suites.{suite}.oracle': {spec['oracle']!r} is not a size "
                f"of pretrain.sizes ({', '.join(config['pretrain']['sizes'])})"
            )
        out.append(suite)
    if out and not config["ceilings"].get("oracle_pairs_per_text"):
        raise ConfigError(
            "config key 'ceilings.oracle_pairs_per_text' is required by the oracle ceiling of "
            f"{', '.join(out)}"
        )
    return out


def ceiling_row(config: dict, suites: list[str]) -> dict | None:
    """The ceiling row of a report over `suites` (Table 1/2: general; 3/4: the domains), or
    None when the run has no ceiling for them."""
    have = ceiling_suites(config)
    specs = {s: config["ceilings"]["suites"][s] for s in suites if s in have}
    if not specs:
        return None
    labels = list(dict.fromkeys(spec["label"] for spec in specs.values()))
    label = "ceiling: " + " / ".join(labels)
    if list(suites) == ["general"]:
        return {"label": label, "model": "ceiling-general"}
    return {"label": label, "models": {s: f"ceiling-{s}" for s in specs}}


def _tokenizer_recipe(spec: dict) -> dict:
    """What a tokenizer's vocabulary depends on: a trained one (byte-level BPE on every data set
    of the run, rules/common.smk tokenizer_corpora) only its sizes, not the hub id that
    config.yaml's entry still carries; any other its whole spec."""
    if spec.get("source") != "train":
        return dict(spec)
    return {
        "source": "train",
        "vocab_size": int(spec["vocab_size"]),
        "min_frequency": int(spec.get("min_frequency", 2)),
    }


def stand_in_recipe(config: dict, name: str) -> str | None:
    """What a stand-in's trained weights depend on, as canonical JSON (None: not a stand-in).

    Left out because they change no number the training computes: the arch's
    ``max_position_embeddings`` when the training sequences fit in it (RoPE's angles do not
    depend on it), and the family name when a Mistral has no sliding window shorter than the
    sequences (then Mistral and Llama are the same network, built from the same seed into the
    same tensors: tests/test_stand_in_twins.py). The tokenizer counts by what its vocabulary
    depends on, not by its name.
    """
    spec = config["base_models"][name]
    if spec["source"] != "pretrain":
        return None
    st = config["stand_in_training"]
    seq_len = st["seq_len"]
    arch = dict(spec["arch"])
    if arch.get("max_position_embeddings", 0) >= seq_len:
        arch.pop("max_position_embeddings", None)
    window = arch.get("sliding_window")
    if arch.get("family") == "mistral" and (window is None or window >= seq_len):
        arch["family"] = "llama"
        arch.pop("sliding_window", None)
    recipe = {
        "arch": arch,
        "tokenizer": _tokenizer_recipe(config["tokenizers"][spec["tokenizer"]]),
        "train": train_settings(config, "stand_in", base=name),
        "mixture": st["mixture"],
        "seq_len": seq_len,
        "seed": config["seed"],
    }
    return json.dumps(recipe, sort_keys=True, default=str)


def stand_in_twins(config: dict) -> dict[str, str]:
    """{stand-in: the earlier stand-in (config order) whose weights it takes} for every stand-in
    whose recipe (:func:`stand_in_recipe`) equals an earlier one's; the first of each is trained."""
    first: dict[str, str] = {}
    twins: dict[str, str] = {}
    for name in config["base_models"]:
        recipe = stand_in_recipe(config, name)
        if recipe is None:
            continue
        if recipe in first:
            twins[name] = first[recipe]
        else:
            first[recipe] = name
    return twins
