"""What the LLM judge is asked (prompt, task types) and how its replies are read (the parser).

One request per sampled text (:func:`build_messages`; our own wording): the raw text, its numbered
instruction-response pairs, the task-category list and the rules. Per pair the judge says
``relevant`` (yes/no), ``accurate`` (yes/no) and ``category`` (one of ``JUDGE_CATEGORIES``,
"other" if none fits), as one JSON object ``{"judgments": [{"pair": 1, "relevant": ...,
"accurate": ..., "category": ...}]}``. :func:`parse_judgments` is lenient about wrapping (prose,
code fences, a bare list, a truncated outer object) and strict about content: a judgment is kept
only for a pair number in range with yes/no verdicts and a listed category; every other pair gets
the reason it has none (``PROBLEM_TEXT``), which a repair request (``REPAIR_NOTE``) shows the
judge. ``PROMPT_SHA256`` identifies the wording in the output.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

# Task categories offered to the judge, with a short gloss each (fixed order; "other" last). The
# paper's named scenarios (commonsense reasoning, coreference, NLI, struct-to-text, summarization,
# sentiment, math, code...) are among them.
TASK_TYPES: tuple[tuple[str, str], ...] = (
    ("extractive question answering", "the answer is a span of the text"),
    ("abstractive question answering", "answered from the text in new words"),
    ("multiple-choice question answering", "choose among given options"),
    ("yes/no question answering", "a question answered yes or no"),
    ("closed-book question answering", "needs knowledge the text does not give"),
    ("multi-hop reasoning", "combines several statements of the text"),
    ("reading comprehension", "other questions about understanding the text"),
    ("answerability classification", "can the question be answered from the text"),
    ("question generation", "write a question for a given answer or passage"),
    ("question rewriting", "rephrase or make a question self-contained"),
    ("commonsense reasoning", "everyday knowledge of people, objects and events"),
    ("causal reasoning", "causes, effects, consequences"),
    ("temporal reasoning", "order, duration or dates of events"),
    ("logical reasoning", "deduction, conditions, consistency"),
    ("mathematics", "arithmetic, word problems, numeric calculation"),
    ("comparison", "compare entities or quantities"),
    ("analogy", "relations by analogy"),
    ("natural language inference", "does a statement follow from or contradict the text"),
    ("fact verification", "is a claim true according to the text"),
    ("coreference resolution", "what a pronoun or mention refers to"),
    ("word semantics", "meaning of a word or phrase in context"),
    ("paraphrase identification", "do two sentences mean the same"),
    ("topic classification", "assign a topic, genre or domain label"),
    ("sentiment analysis", "positive, negative or neutral polarity"),
    ("emotion recognition", "which emotion is expressed"),
    ("stance detection", "for or against a position"),
    ("toxicity detection", "offensive or harmful language"),
    ("text quality evaluation", "rate grammaticality, coherence or fluency"),
    ("grammar correction", "fix errors in a sentence"),
    ("named entity recognition", "find and type names of people, places, organisations"),
    ("relation extraction", "the relation between two entities"),
    ("event extraction", "what happened, to whom, when, where"),
    ("keyword extraction", "key terms or phrases"),
    ("information extraction", "other extraction of specific details"),
    ("table understanding", "questions over tables or records"),
    ("summarization", "a shorter version of the text or a part of it"),
    ("title generation", "a title or headline"),
    ("paraphrasing", "rewrite with the same meaning"),
    ("text simplification", "easier wording"),
    ("style transfer", "change tone, register or style"),
    ("translation", "into another language"),
    ("text completion", "continue or finish a passage"),
    ("fill in the blank", "supply a missing word or phrase"),
    ("sentence ordering", "restore the order of sentences or steps"),
    ("sentence composition", "write a sentence under given constraints"),
    ("story generation", "write a narrative"),
    ("dialogue generation", "write or continue a conversation"),
    ("struct-to-text", "turn data, tables or triples into text"),
    ("text-to-struct", "turn text into a table, list, JSON or triples"),
    ("explanation", "why or how something is so"),
    ("definition", "what a term means"),
    ("argument writing", "essays, opinions, persuasion"),
    ("advice and recommendation", "suggest what to do or choose"),
    ("brainstorming", "list ideas, examples or options"),
    ("planning and procedures", "write steps, instructions or plans"),
    ("code generation", "write program code"),
    ("code understanding", "explain, trace or debug code"),
    ("word manipulation", "spelling, letters, anagrams, word games"),
    ("language identification", "which language a text is in"),
)
JUDGE_CATEGORIES: tuple[str, ...] = tuple(name for name, _ in TASK_TYPES) + ("other",)

SYSTEM_PROMPT = (
    "You grade training data for language models. You read a source text and the "
    "instruction-response pairs another model wrote about it, grade each pair on its own, and "
    "reply with JSON only."
)
USER_HEAD = """A model read the text below and wrote {n} instruction-response pair(s) about it. Grade every pair separately.

For each pair give:
- "relevant": "yes" if the instruction is about this text, that is, the text supplies the context or the material needed to respond; "no" if it is off-topic or could have been written without the text.
- "accurate": "yes" if the response answers the instruction correctly and completely, judged against the text and well-established knowledge; "no" if it is wrong, unsupported, self-contradictory or only partly right.
- "category": the task type from the list below that best describes what the instruction asks for, copied exactly. Judge the task, not the format of the response (a sum answered step by step is "mathematics"). Use "other" only if no type fits.

Task types:
{types}

### Text
{text}

### Pairs
{pairs}

