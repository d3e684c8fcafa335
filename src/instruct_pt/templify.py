"""Turn synthesized chains into instruction-augmented pre-training texts (paper §2.3; facts §1.4).

Each multi-round chain becomes ONE pre-training text: every raw text of the chain followed by its
instruction-response pairs, written with natural-language templates in the FLAN style and joined
by one separator, so a finished chain is an M-shot example.

What matches the official code (``read_compre.cook_pt_entries`` + ``read_compre_pt.py`` in
microsoft/LMOps, driven by its README loop), case by case:

* which pairs are kept (:func:`instruct_pt.protocol.accept_pair`: MC answers must be an option or
  an unanswerable phrase, CoT pairs must be well formed);
* seeds: every chain of the collection at index position ``p`` (the README's ``idx``; synthesis
  records carry it as ``position``) is cooked with seed ``templify_seed + p`` (12345 + idx at
  paper scale), shared by all chains at that position; shards continue the numbering where the
  previous shard ended;
* mode and inversion: ONE uniform draw of a fresh ``random.Random(seed)`` decides both, so a chain
  is inverted (pairs first, then the text) in exactly 5% of the seeds and only in Classic mode.
  Modes, if the fewest kept pairs of a text in the chain is < 2: Classic 95 / Dialog 5; otherwise
  Classic 80 / Dialog 5 / Numbered questions 5 / Inline few-shot 5 / Next-turn dialog 5;
* options are shuffled with ``random.Random(seed * i)`` (``i``: the pair's index among its text's
  parsed pairs); with lettered items the answer becomes the matching option's label, an
  unanswerable answer becomes the chain's "none of the options" phrase
  (``random.Random(seed).choice(UNANSWERABLE_OPTIONS)``);
* order: per position, each chain's augmented text, then its texts left raw (latest first).

The template bank below (patterns, option styles, frames) is our own and smaller than the official
one; its choices are drawn from a generator of their own. That and the other deviations are listed
in ``docs/deviations.md``.

The shards are read twice and the texts written as they are made, so memory does not grow with
the corpus beyond ~40 bytes per record (where each record is, its position and slot): a chain's
records lie a chunk apart in a synthesis shard, so they are gathered by seeking. Batches of chains
can be cooked by a pool of processes (``num_workers``) without changing the output.
"""

from __future__ import annotations

import array
import json
import logging
import multiprocessing as mp
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .common import DataError, atomic_writer, iter_jsonl, iter_jsonl_offsets, write_json
from .packing import ordered_map
from .progress import Progress
from .protocol import UNANSWERABLE_OPTIONS, accepted_pairs

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


