"""The exact grader of one synthesized pair against the miniature world's ground truth.

The paper had GPT-4 judge sampled instruction-augmented texts (Table 6, Fig. 6). The miniature
world knows its own ground truth (``meta.facts`` of each raw text), so here grading is exact rules
(:mod:`instruct_pt.analysis.quality` applies them to a sample and aggregates):

* **Context relevance** (:func:`is_relevant`): a pair is about its text when its question or
  answer mentions the text's entity, a fact's subject or a fact's value (whole words,
  case-insensitive), or when at least half of the content words of question + answer occur in
  the text.
* **Response accuracy** (:func:`grade_pair`): the question (options and CoT trigger removed) is
  linked to the fact(s) of its text whose relation it cues best (keyword prefixes, e.g.
  "born"/"where" for ``birth_city``; +1 when it states the fact's value; facts of a subject it
  names are preferred). An answer is accurate when its final answer (after "Therefore, the
  answer is", if any) contains the fact's value as whole words; a yes/no answer is accurate
  when "yes" goes with a question that states the true value and "no" with one that does not.
  With tied facts the pair is graded only if every tied fact gives the same verdict, else it
  is ``ambiguous``. Pairs cueing no fact (``no_fact``) and numeric facts answered with a
  direction but no number (``answer_type``: "Did revenue go up?" -> "went up") are not graded.
* **Task categories** (:func:`categorize`): each pair gets one category from ``CATEGORIES`` by
  ordered keyword and format rules (content first: summarization, sentiment, NLI...; then
  format: chain of thought, multiple choice, yes/no, fact lookup).

The CoT and multiple-choice markers are the synthesis protocol's (:mod:`instruct_pt.synthesis.protocol`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from instruct_pt.synthesis.protocol import (
    COT_ANSWER_SEPARATOR,
    COT_TRIGGER,
    OPTION_SEPARATOR,
    OPTIONS_HEADER,
)

# The synthesis protocol's CoT and multiple-choice markers, as the rules below match them: the
# answer marker lower-cased ("therefore, the answer is"), the options header without its first
# bullet ("\nOptions:"), the CoT trigger without its newline ("Let's think step by step.").
ANSWER_MARK = COT_ANSWER_SEPARATOR.strip().lower()
OPTIONS_MARK = OPTIONS_HEADER.removesuffix(OPTION_SEPARATOR)
COT_TRIGGER_TEXT = COT_TRIGGER.strip()
_WORD = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or but not no yes is are was were be been "
    "being do does did has have had what who whom whose which where when why how this that these "
    "those it its he she his her they their them you your i we our as into about than then there "
    "here can could would should will shall may might must also only just so such".split()
)

# Question cues of the world's relations (word prefixes; world.RELATIONS and its question
# phrasings). A relation listed in RELATION_REQUIRED scores only if one of those cues is present
# ("prev_revenue" needs "earlier", "previous", ...). Unknown relations fall back to the parts of
# their name ("founded_year" -> "found", "year").
RELATION_CUES: dict[str, tuple[str, ...]] = {
    # general (people)
    "birth_city": ("born", "birthplace", "hometown", "where", "city", "come from"),
    "birth_year": ("born", "when", "year"),
    "university": (
        "universit",
        "college",
        "attend",
        "graduat",
        "school",
        "alma",
        "alumn",
        "diploma",
        "stud",
        "where",
    ),
    "major": ("major", "subject", "degree", "field", "disciplin", "speciali", "stud"),
    "employer": ("employ", "work", "company", "organi", "staff", "salary", "job", "where"),
    "hobby": ("hobb", "enjoy", "pastime", "leisure", "free", "spend"),
    # biomedicine (drugs)
    "target": ("target", "protein", "gene", "molecul", "act", "affect", "mediat"),
    "mechanism": (
        "mechanism",
        "how",
        "kind",
        "agent",
        "act",
        "inhibit",
        "activat",
        "agonist",
        "antagonist",
        "substrate",
    ),
    "treats": (
        "treat",
        "disease",
        "condition",
        "prescri",
        "illness",
        "disorder",
        "indicat",
        "cure",
    ),
    "side_effect": ("side", "adverse", "unwanted", "reaction", "complaint"),
    "trial_size": ("patient", "trial", "enrol", "participant", "size", "many"),
    "outcome": ("outcome", "effective", "improve", "result", "success", "work"),
    # finance (companies)
    "sector": ("sector", "industry", "operate", "business"),
    "hq_city": ("headquarter", "based", "where", "city", "located"),
    "ceo": ("ceo", "chief", "executive", "lead", "run"),
    "revenue": ("revenue", "sales", "earn", "income"),
    "prev_revenue": ("revenue", "sales", "previous", "prior", "earlier", "last", "ago", "before"),
    "growth": ("grow", "grew", "change", "percent", "increas", "decreas", "fell", "rose", "rise"),
    "sentiment": ("sentiment", "tone", "mood", "outlook"),
}
RELATION_REQUIRED: dict[str, tuple[str, ...]] = {
    "prev_revenue": ("previous", "prior", "earlier", "last", "ago", "before"),
    "trial_size": ("patient", "enrol", "participant", "size", "many"),
}

# Category rules, tried in order: (name, question keywords, answer keywords). Content first.
CATEGORIES = (
    "summarization/title",
    "sentiment",
    "NLI/entailment",
    "paraphrase/rewriting",
    "entity extraction",
    "sentence completion",
    "arithmetic",
    "comparison",
    "explanation",
    "chain-of-thought reasoning",
    "multiple choice",
    "yes/no verification",
    "fact lookup",
    "other",
)
_KEYWORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "summarization/title",
        ("summar", "title", "headline", "main idea", "gist", "tl;dr", "in a few words"),
    ),
    (
        "sentiment",
        (
            "sentiment",
            "positive or negative",
            "negative or positive",
            "tone",
            "emotion",
            "feel about",
        ),
    ),
    (
        "NLI/entailment",
        ("entail", "follow that", "conclude", "hypothesis", "premise", "infer that", "imply"),
    ),
    (
        "paraphrase/rewriting",
        ("paraphrase", "rewrite", "rephrase", "in other words", "same meaning", "another way"),
    ),
    (
        "entity extraction",
        ("extract", "list the", "list all", "named entit", "what entities", "mentioned in the"),
    ),
    ("sentence completion", ("complete the", "fill in", "___", "finish the sentence")),
)
_ARITH_CUES = (
    "how many",
    "how much",
    "how old",
    "how long",
    "difference",
    "sum of",
    "total",
    "percent",
    "calculate",
    "compute",
    "average",
)
_COMPARE_WORDS = frozenset(
    "more less older younger larger smaller bigger higher lower earlier later".split()
)
_AUX_START = (
    "is",
    "was",
    "are",
    "were",
    "does",
    "did",
    "do",
    "can",
    "has",
    "have",
    "had",
    "will",
    "could",
    "would",
    "should",
)
_DIRECTION_WORDS = frozenset(
    "up down rose rise risen fell fall fallen grew grow increased decreased higher lower flat same".split()
)
_WH_START = ("what", "who", "whom", "whose", "which", "where", "when", "how", "name")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), the unit of every overlap measure here."""
    return _WORD.findall(text.lower())


