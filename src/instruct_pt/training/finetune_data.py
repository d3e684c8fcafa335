"""Fine-tuning data: records -> rows of (token ids, labels) with the loss on the answer part only.

Three formats, one per fine-tuning stage:

- the instruction synthesizer's few-shot sequences (§1.2): examples of ONE dataset, each
  ``protocol.format_example`` (the official bytes, defined there only), packed greedily up to
  seq_len, loss only on the pairs (`synth_sequences`);
- instruction tuning (§3): one ``"<s>{instruction}\\n{response}</s>"`` row per example, loss on
  the response (`instruction_rows`);
- ceiling tuning: one ``"<s>{query} {answer}\\n</s>"`` row per task-format record, loss on the
  answer (`task_rows`).

The whole text is encoded at once, so the tokens are those the model sees at inference; a record
that cannot be used (no pairs, empty target, longer than seq_len) is dropped and counted by
reason in the returned statistics.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from instruct_pt.common import DataError, stable_hash
from instruct_pt.synthesis.protocol import format_context, format_example
from instruct_pt.training.batches import IGNORE


def _encode_with_loss_span(
    tok, texts: list[str], loss_from: list[int]
) -> list[tuple[list[int], list[int]]]:
    """Encode texts (no added specials) and label a token only if its span ends after loss_from[i].

    Labels are aligned with ids (the loop shifts them): label = id where trained, -100 elsewhere.
    Encoding the whole string at once (not prompt and answer separately) keeps the tokens exactly
    those the model sees at inference; a token straddling the boundary is trained on.
    """
    encs = tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    out = []
    for enc, boundary in zip(encs, loss_from, strict=True):
        ids = list(enc.ids)
        labels = [
            i if end > boundary else IGNORE for i, (_, end) in zip(ids, enc.offsets, strict=True)
        ]
        out.append((ids, labels))
    return out


def format_synth_example(context: str, pairs: list[dict]) -> tuple[str, int]:
    """One synthesizer tuning example and where its loss starts (no loss on the raw text).

    The official bytes (:func:`instruct_pt.synthesis.protocol.format_example`): ``"<s> <CON> {context}
    </CON>\\n\\n"`` + the pairs ``"<QUE> {q} <ANS> {a} </END>"`` joined by ``"\\n\\n"`` + ``"</s>"``.
    """
    return format_example(context, pairs), len(format_context(context))


def synth_sequences(
    records: list[dict],
    tok,
    seq_len: int,
    max_per_dataset: int,
    seed: int,
    source_name: str = "synth_ft",
) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """Few-shot tuning rows: examples of ONE dataset packed greedily (whole examples) up to seq_len.

    Per dataset, at most max_per_dataset examples, those with the most pairs first (ties broken
    by a seeded hash of the id); their order inside the dataset is then shuffled with the seed.
    """
    dropped: Counter[str] = Counter()
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for i, rec in enumerate(records):
        pairs = rec["pairs"]
        if not isinstance(pairs, list) or not isinstance(rec["context"], str):
            raise DataError(f"{source_name}:{i + 1}: 'context' must be a string and 'pairs' a list")
        for j, p in enumerate(pairs):
            if (
                not isinstance(p, dict)
                or not isinstance(p.get("question"), str)
                or not isinstance(p.get("answer"), str)
            ):
                raise DataError(
                    f"{source_name}:{i + 1}: pairs[{j}] needs string question and answer"
                )
        if not pairs:
            dropped["no_pairs"] += 1
            continue
        by_dataset[str(rec["dataset"])].append(rec)

    rows: list[tuple[list[int], list[int]]] = []
    per_dataset = {}
    for name in sorted(by_dataset):
        recs = sorted(
            by_dataset[name], key=lambda r: (-len(r["pairs"]), stable_hash(seed, r["id"]))
        )
        if len(recs) > max_per_dataset:
            dropped["over_max_per_dataset"] += len(recs) - max_per_dataset
        recs = recs[:max_per_dataset]
        rng = random.Random(stable_hash(seed, "synth-order", name))
        rng.shuffle(recs)
        texts, starts = zip(
            *(format_synth_example(r["context"], r["pairs"]) for r in recs), strict=True
        )
        examples = _encode_with_loss_span(tok, list(texts), list(starts))
        cur_ids: list[int] = []
        cur_lab: list[int] = []
        n_rows = len(rows)
        for ids, labels in examples:
            if len(ids) > seq_len:
                dropped["longer_than_seq_len"] += 1
                continue
            if len(cur_ids) + len(ids) > seq_len:
                rows.append((cur_ids, cur_lab))
                cur_ids, cur_lab = [], []
            cur_ids, cur_lab = cur_ids + ids, cur_lab + labels
        if cur_ids:
            rows.append((cur_ids, cur_lab))
        per_dataset[name] = {"examples": len(recs), "sequences": len(rows) - n_rows}
    return rows, {"datasets": per_dataset, "dropped": dict(sorted(dropped.items()))}


def format_instruction(instruction: str, response: str) -> tuple[str, int]:
    """Instruction-tuning text "<s>{instruction}\\n{response}</s>" and where its loss starts.

    A deliberately plain format (no chat template): the MMLU probe after tuning prompts the model
    the same way lm-eval does, with the question followed by a newline and the answer.
    """
    prompt = f"<s>{instruction}\n"
    return prompt + response + "</s>", len(prompt)


def _loss_span_rows(
    records, tok, seq_len: int, source_name: str, keys: tuple[str, str], fmt, count_by=None
) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """One row per record, ``fmt(rec[keys[0]], rec[keys[1]])`` -> (text, where the loss starts);
    an empty ``keys[1]`` or a row longer than seq_len is dropped and counted."""
    prompt_key, target_key = keys
    dropped: Counter[str] = Counter()
    per: Counter[str] = Counter()
    texts, starts = [], []
    for i, rec in enumerate(records):
        prompt, target = rec[prompt_key], rec[target_key]
        if not isinstance(prompt, str) or not isinstance(target, str):
            raise DataError(
                f"{source_name}:{i + 1}: '{prompt_key}' and '{target_key}' must be strings"
            )
        if not target.strip():
            dropped[f"empty_{target_key}"] += 1
            continue
        text, start = fmt(prompt, target)
        texts.append(text)
        starts.append(start)
        if count_by:
            per[str(rec.get(count_by, ""))] += 1
    rows = []
    for ids, labels in _encode_with_loss_span(tok, texts, starts):
        if len(ids) > seq_len:
            dropped["longer_than_seq_len"] += 1
            continue
        rows.append((ids, labels))
    stats = {"examples": len(rows)}
    if count_by:
        stats[f"per_{count_by}"] = dict(sorted(per.items()))
    return rows, stats | {"dropped": dict(sorted(dropped.items()))}


def instruction_rows(
    records, tok, seq_len: int, source_name: str = "instructions"
) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """One row per example (never packed together); examples longer than seq_len are dropped."""
    keys = ("instruction", "response")
    return _loss_span_rows(records, tok, seq_len, source_name, keys, format_instruction)


def format_task_example(query: str, answer: str) -> tuple[str, int]:
    """A ceiling training text "<s>{query} {answer}\\n</s>" and where its loss starts: the bytes
    the evaluation scores (lm-eval: the query, then " " + the answer; generation stops at "\\n")."""
    prompt = f"<s>{query}"
    return f"{prompt} {answer}\n</s>", len(prompt)


def task_rows(
    records, tok, seq_len: int, source_name: str = "tasks"
) -> tuple[list[tuple[list[int], list[int]]], dict]:
    """One row per task-format record (loss on the answer only); longer than seq_len: dropped."""
    keys = ("query", "answer")
    return _loss_span_rows(records, tok, seq_len, source_name, keys, format_task_example, "task")
