"""The experimental design (instruct_pt.design) against the paper's (docs/paper-facts.md):
which sources each mixture combines with which repeats, which models make each table's rows
and each figure's curves."""

import copy
import functools
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from instruct_pt import config as cfg
from instruct_pt import design

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["biomedicine", "finance"]


@functools.lru_cache
def _loaded(presets):
    return cfg.load_config(ROOT / "config.yaml", *(ROOT / "presets" / f"{p}.yaml" for p in presets))


def load(*presets):
    return copy.deepcopy(_loaded(presets))


def labels(rows):
    return [row["label"] for row in rows]


# ----------------------------------------------------------------------------- mixtures


def sources(config, mixture):
    """(name, source, repeat) of each component, the source left symbolic."""
    return [
        (c["name"], c["path"], c.get("repeat")) for c in design.mixture_components(config, mixture)
    ]


def test_general_mixtures_are_the_papers_baselines():
    c = load()
    assert c["pretrain"]["ft_repeat"] == 4  # "repeated 4 times" (paper-facts 2)
    ft = ("ft_collection", ("data", "synth_ft.templified"), 4)
    # Vanilla PT: the raw corpus only
    assert sources(c, "general-vanilla") == [("raw", ("data", "raw_general"), None)]
    # Mix PT: the raw corpus + the synthesizer's fine-tuning collection x4, no synthesized pairs
    assert sources(c, "general-mix") == [("raw", ("data", "raw_general"), None), ft]
    # Instruct PT: the augmented fifth + the raw rest + the collection x4
    assert sources(c, "general-instruct") == [
        ("augmented", ("augmented", "general", "instruct"), None),
        ("raw", ("rest", "general"), None),
        ft,
    ]
    assert c["synthesis"]["corpora"]["general"] == {"fraction": 0.2, "rounds": 2}  # 1/5, M = 2


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_mixtures_add_general_instructions_one_to_one(domain):
    c = load()
    assert c["synthesis"]["corpora"][domain] == {"fraction": 1.0, "rounds": 3}  # all, M = 3
    vanilla = design.mixture_components(c, f"{domain}-vanilla")
    assert [x["path"] for x in vanilla] == [
        ("data", f"raw_{domain}"),
        ("data", "general_instructions"),
    ]
    mixtures = [vanilla]
    for variant in design.AUGMENTED_VARIANTS:
        mixtures.append(design.mixture_components(c, f"{domain}-{variant}"))
        assert [x["path"] for x in mixtures[-1]] == [
            ("augmented", domain, variant),
            ("rest", domain),
            ("data", "general_instructions"),
        ]
    for comps in mixtures:
        *corpus, instructions = comps
        # 1:1 by tokens against everything of the domain corpus (paper-facts 3)
        assert instructions["format"] == "instruction"
        assert instructions["ratio"] == 1.0
        assert instructions["match"] == [x["name"] for x in corpus]
        assert all("repeat" not in x for x in comps)  # no fine-tuning collection here


def test_components_keep_their_order_and_take_a_located_path():
    c = load("tiny")
    located = design.mixture_components(c, "general-mix", lambda s: "/".join(s))
    assert [list(x) for x in located] == [
        ["name", "path", "format"],
        ["name", "path", "format", "repeat", "head"],  # tiny mixes the collection's head
    ]
    assert [x["path"] for x in located] == ["data/raw_general", "data/synth_ft.templified"]
    assert located[1]["head"] == c["pretrain"]["ft_records"] is not None
    assert "head" not in design.mixture_components(load(), "general-mix")[1]


@pytest.mark.parametrize("mixture", ["general-rule_based", "legal-vanilla", "finance-mix"])
def test_an_unknown_mixture_is_named(mixture):
    with pytest.raises(cfg.ConfigError, match=re.escape(repr(mixture))):
        design.mixture_components(load(), mixture)


