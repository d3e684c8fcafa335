"""Tokenizers: load the paper's (Mistral / Llama 3) from the hub or train a small byte-level BPE.

At paper scale the tokenizer comes from the hub (Mistral-7B's for the from-scratch models, Llama 3's
for continual pre-training). At miniature scale we train a byte-level BPE on the workflow's own
corpora with Mistral's special-token convention (`<unk>`=0, `<s>`=1, `</s>`=2, plus `<pad>`=3), so that
every downstream module (synthesizer prompts that write a literal "<s>", packing with BOS/EOS,
evaluation with `add_bos_token=True`) behaves the same way at both scales.

Whatever the source, the result is a `save_pretrained` folder that `AutoTokenizer` loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from instruct_pt.common import DataError, iter_jsonl_offsets, sha256_file, write_json
from instruct_pt.progress import iter_progress

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0..3, Mistral's BOS=1 / EOS=2


def record_texts(rec: dict, where: str) -> Iterator[str]:
    """The strings of one record that the tokenizer should learn from, whatever the record type.

    Raw / augmented / mixture texts carry "text"; synthesizer fine-tuning records carry "context" and
    "pairs"; instruction records carry question/response or instruction/response.
    """
    found = False
    for key in ("text", "context", "question", "instruction", "response"):
        value = rec.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise DataError(f"{where}: field {key!r} must be a string")
        found = True
        yield value
    pairs = rec.get("pairs")
    if pairs is not None:
        if not isinstance(pairs, list):
            raise DataError(f"{where}: field 'pairs' must be a list")
        for j, pair in enumerate(pairs):
            if not isinstance(pair, dict):
                raise DataError(f"{where}: pairs[{j}] must be an object")
            for key in ("question", "answer"):
                if isinstance(pair.get(key), str):
                    found = True
                    yield pair[key]
    if not found:
        raise DataError(
            f"{where}: no text field (expected one of text, context+pairs, question, instruction)"
        )


def iter_corpus_texts(corpus_paths: list[str]) -> Iterator[str]:
    """Yield every training string of the JSONL files, in file order (deterministic)."""
    for path in corpus_paths:
        with open(path, "rb") as f:
            n_lines = sum(1 for line in f if line.strip())
        records = iter_jsonl_offsets(path)
        desc = f"tokenizer corpus {Path(path).name}"
        for lineno, _, rec in iter_progress(records, desc, "records", total=n_lines):
            yield from record_texts(rec, f"{path}:{lineno}")


def train_bpe(texts: Iterator[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE (GPT-2 style pre-tokenization, no prefix space) with our specials.

    Every newline is its own pre-token, as in Mistral's SentencePiece tokenizer (one byte token
    per "\n"). Otherwise a prompt ending in "\n\n" (the synthesizer's prompt does) would
    encode to a merged "\n\n" token that training never saw before "<QUE>", where the same
    characters inside a training example split as "\n", "\n<QUE...": a greedy model then
    continues with newlines forever.

    Returns a `transformers` fast tokenizer whose post-processor prepends `<s>` only (as Mistral's
    and Llama's tokenizers do with add_special_tokens=True). The specials are added tokens, so the
    literal string "<s>" inside a text encodes to the BOS id.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise DataError(f"tokenizer spec: vocab_size must exceed {len(SPECIAL_TOKENS) + 256}")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )


def prepare_tokenizer(spec: dict, corpus_paths: list[str], out_dir: str, seed: int) -> dict:
    """Write a tokenizer folder to out_dir from spec and return its stats.

    spec["source"]:
      "hub"   -> {"id", "revision"?}: AutoTokenizer.from_pretrained (paper scale).
      "local" -> {"path"}: a save_pretrained folder, copied through AutoTokenizer.
      "train" -> {"vocab_size", "min_frequency"?}: byte-level BPE on corpus_paths' JSONL texts.
    BPE training is deterministic (no sampling); seed is recorded for provenance only.
    """
    from transformers import AutoTokenizer

    source = spec.get("source")
    if source == "hub":
        if "id" not in spec:
            raise DataError("tokenizer spec: source 'hub' needs key 'id'")
        tok = AutoTokenizer.from_pretrained(spec["id"], revision=spec.get("revision"))
    elif source == "local":
        if "path" not in spec:
            raise DataError("tokenizer spec: source 'local' needs key 'path'")
        if not os.path.isdir(spec["path"]):
            raise DataError(f"tokenizer spec: path {spec['path']!r} is not a directory")
        tok = AutoTokenizer.from_pretrained(spec["path"])
    elif source == "train":
        if "vocab_size" not in spec:
            raise DataError("tokenizer spec: source 'train' needs key 'vocab_size'")
        if not corpus_paths:
            raise DataError("tokenizer spec: source 'train' needs at least one corpus path")
        tok = train_bpe(
            iter_corpus_texts(corpus_paths),
            vocab_size=int(spec["vocab_size"]),
            min_frequency=int(spec.get("min_frequency", 2)),
        )
    else:
        raise DataError(f"tokenizer spec: key 'source' must be hub|local|train, got {source!r}")

    if tok.bos_token_id is None or tok.eos_token_id is None:
        raise DataError(f"tokenizer from {source}: needs both a BOS and an EOS token")
    if tok.pad_token_id is None:  # Mistral / Llama ship without one; padding uses EOS (masked out)
        tok.pad_token = tok.eos_token
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out_dir)
    stats = {
        "source": source,
        "vocab_size": len(tok),
        "bos_id": tok.bos_token_id,
        "eos_id": tok.eos_token_id,
        "pad_id": tok.pad_token_id,
        "unk_id": tok.unk_token_id,
        "seed": seed,
    }
    tj = Path(out_dir) / "tokenizer.json"
    if tj.exists():
        stats["tokenizer_sha256"] = sha256_file(tj)
    write_json(Path(out_dir) / "tokenizer_stats.json", stats)
    log.info("tokenizer (%s): vocab %d -> %s", source, stats["vocab_size"], out_dir)
    return stats


# from_pretrained records how the tokenizer was loaded in its init kwargs and save_pretrained
# writes them to tokenizer_config.json: `local_files_only` follows HF_HUB_OFFLINE, `is_local`
# whether it came from a folder or the hub. Both are set again at every load; saved, they only
# make the same tokenizer's files differ by environment.
LOADER_KEYS = ("local_files_only", "is_local")


def save_tokenizer(tok, out_dir: str | os.PathLike) -> None:
    """tok.save_pretrained(out_dir) without the loader's state (LOADER_KEYS): the same tokenizer
    gives the same bytes whatever the environment it was loaded in."""
    kwargs = getattr(tok, "init_kwargs", None)
    if isinstance(kwargs, dict):
        saved = {k: kwargs.pop(k) for k in LOADER_KEYS if k in kwargs}
        try:
            tok.save_pretrained(out_dir)
        finally:
            kwargs.update(saved)
    else:
        tok.save_pretrained(out_dir)


def load_tokenizer(tokenizer_dir: str):
    """AutoTokenizer.from_pretrained(tokenizer_dir), with a clear error if it is not a tokenizer."""
    from transformers import AutoTokenizer

    if not os.path.isdir(tokenizer_dir):
        raise DataError(f"{tokenizer_dir}: tokenizer folder does not exist")
    return AutoTokenizer.from_pretrained(tokenizer_dir)
