"""Text assembly: one synthesized chain -> one augmented text (paper §2.3; facts §1.4).

Every raw text of a chain is followed by its instruction-response pairs, written with
natural-language templates in the FLAN style and joined by one separator, so a finished chain is
an M-shot example (:func:`cook_chain`). Which chains there are and the seed each is cooked with
come from :mod:`instruct_pt.synthesis.templify`.

What matches the official code (``read_compre.cook_pt_entries`` + ``read_compre_pt.py`` in
microsoft/LMOps), case by case:

* which pairs are kept (:func:`instruct_pt.synthesis.protocol.accept_pair`: MC answers must be an
  option or an unanswerable phrase, CoT pairs must be well formed);
* mode and inversion: ONE uniform draw of a fresh ``random.Random(seed)`` decides both, so a chain
  is inverted (pairs first, then the text) in exactly 5% of the seeds and only in Classic mode.
  Modes, if the fewest kept pairs of a text in the chain is < 2: Classic 95 / Dialog 5; otherwise
  Classic 80 / Dialog 5 / Numbered questions 5 / Inline few-shot 5 / Next-turn dialog 5;
* options are shuffled with ``random.Random(seed * i)`` (``i``: the pair's index among its text's
  parsed pairs); with lettered items the answer becomes the matching option's label, an
  unanswerable answer becomes the chain's "none of the options" phrase
  (``random.Random(seed).choice(UNANSWERABLE_OPTIONS)``);
* order: each chain's augmented text, then its texts left raw (latest first).

The template bank below (patterns, option styles, frames) is our own and smaller than the official
one; its choices are drawn from a generator of their own. That and the other deviations are listed
in ``docs/deviations.md``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from .protocol import COT_TRIGGER, UNANSWERABLE_OPTIONS, accepted_pairs

# ----------------------------------------------------------------------------- template bank

MODES_FEW_PAIRS = {"classic": 95, "dialog": 5}
MODES_MANY_PAIRS = {
    "classic": 80,
    "dialog": 5,
    "numbered": 5,
    "inline_fewshot": 5,
    "next_turn_dialog": 5,
}
INVERSION_PROBABILITY = 0.05


@dataclass(frozen=True)
class QAPattern:
    """How one pair is written: ``q_prefix + question + x_y + a_prefix + answer``."""

    q_prefix: str
    question: str  # with a {question} slot
    x_y: str
    a_prefix: str
    separator: str  # between pairs


QA_PATTERNS = [
    QAPattern("Question: ", "{question}", "\n", "Answer: ", "\n\n"),
    QAPattern("Q: ", "{question}", " ", "A: ", "\n\n"),
    QAPattern("", "{question}", "\n", "", "\n\n"),
    QAPattern("", "Answer this question: {question}", "\n", "", "\n\n"),
    QAPattern("Input: ", "{question}", "\n", "Output: ", "\n\n"),
    QAPattern("QUESTION: ", "{question}", "\n", "ANS: ", "\n\n\n"),
    QAPattern("Problem: ", "{question}", "\n", "Solution: ", "\n\n"),
    QAPattern("", "{question}", "\n\n", "Response: ", "\n\n\n"),
    QAPattern("question: ", "Please answer this: {question}", "\n", "answer: ", "\n\n"),
    QAPattern("Q: ", "{question}\nWhat is the answer?", "\n", "A: ", "\n\n"),
]

OPTION_HEADERS = [
    "Options:",
    "Choose from:",
    "Pick your answer from:",
    "Possible answers:",
    "Choices:",
    "Select from the following.",
]
OPTION_ITEMS = ["bullet", "upper", "upper_paren", "lower_paren", "number", "roman"]
OPTION_DELIMITERS = ["\n", " ", "; ", " | "]

COT_PATTERNS = [  # (question suffix, answer form with {reasoning} and {answer})
    (COT_TRIGGER, "{reasoning}. Therefore, the answer is {answer}."),  # the protocol's trigger
    (" Think carefully first, then make a decision.", "{reasoning}. So, the answer is {answer}."),
    ("\nGive the rationale and then the answer.", "Rationale: {reasoning}.\nThe answer: {answer}."),
    (" Explain your reasoning.", "{reasoning}. Thus, the answer is {answer}."),
    (
        "\nStream of consciousness first, then the final answer.",
        "{reasoning}. The final answer: {answer}.",
    ),
]

READ_FRAMES = [  # Classic: (framed context, separator before the pairs)
    ("{context}", "\n\n"),
    ("Read the following text and answer the questions.\n\n{context}", "\n\n"),
    ("{context}\n\nAnswer questions about the text above.", "\n\n"),
    ("Here is an article:\n{context}", "\n\n"),
    ("Context: {context}", "\n"),
    ("{context}\n\nBased on the passage above, answer the following.", "\n"),
]
INVERSION_FRAMES = [
    "Answer the questions above using this text:\n{context}",
    "The questions above are about the following text.\n\n{context}",
    "Text: {context}",
    "Here is the passage those questions refer to:\n{context}",
]
DIALOG_SPEAKERS = [
    ("User", "Assistant"),
    ("Person A", "Person B"),
    ("Student", "Teacher"),
    ("Speaker 1", "Speaker 2"),
    ("Q", "A"),
]
DIALOG_OPENERS = ["", "A conversation about the text above:", "Discuss the text.", "Chat history:"]
NUMBERED_FRAMES = [  # {context}, {questions}, {answers}
    "{context}\n\nAnswer the following questions:\n{questions}\n\nAnswers:\n{answers}",
    "{context}\n\nQuestions:\n{questions}\n\nResponses:\n{answers}",
    "Read the text and answer every question.\n{context}\n{questions}\nAnswers:\n{answers}",
]
INLINE_FRAMES = [  # (intro after context, example input/output, test input/output)
    ("Here are some examples.", "Example: {q}\nAnswer: {a}", "Now answer this: {q}\nAnswer: {a}"),
    ("Q&A examples are below.", "Q: {q}\nA: {a}", "Q: {q}\nA: {a}"),
    (
        "Learn from the examples, then solve the problem.",
        "Problem: {q}\nSolution: {a}",
        "Problem: {q}\nSolution: {a}",
    ),
]
NEXT_TURN_FRAMES = [  # {dialog}, then the last turn
    "{dialog}\n\nWhat is the next turn of the conversation?\n{next}",
    "Continue the dialogue.\n{dialog}\n{next}",
    "{dialog}\n\nGenerate the next exchange.\n{next}",
]
CHAIN_SEPARATORS = ["\n\n", "\n\n\n", "\n\n\n\n"]


def _roman(k: int) -> str:
    out = ""
    for value, sym in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while k >= value:
            out += sym
            k -= value
    return out


def _item_name(style: str, k: int) -> str:
    """Name of the k-th option (0-based) in one of the OPTION_ITEMS styles."""
    letter = chr(ord("A") + k % 26)
    return {
        "bullet": "- ",
        "upper": f"{letter}. ",
        "upper_paren": f"({letter}) ",
        "lower_paren": f"{letter.lower()}) ",
        "number": f"{k + 1}. ",
        "roman": f"({_roman(k + 1)}) ",
    }[style]


def draw_mode(seed: int, min_pairs: int) -> tuple[str, bool]:
    """(mode, inverted) of a chain cooked with ``seed`` whose texts keep at least ``min_pairs`` pairs.

    As the official ``get_patterns``: the mode and the inversion are each drawn with
    ``choices(..., weights)`` from a FRESH ``random.Random(seed)``, i.e. from the same uniform
    number ``u``: inverted iff ``u < 0.05``, which falls inside Classic's 80 or 95%.
    """
    modes = MODES_MANY_PAIRS if min_pairs >= 2 else MODES_FEW_PAIRS
    mode = random.Random(seed).choices(list(modes), weights=list(modes.values()))[0]
    inverted = random.Random(seed).choices(
        [True, False], weights=[100 * INVERSION_PROBABILITY, 100 * (1 - INVERSION_PROBABILITY)]
    )[0]
    return mode, inverted


def shuffled_options(options: list[str], seed: int, pair_index: int) -> list[str]:
    """The options in the order the official ``format_options`` shows them.

    ``random.Random(seed * pair_index).shuffle``, ``pair_index`` being the pair's index among its
    text's parsed pairs (so the first pair of every text uses ``Random(0)``, as the official).
    """
    out = list(options)
    random.Random(seed * pair_index).shuffle(out)
    return out


def _lettered(style: str) -> bool:
    """Whether an option style names items distinctly (the official "abc style")."""
    return style != "bullet"


@dataclass
class _Style:
    """Every random choice for one chain: the official draws, then our template bank's."""

    seed: int
    mode: str
    inverted: bool
    unanswerable: str  # replaces an unanswerable MC answer
    qa: QAPattern
    opt_header: str
    opt_item: str
    opt_delim: str
    cot: tuple[str, str]
    chain_sep: str
    read_frame: tuple[str, str]
    inversion_frame: str
    speakers: tuple[str, str]
    dialog_opener: str
    numbered_frame: str
    inline_frame: tuple[str, str, str]
    next_turn_frame: str

    @classmethod
    def draw(cls, seed: int, min_pairs: int) -> _Style:
        mode, inverted = draw_mode(seed, min_pairs)
        bank = random.Random(f"templify-bank:{seed}")  # our bank's own generator
        return cls(
            seed=seed,
            mode=mode,
            inverted=inverted,
            unanswerable=random.Random(seed).choice(UNANSWERABLE_OPTIONS),
            qa=bank.choice(QA_PATTERNS),
            opt_header=bank.choice(OPTION_HEADERS),
            opt_item=bank.choice(OPTION_ITEMS),
            opt_delim=bank.choice(OPTION_DELIMITERS),
            cot=bank.choice(COT_PATTERNS),
            chain_sep=bank.choice(CHAIN_SEPARATORS),
            read_frame=bank.choice(READ_FRAMES),
            inversion_frame=bank.choice(INVERSION_FRAMES),
            speakers=bank.choice(DIALOG_SPEAKERS),
            dialog_opener=bank.choice(DIALOG_OPENERS),
            numbered_frame=bank.choice(NUMBERED_FRAMES),
            inline_frame=bank.choice(INLINE_FRAMES),
            next_turn_frame=bank.choice(NEXT_TURN_FRAMES),
        )


