"""The miniature world: a seeded generator of every data set the workflow needs at CPU scale.

At paper scale the workflow reads RefinedWeb, PubMed abstracts, financial news, OpenOrca, FLAN and
the synthesizer's fine-tuning collection from the hub, and evaluates on public benchmarks. At
miniature scale this module replaces all of them with small synthetic data sets in exactly the same
record formats (docs/architecture.md), built from one fictional world:

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
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from instruct_pt.common import DataError, stable_hash, write_jsonl

log = logging.getLogger(__name__)

DEFAULT_WORLD: dict[str, Any] = {
    "seed": 0,
    "n_people": 120,  # general-domain entities
    "n_drugs": 60,  # biomedicine entities
    "n_companies": 60,  # finance entities
    "docs_per_entity": 3,  # renderings of each entity's document in its raw corpus
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

# --------------------------------------------------------------------------------------------
# Vocabulary pools (all fictional names; values are ordinary English words)

_FIRST = """Alden Brisa Corvin Delia Emrys Fenna Galen Hester Ivo Jorna Kael Liora Maren Nolan Orla
Perrin Quilla Rowan Selka Tobin Ursa Vance Wren Xara Yorick Zelda Anika Bram Cato Dara Elio Faye
Gideon Halla Ines Joss Kira Lucan Mira Nico""".split()
_LAST = """Ashdown Brackett Calloway Dunmore Everly Fairbank Galloway Hartwell Ingram Jessop Kettering
Lockwood Marlowe Northcott Oakridge Pemberton Quarry Redfern Stanhope Thornbury Underhill Vexley
Whitlock Yardley Zellman Alcott Blythe Cranmer Draycott Elmsworth Fenwick Greaves Holloway Ivesdale
Jarrow Kimber Larkspur Merriweather Nettleton Orwin""".split()
_CITIES = """Dorvik Almira Belcastle Corrinth Elsmere Faldor Glenhaven Harrowby Istral Junomar Kestrel
Lunaris Marbeck Norwind Ostara Pellham Quenby Rivenholm Saltmere Tarrow Umberlin Valdis Westmarch
Yarrowby Zennor Ambleford Brightwater Coldharbor Duskwood Emberton""".split()
_UNIVERSITIES = [
    f"{w} University"
    for w in """Northgate Halden Cresthill Amberly Stonebridge Wexford Lakemont Redwater Silverton
    Oakhaven Pinecrest Elmhurst Eastbrook Highmoor Fairhaven Greywell Bellmont Ravenhurst Thistle
    Westholm""".split()
]
_MAJORS = """chemistry|history|economics|physics|biology|philosophy|mathematics|linguistics|architecture|
music|geology|astronomy|law|sociology|statistics|literature|engineering|botany|psychology|art history|
journalism|computer science|agriculture|anthropology""".replace("\n", "").split("|")
_EMPLOYERS = """Bluefin Press|Ironleaf Studios|Copperline Logistics|Maple Street Clinic|Harbor Light Museum|
Silverpine Bakery|Northwind Observatory|Greenhollow Farms|Lanternworks|Stoneway Builders|Riverbend Library|
Quillmark Publishing|Brightforge Labs|Tidewater Shipping|Amberfield School|Kestrel Air Service|
Willowmere Hotel|Cobalt Theatre|Sunridge Dairy|Foxglove Design|Highpoint Radio|Meadowlark Cafe|
Glassworks Guild|Pebble Bay Aquarium|Old Mill Brewery""".replace("\n", "").split("|")
_HOBBIES = """chess|sailing|pottery|birdwatching|archery|gardening|rock climbing|painting|fencing|
knitting|cycling|stargazing|fishing|woodcarving|photography|rowing|calligraphy|beekeeping|juggling|
origami|kayaking|baking|skiing|puzzles|tennis""".replace("\n", "").split("|")
_YEARS = [str(y) for y in range(1940, 2000)]

_DRUG_HEADS = (
    "Vel Cor Dax Lum Mer Nor Ost Pra Quin Rax Sel Tav Ulv Vor Xen Zol Bri Fen Gal Hal".split()
)
_DRUG_TAILS = (
    "orazine imab afenib oxetine iprazole umide avir olol astatin ofloxin idone etrel".split()
)
_GENES = """TRX4 KLM2 PDR7 VNF9 ABR3 CXL5 DMT1 EGN6 FRK8 GWP2 HSN4 QRB7 MLV3 NTS5 ORB1 PLX6 RVK2 SDX8
TMV4 WNT9 ZKA3 BLQ6 CRD2 FYN7 GMR5 HPX1 JRV8 KSD4 LTQ6 MXR2""".split()
_MECHANISMS = ["inhibitor", "activator", "agonist", "antagonist", "substrate"]
_DISEASES = """chronic migraine|plaque psoriasis|type 2 diabetes|asthma|rheumatoid arthritis|
hypertension|epilepsy|major depression|Crohn disease|glaucoma|gout|osteoporosis|atrial fibrillation|
acne|chronic insomnia|psoriatic arthritis|heart failure|hepatitis C|multiple sclerosis|
Parkinson disease|anemia|lupus|bronchitis|eczema|angina""".replace("\n", "").split("|")
_SIDE_EFFECTS = """mild nausea|headache|dizziness|dry mouth|fatigue|skin rash|trouble sleeping|
weight gain|blurred vision|muscle pain|low blood pressure|hair loss|cough|constipation|anxiety""".replace(
    "\n", ""
).split("|")
_OUTCOMES = ["effective", "ineffective", "inconclusive"]
_TRIAL_SIZES = [str(n) for n in range(60, 620, 20)]

_CO_HEADS = "Orv Belt Cald Dren Esk Farn Grel Hux Ilm Jask Korv Lund Mav Nesk Ostr".split()
_CO_TAILS = "ane rix eon ara ico ora ent ium oda ex".split()
_SECTORS = {
    "software": ["Systems", "Software"],
    "energy": ["Energy", "Power"],
    "retail": ["Stores", "Retail"],
    "banking": ["Bank", "Financial"],
    "pharmaceuticals": ["Pharma", "Therapeutics"],
    "automotive": ["Motors", "Automotive"],
    "food": ["Foods", "Kitchens"],
    "telecom": ["Telecom", "Networks"],
    "mining": ["Mining", "Resources"],
    "airlines": ["Airways", "Aviation"],
}
_SENTIMENTS = ["negative", "neutral", "positive"]
_GROWTH = {  # growth in percent, by sentiment of the news
    "negative": [-30, -25, -20, -15, -10],
    "neutral": [-5, 0, 5],
    "positive": [10, 15, 20, 25, 30, 35, 40],
}

# --------------------------------------------------------------------------------------------
# Templates. {S}/{s}: subject at/after the start of a sentence, {P}/{p}: possessive; {v}: value.

_STATEMENTS: dict[str, list[str]] = {
    "birth_city": [
        "{S} was born in {v}.",
        "{S} was born in the city of {v}.",
        "{P} birthplace is {v}.",
    ],
    "birth_year": [
        "{S} was born in the year {v}.",
        "{P} year of birth is {v}.",
        "{S} was born in {v}.",
    ],
    "university": ["{S} studied at {v}.", "{S} attended {v}.", "{S} is a graduate of {v}."],
    "major": [
        "{S} majored in {v}.",
        "{S} studied {v} at university.",
        "{P} field of study was {v}.",
    ],
    "employer": ["{S} works for {v}.", "{S} is employed by {v}.", "{P} employer is {v}."],
    "hobby": ["{S} enjoys {v}.", "{P} favorite hobby is {v}.", "{S} spends weekends on {v}."],
    "treats": [
        "{S} is used to treat {v}.",
        "{S} is prescribed for {v}.",
        "Doctors give {s} to patients with {v}.",
    ],
    "side_effect": [
        "A common side effect of {s} is {v}.",
        "{S} can cause {v}.",
        "Some patients on {s} report {v}.",
    ],
}
_MECHANISM_STATEMENTS = {
    "inhibitor": ["{S} inhibits {g}.", "{S} blocks the activity of {g}."],
    "activator": ["{S} activates {g}.", "{S} increases the activity of {g}."],
    "agonist": ["{S} is an agonist of {g}.", "{S} binds and stimulates {g}."],
    "antagonist": ["{S} is an antagonist of {g}.", "{S} binds {g} and blocks its signal."],
    "substrate": ["{S} is a substrate of {g}.", "{S} is broken down by {g}."],
}
_OUTCOME_STATEMENTS = {
    "effective": ["In a trial of {n} patients, {s} clearly reduced symptoms."],
    "ineffective": ["In a trial of {n} patients, {s} did not reduce symptoms."],
    "inconclusive": ["In a trial of {n} patients, the effect of {s} was unclear."],
}
_INTRO_STATEMENTS = [
    "{S} is a {x} company based in {y}.",
    "{S} is a {x} company with headquarters in {y}.",
]
_CEO_STATEMENTS = ["{S} is led by chief executive {c}.", "Chief executive {c} runs {s}."]
_REPORTED = (
    "{S} reported quarterly revenue of {r} million dollars, against {p0} million a year earlier."
)
_REVENUE_STATEMENTS = {
    "up": [
        _REPORTED,
        "Quarterly revenue at {s} reached {r} million dollars, up from {p0} million.",
    ],
    "down": [
        _REPORTED,
        "Quarterly revenue at {s} slipped to {r} million dollars from {p0} million.",
    ],
    "flat": [_REPORTED],
}
_GROWTH_STATEMENTS = {
    "up": "Revenue grew by {g} percent from a year earlier.",
    "down": "Revenue fell by {g} percent from a year earlier.",
    "flat": "Revenue was flat compared with a year earlier.",
}
_REACTIONS = {
    "positive": ["Shares rose after the report as investors cheered the results."],
    "neutral": ["Shares were little changed after the report."],
    "negative": ["Shares fell after the report as investors worried about the results."],
}

# Question phrasings: "train" ones appear in training sets, "eval" ones only in the evaluation.
_QUESTIONS: dict[str, dict[str, list[str]]] = {
    "birth_city": {
        "train": [
            "Where was {n} born?",
            "In which city was {n} born?",
            "What is the birthplace of {n}?",
        ],
        "eval": [
            "What city does {n} come from originally?",
            "Name the city where {n} came into the world.",
        ],
    },
    "birth_year": {
        "train": [
            "In what year was {n} born?",
            "When was {n} born?",
            "What is the birth year of {n}?",
        ],
        "eval": [
            "Which year saw the arrival of {n}?",
            "What year marks the beginning of the life of {n}?",
        ],
    },
    "university": {
        "train": [
            "Which university did {n} attend?",
            "Where did {n} study?",
            "At which university did {n} study?",
        ],
        "eval": [
            "From which school did {n} obtain a diploma?",
            "Which university counts {n} among its alumni?",
        ],
    },
    "major": {
        "train": [
            "What did {n} major in?",
            "What subject did {n} study?",
            "What was the major of {n}?",
        ],
        "eval": [
            "Which academic discipline did {n} specialize in?",
            "The degree of {n} is in which subject area?",
        ],
    },
    "employer": {
        "train": ["Who employs {n}?", "Which company does {n} work for?", "Where does {n} work?"],
        "eval": [
            "Which organization pays the salary of {n}?",
            "{n} is on the staff of which organization?",
        ],
    },
    "hobby": {
        "train": [
            "What is the hobby of {n}?",
            "What does {n} enjoy doing in free time?",
            "What is the favorite hobby of {n}?",
        ],
        "eval": ["Which pastime does {n} pursue?", "How does {n} like to spend leisure hours?"],
    },
    "treats": {
        "train": [
            "What is {n} used to treat?",
            "Which disease does {n} treat?",
            "What condition is {n} prescribed for?",
        ],
        "eval": [
            "For which illness would a physician order {n}?",
            "{n} is indicated for which disorder?",
        ],
    },
    "target": {
        "train": [
            "What is the target of {n}?",
            "Which protein does {n} act on?",
            "Which gene product does {n} affect?",
        ],
        "eval": [
            "{n} exerts its effect through which molecule?",
            "Which molecular target mediates the action of {n}?",
        ],
    },
    "side_effect": {
        "train": [
            "What is a common side effect of {n}?",
            "Which side effect does {n} cause?",
            "What adverse effect is linked to {n}?",
        ],
        "eval": [
            "Patients taking {n} often report which unwanted reaction?",
            "Which complaint is typical among users of {n}?",
        ],
    },
    "ceo": {
        "train": ["Who is the chief executive of {n}?", "Who leads {n}?", "Who runs {n}?"],
        "eval": [],
    },
    "hq_city": {
        "train": [
            "Where is {n} based?",
            "Where is the headquarters of {n}?",
            "In which city is {n} headquartered?",
        ],
        "eval": [],
    },
    "sector": {
        "train": ["What industry is {n} in?", "What sector does {n} operate in?"],
        "eval": [],
    },
}

# Task instructions used only by the evaluation suites (never in training sets).
_EVAL_INSTRUCTIONS = {
    "reasoning_first": "Which of the two people was born first?",
    "reasoning_recent": "Which of the two people was born more recently?",
    "reasoning_same": "Do these two people share the same {label}?",
    "pubmedqa": "Does {d} improve outcomes for patients with {x}?",
    "chemprot": "What is the relation between {d} and {g}?",
    "mqp": "Do the two questions ask for the same information?",
    "rct": "Which section of a clinical trial abstract does this sentence come from?",
    "usmle": "A patient has {x}. Which of these drugs is prescribed for this condition?",
    "conv_change": "By how many million dollars did revenue change from a year earlier?",
    "conv_total": "What was the total revenue over both periods, in million dollars?",
    "conv_percent": "By what percentage did revenue change from a year earlier?",
    "fpb": "Is the tone of this financial news positive, negative or neutral?",
    "fiqa": "What mood does this post convey about the company?",
    "headline_up": "Does the news headline talk about price going up?",
    "headline_down": "Does the news headline talk about price going down?",
    "ner": "Name every company and person that appears in the sentence, separated by commas.",
}

# Every phrasing the evaluation uses and no training set may contain (for contamination checks).
HELD_OUT_TEMPLATES: list[str] = [t for q in _QUESTIONS.values() for t in q["eval"]] + list(
    _EVAL_INSTRUCTIONS.values()
)

COT_SUFFIX = "\nLet's think step by step."
COT_ANSWER = "{reasoning}\nTherefore, the answer is {final}"


# --------------------------------------------------------------------------------------------
# Configuration and the world's entities


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
        if key == "ft_fraction":
            if not isinstance(value, int | float) or not 0 <= value < 1:
                raise DataError(f"world config: ft_fraction must be in [0, 1), got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or (value < 0 and key != "seed"):
            raise DataError(f"world config: {key} must be a non-negative integer, got {value!r}")
    return cfg


@dataclass
class Entity:
    """One fictional person, drug or company with its attributes (relation -> value)."""

    domain: str
    name: str
    attrs: dict[str, str]
    subject: str  # pronoun-like stand-in for the name: "she", "the drug", "the company"
    possessive: str  # "her", "its"
    ft: bool  # reserved for the synthesizer fine-tuning collection and general instructions

    def facts(self) -> list[dict[str, str]]:
        return [
            {"subject": self.name, "relation": r, "value": self.attrs[r]}
            for r in RELATIONS[self.domain]
        ]


@dataclass
class World:
    """All entities of one world configuration (treat as read-only: it is cached)."""

    cfg: dict
    entities: dict[str, list[Entity]]

    def corpus(self, domain: str) -> list[Entity]:
        """Entities of the raw corpora, the only ones the evaluation asks about."""
        return [e for e in self.entities[domain] if not e.ft]

    def reserved(self, domain: str) -> list[Entity]:
        """Entities reserved for the synthesizer fine-tuning collection and instructions."""
        return [e for e in self.entities[domain] if e.ft]


def _rng(cfg: dict, *purpose: Any) -> random.Random:
    return random.Random(stable_hash(cfg["seed"], *purpose))


def build_world(world_cfg: dict | None = None, seed: int | None = None) -> World:
    """The entities of a world configuration (cached: the same object for equal configs)."""
    cfg = resolve_config(world_cfg, seed)
    return _build_world(tuple(sorted(cfg.items())))


@lru_cache(maxsize=8)
def _build_world(cfg_items: tuple) -> World:
    cfg = dict(cfg_items)
    n_people, n_drugs, n_companies = cfg["n_people"], cfg["n_drugs"], cfg["n_companies"]
    person_names = [f"{f} {last}" for f in _FIRST for last in _LAST]
    _rng(cfg, "names", "person").shuffle(person_names)
    drug_names = [h + t for h in _DRUG_HEADS for t in _DRUG_TAILS]
    _rng(cfg, "names", "drug").shuffle(drug_names)
    company_roots = [h + t for h in _CO_HEADS for t in _CO_TAILS]
    _rng(cfg, "names", "company").shuffle(company_roots)
    if (
        n_people + n_companies > len(person_names)
        or n_drugs > len(drug_names)
        or n_companies > len(company_roots)
    ):
        raise DataError(
            f"world config: too many entities (n_people + n_companies <= {len(person_names)}, "
            f"n_drugs <= {len(drug_names)}, n_companies <= {len(company_roots)})"
        )

    rng = _rng(cfg, "attributes", "general")
    people = []
    for name in person_names[:n_people]:
        subject, possessive = rng.choice([("he", "his"), ("she", "her")])
        attrs = {
            "birth_city": rng.choice(_CITIES),
            "birth_year": rng.choice(_YEARS),
            "university": rng.choice(_UNIVERSITIES),
            "major": rng.choice(_MAJORS),
            "employer": rng.choice(_EMPLOYERS),
            "hobby": rng.choice(_HOBBIES),
        }
        people.append(Entity("general", name, attrs, subject, possessive, False))

    rng = _rng(cfg, "attributes", "biomedicine")
    drugs = []
    for name in drug_names[:n_drugs]:
        attrs = {
            "target": rng.choice(_GENES),
            "mechanism": rng.choice(_MECHANISMS),
            "treats": rng.choice(_DISEASES),
            "side_effect": rng.choice(_SIDE_EFFECTS),
            "trial_size": rng.choice(_TRIAL_SIZES),
            "outcome": rng.choice(_OUTCOMES),
        }
        drugs.append(Entity("biomedicine", name, attrs, "the drug", "its", False))

    rng = _rng(cfg, "attributes", "finance")
    companies = []
    ceos = person_names[n_people : n_people + n_companies]  # disjoint from the general people
    for root, ceo in zip(company_roots[:n_companies], ceos, strict=True):
        sector = rng.choice(sorted(_SECTORS))
        sentiment = rng.choice(_SENTIMENTS)
        growth = rng.choice(_GROWTH[sentiment])
        prev = 20 * rng.randint(2, 20)  # a multiple of 20, so that revenue is a whole number
        attrs = {
            "sector": sector,
            "hq_city": rng.choice(_CITIES),
            "ceo": ceo,
            "revenue": str(prev * (100 + growth) // 100),
            "prev_revenue": str(prev),
            "growth": str(growth),
            "sentiment": sentiment,
        }
        name = f"{root} {rng.choice(_SECTORS[sector])}"
        companies.append(Entity("finance", name, attrs, "the company", "its", False))

    entities = {"general": people, "biomedicine": drugs, "finance": companies}
    for domain, ents in entities.items():
        order = list(range(len(ents)))
        _rng(cfg, "ft_split", domain).shuffle(order)
        n_ft = round(len(ents) * cfg["ft_fraction"])
        if len(ents) - n_ft < 4:
            raise DataError(
                f"world config: {domain} needs at least 4 entities outside the ft reserve"
            )
        for i in order[:n_ft]:
            ents[i].ft = True
    return World(cfg, entities)


# --------------------------------------------------------------------------------------------
# Rendering


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _say(template: str, ent: Entity, by_name: bool, **values: str) -> str:
    """Render a statement about ``ent``, calling it by name or by pronoun."""
    subject = ent.name if by_name else ent.subject
    possessive = f"{ent.name}'s" if by_name else ent.possessive
    text = template.format(S=_cap(subject), s=subject, P=_cap(possessive), p=possessive, **values)
    return _cap(text)


def _fact_sentences(ent: Entity, rng: random.Random) -> list[str]:
    """The sentences of one rendering of an entity's document; the first names the entity."""
    a = ent.attrs
    by_name = [True] + [rng.random() < 0.35 for _ in range(6)]  # else a pronoun

    def say(templates: list[str], k: int, **values: str) -> str:
        return _say(rng.choice(templates), ent, by_name[k], **values)

    if ent.domain == "general":
        rels = list(RELATIONS["general"])
        rng.shuffle(rels)
        return [say(_STATEMENTS[r], k, v=a[r]) for k, r in enumerate(rels)]
    if ent.domain == "biomedicine":
        body = [
            say(_MECHANISM_STATEMENTS[a["mechanism"]], 1, g=a["target"]),
            say(_STATEMENTS["treats"], 2, v=a["treats"]),
            say(_STATEMENTS["side_effect"], 3, v=a["side_effect"]),
            say(_OUTCOME_STATEMENTS[a["outcome"]], 4, n=a["trial_size"]),
        ]
        rng.shuffle(body)
        return [f"{ent.name} is an experimental drug."] + body
    growth = int(a["growth"])
    trend = "up" if growth > 0 else "down" if growth < 0 else "flat"
    results = " ".join(
        [
            say(_REVENUE_STATEMENTS[trend], 2, r=a["revenue"], p0=a["prev_revenue"]),
            _GROWTH_STATEMENTS[trend].format(g=abs(growth)),
            rng.choice(_REACTIONS[a["sentiment"]]),
        ]
    )
    body = [say(_CEO_STATEMENTS, 1, c=a["ceo"]), results]
    rng.shuffle(body)
    return [say(_INTRO_STATEMENTS, 0, x=a["sector"], y=a["hq_city"])] + body


