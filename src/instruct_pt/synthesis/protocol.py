"""The instruction synthesizer's exact input/output protocol, and which pairs are kept.

Byte-compatible with the official code (microsoft/LMOps ``instruction_pretrain``: the README's
inference loop, ``utils/read_compre.py`` and the pair acceptance of ``utils/read_compre_pt.py``)
except the deviations listed, each with its reason and test, in ``docs/deviations.md``:

* a raw text is presented as ``"<s> <CON> {text} </CON>\\n\\n"`` (note the space before ``<CON>``);
* the synthesizer continues with pairs ``"<QUE> {question} <ANS> {answer} </END>"`` joined by
  ``"\\n\\n"`` and ends the example with ``"</s>"``; the template is filled by chained
  ``str.replace`` as the official ``cook_compre`` does, so a literal ``{answer}`` inside a
  question is replaced by the answer (the released synthesizer was trained on those bytes);
* a chain of earlier examples (multi-round inference, few-shot fine-tuning) is the plain
  concatenation of formatted examples, each closed by ``"</s>"``.

The prompt string is tokenized with ``add_special_tokens=False`` so the literal ``"<s>"`` becomes the
BOS token. Multiple-choice questions end with ``"\\nOptions:\\n- a\\n- b"``; chain-of-thought
questions end with ``"\\nLet's think step by step."`` and their answers read
``"{reasoning}\\nTherefore, the answer is {final}"``. :func:`accept_pair` decides, as the official
``parse_QA_list`` / ``format_options`` do, which parsed pairs can be templified for pre-training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

BOS = "<s>"
EOS = "</s>"
CONTEXT_TEMPLATE = " <CON> {context} </CON>"  # the leading space is part of the protocol
QA_TEMPLATE = "<QUE> {question} <ANS> {answer} </END>"
DELIMITER = "\n\n"
QUE, ANS, END = "<QUE>", "<ANS>", "</END>"
OPTIONS_HEADER = "\nOptions:\n- "
OPTION_SEPARATOR = "\n- "
COT_TRIGGER = "\nLet's think step by step."
COT_ANSWER_SEPARATOR = "\nTherefore, the answer is "

# Strings that must not occur inside a question or answer for the format to round-trip.
MARKERS = (BOS, EOS, "<CON>", "</CON>", QUE, ANS, END)


# ----------------------------------------------------------------------------- formatting


def format_context(text: str) -> str:
    """``"<s> <CON> {text} </CON>\\n\\n"``; an empty text is just ``"<s>"`` (as the reference code)."""
    if not text:
        return BOS
    return BOS + CONTEXT_TEMPLATE.replace("{context}", text) + DELIMITER


def format_pair(question: str, answer: str) -> str:
    """One ``"<QUE> q <ANS> a </END>"`` item, filled as the official ``cook_compre`` fills it.

    Chained ``str.replace``: ``{question}`` first, then every ``{answer}``, so a question that
    contains the literal text ``{answer}`` gets the answer there too (``{question}`` inside the
    answer stays literal). These are the bytes the released synthesizer was trained on.
    """
    return QA_TEMPLATE.replace("{question}", question).replace("{answer}", answer)


def format_pairs(pairs: Iterable[Mapping[str, str]]) -> str:
    """The part the synthesizer is trained to generate after the prompt (without the final EOS)."""
    return DELIMITER.join(format_pair(p["question"], p["answer"]) for p in pairs)


def format_example(text: str, pairs: Iterable[Mapping[str, str]]) -> str:
    """One complete example: context, its pairs and ``"</s>"``. Chains are concatenations of these."""
    body = format_pairs(pairs)
    if not body:
        raise ValueError("format_example needs at least one pair")
    return format_context(text) + body + EOS


def build_prompt(text: str, prior_chain: str = "") -> str:
    """The synthesizer's input for ``text``, after an optional chain of formatted examples."""
    return prior_chain + format_context(text)


# ----------------------------------------------------------------------------- parsing


