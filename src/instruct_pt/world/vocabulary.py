"""Fixed vocabulary of the miniature world: value pools, statement templates, question phrasings.

All names are fictional; values are ordinary English words. ``HELD_OUT_TEMPLATES`` lists every
phrasing that only the evaluation uses.
"""

from __future__ import annotations

FIRST = """Alden Brisa Corvin Delia Emrys Fenna Galen Hester Ivo Jorna Kael Liora Maren Nolan Orla
Perrin Quilla Rowan Selka Tobin Ursa Vance Wren Xara Yorick Zelda Anika Bram Cato Dara Elio Faye
Gideon Halla Ines Joss Kira Lucan Mira Nico""".split()
LAST = """Ashdown Brackett Calloway Dunmore Everly Fairbank Galloway Hartwell Ingram Jessop Kettering
Lockwood Marlowe Northcott Oakridge Pemberton Quarry Redfern Stanhope Thornbury Underhill Vexley
Whitlock Yardley Zellman Alcott Blythe Cranmer Draycott Elmsworth Fenwick Greaves Holloway Ivesdale
Jarrow Kimber Larkspur Merriweather Nettleton Orwin""".split()
CITIES = """Dorvik Almira Belcastle Corrinth Elsmere Faldor Glenhaven Harrowby Istral Junomar Kestrel
Lunaris Marbeck Norwind Ostara Pellham Quenby Rivenholm Saltmere Tarrow Umberlin Valdis Westmarch
Yarrowby Zennor Ambleford Brightwater Coldharbor Duskwood Emberton""".split()
UNIVERSITIES = [
    f"{w} University"
    for w in """Northgate Halden Cresthill Amberly Stonebridge Wexford Lakemont Redwater Silverton
    Oakhaven Pinecrest Elmhurst Eastbrook Highmoor Fairhaven Greywell Bellmont Ravenhurst Thistle
    Westholm""".split()
]
MAJORS = """chemistry|history|economics|physics|biology|philosophy|mathematics|linguistics|architecture|
music|geology|astronomy|law|sociology|statistics|literature|engineering|botany|psychology|art history|
journalism|computer science|agriculture|anthropology""".replace("\n", "").split("|")
EMPLOYERS = """Bluefin Press|Ironleaf Studios|Copperline Logistics|Maple Street Clinic|Harbor Light Museum|
Silverpine Bakery|Northwind Observatory|Greenhollow Farms|Lanternworks|Stoneway Builders|Riverbend Library|
Quillmark Publishing|Brightforge Labs|Tidewater Shipping|Amberfield School|Kestrel Air Service|
Willowmere Hotel|Cobalt Theatre|Sunridge Dairy|Foxglove Design|Highpoint Radio|Meadowlark Cafe|
Glassworks Guild|Pebble Bay Aquarium|Old Mill Brewery""".replace("\n", "").split("|")
HOBBIES = """chess|sailing|pottery|birdwatching|archery|gardening|rock climbing|painting|fencing|
knitting|cycling|stargazing|fishing|woodcarving|photography|rowing|calligraphy|beekeeping|juggling|
origami|kayaking|baking|skiing|puzzles|tennis""".replace("\n", "").split("|")
YEARS = [str(y) for y in range(1940, 2000)]

DRUG_HEADS = (
    "Vel Cor Dax Lum Mer Nor Ost Pra Quin Rax Sel Tav Ulv Vor Xen Zol Bri Fen Gal Hal".split()
)
DRUG_TAILS = (
    "orazine imab afenib oxetine iprazole umide avir olol astatin ofloxin idone etrel".split()
)
GENES = """TRX4 KLM2 PDR7 VNF9 ABR3 CXL5 DMT1 EGN6 FRK8 GWP2 HSN4 QRB7 MLV3 NTS5 ORB1 PLX6 RVK2 SDX8
TMV4 WNT9 ZKA3 BLQ6 CRD2 FYN7 GMR5 HPX1 JRV8 KSD4 LTQ6 MXR2""".split()
MECHANISMS = ["inhibitor", "activator", "agonist", "antagonist", "substrate"]
DISEASES = """chronic migraine|plaque psoriasis|type 2 diabetes|asthma|rheumatoid arthritis|
hypertension|epilepsy|major depression|Crohn disease|glaucoma|gout|osteoporosis|atrial fibrillation|
acne|chronic insomnia|psoriatic arthritis|heart failure|hepatitis C|multiple sclerosis|
Parkinson disease|anemia|lupus|bronchitis|eczema|angina""".replace("\n", "").split("|")
SIDE_EFFECTS = """mild nausea|headache|dizziness|dry mouth|fatigue|skin rash|trouble sleeping|
weight gain|blurred vision|muscle pain|low blood pressure|hair loss|cough|constipation|anxiety""".replace(
    "\n", ""
).split("|")
OUTCOMES = ["effective", "ineffective", "inconclusive"]
TRIAL_SIZES = [str(n) for n in range(60, 620, 20)]

