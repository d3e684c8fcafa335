"""Quality of the synthesized instruction-response pairs (paper Table 6, Fig. 6) and contamination
of the evaluation sets by them (paper Table 9).

The paper had GPT-4 judge 500 sampled instruction-augmented texts per corpus. The miniature world
knows its own ground truth (``meta.facts`` of each raw text), so here the judge is exact rules:

* **Context relevance** (% of pairs): a pair is about its text when its question or answer
  mentions the text's entity, a fact's subject or a fact's value (whole words, case-insensitive),
  or when at least half of the content words of question + answer occur in the text.
* **Response accuracy** (% of judged pairs): the question (options and CoT trigger removed) is
  linked to the fact(s) of its text whose relation it cues best (keyword prefixes, e.g.
  "born"/"where" for ``birth_city``; +1 when it states the fact's value; facts of a subject it
  names are preferred). An answer is accurate when its final answer (after "Therefore, the
  answer is", if any) contains the fact's value as whole words; a yes/no answer is accurate
  when "yes" goes with a question that states the true value and "no" with one that does not.
  With tied facts the pair is judged only if every tied fact gives the same verdict, else it
  is ``ambiguous``. Pairs cueing no fact (``no_fact``) and numeric facts answered with a
  direction but no number (``answer_type``: "Did revenue go up?" -> "went up") are not judged.
* Only the pairs that reach the pre-training corpora count: pairs templify drops (an MC answer
  that is no option, a malformed CoT pair; ``protocol.accept_pair``, as the official code) are
  left out and counted in ``stats.not_templified_pairs``.
* **Task categories**: each pair gets one category from ``CATEGORIES`` by ordered keyword and
  format rules (content first: summarization, sentiment, NLI...; then format: chain of thought,
  multiple choice, yes/no, fact lookup). ``n_categories`` counts categories with at least one pair,
  "other" excluded; ``categories`` gives every category's share of pairs (fixed order).

Paper scale (``analysis.quality.judge`` set, as in config.yaml): raw texts have no facts, so an
LLM judge (``instruct_pt.judge``: any OpenAI-compatible chat-completions endpoint, GPT-4 in the
paper) grades each sampled text's pairs for relevance and accuracy (yes/no) and puts each pair in
one of ``judge.JUDGE_CATEGORIES``. The output has the same fields, over the judged pairs (pairs
the judge never answered properly are dropped and counted in ``stats.dropped_pairs``), with
``"method": "llm-judge:<model>"`` and the judge's settings under ``"judge"``; judgments are
cached under ``checkpoint_dir`` so a rerun asks only what is missing. The miniature presets set
``judge: null`` and keep the exact ground truth above.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from tqdm import tqdm

from instruct_pt.common import DataError, iter_jsonl, write_json
from instruct_pt.judge import JUDGE_CATEGORIES, PROMPT_SHA256, judge_sample, judge_settings
from instruct_pt.protocol import accepted_pairs

log = logging.getLogger(__name__)

SYNTH_KEYS = ("id", "text", "pairs")
ANSWER_MARK = "therefore, the answer is"
OPTIONS_MARK = "\nOptions:"
COT_TRIGGER = "Let's think step by step."
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
    return q.replace(COT_TRIGGER, "").strip()


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
    if COT_TRIGGER.lower() in q_full or ANSWER_MARK in answer.lower():
        return "chain-of-thought reasoning"
    if OPTIONS_MARK.lower() in q_full:
        return "multiple choice"
    first_answer = words(final_answer(answer))[:1]
    if first_answer in (["yes"], ["no"]) or (q_words[:1] and q_words[0] in _AUX_START):
        return "yes/no verification"
    if any(w in _WH_START for w in q_words):
        return "fact lookup"
    return "other"


# ----------------------------------------------------------------------------- ground truth


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


def judge_pair(question: str, answer: str, facts: list[dict]) -> tuple[bool | None, str]:
    """(accurate?, '') for a pair about the text's facts; (None, reason) when it cannot be judged.

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


# ----------------------------------------------------------------------------- data quality