def parse_pairs(generation: str) -> tuple[list[dict], Counter]:
    """Pairs from a synthesizer generation, plus counts of the pieces dropped by reason.

    Mirrors ``read_compre.parse_comprehension(deduplicate=True)``: split on ``</END>``, drop an
    unfinished last piece, require exactly one ``<ANS>``, a question starting with ``<QUE>``, a
    non-empty answer; drop repeated questions (case-insensitive). Two stricter rules make every
    returned question/answer a verbatim substring of the generation: a piece with a second
    ``<QUE>`` and a piece with an empty question are dropped (the reference code would keep a
    mangled or empty question). Text after a generated ``</s>`` is ignored.
    """
    dropped: Counter = Counter()
    generation = generation.split(EOS, 1)[0]
    pieces = generation.split(END)
    last = pieces.pop()  # text after the last </END>: empty, or an unfinished pair
    if last.strip():
        dropped["unfinished"] += 1

    pairs: list[dict] = []
    seen: set[str] = set()
    for piece in pieces:
        if not piece.strip():
            dropped["empty_piece"] += 1
            continue
        n_ans = piece.count(ANS)
        if n_ans != 1:
            dropped["no_answer_marker" if n_ans == 0 else "multiple_answer_markers"] += 1
            continue
        q_str, a_str = (s.strip() for s in piece.split(ANS))
        if not q_str.startswith(QUE):
            dropped["no_question_marker"] += 1
            continue
        question = q_str[len(QUE) :].strip()
        if QUE in question:
            dropped["multiple_question_markers"] += 1
            continue
        if not question:
            dropped["empty_question"] += 1
            continue
        if not a_str:
            dropped["empty_answer"] += 1
            continue
        key = question.lower()
        if key in seen:
            dropped["duplicate_question"] += 1
            continue
        seen.add(key)
        pairs.append({"question": question, "answer": a_str})
    return pairs, dropped


# ----------------------------------------------------------------------------- MC / CoT helpers


def format_mc_question(question: str, options: list[str]) -> str:
    """``question + "\\nOptions:\\n- a\\n- b"``."""
    if not options:
        raise ValueError("a multiple-choice question needs options")
    return question + OPTIONS_HEADER + OPTION_SEPARATOR.join(options)


def split_mc_question(question: str) -> tuple[str, list[str]] | None:
    """Inverse of :func:`format_mc_question`: (stem, raw options); None without exactly one option
    block or with an empty stem. Options are split as the official code splits them, so an empty
    option (``"Q\\nOptions:\\n- \\n- b"`` -> ``["", "b"]``) is kept."""
    parts = question.split(OPTIONS_HEADER)
    if len(parts) != 2 or not parts[0]:
        return None
    return parts[0], parts[1].split(OPTION_SEPARATOR)


def format_cot(question: str, reasoning: str, final: str) -> tuple[str, str]:
    """A chain-of-thought pair: (question + trigger, ``"{reasoning}\\nTherefore, the answer is {final}"``)."""
    return question + COT_TRIGGER, f"{reasoning}{COT_ANSWER_SEPARATOR}{final}"


def split_cot(question: str, answer: str) -> tuple[str, str, str] | None:
    """(stem, reasoning, final) of a CoT pair, stripped as the official code strips them (one
    final ``.`` of the reasoning removed); None if the pair is not a valid CoT pair."""
    if not question.endswith(COT_TRIGGER):
        return None
    stem = question[: -len(COT_TRIGGER)].strip()
    parts = answer.split(COT_ANSWER_SEPARATOR)
    if not stem or len(parts) != 2:
        return None
    reasoning, final = parts[0].strip(), parts[1].strip()
    if reasoning.endswith("."):
        reasoning = reasoning[:-1]  # no second strip: "r ." keeps "r " (as the official)
    if not reasoning or not final:
        return None
    return stem, reasoning, final


# The official "unanswerable" answers of a multiple-choice question (``UNANSWERABLE_OPTIONS`` in
# read_compre_pt.py), then the same in lower case. The official list lacks a comma after
# "...specified conditions", so Python joins that phrase and "None of the options fit" into ONE
# string: neither phrase alone is in the list. We follow what the official code does, not what it
# seems to intend (a pair answered "None of the options fit" is dropped there, and here).
_UNANSWERABLE = (
    "None of the above choices",
    "None",
    "None of the provided choices meet the criteria",
    "No option among those listed fulfills the requirements",
    "There is no suitable choice among the options presented",
    "Not one of the options provided can adequately respond",
    "None of the selections offered provide a valid solution",
    "No option listed is sufficient to answer the question",
    "None of the given alternatives satisfy the conditions",
    "There are no appropriate choices among the options given",
    "Not a single option among those provided offers a valid response",
    "None of the choices given align with the requirements",
    "No option provided adequately addresses the question at hand",
    "None of the options presented offer a viable solution",
    "Not one of the provided options is applicable to the question",
    "None of the choices listed can sufficiently address the question",
    "There is no option provided that meets the necessary criteria",
    "None of the options available are suitable for the question posed",
    "Not a single choice among those offered meets the specified criteria",
    "None of the alternatives provided adequately fulfill the requirements",
    "No option among those presented adequately resolves the question",
    "None of the available choices adequately meet the specified conditions"
    "None of the options fit",  # the missing comma, kept on purpose (see above)
    "No option works",
    "Nothing fits",
    "No suitable choice",
    "No viable option",
    "No answer among these",
    "None are right",
    "Nothing applies",
    "No match",
    "No valid choice",
    "None of the options meet the criteria",
    "No option satisfies the conditions",
    "Nothing matches the requirements",
    "No suitable answer",
    "No appropriate choice",
    "No correct option",
    "None of these options fit",
    "No answer provided",
    "No valid response",
    "No matching selection",
)
UNANSWERABLE_OPTIONS: tuple[str, ...] = _UNANSWERABLE + tuple(a.lower() for a in _UNANSWERABLE)
_UNANSWERABLE_SET = frozenset(UNANSWERABLE_OPTIONS)