CO_HEADS = "Orv Belt Cald Dren Esk Farn Grel Hux Ilm Jask Korv Lund Mav Nesk Ostr".split()
CO_TAILS = "ane rix eon ara ico ora ent ium oda ex".split()
SECTORS = {
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
SENTIMENTS = ["negative", "neutral", "positive"]
GROWTH = {  # growth in percent, by sentiment of the news
    "negative": [-30, -25, -20, -15, -10],
    "neutral": [-5, 0, 5],
    "positive": [10, 15, 20, 25, 30, 35, 40],
}

# --------------------------------------------------------------------------------------------
# Templates. {S}/{s}: subject at/after the start of a sentence, {P}/{p}: possessive; {v}: value.

STATEMENTS: dict[str, list[str]] = {
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
MECHANISM_STATEMENTS = {
    "inhibitor": ["{S} inhibits {g}.", "{S} blocks the activity of {g}."],
    "activator": ["{S} activates {g}.", "{S} increases the activity of {g}."],
    "agonist": ["{S} is an agonist of {g}.", "{S} binds and stimulates {g}."],
    "antagonist": ["{S} is an antagonist of {g}.", "{S} binds {g} and blocks its signal."],
    "substrate": ["{S} is a substrate of {g}.", "{S} is broken down by {g}."],
}
OUTCOME_STATEMENTS = {
    "effective": ["In a trial of {n} patients, {s} clearly reduced symptoms."],
    "ineffective": ["In a trial of {n} patients, {s} did not reduce symptoms."],
    "inconclusive": ["In a trial of {n} patients, the effect of {s} was unclear."],
}
INTRO_STATEMENTS = [
    "{S} is a {x} company based in {y}.",
    "{S} is a {x} company with headquarters in {y}.",
]
CEO_STATEMENTS = ["{S} is led by chief executive {c}.", "Chief executive {c} runs {s}."]
_REPORTED = (
    "{S} reported quarterly revenue of {r} million dollars, against {p0} million a year earlier."
)
REVENUE_STATEMENTS = {
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
GROWTH_STATEMENTS = {
    "up": "Revenue grew by {g} percent from a year earlier.",
    "down": "Revenue fell by {g} percent from a year earlier.",
    "flat": "Revenue was flat compared with a year earlier.",
}
REACTIONS = {
    "positive": ["Shares rose after the report as investors cheered the results."],
    "neutral": ["Shares were little changed after the report."],
    "negative": ["Shares fell after the report as investors worried about the results."],
}

# Question phrasings: "train" ones appear in training sets, "eval" ones only in the evaluation.
QUESTIONS: dict[str, dict[str, list[str]]] = {
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
            "Which diagnosis would lead a doctor to choose {n}?",
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
            "On which molecule does {n} act in the body?",
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
            "What unwanted effect should people starting {n} expect?",
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
EVAL_INSTRUCTIONS = {
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
    # further phrasings of a task ("key#k"; eval_phrasings lists them): distinct questions
    "pubmedqa#2": "Is {d} an effective treatment for {x}, according to this trial?",
    "pubmedqa#3": "Did patients with {x} benefit from taking {d}?",
    "chemprot#2": "In what way does {d} act on {g}?",
    "mqp#2": "Would the two questions above have the same answer?",
    "rct#2": "In which part of a trial report would this sentence appear?",
    "conv_change#2": "What is the change in revenue from a year earlier, in million dollars?",
    "conv_total#2": "Adding both periods, what is the total revenue in million dollars?",
    "conv_percent#2": "What is the percentage change in revenue from a year earlier?",
    "fpb#2": "Does this news sound positive, negative or neutral for the company?",
    "fpb#3": "How would investors read this report: positive, negative or neutral?",
    "fiqa#2": "Is the writer of this post upbeat, worried or indifferent about the company?",
    "fiqa#3": "Which sentiment does the author express toward the stock?",
    "headline_up#2": "Does this headline report a rising share price?",
    "headline_down#2": "Does this headline report a falling share price?",
    "ner#2": "List the companies and people named in the sentence, in order, separated by commas.",
}


def eval_phrasings(key: str) -> list[str]:
    """Every phrasing of one evaluation instruction: ``key`` and its variants ``key#k``."""
    return [v for k, v in EVAL_INSTRUCTIONS.items() if k.split("#")[0] == key]


# Every phrasing the evaluation uses and no training set may contain (for contamination checks).
HELD_OUT_TEMPLATES: list[str] = [t for q in QUESTIONS.values() for t in q["eval"]] + list(
    EVAL_INSTRUCTIONS.values()
)


POOLS = {
    "birth_city": CITIES,
    "birth_year": YEARS,
    "university": UNIVERSITIES,
    "major": MAJORS,
    "employer": EMPLOYERS,
    "hobby": HOBBIES,
    "treats": DISEASES,
    "target": GENES,
    "side_effect": SIDE_EFFECTS,
    "hq_city": CITIES,
    "sector": sorted(SECTORS),
}