def render_document(ent: Entity, rng: random.Random) -> str:
    """A fresh rendering of an entity's document (sentence order, templates, name vs pronoun)."""
    return " ".join(_fact_sentences(ent, rng))


def _raw_corpus(world: World, domain: str, name: str) -> list[dict]:
    rng = _rng(world.cfg, "dataset", name)
    items = [(e, k) for e in world.corpus(domain) for k in range(world.cfg["docs_per_entity"])]
    rng.shuffle(items)  # spread the renderings of one entity over the corpus
    return [
        {
            "id": f"{name}-{i:07d}",
            "text": render_document(e, rng),
            "meta": {"domain": domain, "entity": e.name, "facts": e.facts()},
        }
        for i, (e, _) in enumerate(items)
    ]


# --------------------------------------------------------------------------------------------
# Question-answer helpers shared by the training sets


def _options(question: str, options: list[str]) -> str:
    return question + "\nOptions:\n" + "\n".join(f"- {o}" for o in options)


def _choices(rng: random.Random, gold: str, pool: list[str], k: int = 4) -> list[str]:
    """``gold`` plus k-1 distinct distractors from ``pool``, shuffled."""
    out = rng.sample(sorted(set(pool) - {gold}), k - 1) + [gold]
    rng.shuffle(out)
    return out


