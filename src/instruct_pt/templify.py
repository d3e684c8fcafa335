"""Turn synthesized chains into instruction-augmented pre-training texts (paper §2.3; facts §1.4).

Each multi-round chain becomes ONE pre-training text: every raw text of the chain followed by its
instruction-response pairs, written with natural-language templates in the FLAN style and joined
by one separator, so a finished chain is an M-shot example. The template bank below is our own and
smaller than the reference one (``read_compre_pt.py``), but it has the same structure and the
paper's mode probabilities:

* reading-comprehension mode per chain: if the fewest pairs of a text in the chain is < 2,
  Classic 95 / Dialog 5; otherwise Classic 80 / Dialog 5 / Numbered questions 5 /
  Inline few-shot 5 / Next-turn dialog 5;
* inversion (pairs first, then the text) for 5% of the Classic and Dialog chains;
* per-chain choices of the QA pattern, option formatting (header, item names, delimiter,
  shuffled order), CoT pattern and separators.

All choices for the chain at ordinal ``k`` (order of first appearance) come from
``random.Random(seed + k)``, as the reference code seeds with ``idx + 12345``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from tqdm import tqdm

from .common import DataError, iter_jsonl, write_json, write_jsonl
from .protocol import classify_pair

log = logging.getLogger(__name__)

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
    ("\nLet's think step by step.", "{reasoning}. Therefore, the answer is {answer}."),
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


@dataclass
class _Style:
    """Every random choice for one chain, drawn in a fixed order from one seeded generator."""

    qa: QAPattern
    opt_header: str
    opt_item: str
    opt_delim: str
    cot: tuple[str, str]
    chain_sep: str
    mode: str
    inverted: bool
    read_frame: tuple[str, str]
    inversion_frame: str
    speakers: tuple[str, str]
    dialog_opener: str
    numbered_frame: str
    inline_frame: tuple[str, str, str]
    next_turn_frame: str
    rng: random.Random  # for option shuffling, after the draws above

    @classmethod
    def draw(cls, seed: int, min_pairs: int) -> _Style:
        rng = random.Random(seed)
        modes = MODES_MANY_PAIRS if min_pairs >= 2 else MODES_FEW_PAIRS
        mode = rng.choices(list(modes), weights=list(modes.values()))[0]
        inverted = rng.random() < INVERSION_PROBABILITY and mode in ("classic", "dialog")
        return cls(
            qa=rng.choice(QA_PATTERNS),
            opt_header=rng.choice(OPTION_HEADERS),
            opt_item=rng.choice(OPTION_ITEMS),
            opt_delim=rng.choice(OPTION_DELIMITERS),
            cot=rng.choice(COT_PATTERNS),
            chain_sep=rng.choice(CHAIN_SEPARATORS),
            mode=mode,
            inverted=inverted,
            read_frame=rng.choice(READ_FRAMES),
            inversion_frame=rng.choice(INVERSION_FRAMES),
            speakers=rng.choice(DIALOG_SPEAKERS),
            dialog_opener=rng.choice(DIALOG_OPENERS),
            numbered_frame=rng.choice(NUMBERED_FRAMES),
            inline_frame=rng.choice(INLINE_FRAMES),
            next_turn_frame=rng.choice(NEXT_TURN_FRAMES),
            rng=rng,
        )


# ----------------------------------------------------------------------------- rendering


def _fill(template: str, **slots: str) -> str:
    """``str.format`` without interpreting braces inside the slot values."""
    for key, value in slots.items():
        template = template.replace("{" + key + "}", value)
    return template


def _render_pair(p: dict, st: _Style) -> tuple[str, str]:
    """(question text, answer text) of a classified pair in the chain's style."""
    q = _fill(st.qa.question, question=p["question"])
    if p["options"]:
        options = list(p["options"])
        st.rng.shuffle(options)
        names = [_item_name(st.opt_item, k) for k in range(len(options))]
        items = st.opt_delim.join(n + o for n, o in zip(names, options, strict=True))
        q += "\n" + st.opt_header + ("\n" if st.opt_delim == "\n" else " ") + items
    a = p["answer"]
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


def _classify(pairs: list[dict], dropped: Counter) -> list[dict]:
    out = []
    for p in pairs:
        c = classify_pair(p["question"], p["answer"])
        if c is None:
            dropped["malformed_mc_or_cot"] += 1
        else:
            out.append(c)
    return out