Reply with one JSON object and nothing else, with one entry per pair, in order:
{{"judgments": [{{"pair": 1, "relevant": "yes", "accurate": "no", "category": "<task type>"}}, ...]}}"""
REPAIR_NOTE = (
    "Your reply could not be used: {problems}. Reply again with only the JSON object asked for, "
    'with one entry for each of the {n} pair(s): {{"judgments": [{{"pair": 1, "relevant": '
    '"yes" or "no", "accurate": "yes" or "no", "category": "<a task type from the list>"}}, ...]}}'
)
PROBLEM_TEXT = {
    "empty_reply": "it was empty",
    "no_json": "it held no JSON object with a list of judgments",
    "truncated": "it was cut off before the JSON was complete",
    "missing": "no judgment was given",
    "bad_relevant": '"relevant" was not "yes" or "no"',
    "bad_accurate": '"accurate" was not "yes" or "no"',
    "bad_category": '"category" was not one of the listed task types',
    "conflict": "it was judged twice, differently",
}


def _types_block() -> str:
    return "\n".join(f"- {name}: {gloss}" for name, gloss in TASK_TYPES) + "\n- other"


PROMPT_SHA256 = hashlib.sha256(
    "\x1f".join((SYSTEM_PROMPT, USER_HEAD, REPAIR_NOTE, _types_block())).encode()
).hexdigest()


def build_messages(text: str, pairs: Sequence[dict]) -> list[dict]:
    """The chat messages asking for one text's judgments (system + user)."""
    blocks = [
        f"Pair {i}\nInstruction: {str(p.get('question', '')).strip()}\n"
        f"Response: {str(p.get('answer', '')).strip()}"
        for i, p in enumerate(pairs, 1)
    ]
    user = USER_HEAD.format(
        n=len(pairs), types=_types_block(), text=text.strip(), pairs="\n\n".join(blocks)
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ----------------------------------------------------------------------------- parsing

_BOOL = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}
_MAX_STARTS = 2000  # JSON start positions tried per reply (bounds the work on huge replies)


def _category_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


_CATEGORY_BY_KEY = {_category_key(c): c for c in JUDGE_CATEGORIES}
assert len(_CATEGORY_BY_KEY) == len(JUDGE_CATEGORIES), "task types must differ after normalising"


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOL.get(value.strip().strip(".!\"'").strip().lower())
    return None


def _as_category(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    found = _CATEGORY_BY_KEY.get(_category_key(value))
    if found is None and ":" in value:  # the name copied with its gloss
        found = _CATEGORY_BY_KEY.get(_category_key(value.split(":", 1)[0]))
    return found


def _pair_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(?:pair\s*)?#?(\d{1,9})\s*", value, re.IGNORECASE)
        return int(m.group(1)) if m else None
    return None


def _entries(value: Any, want_key: bool) -> list | None:
    if isinstance(value, dict):
        if isinstance(value.get("judgments"), list):
            return value["judgments"]
        if not want_key and {"relevant", "accurate", "category"} & set(value):
            return [value]
    if (
        not want_key
        and isinstance(value, list)
        and value
        and all(isinstance(e, dict) for e in value)
    ):
        return value
    return None


def _find_entries(reply: str) -> list | None:
    """The list of judgment entries in a reply: the first ``{"judgments": [...]}`` object, else
    the first list of objects or single judgment-like object (wrapping text is ignored)."""
    decoder = json.JSONDecoder()
    values = []
    for m in re.finditer(r"[\[{]", reply):
        if len(values) >= _MAX_STARTS:
            break
        try:
            value, _ = decoder.raw_decode(reply, m.start())
        except (ValueError, RecursionError):
            continue
        values.append(value)
        if _entries(value, want_key=True) is not None:
            return _entries(value, want_key=True)
    for value in values:
        found = _entries(value, want_key=False)
        if found is not None:
            return found
    return None


def parse_judgments(reply: str, n_pairs: int) -> tuple[dict[int, dict], dict[int, str]]:
    """Judgments ``{pair: {"relevant", "accurate", "category"}}`` (pairs numbered from 1) found in
    a reply, and the reason each other pair has none. Never raises; never returns a judgment for
    a pair number out of range or with a value outside yes/no and ``JUDGE_CATEGORIES``."""
    everyone = range(1, n_pairs + 1)
    if not isinstance(reply, str) or not reply.strip():
        return {}, {i: "empty_reply" for i in everyone}
    entries = _find_entries(reply)
    if entries is None:
        return {}, {i: "no_json" for i in everyone}
    by_position = len(entries) == n_pairs and not any(
        isinstance(e, dict) and "pair" in e for e in entries
    )
    found: dict[int, dict] = {}
    bad: dict[int, str] = {}
    conflicts: set[int] = set()
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            continue
        number = position if by_position else _pair_number(entry.get("pair"))
        if number is None or not 1 <= number <= n_pairs:
            continue
        relevant, accurate = _as_bool(entry.get("relevant")), _as_bool(entry.get("accurate"))
        category = _as_category(entry.get("category"))
        if relevant is None:
            bad.setdefault(number, "bad_relevant")
        elif accurate is None:
            bad.setdefault(number, "bad_accurate")
        elif category is None:
            bad.setdefault(number, "bad_category")
        else:
            judgment = {"relevant": relevant, "accurate": accurate, "category": category}
            if number in found and found[number] != judgment:
                conflicts.add(number)
            found.setdefault(number, judgment)
    for number in conflicts:
        del found[number]
    problems = {
        i: "conflict" if i in conflicts else bad.get(i, "missing")
        for i in everyone
        if i not in found
    }
    return found, problems