def _iter_synth(paths: list[str], not_templified: Counter | None = None) -> Iterator[dict]:
    """Synthesized records with only the pairs that reach the pre-training corpora.

    Pairs templify would drop (:func:`instruct_pt.protocol.accept_pair`: an MC answer that is no
    option, a malformed CoT pair) are removed and counted by reason in ``not_templified``.
    """
    for path in paths:
        for rec in iter_jsonl(path, SYNTH_KEYS):
            if not isinstance(rec["pairs"], list) or not all(
                isinstance(p, dict) for p in rec["pairs"]
            ):
                raise DataError(f"{path}: record {rec['id']!r}: 'pairs' must be a list of objects")
            kept = accepted_pairs(rec["pairs"], not_templified)
            rec["pairs"] = [rec["pairs"][i] for i, _ in kept]
            yield rec


def _sample_synth(
    paths: list[str], n_samples: int, seed: int, dropped: Counter, not_templified: Counter
) -> list[dict]:
    """Seeded sample of synthesized texts that keep at least one pair (two passes, low memory)."""
    eligible = 0
    for rec in _iter_synth(paths, not_templified):
        if rec["pairs"]:
            eligible += 1
        else:
            dropped["no_pairs"] += 1
    if eligible == 0:
        # A synthesizer that produced no parsable pair is a finding, not a crash: report zeros.
        log.warning("%s: no synthesized text has any instruction-response pair", ", ".join(paths))
        return []
    k = min(n_samples, eligible)
    if k < n_samples:
        log.warning("only %d texts with pairs (asked for %d): using all", eligible, n_samples)
    chosen = set(random.Random(seed).sample(range(eligible), k))
    out, i = [], 0
    for rec in _iter_synth(paths):
        if rec["pairs"]:
            if i in chosen:
                out.append(rec)
            i += 1
    return out


def _raw_meta(raw_path: str, ids: set[str]) -> dict[str, dict]:
    metas: dict[str, dict] = {}
    for rec in iter_jsonl(raw_path, ("id",)):
        if rec["id"] in ids:
            meta = rec.get("meta") or {}
            if not isinstance(meta, dict):
                raise DataError(f"{raw_path}: record {rec['id']!r}: 'meta' must be an object")
            metas[rec["id"]] = meta
    return metas