def _cook_chain(
    entries: list[dict], seed: int, include_context: bool, stats: dict, source: str
) -> list[dict]:
    """Records for one chain: one augmented text for its texts with pairs, raw ones for the rest."""
    classified = [_classify(e["pairs"], stats["dropped_pairs"]) for e in entries]
    with_pairs = [(e, c) for e, c in zip(entries, classified, strict=True) if c]
    out = []
    for e, c in zip(entries, classified, strict=True):
        if c:
            continue
        if include_context:
            out.append({"id": e["id"], "text": e["text"], "source": "raw"})
            stats["raw"] += 1
        else:
            stats["dropped_texts"]["no_pairs_without_context"] += 1
    if not with_pairs:
        return out
    st = _Style.draw(seed, min(len(c) for c in classified))
    pieces = []
    for e, c in with_pairs:
        rendered = [_render_pair(p, st) for p in c]
        pieces.append(_render_text(e["text"] if include_context else None, rendered, st))
        stats["pairs"] += len(c)
        stats["formats"].update(p["format"] for p in c)
    out.append({"id": with_pairs[0][0]["id"], "text": st.chain_sep.join(pieces), "source": source})
    stats["augmented"] += 1
    stats["augmented_texts_in_chains"] += len(with_pairs)
    stats["modes"][st.mode] += 1
    stats["inverted"] += int(st.inverted)
    return out


def _new_stats(seed: int, include_context: bool) -> dict:
    return {
        "seed": seed,
        "include_context": include_context,
        "chains": 0,
        "augmented": 0,
        "augmented_texts_in_chains": 0,
        "raw": 0,
        "pairs": 0,
        "inverted": 0,
        "modes": Counter(),
        "formats": Counter(),
        "dropped_pairs": Counter(),
        "dropped_texts": Counter(),
    }


def _finish_stats(stats: dict) -> dict:
    for key in ("modes", "formats", "dropped_pairs", "dropped_texts"):
        stats[key] = dict(sorted(stats[key].items()))
    return stats


def _cook_all(
    chains: Iterable[list[dict]],
    n_chains: int,
    out_path: str,
    seed: int,
    include_context: bool,
    stats_path: str | None,
    source: str = "augmented",
) -> dict:
    stats = _new_stats(seed, include_context)
    out: list[dict] = []
    for k, entries in enumerate(tqdm(chains, total=n_chains, desc="templify", unit="chain")):
        out += _cook_chain(entries, seed + k, include_context, stats, source)
        stats["chains"] += 1
    write_jsonl(out_path, out)
    stats = _finish_stats(stats)
    if stats_path:
        write_json(stats_path, stats)
    log.info(
        "templify -> %s: %d augmented, %d raw texts from %d chains",
        out_path,
        stats["augmented"],
        stats["raw"],
        stats["chains"],
    )
    return stats


def _check_pairs(pairs: object, where: str) -> None:
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("question"), str)
        and isinstance(p.get("answer"), str)
        for p in pairs
    ):
        raise DataError(f"{where}: 'pairs' must be a list of {{'question': str, 'answer': str}}")


def templify(
    synth_paths: list[str],
    out_path: str,
    seed: int,
    include_context: bool = True,
    stats_path: str | None = None,
) -> dict:
    """Write ``{"id", "text", "source"}`` pre-training texts, one per chain of the synthesis shards.

    Records of a chain (same shard, same ``chain``) are ordered by round. A text without valid
    pairs stays raw (``source: "raw"``). ``include_context=False`` drops the raw texts and keeps
    only the templified pairs (texts without pairs are then dropped and counted): this is OUR
    definition of Table 4's "w/o Corpora" ablation; the paper's exact definition is UNCONFIRMED
    (facts §4.5).
    """
    chains: dict[tuple[int, int], list[dict]] = {}
    for f, path in enumerate(synth_paths):
        for lineno, rec in enumerate(
            iter_jsonl(path, required=("id", "text", "chain", "round", "pairs")), 1
        ):
            _check_pairs(rec["pairs"], f"{path}:{lineno}")
            chains.setdefault((f, rec["chain"]), []).append(rec)
    ordered = (sorted(entries, key=lambda e: e["round"]) for entries in chains.values())
    return _cook_all(ordered, len(chains), out_path, seed, include_context, stats_path)


def templify_ft_collection(
    ft_path: str, out_path: str, seed: int, shots: int = 1, stats_path: str | None = None
) -> dict:
    """Pre-training texts from the synthesizer's fine-tuning collection (``synth_ft`` records).

    Each record's context and gold pairs are templified like a synthesized text (``source:
    "synth_ft"``; used by Mix PT and
    Instruct PT, which mix the collection into pre-training). ``shots > 1`` joins up to ``shots``
    consecutive records of the same dataset into one few-shot text, as the synthesizer's tuning
    sequences do.
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    groups: list[list[dict]] = []
    last_dataset = None
    for lineno, rec in enumerate(
        iter_jsonl(ft_path, required=("id", "dataset", "context", "pairs")), 1
    ):
        _check_pairs(rec["pairs"], f"{ft_path}:{lineno}")
        entry = {"id": rec["id"], "text": rec["context"], "pairs": rec["pairs"]}
        if groups and rec["dataset"] == last_dataset and len(groups[-1]) < shots:
            groups[-1].append(entry)
        else:
            groups.append([entry])
        last_dataset = rec["dataset"]
    return _cook_all(groups, len(groups), out_path, seed, True, stats_path, source="synth_ft")