def test_synthesis_rounds_and_context_of_each_variant():
    c = load()
    assert [design.synthesis_rounds(c, k, "model") for k in design.CORPORA] == [2, 3, 3]
    assert design.synthesis_rounds(c, "finance", "one_shot") == 1  # the 1-shot ablation: M = 1
    assert {v: design.augmented_method(v) for v in design.AUGMENTED_VARIANTS} == {
        "instruct": "model",
        "wo_corpora": "model",
        "one_shot": "one_shot",
        "rule_based": "rule_based",
        "oracle": "oracle",  # the world's true pairs (miniature ceiling)
    }
    assert [design.include_context(c, v) for v in design.AUGMENTED_VARIANTS] == [
        True,
        False,  # w/o Corpora: the pairs without their raw texts
        True,
        True,
        True,
    ]
    c["ablations"]["wo_corpora"]["include_context"] = True
    assert design.include_context(c, "wo_corpora") is True


# ----------------------------------------------------------------------------- tables, figures


def test_table1_is_every_size_and_variant():
    assert design.table1_rows(load()) == [
        {"label": "500M Vanilla PT", "model": "scratch-500m-vanilla"},
        {"label": "500M Mix PT", "model": "scratch-500m-mix"},
        {"label": "500M Instruct PT", "model": "scratch-500m-instruct"},
        {"label": "1.3B Vanilla PT", "model": "scratch-1.3b-vanilla"},
        {"label": "1.3B Instruct PT", "model": "scratch-1.3b-instruct"},
    ]
    assert design.scratch_models(load()) == [r["model"] for r in design.table1_rows(load())]


def test_table2_is_ours_and_the_references_with_the_papers_counts():
    rows = design.table2_rows(load())
    assert labels(rows) == ["Instruct PT 500M", "Instruct PT 1.3B", "Pythia-1B", "BLOOM-3B"]
    assert [r["ours"] for r in rows] == [True, True, False, False]
    pythia, bloom = rows[2:]
    assert (pythia["model"], pythia["params"], pythia["tokens"]) == ("base-pythia_1b", 1e9, 3e11)
    assert (bloom["model"], bloom["params"], bloom["tokens"]) == ("base-bloom_3b", 3e9, 3.41e11)
    assert "model_dir" not in pythia  # a hub model: the paper's counts, no folder read
    assert rows[0]["model_dir"] == "scratch-500m-instruct"


def test_table2_stand_ins_report_what_was_trained():
    rows = design.table2_rows(load("smoke"), lambda m: f"models/{m}")
    refs = [r for r in rows if not r["ours"]]
    assert [r["model_dir"] for r in refs] == ["models/base-pythia_1b", "models/base-bloom_3b"]
    assert all(r["params"] is None and r["tokens"] is None for r in refs)


def test_table3_is_vanilla_and_instruct_cpt_per_domain_and_the_references():
    rows = design.table3_rows(load())
    assert labels(rows) == ["Llama3-8B", "Vanilla PT-8B", "Instruct PT-8B", "Llama3-70B"]
    for row in rows:
        assert list(row["models"]) == DOMAINS
    assert [r["models"]["finance"] for r in rows] == [
        "base-llama3_8b",
        "cpt-finance-vanilla",
        "cpt-finance-instruct",
        "base-llama3_70b",
    ]


def test_table3_follows_continual_pretrain_variants_in_the_papers_order():
    c = load()
    c["continual_pretrain"]["variants"] = ["instruct", "vanilla"]
    assert labels(design.table3_rows(c))[1:3] == ["Vanilla PT-8B", "Instruct PT-8B"]
    c["continual_pretrain"]["variants"] = ["instruct"]
    assert labels(design.table3_rows(c)) == ["Llama3-8B", "Instruct PT-8B", "Llama3-70B"]
    assert design.cpt_models(c) == ["cpt-biomedicine-instruct", "cpt-finance-instruct"]