def _cook_chain(
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


_CHAINS_PER_BATCH = 256
POOL_MIN_BYTES = 1 << 26  # smaller inputs are cooked in-process (``num_workers`` is ignored)


def _batches(
    chains: Iterable[tuple[int, list[dict]]], include_context: bool, source: str
) -> Iterator[tuple[list[tuple[int, list[dict]]], bool, str]]:
    """(seed, chain) items, ``_CHAINS_PER_BATCH`` at a time."""
    batch: list[tuple[int, list[dict]]] = []
    for item in chains:
        batch.append(item)
        if len(batch) >= _CHAINS_PER_BATCH:
            yield batch, include_context, source
            batch = []
    if batch:
        yield batch, include_context, source


def _cook_batch(
    job: tuple[list[tuple[int, list[dict]]], bool, str],
) -> tuple[list[dict], dict]:
    """The records of a batch of chains and the batch's own stats (merged by the caller)."""
    batch, include_context, source = job
    stats = _new_stats(0, include_context)
    records: list[dict] = []
    for chain_seed, entries in batch:
        records += _cook_chain(entries, chain_seed, include_context, stats, source)
        stats["chains"] += 1
    return records, stats


def _merge_stats(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, Counter):
            into[key].update(value)
        elif key not in ("seed", "include_context"):
            into[key] += value


def _cook_all(
    chains: Iterable[tuple[int, list[dict]]],
    n_chains: int | None,
    out_path: str,
    seed: int,
    include_context: bool,
    stats_path: str | None,
    source: str = "augmented",
    num_workers: int = 1,
) -> dict:
    """Cook the (seed, chain) items and write each record as soon as it is made.

    Nothing but a batch of chains is held, so memory does not depend on the number of chains.
    ``num_workers > 1`` cooks batches in a pool of processes; results are written in chain order
    and every chain has its own seed, so the bytes do not depend on the number of workers.
    An output that ends empty is an error naming the counts (nothing is written then).
    """
    stats = _new_stats(seed, include_context)
    batches = _batches(chains, include_context, source)
    path, f, tmp = atomic_writer(out_path)
    pool = None
    n_written = 0
    try:
        if num_workers > 1:
            pool = mp.get_context("spawn").Pool(num_workers)
            cooked = ordered_map(pool, _cook_batch, batches, 2 * num_workers)
        else:
            cooked = map(_cook_batch, batches)
        with f, Progress("templify", "chains", n_chains) as bar:
            for records, part in cooked:
                for rec in records:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_written += len(records)
                _merge_stats(stats, part)
                bar.update(part["chains"])
        stats = _finish_stats(stats)
        if n_written == 0:
            raise DataError(
                f"templify -> {out_path}: no texts from {stats['chains']} chains (augmented "
                f"{stats['augmented']}, raw {stats['raw']}; dropped pairs "
                f"{stats['dropped_pairs'] or 'none'}, dropped texts {stats['dropped_texts'] or 'none'})"
                + (
                    ". Without the raw texts (include_context=false) only texts with parsable pairs "
                    "remain: the synthesizer produced none"
                    if stats["chains"] and not include_context
                    else ": the input has no records"
                )
            )
        os.replace(tmp, path)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if os.path.exists(tmp):
            os.unlink(tmp)
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


def _int_field(rec: dict, key: str, where: str) -> int:
    value = rec[key]
    if not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise DataError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


@dataclass
class _Plan:
    """Pass 1's result: where each record is, its collection and chain, and the cooking order."""

    files: np.ndarray  # int32 shard index per record, file order
    offsets: np.ndarray  # int64 byte offset per record
    positions: np.ndarray  # int64 collection position per record, numbered across the shards
    chains: np.ndarray  # int64 ``chain`` field per record
    order: np.ndarray  # record indices by (position, slot)
    n_chains: int


SYNTH_KEYS = ("id", "text", "chain", "round", "position", "slot", "pairs")


def _chain_plan(synth_paths: list[str]) -> _Plan:
    """Pass 1 over the shards: where each record is, its collection position and slot.

    A shard's positions (the official README's ``idx``) continue where the previous shard's
    ended, so every collection of the corpus has its own seed; with one shard they are exactly
    the official ones. Records are cooked by (position, slot); a chain is a run of records of one
    position with one ``chain`` value. About 40 bytes per record are kept; no text.
    """
    files, slots = array.array("i"), array.array("q")
    offsets, positions, chains = (array.array("q") for _ in range(3))
    base = 0
    for fi, path in enumerate(synth_paths):
        top = -1
        for lineno, offset, rec in iter_jsonl_offsets(path, SYNTH_KEYS):
            where = f"{path}:{lineno}"
            _check_pairs(rec["pairs"], where)
            chains.append(_int_field(rec, "chain", where))
            _int_field(rec, "round", where)
            position = _int_field(rec, "position", where)
            slot = _int_field(rec, "slot", where)
            if position < 0 or slot < 0 or position >= 2**40:
                raise DataError(f"{where}: 'position' and 'slot' must be in [0, 2**40)")
            positions.append(base + position)
            slots.append(slot)
            offsets.append(offset)
            files.append(fi)
            top = max(top, position)
        base += top + 1

    def as_np(a: array.array, dtype) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype=dtype)

    pos, slot, chain = as_np(positions, np.int64), as_np(slots, np.int64), as_np(chains, np.int64)
    f = as_np(files, np.int32)
    order = np.lexsort((slot, pos)) if len(pos) else np.zeros(0, dtype=np.int64)
    n_chains = 0
    if len(order):
        p_sorted, s_sorted, c_sorted = pos[order], slot[order], chain[order]
        same_place = (p_sorted[1:] == p_sorted[:-1]) & (s_sorted[1:] == s_sorted[:-1])
        if same_place.any():
            i = int(order[int(np.argmax(same_place)) + 1])
            raise DataError(
                f"{synth_paths[int(f[i])]}: two records have the same position and slot "
                f"(position {int(pos[i])} across shards, slot {int(slot[i])}): not one synthesis shard"
            )
        new_chain = (p_sorted[1:] != p_sorted[:-1]) | (c_sorted[1:] != c_sorted[:-1])
        n_chains = 1 + int(new_chain.sum())
        del p_sorted, s_sorted, c_sorted, same_place, new_chain
    return _Plan(f, as_np(offsets, np.int64), pos, chain, order, n_chains)