def _pair(question: str, answer: str, fmt: str) -> dict[str, str]:
    return {"question": question, "answer": answer, "format": fmt}


def _ask(rng: random.Random, relation: str, name: str) -> str:
    return rng.choice(_QUESTIONS[relation]["train"]).format(n=name)


_POOLS = {
    "birth_city": _CITIES,
    "birth_year": _YEARS,
    "university": _UNIVERSITIES,
    "major": _MAJORS,
    "employer": _EMPLOYERS,
    "hobby": _HOBBIES,
    "treats": _DISEASES,
    "target": _GENES,
    "side_effect": _SIDE_EFFECTS,
    "hq_city": _CITIES,
    "sector": sorted(_SECTORS),
}


def _fact_pair(
    rng: random.Random, ent: Entity, relation: str, formats: tuple[str, ...] = ("free", "mc")
) -> dict:
    """A training-phrased question about one fact, free-form or multiple choice."""
    question, gold = _ask(rng, relation, ent.name), ent.attrs[relation]
    if rng.choice(formats) == "mc" and relation in _POOLS:
        return _pair(_options(question, _choices(rng, gold, _POOLS[relation])), gold, "mc")
    return _pair(question, gold, "free")


def _cot(question: str, reasoning: str, final: str, options: list[str] | None = None) -> dict:
    if options is not None:
        return _pair(
            _options(question, options) + COT_SUFFIX,
            COT_ANSWER.format(reasoning=reasoning, final=final),
            "mc_cot",
        )
    return _pair(question + COT_SUFFIX, COT_ANSWER.format(reasoning=reasoning, final=final), "cot")