# ----------------------------------------------------------------------------- rendering

_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, **slots: str) -> str:
    """``str.format`` semantics without its parsing: each ``{name}`` of the TEMPLATE is replaced
    once; braces inside the values are never read as slots; unknown ``{...}`` stay as they are."""
    return _SLOT.sub(lambda m: slots.get(m.group(1), m.group(0)), template)


def _render_pair(p: dict, st: _Style) -> tuple[str, str]:
    """(question text, answer text) of an accepted pair in the chain's style."""
    q = _fill(st.qa.question, question=p["question"])
    a = p["answer"]
    if p["options"] is not None:
        options = shuffled_options(p["options"], st.seed, p["index"])
        names = [_item_name(st.opt_item, k) for k in range(len(options))]
        items = st.opt_delim.join(n + o for n, o in zip(names, options, strict=True))
        q += "\n" + st.opt_header + ("\n" if st.opt_delim == "\n" else " ") + items
        if p["unanswerable"]:
            a = st.unanswerable
        elif _lettered(st.opt_item):
            match = next(k for k, o in enumerate(options) if o.strip() == a.strip())
            a = names[match].strip()
    if p["reasoning"] is not None:
        q += st.cot[0]
        a = _fill(st.cot[1], reasoning=p["reasoning"], answer=a)
    return q, a


