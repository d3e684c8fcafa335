"""The instruction synthesizer's exact input/output protocol.

Byte-compatible with the released synthesizer (``instruction-pretrain/instruction-synthesizer``,
``instruction_pretrain/utils/read_compre.py`` in microsoft/LMOps):

* a raw text is presented as ``"<s> <CON> {text} </CON>\\n\\n"`` (note the space before ``<CON>``);
* the synthesizer continues with pairs ``"<QUE> {question} <ANS> {answer} </END>"`` joined by
  ``"\\n\\n"`` and ends the example with ``"</s>"``;
* a chain of earlier examples (multi-round inference, few-shot fine-tuning) is the plain
  concatenation of formatted examples, each closed by ``"</s>"``.

The prompt string is tokenized with ``add_special_tokens=False`` so the literal ``"<s>"`` becomes the
BOS token. Multiple-choice questions end with ``"\\nOptions:\\n- a\\n- b"``; chain-of-thought
questions end with ``"\\nLet's think step by step."`` and their answers read
``"{reasoning}\\nTherefore, the answer is {final}"``.
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
    """One ``"<QUE> q <ANS> a </END>"`` item (concatenation, so braces in the text are safe)."""
    return f"{QUE} {question} {ANS} {answer} {END}"


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
    """Inverse of :func:`format_mc_question`; None if ``question`` has no well-formed option list."""
    parts = question.split(OPTIONS_HEADER)
    if len(parts) != 2 or not parts[0].strip():
        return None
    options = parts[1].split(OPTION_SEPARATOR)
    if not all(o.strip() for o in options):
        return None
    return parts[0], options


def format_cot(question: str, reasoning: str, final: str) -> tuple[str, str]:
    """A chain-of-thought pair: (question + trigger, ``"{reasoning}\\nTherefore, the answer is {final}"``)."""
    return question + COT_TRIGGER, f"{reasoning}{COT_ANSWER_SEPARATOR}{final}"


def split_cot(question: str, answer: str) -> tuple[str, str, str] | None:
    """Inverse of :func:`format_cot` -> (question, reasoning, final); None if not a valid CoT pair."""
    if not question.endswith(COT_TRIGGER):
        return None
    parts = answer.split(COT_ANSWER_SEPARATOR)
    if len(parts) != 2:
        return None
    stem = question[: -len(COT_TRIGGER)]
    if not stem.strip() or not parts[0].strip() or not parts[1].strip():
        return None
    return stem, parts[0], parts[1]


def classify_pair(question: str, answer: str) -> dict | None:
    """Decompose a pair into its format (as ``read_compre_pt.parse_QA_list`` does).

    Returns ``{"format": "free"|"mc"|"cot"|"mc_cot", "question", "options", "reasoning", "answer"}``
    (stripped parts; ``answer`` is the final answer), or None for a malformed MC/CoT pair, which
    the reference code drops as well.
    """
    reasoning = None
    if COT_TRIGGER in question or COT_ANSWER_SEPARATOR in answer:
        cot = split_cot(question, answer)
        if cot is None:
            return None
        question, reasoning, answer = cot
        reasoning = reasoning.strip().removesuffix(".").strip()
        if not reasoning:
            return None
    options = None
    if OPTIONS_HEADER in question:
        mc = split_mc_question(question)
        if mc is None:
            return None
        question, options = mc[0], [o.strip() for o in mc[1]]
    fmt = ("mc" if options else "free") if reasoning is None else ("mc_cot" if options else "cot")
    return {
        "format": fmt,
        "question": question.strip(),
        "options": options,
        "reasoning": reasoning,
        "answer": answer.strip(),
    }