def _compare_years(rng: random.Random, a: Entity, b: Entity) -> dict:
    """Who was born earlier/later (training phrasing), as free, CoT or MC+CoT."""
    ya, yb = int(a.attrs["birth_year"]), int(b.attrs["birth_year"])
    earlier = rng.random() < 0.5
    question = f"Who was born {'earlier' if earlier else 'later'}, {a.name} or {b.name}?"
    if ya == yb:
        final = "neither, they were born in the same year"
    else:
        final = (a if (ya < yb) == earlier else b).name
    reasoning = f"{a.name} was born in {ya}. {b.name} was born in {yb}."
    fmt = rng.choice(["free", "cot", "mc_cot"])
    if fmt == "free" or ya == yb:
        return _pair(question, final, "free")
    if fmt == "cot":
        return _cot(question, reasoning, final)
    return _cot(question, reasoning, final, [a.name, b.name])


def _revenue_change(rng: random.Random, ent: Entity) -> dict:
    r, p = int(ent.attrs["revenue"]), int(ent.attrs["prev_revenue"])
    question = f"How much did the quarterly revenue of {ent.name} change, in million dollars?"
    reasoning = f"Revenue was {r} million dollars this quarter and {p} million a year earlier. {r} - {p} = {r - p}."
    return (
        _cot(question, reasoning, str(r - p))
        if rng.random() < 0.7
        else _pair(question, str(r - p), "free")
    )


def _summary(ent: Entity) -> str:
    a = ent.attrs
    if ent.domain == "general":
        return f"{ent.name} is a {a['major']} graduate of {a['university']} who works for {a['employer']}."
    if ent.domain == "biomedicine":
        article = "an" if a["mechanism"][0] in "aeiou" else "a"
        return f"{ent.name} is {article} {a['mechanism']} of {a['target']} used for {a['treats']}."
    direction = "grew" if int(a["growth"]) > 0 else "fell" if int(a["growth"]) < 0 else "was flat"
    return f"{ent.name} is a {a['sector']} company whose revenue {direction} this quarter."


def _claim(rng: random.Random, ent: Entity) -> tuple[str, str]:
    """A statement about a person and whether the person's document supports it."""
    relation = rng.choice(RELATIONS["general"])
    true = rng.random() < 0.5
    value = (
        ent.attrs[relation]
        if true
        else rng.choice(sorted(set(_POOLS[relation]) - {ent.attrs[relation]}))
    )
    return _say(_STATEMENTS[relation][0], ent, True, v=value), "yes" if true else "no"


# --------------------------------------------------------------------------------------------
# synth_ft: the synthesizer's fine-tuning collection (context + instruction-response pairs)


def _ft_people_qa(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("general"), i)
    return render_document(ent, rng), [_fact_pair(rng, ent, r) for r in RELATIONS["general"]]


def _ft_people_compare(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    people = world.reserved("general")
    a, b = _cycle(people, i), _cycle(people, i + 1 + rng.randrange(len(people) - 1))
    context = render_document(a, rng) + "\n" + render_document(b, rng)
    pairs = [_compare_years(rng, a, b), _compare_years(rng, b, a)]
    ya, yb = int(a.attrs["birth_year"]), int(b.attrs["birth_year"])
    q = f"How many years apart were {a.name} and {b.name} born?"
    pairs.append(
        _cot(
            q,
            f"{a.name} was born in {ya} and {b.name} in {yb}. The difference is {abs(ya - yb)}.",
            str(abs(ya - yb)),
        )
    )
    pairs += [_fact_pair(rng, a, "birth_year", ("free",)), _fact_pair(rng, b, "employer")]
    return context, pairs


def _ft_nli(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("general"), i)
    pairs = []
    for _ in range(4):
        claim, label = _claim(rng, ent)
        pairs.append(
            _pair(
                _options(f'Does the text support the claim "{claim}"?', ["yes", "no"]), label, "mc"
            )
        )
    return render_document(ent, rng), pairs


def _ft_bio_qa(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("biomedicine"), i)
    a = ent.attrs
    pairs = [_fact_pair(rng, ent, r) for r in ("treats", "target", "side_effect")]
    pairs.append(
        _pair(f"How many patients were in the trial of {ent.name}?", a["trial_size"], "free")
    )
    verdict = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}[a["outcome"]]
    pairs.append(
        _pair(
            _options(f"Did the trial show that {ent.name} works?", ["yes", "no", "maybe"]),
            verdict,
            "mc",
        )
    )
    return render_document(ent, rng), pairs