def _qa_block(pairs: list[tuple[str, str]], st: _Style) -> str:
    return st.qa.separator.join(
        f"{st.qa.q_prefix}{q}{st.qa.x_y}{st.qa.a_prefix}{a}" for q, a in pairs
    )


def _dialog(pairs: list[tuple[str, str]], st: _Style) -> str:
    s1, s2 = st.speakers
    return "\n".join(f"{s1}: {q}\n{s2}: {a}" for q, a in pairs)


def _render_text(context: str | None, pairs: list[tuple[str, str]], st: _Style) -> str:
    """One raw text with its pairs in the chain's mode; ``context=None`` leaves the text out."""

    def join(*parts: str, sep: str = "\n\n") -> str:
        return sep.join(p for p in parts if p)

    ctx = context or ""
    if st.mode in ("classic", "dialog"):
        body = (
            _qa_block(pairs, st)
            if st.mode == "classic"
            else join(st.dialog_opener, _dialog(pairs, st), sep="\n")
        )
        if context is None:
            return body
        if st.inverted:
            return join(body, _fill(st.inversion_frame, context=ctx))
        if st.mode == "classic":
            frame, sep = st.read_frame
            return join(_fill(frame, context=ctx), body, sep=sep)
        return join(ctx, body)
    if st.mode == "numbered":
        qs = "\n".join(f"{k + 1}. {q}" for k, (q, _) in enumerate(pairs))
        ans = "\n".join(f"{k + 1}. {a}" for k, (_, a) in enumerate(pairs))
        return _fill(st.numbered_frame, context=ctx, questions=qs, answers=ans).strip()
    if st.mode == "inline_fewshot":
        intro, example, test = st.inline_frame
        shots = "\n\n".join(_fill(example, q=q, a=a) for q, a in pairs[:-1])
        return join(ctx, intro + "\n" + shots, _fill(test, q=pairs[-1][0], a=pairs[-1][1]))
    if st.mode == "next_turn_dialog":
        s1, s2 = st.speakers
        nxt = f"{s1}: {pairs[-1][0]}\n{s2}: {pairs[-1][1]}"
        return join(
            ctx, _fill(st.next_turn_frame, dialog=_dialog(pairs[:-1], st), next=nxt).strip()
        )
    raise AssertionError(st.mode)