def data_quality(
    synth_paths: list[str],
    raw_path: str,
    corpus: str,
    out_json: str,
    n_samples: int,
    seed: int,
    judge: dict | None = None,
    checkpoint_dir: str | None = None,
) -> dict:
    """Context relevance, response accuracy and task categories of ``n_samples`` sampled texts.

    ``synth_paths``: synthesized shards (one record per raw text, with ``pairs``); ``raw_path``:
    the raw data set whose ``meta.facts`` hold the ground truth. Writes and returns
    ``{"corpus", "n_texts", "n_pairs", "context_relevance", "response_accuracy", "n_categories",
    "categories", "method", "n_fact_pairs", "stats"}`` (rates in %, shares as fractions).

    ``judge`` (``analysis.quality.judge``): when given, an LLM judge grades the sample instead
    (see ``instruct_pt.judge``; output + ``"judge"``), storing its judgments under
    ``checkpoint_dir`` (required then).
    """
    dropped: Counter = Counter()
    not_templified: Counter = Counter()
    sample = _sample_synth(list(synth_paths), n_samples, seed, dropped, not_templified)
    metas = _raw_meta(raw_path, {r["id"] for r in sample})
    missing = [r["id"] for r in sample if r["id"] not in metas]
    if missing:
        raise DataError(
            f"{raw_path}: id {missing[0]!r} (and {len(missing) - 1} more) of the synthesized texts not found"
        )
    if judge is not None:
        if not checkpoint_dir:
            raise ValueError("data_quality: the LLM judge needs a checkpoint_dir for its judgments")
        result = _llm_judge_quality(
            sample, corpus, n_samples, seed, judge_settings(judge, seed), checkpoint_dir, dropped
        )
        result["stats"]["not_templified_pairs"] = dict(sorted(not_templified.items()))
        write_json(out_json, result)
        log.info(
            "%s (%s): relevance %s, accuracy %s, %d categories, dropped pairs %s",
            corpus,
            result["method"],
            result["context_relevance"],
            result["response_accuracy"],
            result["n_categories"],
            result["stats"]["dropped_pairs"],
        )
        return result
    if sample and not any("facts" in metas[r["id"]] for r in sample):
        raise DataError(
            f"{raw_path}: raw texts carry no ground-truth facts (meta.facts); paper-scale corpora "
            "need an LLM judge (the paper used GPT-4 on 500 texts): set analysis.quality.judge"
        )

    counts: Counter = Counter()
    categories: Counter = Counter()
    n_texts = 0
    for rec in tqdm(sample, desc=f"quality {corpus}", unit="text", disable=None):
        meta = metas[rec["id"]]
        if "facts" not in meta:
            dropped["no_facts"] += 1
            continue
        n_texts += 1
        facts = [f for f in meta["facts"] if {"subject", "relation", "value"} <= set(f)]
        dropped["malformed_fact"] += len(meta["facts"]) - len(facts)
        anchors = (
            [str(meta.get("entity") or "")]
            + [str(f["subject"]) for f in facts]
            + [str(f["value"]) for f in facts]
        )
        for pair in rec["pairs"]:
            q, a = str(pair.get("question", "")), str(pair.get("answer", ""))
            counts["pairs"] += 1
            counts["relevant"] += is_relevant(q, a, rec["text"], anchors)
            categories[categorize(q, a)] += 1
            accurate, reason = judge_pair(q, a, facts)
            if accurate is None:
                counts[f"unlinked_{reason}"] += 1
                continue
            counts["fact_pairs"] += 1
            counts["accurate"] += accurate

    n_pairs = counts["pairs"]
    result = {
        "corpus": corpus,
        "n_texts": n_texts,
        "n_pairs": n_pairs,
        "context_relevance": round(100 * counts["relevant"] / n_pairs, 4) if n_pairs else None,
        "response_accuracy": round(100 * counts["accurate"] / counts["fact_pairs"], 4)
        if counts["fact_pairs"]
        else None,
        "n_categories": sum(1 for c in CATEGORIES if c != "other" and categories[c]),
        "categories": {
            c: round(categories[c] / n_pairs, 6) if n_pairs else 0.0 for c in CATEGORIES
        },
        "method": "world-ground-truth",
        "n_fact_pairs": counts["fact_pairs"],
        "stats": {
            "seed": seed,
            "n_samples": n_samples,
            "dropped_texts": dict(sorted((k, v) for k, v in dropped.items() if v)),
            "not_templified_pairs": dict(sorted(not_templified.items())),
            "unlinked_pairs": {
                k[len("unlinked_") :]: v
                for k, v in sorted(counts.items())
                if k.startswith("unlinked_")
            },
        },
    }
    write_json(out_json, result)
    log.info(
        "%s: relevance %s, accuracy %s, %d categories",
        corpus,
        result["context_relevance"],
        result["response_accuracy"],
        result["n_categories"],
    )
    return result