_READ_AHEAD = 4096  # records whose places are turned into Python ints at a time


def _planned_chains(
    synth_paths: list[str], plan: _Plan, seed: int
) -> Iterator[tuple[int, list[dict]]]:
    """Pass 2: (seed + position, chain) for each chain, reading its records by seeking."""
    handles = [open(p, "rb") for p in synth_paths]  # noqa: SIM115 - closed in finally
    try:
        chain: list[dict] = []
        current = None
        for start in range(0, len(plan.order), _READ_AHEAD):
            idx = plan.order[start : start + _READ_AHEAD]
            places = zip(
                plan.files[idx].tolist(),
                plan.offsets[idx].tolist(),
                plan.positions[idx].tolist(),
                plan.chains[idx].tolist(),
                strict=True,
            )
            for fi, off, position, chain_id in places:
                if (position, chain_id) != current and chain:
                    yield seed + current[0], chain
                    chain = []
                current = (position, chain_id)
                h = handles[fi]
                h.seek(off)
                rec = json.loads(h.readline())
                chain.append({"id": rec["id"], "text": rec["text"], "pairs": rec["pairs"]})
        if chain:
            yield seed + current[0], chain
    finally:
        for h in handles:
            h.close()


def iter_chains(synth_paths: list[str], seed: int) -> Iterator[tuple[int, list[dict]]]:
    """Every chain of the synthesis shards, in output order, with the seed it is cooked with.

    Yields ``(seed + position, [{"id", "text", "pairs"}, ...])``: the official
    ``cook_pt_entries(read_collection, random_seed=idx + 12345)`` seeds, ``seed`` playing 12345.
    """
    return _planned_chains(synth_paths, _chain_plan(synth_paths), seed)


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
    num_workers: int = 1,
) -> dict:
    """Write ``{"id", "text", "source"}`` pre-training texts, one per chain of the synthesis shards.

    Chains are cooked by collection position (the seed is ``seed + position``), their records by
    slot; see the module docstring for what matches the official code. A text without valid
    pairs stays raw (``source: "raw"``). ``include_context=False`` drops the raw texts and keeps
    only the templified pairs (texts without pairs are then dropped and counted): this is OUR
    definition of Table 4's "w/o Corpora" ablation; the paper's exact definition is UNCONFIRMED
    (facts §4.5).
    """
    plan = _chain_plan(synth_paths)
    chains = _planned_chains(synth_paths, plan, seed)
    if sum(os.path.getsize(p) for p in synth_paths) < POOL_MIN_BYTES:
        num_workers = 1  # starting workers would cost more than they save
    return _cook_all(
        chains, plan.n_chains, out_path, seed, include_context, stats_path, num_workers=num_workers
    )


def templify_ft_collection(
    ft_path: str,
    out_path: str,
    seed: int,
    shots: int = 1,
    stats_path: str | None = None,
    num_workers: int = 1,
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
    if os.path.getsize(ft_path) < POOL_MIN_BYTES:
        num_workers = 1
    return _cook_all(
        ((seed + k, group) for k, group in enumerate(_ft_groups(ft_path, shots))),
        None,
        out_path,
        seed,
        True,
        stats_path,
        source="synth_ft",
        num_workers=num_workers,
    )


def _ft_groups(ft_path: str, shots: int) -> Iterator[list[dict]]:
    """Runs of up to ``shots`` consecutive records of one dataset, yielded as they complete."""
    group: list[dict] = []
    last_dataset = None
    for lineno, rec in enumerate(
        iter_jsonl(ft_path, required=("id", "dataset", "context", "pairs")), 1
    ):
        _check_pairs(rec["pairs"], f"{ft_path}:{lineno}")
        entry = {"id": rec["id"], "text": rec["context"], "pairs": rec["pairs"]}
        if group and rec["dataset"] == last_dataset and len(group) < shots:
            group.append(entry)
        else:
            if group:
                yield group
            group = [entry]
        last_dataset = rec["dataset"]
    if group:
        yield group