def _ft_bio_relation(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("biomedicine"), i)
    a = ent.attrs
    phrase = _say(_MECHANISM_STATEMENTS[a["mechanism"]][0], ent, True, g=a["target"])
    pairs = [
        _pair(
            _options(f"How does {ent.name} act on {a['target']}?", _MECHANISMS),
            a["mechanism"],
            "mc",
        ),
        _cot(
            f"What kind of agent is {ent.name} for {a['target']}?",
            f"The text says: {phrase}",
            a["mechanism"],
            _MECHANISMS,
        ),
        _fact_pair(rng, ent, "target", ("free",)),
    ]
    return render_document(ent, rng), pairs


def _ft_news_qa(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("finance"), i)
    pairs = [_fact_pair(rng, ent, r) for r in ("ceo", "hq_city", "sector")]
    pairs += [
        _revenue_change(rng, ent),
        _pair(
            f"By what percent did the revenue of {ent.name} change?", ent.attrs["growth"], "free"
        ),
    ]
    return render_document(ent, rng), pairs


def _ft_news_sentiment(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    ent = _cycle(world.reserved("finance"), i)
    a = ent.attrs
    growth = int(a["growth"])
    direction = "went up" if growth > 0 else "went down" if growth < 0 else "stayed the same"
    pairs = [
        _pair(_options("What is the sentiment of the news?", _SENTIMENTS), a["sentiment"], "mc"),
        _pair(
            _options("Did the revenue go up or down?", ["went up", "went down", "stayed the same"]),
            direction,
            "mc",
        ),
        _pair(
            "Did the shares go up after the report?",
            "yes" if a["sentiment"] == "positive" else "no",
            "free",
        ),
    ]
    return render_document(ent, rng), pairs


def _ft_summarize(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    domain = ("general", "biomedicine", "finance")[i % 3]
    ent = _cycle(world.reserved(domain), i // 3)
    pairs = [
        _pair("Summarize the text in one sentence.", _summary(ent), "free"),
        _pair("What is the text mainly about?", ent.name, "free"),
    ]
    return render_document(ent, rng), pairs


_GOODS = [
    "loaves",
    "apples",
    "books",
    "lamps",
    "chairs",
    "kites",
    "candles",
    "baskets",
    "jars",
    "boats",
]
_PLACES = ["a bakery", "a market stall", "a bookshop", "a workshop", "a toy store", "a farm shop"]


def _ft_math_word(world: World, rng: random.Random, i: int) -> tuple[str, list[dict]]:
    good, place = rng.choice(_GOODS), rng.choice(_PLACES)
    x, y, price = rng.randint(5, 60), rng.randint(5, 60), rng.randint(2, 9)
    context = (
        f"{_cap(place)} sold {x} {good} in the morning and {y} {good} in the afternoon. "
        f"Each of the {good} cost {price} dollars."
    )
    pairs = [
        _cot(
            f"How many {good} were sold in total?",
            f"{x} were sold in the morning and {y} in the afternoon. {x} + {y} = {x + y}.",
            str(x + y),
        ),
        _pair(
            f"How many more {good} were sold in the morning than in the afternoon?",
            str(x - y),
            "free",
        ),
        _cot(
            "How much money did the morning sales bring in?",
            f"{x} {good} at {price} dollars each is {x} * {price} = {x * price}.",
            f"{x * price} dollars",
        ),
        _pair(
            _options("When were more of them sold?", ["morning", "afternoon", "equal"]),
            "morning" if x > y else "afternoon" if y > x else "equal",
            "mc",
        ),
    ]
    return context, pairs


# name: (task_type, seen by the synthesizer during fine-tuning, builder)
FT_DATASETS: dict[str, tuple[str, bool, Any]] = {
    "people_qa": ("factoid_qa", True, _ft_people_qa),
    "people_compare": ("comparison", True, _ft_people_compare),
    "nli": ("nli", True, _ft_nli),
    "bio_qa": ("biomedical_qa", True, _ft_bio_qa),
    "bio_relation": ("relation_extraction", False, _ft_bio_relation),
    "news_qa": ("financial_qa", True, _ft_news_qa),
    "news_sentiment": ("sentiment", True, _ft_news_sentiment),
    "summarize": ("summarization", False, _ft_summarize),
    "math_word": ("arithmetic", True, _ft_math_word),
}


def _cycle(items: list, i: int):
    return items[i % len(items)]


def _require_reserved(world: World, name: str) -> None:
    """Training sets talk only about reserved entities; they need a few in every domain."""
    if any(len(world.reserved(d)) < 2 for d in RELATIONS):
        raise DataError(
            f"world config: {name} needs >= 2 reserved entities per domain (raise ft_fraction)"
        )


def _synth_ft(world: World) -> list[dict]:
    rng = _rng(world.cfg, "dataset", "synth_ft")
    names = list(FT_DATASETS)
    _require_reserved(world, "synth_ft")
    records = []
    for i in range(world.cfg["n_ft_examples"]):
        name = names[i % len(names)]
        task_type, seen, build = FT_DATASETS[name]
        context, candidates = build(world, rng, i // len(names))
        pairs = rng.sample(candidates, rng.randint(2, min(6, len(candidates))))
        records.append(
            {
                "id": f"synth_ft-{i:07d}",
                "dataset": name,
                "task_type": task_type,
                "seen": seen,
                "context": context,
                "pairs": pairs,
            }
        )
    return records


# --------------------------------------------------------------------------------------------
# general_instructions (OpenOrca-style) and instruction_tuning (FLAN-style)

_WORDS = """garden river window candle planet forest basket ladder mirror pencil harbor lantern meadow
orchard violin blanket compass feather kettle marble pillow saddle thunder tunnel wagon""".split()


def _arithmetic(rng: random.Random) -> tuple[str, str, str]:
    """(question, short answer, explained answer)"""
    x, y = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice(["plus", "minus", "times"])
    if op == "times":
        x, y = rng.randint(2, 12), rng.randint(2, 12)
    value = {"plus": x + y, "minus": x - y, "times": x * y}[op]
    return f"What is {x} {op} {y}?", str(value), f"{x} {op} {y} equals {value}."


def _word_task(rng: random.Random) -> tuple[str, str, str]:
    word = rng.choice(_WORDS)
    kind = rng.randrange(3)
    if kind == 0:
        return (
            f"Spell the word '{word}' backwards.",
            word[::-1],
            f"The word '{word}' spelled backwards is '{word[::-1]}'.",
        )
    if kind == 1:
        return (
            f"How many letters are in the word '{word}'?",
            str(len(word)),
            f"The word '{word}' has {len(word)} letters.",
        )
    return (
        f"What is the first letter of the word '{word}'?",
        word[0],
        f"The word '{word}' starts with the letter '{word[0]}'.",
    )


def _reserved_fact(world: World, rng: random.Random) -> tuple[Entity, str]:
    domain = rng.choice(["general", "biomedicine", "finance"])
    ent = rng.choice(world.reserved(domain))
    relation = rng.choice([r for r in RELATIONS[domain] if r in _QUESTIONS])
    return ent, relation


def _general_instructions(world: World) -> list[dict]:
    _require_reserved(world, "general_instructions")
    rng = _rng(world.cfg, "dataset", "general_instructions")
    records = []
    for i in range(world.cfg["n_general_instructions"]):
        kind = i % 4
        if kind == 0:
            question, _, response = _arithmetic(rng)
        elif kind == 1:
            question, _, response = _word_task(rng)
        elif kind == 2:
            ent, relation = _reserved_fact(world, rng)
            question = _ask(rng, relation, ent.name)
            value = ent.attrs[relation]
            if relation in _STATEMENTS:
                response = _say(_STATEMENTS[relation][0], ent, True, v=value)
            else:
                response = f"The answer to the question is {value}."
        else:
            people = world.reserved("general")
            a, b = rng.sample(people, 2)
            pair = _compare_years(rng, a, b)
            question = pair["question"]
            response = pair["answer"].replace("\nTherefore, the answer is ", " So the answer is ")
        records.append(
            {"id": f"general_instructions-{i:07d}", "question": question, "response": response}
        )
    return records


_REVIEW_ITEMS = [
    "the soup",
    "the film",
    "the hotel room",
    "the concert",
    "the novel",
    "the new phone",
    "the museum tour",
    "the coffee",
]
_REVIEW_WORDS = {
    "positive": [
        "was wonderful",
        "was a delight",
        "exceeded my hopes",
        "was excellent",
        "made my day",
    ],
    "negative": [
        "was awful",
        "was a waste of money",
        "let me down",
        "was cold and bland",
        "was boring",
    ],
}
_TOPICS = {
    "sports": [
        "Local team wins the cup final",
        "Runner sets a new track record",
        "Coach signs a new contract",
    ],
    "science": [
        "Researchers map a distant comet",
        "New telescope spots a young star",
        "Study finds bees count to four",
    ],
    "weather": [
        "Heavy snow closes mountain roads",
        "Heatwave expected next week",
        "Storm brings floods to the coast",
    ],
    "arts": [
        "Painter opens a new gallery show",
        "Orchestra plays a forgotten symphony",
        "Poet wins a national prize",
    ],
}


def _instruction_tuning(world: World) -> list[dict]:
    _require_reserved(world, "instruction_tuning")
    rng = _rng(world.cfg, "dataset", "instruction_tuning")
    people, drugs, companies = (
        world.reserved("general"),
        world.reserved("biomedicine"),
        world.reserved("finance"),
    )
    records = []
    kinds = [
        "sentiment",
        "topic",
        "uppercase",
        "arithmetic",
        "word",
        "reading_comprehension",
        "closed_book_qa",
        "yes_no_qa",
        "comparison",
        "entity_listing",
        "financial_sentiment",
        "drug_relation",
    ]
    for i in range(world.cfg["n_instruction_tuning"]):
        kind = kinds[i % len(kinds)]
        if kind == "sentiment":
            label = rng.choice(["positive", "negative"])
            review = _cap(f"{rng.choice(_REVIEW_ITEMS)} {rng.choice(_REVIEW_WORDS[label])}.")
            instruction, response = (
                _options(
                    f"Review: {review}\nIs this review positive or negative?",
                    ["positive", "negative"],
                ),
                label,
            )
        elif kind == "topic":
            topic = rng.choice(sorted(_TOPICS))
            instruction = _options(
                f"Headline: {rng.choice(_TOPICS[topic])}\nWhich topic is this headline about?",
                sorted(_TOPICS),
            )
            response = topic
        elif kind == "uppercase":
            sentence = _cap(f"{rng.choice(_REVIEW_ITEMS)} {rng.choice(_REVIEW_WORDS['positive'])}.")
            instruction, response = (
                f"Write this sentence in capital letters: {sentence}",
                sentence.upper(),
            )
        elif kind == "arithmetic":
            instruction, response, _ = _arithmetic(rng)
        elif kind == "word":
            instruction, response, _ = _word_task(rng)
        elif kind == "reading_comprehension":
            ent = rng.choice(people)
            relation = rng.choice(RELATIONS["general"])
            instruction = f"{render_document(ent, rng)}\n\n{_ask(rng, relation, ent.name)}"
            response = ent.attrs[relation]
        elif kind == "closed_book_qa":
            ent = rng.choice(people + drugs)
            pair = _fact_pair(
                rng,
                ent,
                rng.choice(
                    ["treats", "target"] if ent.domain == "biomedicine" else RELATIONS["general"]
                ),
                ("mc",),
            )
            instruction, response = pair["question"], pair["answer"]
        elif kind == "yes_no_qa":
            ent = rng.choice(people)
            claim, label = _claim(rng, ent)
            instruction, response = (
                f"{render_document(ent, rng)}\n\nBased on the text, is this true? {claim}",
                label,
            )
        elif kind == "comparison":
            a, b = rng.sample(people, 2)
            pair = _compare_years(rng, a, b)
            facts = f"{a.name} was born in {a.attrs['birth_year']}. {b.name} was born in {b.attrs['birth_year']}."
            instruction, response = f"{facts}\n{pair['question']}", pair["answer"]
        elif kind == "entity_listing":
            ent = rng.choice(companies)
            sentence = f"{ent.attrs['ceo']} said that {ent.name} will open a new office in {ent.attrs['hq_city']}."
            instruction = f"List the people and companies mentioned in this sentence: {sentence}"
            response = f"{ent.attrs['ceo']}, {ent.name}"
        elif kind == "financial_sentiment":
            ent = rng.choice(companies)
            instruction = _options(
                f"{render_document(ent, rng)}\nWhat is the sentiment of the news?", _SENTIMENTS
            )
            response = ent.attrs["sentiment"]
        else:  # drug_relation
            ent = rng.choice(drugs)
            sentence = _say(
                rng.choice(_MECHANISM_STATEMENTS[ent.attrs["mechanism"]]),
                ent,
                True,
                g=ent.attrs["target"],
            )
            instruction = _options(
                f"{sentence}\nHow does {ent.name} act on {ent.attrs['target']}?", _MECHANISMS
            )
            response = ent.attrs["mechanism"]
        records.append(
            {
                "id": f"instruction_tuning-{i:07d}",
                "task": kind,
                "instruction": instruction,
                "response": response,
            }
        )
    return records


def generate_dataset(name: str, world_cfg: dict | None, seed: int | None = None) -> list[dict]:
    """Generate one miniature data set in its architecture.md record format.

    ``seed`` (optional) overrides ``world_cfg["seed"]``. Each data set is seeded on its own, so the
    result does not depend on which other data sets were generated before.
    """
    if name not in DATASETS:
        raise DataError(f"world: unknown data set {name!r} (known: {', '.join(DATASETS)})")
    world = build_world(world_cfg, seed)
    if name.startswith("raw_"):
        records = _raw_corpus(world, name.removeprefix("raw_"), name)
    else:
        build = {
            "synth_ft": _synth_ft,
            "general_instructions": _general_instructions,
            "instruction_tuning": _instruction_tuning,
        }[name]
        records = build(world)
    log.info("world: generated %d %s records (seed %s)", len(records), name, world.cfg["seed"])
    return records


# --------------------------------------------------------------------------------------------
# Evaluation suites


def _picks(rng: random.Random, items: list, n: int) -> list:
    """n items, cycling through freshly shuffled copies of ``items`` (few repeats, all used)."""
    out: list = []
    while len(out) < n:
        batch = list(items)
        rng.shuffle(batch)
        out += batch
    return out[:n]


def _mc_record(query: str, choices: list[str], gold: str) -> dict:
    return {"query": query, "choices": choices, "gold": choices.index(gold)}


def _eval_reading(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("general"), n):
        relation = rng.choice(RELATIONS["general"])
        question = rng.choice(_QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        query = f"{render_document(ent, rng)}\nQuestion: {question}\nAnswer:"
        out.append(_mc_record(query, _choices(rng, gold, _POOLS[relation]), gold))
    return out


def _eval_reasoning(world: World, rng: random.Random, n: int) -> list[dict]:
    people = world.corpus("general")
    labels = {
        "employer": "employer",
        "university": "university",
        "hobby": "hobby",
        "birth_city": "birth city",
    }
    out = []
    for _ in range(n):
        kind = rng.choice(["first", "recent", "same"])
        if kind == "same":
            relation = rng.choice(sorted(labels))
            groups: dict[str, list[Entity]] = {}
            for p in people:
                groups.setdefault(p.attrs[relation], []).append(p)
            shared = [g for _, g in sorted(groups.items()) if len(g) > 1]
            if shared and rng.random() < 0.5:
                a, b = rng.sample(rng.choice(shared), 2)
            else:
                a = rng.choice(people)
                b = rng.choice([p for p in people if p.attrs[relation] != a.attrs[relation]])
            facts = " ".join(
                _say(_STATEMENTS[relation][0], e, True, v=e.attrs[relation]) for e in (a, b)
            )
            question = _EVAL_INSTRUCTIONS["reasoning_same"].format(label=labels[relation])
            gold = "yes" if a.attrs[relation] == b.attrs[relation] else "no"
            out.append(_mc_record(f"{facts}\nQuestion: {question}\nAnswer:", ["yes", "no"], gold))
            continue
        a = rng.choice(people)
        b = rng.choice([p for p in people if p.attrs["birth_year"] != a.attrs["birth_year"]])
        facts = " ".join(
            _say(_STATEMENTS["birth_year"][0], e, True, v=e.attrs["birth_year"]) for e in (a, b)
        )
        older, younger = sorted((a, b), key=lambda e: int(e.attrs["birth_year"]))
        gold = (older if kind == "first" else younger).name
        question = _EVAL_INSTRUCTIONS[f"reasoning_{kind}"]
        out.append(_mc_record(f"{facts}\nQuestion: {question}\nAnswer:", [a.name, b.name], gold))
    return out


def _eval_knowledge(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("general"), n):
        relation = rng.choice(RELATIONS["general"])
        question = rng.choice(_QUESTIONS[relation]["eval"]).format(n=ent.name)
        gold = ent.attrs[relation]
        out.append(
            _mc_record(
                f"Question: {question}\nAnswer:", _choices(rng, gold, _POOLS[relation]), gold
            )
        )
    return out


def _eval_pubmedqa(world: World, rng: random.Random, n: int) -> list[dict]:
    results = {
        "effective": "Symptoms improved markedly compared with placebo.",
        "ineffective": "Symptoms did not differ from placebo.",
        "inconclusive": "The results were mixed and did not allow a firm conclusion.",
    }
    labels = {"effective": "yes", "ineffective": "no", "inconclusive": "maybe"}
    out = []
    for ent in _picks(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        context = f"In a randomized trial, {a['trial_size']} patients with {a['treats']} received {ent.name}. {results[a['outcome']]}"
        question = _EVAL_INSTRUCTIONS["pubmedqa"].format(d=ent.name, x=a["treats"])
        out.append(
            _mc_record(
                f"Context: {context}\nQuestion: {question}\nAnswer:",
                ["yes", "no", "maybe"],
                labels[a["outcome"]],
            )
        )
    return out


def _eval_chemprot(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("biomedicine"), n):
        a = ent.attrs
        sentence = _say(rng.choice(_MECHANISM_STATEMENTS[a["mechanism"]]), ent, True, g=a["target"])
        question = _EVAL_INSTRUCTIONS["chemprot"].format(d=ent.name, g=a["target"])
        out.append(
            _mc_record(
                f"Sentence: {sentence}\nQuestion: {question}\nAnswer:",
                list(_MECHANISMS),
                a["mechanism"],
            )
        )
    return out


def _eval_mqp(world: World, rng: random.Random, n: int) -> list[dict]:
    relations = ["treats", "target", "side_effect"]
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("biomedicine"), n)):
        r1 = rng.choice(relations)
        same = k % 2 == 0
        r2 = r1 if same else rng.choice([r for r in relations if r != r1])
        q1, q2 = (
            t.format(n=ent.name) for t in _QUESTIONS[r1]["eval"][:1] + _QUESTIONS[r2]["eval"][1:]
        )
        if rng.random() < 0.5:
            q1, q2 = q2, q1
        query = f"Question 1: {q1}\nQuestion 2: {q2}\n{_EVAL_INSTRUCTIONS['mqp']}\nAnswer:"
        out.append(_mc_record(query, ["yes", "no"], "yes" if same else "no"))
    return out


_RCT_SENTENCES = {
    "background": [
        "{x} affects many adults and current treatments are limited.",
        "Few options exist for patients with {x}.",
    ],
    "objective": [
        "We aimed to test whether {d} reduces symptoms of {x}.",
        "This study asked whether {d} is safe in {x}.",
    ],
    "methods": [
        "We enrolled {k} patients and gave them {d} or placebo for twelve weeks.",
        "Patients were randomly assigned to {d} or placebo.",
    ],
    "results": [
        "Symptoms improved in more patients given {d} than placebo.",
        "{e} was the most frequent side effect of {d}.",
    ],
    "conclusions": [
        "{d} may be a useful option for {x}.",
        "Larger trials of {d} are needed before wider use.",
    ],
}


def _eval_rct(world: World, rng: random.Random, n: int) -> list[dict]:
    roles = list(_RCT_SENTENCES)
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("biomedicine"), n)):
        a = ent.attrs
        role = roles[k % len(roles)]
        sentence = _cap(
            rng.choice(_RCT_SENTENCES[role]).format(
                x=a["treats"], d=ent.name, k=a["trial_size"], e=a["side_effect"]
            )
        )
        out.append(
            _mc_record(
                f"Sentence: {sentence}\nQuestion: {_EVAL_INSTRUCTIONS['rct']}\nAnswer:", roles, role
            )
        )
    return out


def _eval_usmle(world: World, rng: random.Random, n: int) -> list[dict]:
    drugs = world.corpus("biomedicine")
    out = []
    for ent in _picks(rng, drugs, n):
        a = ent.attrs
        kind = rng.choice(["treats", "target", "side_effect", "which_drug"])
        if kind == "which_drug":
            others = sorted({d.name for d in drugs if d.attrs["treats"] != a["treats"]})
            if len(others) >= 3:
                question = _EVAL_INSTRUCTIONS["usmle"].format(x=a["treats"])
                choices = rng.sample(others, 3) + [ent.name]
                rng.shuffle(choices)
                out.append(_mc_record(f"Question: {question}\nAnswer:", choices, ent.name))
                continue
            kind = "treats"
        question = rng.choice(_QUESTIONS[kind]["eval"]).format(n=ent.name)
        out.append(
            _mc_record(
                f"Question: {question}\nAnswer:", _choices(rng, a[kind], _POOLS[kind]), a[kind]
            )
        )
    return out


def _eval_convfinqa(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for ent in _picks(rng, world.corpus("finance"), n):
        a = ent.attrs
        r, p = int(a["revenue"]), int(a["prev_revenue"])
        kind = rng.choice(["change", "total", "percent"])
        answer = {"change": r - p, "total": r + p, "percent": int(a["growth"])}[kind]
        context = f"{ent.name} reported revenue of {r} million dollars this quarter, compared with {p} million dollars a year earlier."
        out.append(
            {
                "query": f"{context}\nQuestion: {_EVAL_INSTRUCTIONS['conv_' + kind]}\nAnswer:",
                "answer": str(answer),
            }
        )
    return out


def _sentiment_text(ent: Entity, style: str) -> str:
    a, growth = ent.attrs, abs(int(ent.attrs["growth"]))
    c, s = ent.name, a["sentiment"]
    if style == "news":
        return {
            "positive": f"{c} said quarterly revenue rose {growth} percent to {a['revenue']} million dollars.",
            "negative": f"{c} said quarterly revenue dropped {growth} percent to {a['revenue']} million dollars.",
            "neutral": f"{c} said quarterly revenue was roughly unchanged at {a['revenue']} million dollars.",
        }[s]
    if style == "post":
        return {
            "positive": f"{c} crushing it this quarter, revenue up {growth}%",
            "negative": f"{c} revenue down {growth}% again, not looking good",
            "neutral": f"{c} revenue flat this quarter, nothing exciting",
        }[s]
    return {  # headline
        "positive": f"{c} shares climb after revenue jumps {growth} percent",
        "negative": f"{c} shares slide as revenue drops {growth} percent",
        "neutral": f"{c} shares hold steady after a flat quarter",
    }[s]


def _eval_fpb(world: World, rng: random.Random, n: int) -> list[dict]:
    return [
        _mc_record(
            f"{_sentiment_text(e, 'news')}\nQuestion: {_EVAL_INSTRUCTIONS['fpb']}\nAnswer:",
            list(_SENTIMENTS),
            e.attrs["sentiment"],
        )
        for e in _picks(rng, world.corpus("finance"), n)
    ]


def _eval_fiqa(world: World, rng: random.Random, n: int) -> list[dict]:
    return [
        _mc_record(
            f"Post: {_sentiment_text(e, 'post')}\nQuestion: {_EVAL_INSTRUCTIONS['fiqa']}\nAnswer:",
            list(_SENTIMENTS),
            e.attrs["sentiment"],
        )
        for e in _picks(rng, world.corpus("finance"), n)
    ]


def _eval_headline(world: World, rng: random.Random, n: int) -> list[dict]:
    out = []
    for k, ent in enumerate(_picks(rng, world.corpus("finance"), n)):
        sub = ("up", "down")[k % 2]
        gold = (
            "yes" if ent.attrs["sentiment"] == {"up": "positive", "down": "negative"}[sub] else "no"
        )
        query = f"Headline: {_sentiment_text(ent, 'headline')}\nQuestion: {_EVAL_INSTRUCTIONS['headline_' + sub]}\nAnswer:"
        out.append({"subtask": sub, **_mc_record(query, ["yes", "no"], gold)})
    return out


def _eval_ner(world: World, rng: random.Random, n: int) -> list[dict]:
    templates = [
        ("{p}, chief executive of {c}, spoke to investors in {y}.", "pc"),
        ("{c} said on Monday that {p} will stay on as chief executive.", "cp"),
        ("Analysts praised {c} after {p} presented the quarterly report in {y}.", "cp"),
    ]
    out = []
    for ent in _picks(rng, world.corpus("finance"), n):
        template, order = rng.choice(templates)
        a = ent.attrs
        sentence = template.format(p=a["ceo"], c=ent.name, y=a["hq_city"])
        names = [a["ceo"], ent.name] if order == "pc" else [ent.name, a["ceo"]]
        out.append(
            {
                "query": f"Sentence: {sentence}\nQuestion: {_EVAL_INSTRUCTIONS['ner']}\nAnswer:",
                "answer": ", ".join(names),
            }
        )
    return out


_EVAL_BUILDERS = {
    "general": {
        "reading": _eval_reading,
        "reasoning": _eval_reasoning,
        "knowledge": _eval_knowledge,
    },
    "biomedicine": {
        "pubmedqa_like": _eval_pubmedqa,
        "chemprot_like": _eval_chemprot,
        "mqp_like": _eval_mqp,
        "rct_like": _eval_rct,
        "usmle_like": _eval_usmle,
    },
    "finance": {
        "convfinqa_like": _eval_convfinqa,
        "fpb_like": _eval_fpb,
        "fiqa_sa_like": _eval_fiqa,
        "headline_like": _eval_headline,
        "ner_like": _eval_ner,
    },
}


def eval_records(
    suite: str, task: str, world_cfg: dict | None, seed: int | None = None
) -> list[dict]:
    """The records of one evaluation task (what ``write_eval_suite`` writes to ``{task}.jsonl``)."""
    if suite not in _EVAL_BUILDERS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(_EVAL_BUILDERS)})"
        )
    if task not in _EVAL_BUILDERS[suite]:
        raise DataError(f"world: unknown task {task!r} in suite {suite!r}")
    world = build_world(world_cfg, seed)
    rng = _rng(world.cfg, "eval", suite, task)
    records = []
    for i, rec in enumerate(_EVAL_BUILDERS[suite][task](world, rng, world.cfg["eval_per_task"])):
        sub = rec.pop("subtask", None)
        rec_id = f"{task}-{sub}-{i:05d}" if sub else f"{task}-{i:05d}"
        records.append({"id": rec_id, **rec})
    return records


def write_eval_suite(
    suite: str, world_cfg: dict | None, out_dir: str, seed: int | None = None
) -> dict:
    """Write ``{out_dir}/{task}.jsonl`` for every task of ``suite``; return ``{task: meta}``.

    Multiple-choice records are ``{"id", "query", "choices", "gold"}``, generation records
    ``{"id", "query", "answer"}``. Queries end without a trailing space (lm-eval puts " " before the
    target) and choices have no leading space.
    """
    if suite not in EVAL_TASKS:
        raise DataError(
            f"world: unknown evaluation suite {suite!r} (known: {', '.join(EVAL_TASKS)})"
        )
    out = Path(out_dir)
    meta = {}
    for task, task_meta in EVAL_TASKS[suite].items():
        n = write_jsonl(out / f"{task}.jsonl", eval_records(suite, task, world_cfg, seed))
        log.info("world: wrote %d records of %s/%s", n, suite, task)
        meta[task] = dict(task_meta)
    return meta