def test_table4_is_instruct_pt_and_the_three_ablations():
    rows = design.table4_rows(load())
    assert labels(rows) == ["Instruct PT", "w/o Corpora", "Rule-based", "1-shot"]
    assert [r["models"]["biomedicine"] for r in rows] == [
        "cpt-biomedicine-instruct",
        "cpt-biomedicine-wo_corpora",
        "cpt-biomedicine-rule_based",
        "cpt-biomedicine-one_shot",
    ]
    assert len(design.cpt_models(load(), design.CPT_VARIANTS)) == 10


@given(
    domains=st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=2, unique=True),
    variants=st.lists(st.sampled_from(["vanilla", "instruct"]), min_size=1, unique=True),
)
def test_every_cpt_model_of_a_domain_table_has_its_mixture(domains, variants):
    c = load()
    c["continual_pretrain"].update(domains=domains, variants=variants)
    for rows in (design.table3_rows(c), design.table4_rows(c)):
        assert len(rows) == (2 + len(variants) if rows[0]["label"] == "Llama3-8B" else 4)
        for row in rows:
            assert list(row["models"]) == domains
            for domain, model in row["models"].items():
                m = re.fullmatch(r"cpt-(\w+?)-(\w+)", model)
                if m:  # trained from the mixture {domain}-{variant}
                    assert m.group(1) == domain and m.group(2) in design.CPT_VARIANTS
                    assert design.mixture_components(c, f"{domain}-{m.group(2)}")


def test_figure4_curves_are_the_tuned_variants_at_each_saved_step():
    c = load()
    c["instruction_tuning"]["save_steps"] = [2000, 500]
    curves = design.figure4_curves(c)
    assert [(x["label"], x["variant"]) for x in curves] == [
        ("Vanilla PT", "vanilla"),
        ("Instruct PT", "instruct"),
    ]
    assert curves[1]["steps"] == {
        500: "it-500m-instruct-step500",
        2000: "it-500m-instruct-step2000",
    }
    assert design.it_models(c) == [m for x in curves for m in x["steps"].values()]
    assert design.probe_task(c) == "mmlu"
    c["evaluation"]["settings"]["probe_zeroshot"]["tasks"] = []
    assert design.probe_task(c) is None


def test_figure_and_claim_rows_exist_in_the_design():
    """Every row a claim compares is a row the design makes (paper scale)."""
    text = (ROOT / "src/instruct_pt/resources/claims.yaml").read_text()
    assert yaml.safe_load(text)["claims"]
    c = load()
    rows = {
        "table1": labels(design.table1_rows(c)),
        "table2": labels(design.table2_rows(c)),
        "table3": labels(design.table3_rows(c)),
        "table4": labels(design.table4_rows(c)),
        "figure4": labels(design.figure4_curves(c)),
    }
    refs = re.findall(r"\{table: (\w+), row: \"([^\"]+)\"", text)
    assert len(refs) > 20
    missing = [(t, r) for t, r in refs if t in rows and r not in rows[t]]
    assert missing == []


def test_base_models_read_are_the_synthesizer_cpt_start_and_references():
    c = load()
    assert design.base_models_read(c) == {
        "mistral_7b",
        "llama3_8b",
        "pythia_1b",
        "bloom_3b",
        "llama3_70b",
    }
    c["synthesizer"]["use"] = "released"
    assert "released_synthesizer" in design.base_models_read(c)


def test_ceilings():
    assert design.ceiling_suites(load()) == []
    assert design.ceiling_row(load(), ["general"]) is None
    tiny = load("tiny")
    suites = design.ceiling_suites(tiny)
    assert "general" in suites
    assert design.ceiling_row(tiny, ["general"])["model"] == "ceiling-general"
    domain = design.ceiling_row(tiny, DOMAINS)
    assert set(domain["models"]) == set(DOMAINS) & set(suites)
    assert domain["label"].startswith("ceiling: ")
    tiny["ceilings"]["suites"]["law"] = {"model": "x", "label": "x"}
    with pytest.raises(cfg.ConfigError, match=r"config key 'ceilings\.suites\.law'"):
        design.ceiling_suites(tiny)