def _norm(text: str) -> str:
    return " ".join(words(text))


def _mentions(haystack: str, needle: str) -> bool:
    """Whole-word, case-insensitive containment (both sides normalised)."""
    needle = _norm(needle)
    return bool(needle) and f" {needle} " in f" {_norm(haystack)} "


def strip_question(question: str) -> str:
    """The question proper: without its multiple-choice options and CoT trigger."""
    q = question.split(OPTIONS_MARK, 1)[0]
    return q.replace(COT_TRIGGER_TEXT, "").strip()


def final_answer(answer: str) -> str:
    """The answer after "Therefore, the answer is" (CoT answers), else the whole answer."""
    i = answer.lower().rfind(ANSWER_MARK)
    return (answer[i + len(ANSWER_MARK) :] if i >= 0 else answer).strip().rstrip(".").strip()


# ----------------------------------------------------------------------------- categories


def categorize(question: str, answer: str) -> str:
    """One task category (from ``CATEGORIES``) for a pair, by ordered rules."""
    q_full = question.lower()
    q = strip_question(question).lower()
    for name, cues in _KEYWORD_RULES:
        if any(c in q for c in cues):
            return name
    has_digits = any(ch.isdigit() for ch in q + answer)
    if any(c in q for c in _ARITH_CUES) and has_digits:
        return "arithmetic"
    q_words = words(q)
    if "which of the two" in q or any(
        w in _COMPARE_WORDS or w.startswith("compar") for w in q_words
    ):
        return "comparison"
    if q_words[:1] == ["why"] or "explain" in q or "reason" in q:
        return "explanation"
    if COT_TRIGGER_TEXT.lower() in q_full or ANSWER_MARK in answer.lower():
        return "chain-of-thought reasoning"
    if OPTIONS_MARK.lower() in q_full:
        return "multiple choice"
    first_answer = words(final_answer(answer))[:1]
    if first_answer in (["yes"], ["no"]) or (q_words[:1] and q_words[0] in _AUX_START):
        return "yes/no verification"
    if any(w in _WH_START for w in q_words):
        return "fact lookup"
    return "other"


