"""Rule-based task construction: the "Rule-based" ablation of Table 4 (facts §4.5).

The synthesizer is replaced by reading-comprehension tasks mined from the raw text with patterns,
in the manner of AdaptLLM (Cheng et al., ICLR 2024, arXiv 2309.09530). Our own, smaller rule set:

* summarize / title: the first sentence stands for the text's gist;
* word-to-text: "use these words in a sentence" -> the sentence they came from;
* definition: "X is/was (a|an|the) Y" -> "What is X?";
* cause / effect: "A because B" -> "What is the reason that A?"; "A. Therefore, B" -> "What
  follows from the fact that A?";
* NLI from connectives between consecutive sentences ("However" -> No, "Moreover" -> Yes), as a
  multiple-choice question in the synthesizer's option format;
* fill in the blank: a number masked in a sentence.

Output records have exactly the ``synthesize_shard`` format (each text its own chain, round 1,
collection ``position`` = its shard index, ``slot`` 0 and never ``truncated``, as one-round
synthesis gives; the pairs also written as a synthesizer-style ``generation``), so the rest of the
DAG does not care which method made the pairs.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter

from ..common import stable_hash
from .multi_round import shard_records
from .protocol import MARKERS, format_mc_question

log = logging.getLogger(__name__)

MAX_PAIRS = 6
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_DEFINITION = re.compile(
    r"^((?:The |A |An )?[A-Z][\w'-]*(?: [\w'-]+){0,4}?) (is|was|are|were) ((?:a|an|the) .+)$"
)
# A subject that names nothing on its own: the question would have no referent.
_PRONOUNS = {"it", "this", "that", "these", "those", "they", "he", "she", "we", "i", "you"}
_DETERMINERS = {"The", "A", "An", "This", "That", "These", "Those"}
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(?![\w])")
_STOPWORDS = frozenset(
    "this that with from have were been their there which would about these those into than then they them "
    "what when where will also some such other more most only over very after before because therefore".split()
)
_NLI_CONNECTIVES = {  # connective at the start of the second sentence -> answer
    "however": "No",
    "but": "No",
    "in contrast": "No",
    "nevertheless": "No",
    "moreover": "Yes",
    "furthermore": "Yes",
    "in addition": "Yes",
    "similarly": "Yes",
    "also": "Yes",
}
_NLI_OPTIONS = ["Yes", "No", "It is not possible to tell"]


def sentences(text: str) -> list[str]:
    """Sentences (stripped, at least three words) in text order."""
    out = [m.group(0).strip() for m in _SENTENCE.finditer(text)]
    return [s for s in out if len(s.split()) >= 3]


def _clause(s: str) -> str:
    return s.strip().rstrip(".!?").strip()


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s[:1].isupper() and not s[1:2].isupper() else s


def _summary(sents: list[str], rng: random.Random) -> list[dict]:
    if len(sents) < 2 or len(sents[0].split()) > 40:
        return []
    q = rng.choice(
        [
            "Summarize the text in one sentence.",
            "What is a good title for this text?",
            "What is the main point of the text?",
        ]
    )
    return [{"question": q, "answer": _clause(sents[0])}]


def _word_to_text(sents: list[str], rng: random.Random) -> list[dict]:
    for s in rng.sample(sents, len(sents)):
        words = list(
            dict.fromkeys(w.lower() for w in _WORD.findall(s) if w.lower() not in _STOPWORDS)
        )
        if len(words) >= 3:
            chosen = sorted(rng.sample(words, 3), key=words.index)
            return [
                {
                    "question": f"Write a sentence that uses these words: {', '.join(chosen)}.",
                    "answer": s,
                }
            ]
    return []


def _definitions(sents: list[str]) -> list[dict]:
    out = []
    for s in sents:
        m = _DEFINITION.match(_clause(s))
        if m and len(m.group(3).split()) >= 2 and m.group(1).lower() not in _PRONOUNS:
            first, _, rest = m.group(1).partition(" ")
            # "The drug is ..." -> "What is the drug?"; a name keeps its capital
            subject = f"{first.lower()} {rest}" if first in _DETERMINERS and rest else m.group(1)
            out.append({"question": f"What {m.group(2)} {subject}?", "answer": _clause(s) + "."})
    return out


def _cause_effect(sents: list[str]) -> list[dict]:
    out = []
    for k, s in enumerate(sents):
        body = _clause(s)
        if " because " in body:
            effect, cause = body.split(" because ", 1)
            if len(effect.split()) >= 2 and len(cause.split()) >= 2:
                out.append(
                    {
                        "question": f"What is the reason that {_lower_first(effect)}?",
                        "answer": f"Because {cause}.",
                    }
                )
        m = re.match(r"^(Therefore|Thus|As a result|Consequently|Hence),? (.+)$", body)
        if m and k > 0:
            out.append(
                {
                    "question": f"What follows from the fact that {_lower_first(_clause(sents[k - 1]))}?",
                    "answer": m.group(2)[:1].upper() + m.group(2)[1:] + ".",
                }
            )
    return out


def _nli(sents: list[str]) -> list[dict]:
    out = []
    for first, second in zip(sents, sents[1:], strict=False):
        for conn, label in _NLI_CONNECTIVES.items():
            m = re.match(rf"^{conn},? (.+)$", _clause(second), flags=re.IGNORECASE)
            if m and len(m.group(1).split()) >= 3:
                hyp = m.group(1)[:1].upper() + m.group(1)[1:]
                q = format_mc_question(
                    f'Does the sentence "{_clause(first)}" agree with the sentence "{hyp}"?',
                    _NLI_OPTIONS,
                )
                out.append({"question": q, "answer": label})
                break
    return out


def _fill_in(sents: list[str], rng: random.Random) -> list[dict]:
    candidates = [(s, m) for s in sents for m in _NUMBER.finditer(s)]
    if not candidates:
        return []
    s, m = rng.choice(candidates)
    masked = s[: m.start()] + "____" + s[m.end() :]
    return [{"question": f'Fill in the blank: "{masked}"', "answer": m.group(1)}]


def mine_pairs(text: str, rng: random.Random) -> list[dict]:
    """Up to MAX_PAIRS distinct (case-insensitive) pairs mined from one text, in rule order.

    Each pair carries the ``"rule"`` that made it (removed before writing records).
    """
    sents = sentences(text)
    if not sents:
        return []
    miners = (
        ("summary", lambda: _summary(sents, rng)),
        ("word_to_text", lambda: _word_to_text(sents, rng)),
        ("definition", lambda: _definitions(sents)),
        ("cause_effect", lambda: _cause_effect(sents)),
        ("nli", lambda: _nli(sents)),
        ("fill_in", lambda: _fill_in(sents, rng)),
    )
    candidates = [{**p, "rule": rule} for rule, mine in miners for p in mine()]
    clean, seen = [], set()
    for p in candidates:
        if any(mk in p["question"] or mk in p["answer"] for mk in MARKERS):
            continue  # would break the synthesizer format
        key = p["question"].lower()
        if key not in seen:
            seen.add(key)
            clean.append(p)
    if len(clean) > MAX_PAIRS:
        keep = sorted(rng.sample(range(len(clean)), MAX_PAIRS))
        clean = [clean[k] for k in keep]
    return clean


def rule_based_shard(shard_path: str, out_path: str, seed: int) -> dict:
    """Mine rule-based pairs for every text of a shard; records as ``synthesize_shard`` writes them."""
    rules: Counter = Counter()

    def mine(rec: dict, where: str) -> list[dict]:
        pairs = mine_pairs(rec["text"], random.Random(stable_hash(seed, rec["id"])))
        rules.update(p.pop("rule") for p in pairs)
        return pairs

    stats = shard_records(shard_path, out_path, mine, "rule-based")
    stats.update({"pairs_by_rule": dict(sorted(rules.items())), "engine": "rule_based"})
    log.info("rule-based %s: %d pairs for %d texts", shard_path, stats["pairs"], stats["texts"])
    return stats