def _llm_judge_quality(
    sample: list[dict],
    corpus: str,
    n_samples: int,
    seed: int,
    settings: dict,
    checkpoint_dir: str,
    dropped: Counter,
) -> dict:
    """Table 6 / Fig. 6 from an LLM judge's verdicts on the sampled texts (judged pairs only)."""
    results = judge_sample(sample, settings, checkpoint_dir, desc=f"judge {corpus}")
    counts: Counter = Counter()
    categories: Counter = Counter()
    dropped_pairs: Counter = Counter()
    n_texts = asks = 0
    for res in results:
        asks += int(res["asks"])
        dropped_pairs.update(res["dropped"].values())
        judged = [j for j in res["judgments"] if j is not None]
        if not judged:
            dropped["all_pairs_dropped"] += 1
            continue
        n_texts += 1
        for j in judged:
            counts["pairs"] += 1
            counts["relevant"] += bool(j["relevant"])
            counts["accurate"] += bool(j["accurate"])
            categories[j["category"]] += 1
    n_pairs = counts["pairs"]

    def rate(key: str) -> float | None:
        return round(100 * counts[key] / n_pairs, 4) if n_pairs else None

    return {
        "corpus": corpus,
        "n_texts": n_texts,
        "n_pairs": n_pairs,
        "context_relevance": rate("relevant"),
        "response_accuracy": rate("accurate"),
        "n_categories": sum(1 for c in JUDGE_CATEGORIES if c != "other" and categories[c]),
        "categories": {
            c: round(categories[c] / n_pairs, 6) if n_pairs else 0.0 for c in JUDGE_CATEGORIES
        },
        "method": f"llm-judge:{settings['model']}",
        "n_fact_pairs": n_pairs,  # every judged pair has an accuracy verdict
        "judge": {
            "model": settings["model"],
            "base_url": settings["base_url"],
            "temperature": settings["temperature"],
            "max_tokens": settings["max_tokens"],
            "seed": settings["seed"],
            "prompt_sha256": PROMPT_SHA256,
        },
        "stats": {
            "seed": seed,
            "n_samples": n_samples,
            "sampled_texts": len(sample),
            "sampled_pairs": sum(len(r["pairs"]) for r in sample),
            "dropped_texts": dict(sorted((k, v) for k, v in dropped.items() if v)),
            "dropped_pairs": dict(sorted(dropped_pairs.items())),
            "judge_asks": asks,
            "reply_retries": asks - len(results),
        },
    }


# ----------------------------------------------------------------------------- contamination


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _eval_segments(rec: dict) -> list[str]:
    """The texts of one evaluation example: query, each choice, and the answer."""
    segs = [str(rec["query"])]
    segs += [str(c) for c in rec.get("choices") or []]
    if rec.get("answer") is not None:
        segs.append(str(rec["answer"]))
    return segs


def contamination(
    synth_paths: list[str],
    eval_files: dict[str, str],
    out_json: str,
    n: int = 13,
    unavailable: dict[str, str] | None = None,
    paper_names: dict[str, str] | None = None,
) -> dict:
    """Evaluation examples sharing a word n-gram with any synthesized question or answer.

    The n-grams of the (small) evaluation sets are indexed; the synthesized pairs stream past
    them once. An n-gram never spans two segments (query / a choice / the answer; question /
    answer). Examples with no segment of n words cannot match and are counted as ``too_short``.
    Writes and returns ``{"n", "n_synth_texts", "n_synth_pairs", "tasks": {task: {"contaminated",
    "total", "percent", "too_short"}}, "unavailable": {task: reason}, "paper_names": {task: name}}``
    (tasks whose data could not be read here, and the paper's name of each task, passed through).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    index: dict[tuple[str, ...], list[tuple[str, int]]] = {}
    totals: dict[str, int] = {}
    too_short: Counter = Counter()
    for task, path in eval_files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: evaluation file missing (task {task!r})")
        totals[task] = 0
        for i, rec in enumerate(iter_jsonl(path, ("query",))):
            totals[task] += 1
            grams = set().union(*(_ngrams(words(s), n) for s in _eval_segments(rec)))
            if not grams:
                too_short[task] += 1
            for g in grams:
                index.setdefault(g, []).append((task, i))

    hit: set[tuple[str, int]] = set()
    n_texts = n_pairs = 0
    for rec in tqdm(
        _iter_synth(list(synth_paths)), desc="contamination", unit="text", disable=None
    ):
        n_texts += 1
        for pair in rec["pairs"]:
            n_pairs += 1
            for seg in (str(pair.get("question", "")), str(pair.get("answer", ""))):
                for g in _ngrams(words(seg), n):
                    hit.update(index.get(g, ()))

    per_task = Counter(task for task, _ in hit)
    result = {
        "n": n,
        "n_synth_texts": n_texts,
        "n_synth_pairs": n_pairs,
        "tasks": {
            task: {
                "contaminated": per_task[task],
                "total": total,
                "percent": round(100 * per_task[task] / total, 4) if total else 0.0,
                "too_short": too_short[task],
            }
            for task, total in totals.items()
        },
        "unavailable": dict(sorted((unavailable or {}).items())),
        "paper_names": dict(sorted((paper_names or {}).items())),
    }
    write_json(out_json, result)
    return result