# Reasons a parsed pair cannot be templified (the counters' keys).
DROP_COT_TRIGGER_NOT_AT_END = "cot_trigger_not_at_end"
DROP_COT_MALFORMED = "cot_malformed"
DROP_MC_MALFORMED = "mc_malformed"
DROP_MC_ANSWER_NOT_AN_OPTION = "mc_answer_not_an_option"


def accept_pair(question: str, answer: str) -> tuple[dict | None, str | None]:
    """Decompose a parsed pair as the official ``parse_QA_list`` + ``format_options`` do.

    Returns ``(pair, None)`` or ``(None, reason)``. ``pair`` is ``{"format": "free"|"mc"|"cot"|
    "mc_cot", "question", "options", "reasoning", "answer", "unanswerable"}``: the question without
    its option block and CoT trigger, the raw options (None unless MC), the reasoning (None unless
    CoT), the final answer, and whether it is one of :data:`UNANSWERABLE_OPTIONS` (not among the
    options), which the templates replace by the chain's "none of the options" phrase.

    The steps, in the official order:

    1. CoT, if the question contains the trigger or the answer the separator: the question must
       end with the trigger; the rest, stripped, is the question; the answer must split into
       exactly two parts around the separator; both stripped, one final ``.`` removed from the
       reasoning, both non-empty.
    2. MC, if the question (after step 1) contains ``"\\nOptions:\\n- "`` exactly once with a
       non-empty stem: the options are the rest split on ``"\\n- "`` (an option may be empty).
       The answer must equal an option after stripping both, or be an unanswerable phrase that
       is not itself an option (exact comparisons, as the official).
    """
    reasoning = None
    if COT_TRIGGER in question or COT_ANSWER_SEPARATOR in answer:
        if not question.endswith(COT_TRIGGER):
            return None, DROP_COT_TRIGGER_NOT_AT_END
        cot = split_cot(question, answer)
        if cot is None:
            return None, DROP_COT_MALFORMED
        question, reasoning, answer = cot
    options = None
    unanswerable = False
    if OPTIONS_HEADER in question:
        mc = split_mc_question(question)
        if mc is None:
            return None, DROP_MC_MALFORMED
        question, options = mc
        if answer not in options and answer in _UNANSWERABLE_SET:
            unanswerable = True
        elif not any(answer.strip() == o.strip() for o in options):
            return None, DROP_MC_ANSWER_NOT_AN_OPTION
    if reasoning is None:
        fmt = "mc" if options is not None else "free"
    else:
        fmt = "mc_cot" if options is not None else "cot"
    return {
        "format": fmt,
        "question": question,
        "options": options,
        "reasoning": reasoning,
        "answer": answer,
        "unanswerable": unanswerable,
    }, None


def classify_pair(question: str, answer: str) -> dict | None:
    """:func:`accept_pair` without the reason: the pair's parts, or None if it is dropped."""
    return accept_pair(question, answer)[0]


def question_format(question: str) -> str:
    """``"free"``, ``"mc"``, ``"cot"`` or ``"mc_cot"`` from the question's markers alone.

    For gold pairs that come without a format (a data set's ``{Q, A}`` items), which are labelled,
    not checked: an option header (``"\nOptions:\n"``) anywhere makes it multiple choice, a
    question ending with the CoT trigger (trailing whitespace and the newline before it optional)
    chain of thought. :func:`accept_pair` is the strict reading, for synthesized pairs.
    """
    mc = OPTIONS_HEADER.removesuffix("- ") in question
    cot = question.rstrip().endswith(COT_TRIGGER.lstrip("\n"))
    return ("mc_cot" if mc else "cot") if cot else ("mc" if mc else "free")


def accepted_pairs(
    pairs: Iterable[Mapping], dropped: Counter | None = None
) -> list[tuple[int, dict]]:
    """``(index, parts)`` of each pair of a text that :func:`accept_pair` keeps, ``index`` being its
    place among the text's parsed pairs; the others are counted by reason in ``dropped``."""
    out = []
    for index, p in enumerate(pairs):
        pair, reason = accept_pair(str(p.get("question", "")), str(p.get("answer", "")))
        if pair is not None:
            out.append((index, pair))
        elif dropped is not None:
            dropped[reason] += 1
    return out