# ----------------------------------------------------------------------------- accuracy and relevance


def _cues(relation: str) -> tuple[str, ...]:
    if relation in RELATION_CUES:
        return RELATION_CUES[relation]
    return tuple(p[:5] for p in relation.lower().split("_") if len(p) >= 3)


def _cue_score(q_words: list[str], relation: str) -> int:
    """How many of the relation's cues the question hits (0 if a required cue is absent)."""
    q_text = " ".join(q_words)

    def hit(cue: str) -> bool:
        return f" {cue}" in f" {q_text}" if " " in cue else any(w.startswith(cue) for w in q_words)

    if relation in RELATION_REQUIRED and not any(hit(c) for c in RELATION_REQUIRED[relation]):
        return 0
    return sum(1 for cue in _cues(relation) if hit(cue))


def link_facts(question: str, facts: list[dict]) -> list[dict]:
    """The facts a question is most likely about (empty if it cues none).

    Score = relation cues hit, +1 when the question states the fact's value ("Was she born in
    Valdis?"); facts of a subject the question names are preferred. Ties are all returned.
    """
    q = strip_question(question)
    named = [f for f in facts if _mentions(q, str(f["subject"]))]
    q_words = words(q)
    scored = []
    for f in named or facts:
        cues = _cue_score(q_words, str(f["relation"]))
        scored.append((cues + (cues > 0 and _mentions(q, str(f["value"]))), f))
    best = max((score for score, _ in scored), default=0)
    return [f for score, f in scored if score == best] if best > 0 else []


def answer_correct(question: str, answer: str, value: str) -> bool:
    """Does the answer give the fact's value? (yes/no answers: does yes go with the true value?)"""
    final = final_answer(answer)
    first = words(final)[:1]
    if first in (["yes"], ["no"], ["true"], ["false"]) and not _mentions(final, value):
        states_value = _mentions(strip_question(question), value)
        return (first in (["yes"], ["true"])) == states_value
    return _mentions(final, value)


def _verdict(question: str, answer: str, value: str) -> bool | None:
    """answer_correct, or None for a numeric fact answered with a direction and no number."""
    final = final_answer(answer)
    is_number = bool(re.fullmatch(r"-?\d+(\.\d+)?", value.strip()))
    yes_no = words(final)[:1] in (["yes"], ["no"], ["true"], ["false"])
    directional = any(w in _DIRECTION_WORDS for w in words(final))
    if is_number and directional and not yes_no and not any(ch.isdigit() for ch in final):
        return None
    return answer_correct(question, answer, value)


def grade_pair(question: str, answer: str, facts: list[dict]) -> tuple[bool | None, str]:
    """(accurate?, '') for a pair about the text's facts; (None, reason) when it cannot be graded.

    Reasons: 'no_fact' (the question cues no fact), 'ambiguous' (tied facts give different
    verdicts), 'answer_type' (a numeric fact answered with a direction and no number: "Did
    revenue go up?" -> "went up").
    """
    candidates = link_facts(question, facts)
    if not candidates:
        return None, "no_fact"
    verdicts = {_verdict(question, answer, str(f["value"])) for f in candidates}
    if len(verdicts) > 1:
        return None, "ambiguous"
    verdict = verdicts.pop()
    return (None, "answer_type") if verdict is None else (verdict, "")


def is_relevant(question: str, answer: str, text: str, anchors: Iterable[str]) -> bool:
    """Is the pair about its text? (mentions an anchor, or >= 50% content-word overlap)."""
    qa = f"{question}\n{answer}"
    if any(_mentions(qa, a) for a in anchors if a):
        return True
    content = [w for w in words(qa) if w not in STOPWORDS]
    if not content:
        return False
    text_words = set(words(text))
    return sum(w in text_words for w in content) / len(content) >= 0.5