# ----------------------------------------------------------------------------- chains -> texts


def _accepted(pairs: list[dict], dropped: Counter) -> list[dict]:
    """A text's pairs that can be templified, each with its index among the parsed pairs."""
    return [{**pair, "index": i} for i, pair in accepted_pairs(pairs, dropped)]


def cook_chain(
    entries: list[dict], seed: int, include_context: bool, stats: dict, source: str
) -> list[dict]:
    """Records for one chain: its augmented text, then its texts left raw (latest first).

    The official order: ``cook_pt_entries`` walks a collection backwards and prepends each raw
    text as it meets it, then the chain's augmented text.
    """
    accepted = [_accepted(e["pairs"], stats["dropped_pairs"]) for e in entries]
    with_pairs = [(e, c) for e, c in zip(entries, accepted, strict=True) if c]
    raw = []
    for e, c in zip(entries, accepted, strict=True):
        if c:
            continue
        if include_context:
            raw.append({"id": e["id"], "text": e["text"], "source": "raw"})
            stats["raw"] += 1
        else:
            stats["dropped_texts"]["no_pairs_without_context"] += 1
    raw.reverse()
    if not with_pairs:
        return raw
    st = _Style.draw(seed, min(len(c) for c in accepted))
    pieces = []
    for e, c in with_pairs:
        rendered = [_render_pair(p, st) for p in c]
        pieces.append(_render_text(e["text"] if include_context else None, rendered, st))
        stats["pairs"] += len(c)
        stats["formats"].update(p["format"] for p in c)
    stats["augmented"] += 1
    stats["augmented_texts_in_chains"] += len(with_pairs)
    stats["modes"][st.mode] += 1
    stats["inverted"] += int(st.inverted)
    aug = {"id": with_pairs[0][0]["id"], "text": st.chain_sep.join(pieces), "source": source}
    return [aug, *raw]
