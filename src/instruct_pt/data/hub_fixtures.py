"""Local folders laid out exactly as the paper's hub repos, for the paper-shape rehearsal.

The rehearsal (presets/rehearsal.yaml, tests/test_rehearsal.py) runs the paper's training,
synthesis and evaluation jobs at the paper's process counts with hub-format models loaded from
local folders (``source: local``), because the hub itself is out of reach. Each folder has the
files of its hub repo, with the architecture family and the tokenizer of the real model and only
the dimensions shrunk:

- ``mistralai/Mistral-7B-v0.1``: ``MistralForCausalLM`` with Mistral-7B's config fields
  (sliding window 4096, rope theta 1e4, vocab 32000, GQA), Mistral's real SentencePiece tokenizer
  (``tokenizer.model.v1`` of the ``mistral-common`` wheel, PyPI) as ``tokenizer.model`` plus the
  ``tokenizer.json`` / ``tokenizer_config.json`` / ``special_tokens_map.json`` the hub repo ships;
- ``meta-llama/Meta-Llama-3-8B``: ``LlamaForCausalLM`` with Llama 3's config fields (rope theta
  5e5, vocab 128256 = 128000 BPE tokens + 256 specials, BOS 128000 / EOS 128001, GQA), Llama 3's
  real tiktoken BPE (``llama3/tokenizer.model`` of the ``llama-models`` wheel, PyPI) converted to
  the hub's ``tokenizer.json`` (Llama 3.0's special-token names);

and in both, bf16 weights as two safetensors shards with ``model.safetensors.index.json`` and a
``generation_config.json``. Weights are random (seeded): the point is the loading code paths and
the shapes of the jobs, not the numbers.

    python -m instruct_pt.data.hub_fixtures --mistral-common DIR --llama-models DIR --out .cache/rehearsal-hub

(DIR: ``pip install --no-deps --target DIR mistral-common==1.13.1`` / ``llama-models==0.3.0``.)
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
from pathlib import Path

from instruct_pt.common import DataError, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

MISTRAL_REPO = "mistralai/Mistral-7B-v0.1"
LLAMA3_REPO = "meta-llama/Meta-Llama-3-8B"
#: Where each real tokenizer file lies inside the wheel it ships in (package root = --target DIR).
MISTRAL_SPM = "mistral_common/data/tokenizer.model.v1"
LLAMA3_BPE = "llama_models/llama3/tokenizer.model"
#: Llama 3's pre-tokenization regex (llama_models/llama3/tokenizer.py, the hub tokenizer.json).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: Meta-Llama-3-8B's 256 special tokens (ids 128000..128255), in order.
LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(5, 251)),
]

#: Tiny dimensions; every other field is the real model's config.json.
DEFAULT_DIMS = {
    MISTRAL_REPO: {
        "hidden_size": 64,
        "intermediate_size": 224,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,  # Mistral-7B: 32 heads, 8 KV heads
    },
    LLAMA3_REPO: {
        "hidden_size": 64,
        "intermediate_size": 224,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,  # Llama3-8B: 32 heads, 8 KV heads
    },
}


def _added_tokens(first_id: int, names) -> dict:
    """tokenizer_config.json's added_tokens_decoder: special tokens with consecutive ids."""
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    return {
        str(first_id + i): {"content": t, **flags, "special": True} for i, t in enumerate(names)
    }


def _need_file(root: str | os.PathLike, rel: str, what: str, package: str) -> Path:
    path = Path(root) / rel
    if not path.is_file():
        raise DataError(
            f"{path}: {what} not found; install it with "
            f"`pip install --no-deps --target {root} {package}`"
        )
    return path


# ----------------------------------------------------------------------------- tokenizers


def mistral_tokenizer_files(spm_model: Path, out: Path) -> None:
    """Mistral-7B-v0.1's tokenizer files from its SentencePiece model: the hub repo's
    tokenizer.model (the file itself), tokenizer.json (BPE with byte fallback, "▁" prefix),
    tokenizer_config.json and special_tokens_map.json."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import generate_merges, import_protobuf

    proto = import_protobuf().ModelProto()
    proto.ParseFromString(spm_model.read_bytes())
    if proto.trainer_spec.model_type != 2:  # BPE
        raise DataError(f"{spm_model}: not a SentencePiece BPE model")
    pieces = [(p.piece, p.score) for p in proto.pieces]
    vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
    if len(vocab) != 32000 or pieces[0][0] != "<unk>" or pieces[1][0] != "<s>":
        raise DataError(f"{spm_model}: not Mistral-7B-v0.1's 32000-piece vocabulary")
    merges = generate_merges(vocab, pieces)
    tok = Tokenizer(BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spm_model, out / "tokenizer.model")
    tok.save(str(out / "tokenizer.json"))
    added = _added_tokens(0, ("<unk>", "<s>", "</s>"))
    write_json(
        out / "tokenizer_config.json",
        {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": added,
            "additional_special_tokens": [],
            "bos_token": "<s>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "</s>",
            "legacy": True,
            "model_max_length": 1000000000000000019884624838656,
            "pad_token": None,
            "sp_model_kwargs": {},
            "spaces_between_special_tokens": False,
            "tokenizer_class": "LlamaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        },
    )
    write_json(
        out / "special_tokens_map.json",
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the ByteLevel alphabet)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def llama3_tokenizer_files(bpe_file: Path, out: Path) -> None:
    """Meta-Llama-3-8B's tokenizer.json (byte-level BPE with Llama 3's regex, merges recovered from
    the tiktoken ranks), tokenizer_config.json and special_tokens_map.json."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    ranks: dict[bytes, int] = {}
    for i, line in enumerate(bpe_file.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
            if int(rank) != len(ranks) - 1:
                raise DataError(f"{bpe_file}:{i + 1}: ranks are not 0, 1, 2, ...")
    if len(ranks) != 128000:
        raise DataError(f"{bpe_file}: {len(ranks)} tokens, not Llama 3's 128000")
    enc = _bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(enc[x] for x in b)

    vocab = {text(t): r for t, r in ranks.items()}
    merges = []
    for token, rank in ranks.items():
        local = [
            (token[:k], token[k:], rank)
            for k in range(1, len(token))
            if token[:k] in ranks and token[k:] in ranks
        ]
        local.sort(key=lambda m: (ranks[m[0]], ranks[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2])
    tok = Tokenizer(
        BPE(vocab, [(text(a), text(b)) for a, b, _ in merges], fuse_unk=False, ignore_merges=True)
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in LLAMA3_SPECIALS])
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, 128000)]
            ),
        ]
    )
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    added = _added_tokens(128000, LLAMA3_SPECIALS)
    write_json(
        out / "tokenizer_config.json",
        {
            "added_tokens_decoder": added,
            "bos_token": bos,
            "clean_up_tokenization_spaces": True,
            "eos_token": "<|end_of_text|>",
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": 1000000000000000019884624838656,
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )
    write_json(out / "special_tokens_map.json", {"bos_token": bos, "eos_token": "<|end_of_text|>"})


# ----------------------------------------------------------------------------- models


def mistral_config(dims: dict) -> dict:
    """Mistral-7B-v0.1's config.json with the given dimensions."""
    return {
        "architectures": ["MistralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": dims["hidden_size"] // dims["num_attention_heads"],
        "hidden_act": "silu",
        "hidden_size": dims["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": dims["intermediate_size"],
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": dims["num_attention_heads"],
        "num_hidden_layers": dims["num_hidden_layers"],
        "num_key_value_heads": dims["num_key_value_heads"],
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 32000,
    }


def llama3_config(dims: dict) -> dict:
    """Meta-Llama-3-8B's config.json with the given dimensions."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "hidden_act": "silu",
        "hidden_size": dims["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": dims["intermediate_size"],
        "max_position_embeddings": 8192,
        "model_type": "llama",
        "num_attention_heads": dims["num_attention_heads"],
        "num_hidden_layers": dims["num_hidden_layers"],
        "num_key_value_heads": dims["num_key_value_heads"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": 128256,
    }


GENERATION_CONFIGS = {
    MISTRAL_REPO: {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2},
    LLAMA3_REPO: {
        "bos_token_id": 128000,
        "do_sample": True,
        "eos_token_id": 128001,
        "max_length": 4096,
        "temperature": 0.6,
        "top_p": 0.9,
    },
}


def write_sharded_weights(config: dict, out: Path, seed: int, n_shards: int = 2) -> dict:
    """Seeded random bf16 weights of `config` as model-0000i-of-0000n.safetensors + the index,
    split by parameter order as the hub's sharded checkpoints are; returns the index."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**{k: v for k, v in config.items() if k != "architectures"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg)
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    names = list(state)
    total = sum(t.numel() * t.element_size() for t in state.values())
    target = total / n_shards
    shards: list[list[str]] = [[]]
    size = 0
    for name in names:
        nbytes = state[name].numel() * state[name].element_size()
        if shards[-1] and size + nbytes / 2 > target * len(shards) and len(shards) < n_shards:
            shards.append([])
        shards[-1].append(name)
        size += nbytes
    if len(shards) != n_shards:
        raise DataError(f"{out}: {len(names)} tensors do not split into {n_shards} shards")
    weight_map = {}
    for i, group in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{n_shards:05d}.safetensors"
        save_file({k: state[k] for k in group}, str(out / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, fname))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(out / "model.safetensors.index.json", index)
    return index


def write_repo(repo: str, out: Path, tokenizer_source: Path, dims: dict, seed: int) -> dict:
    """One hub-layout folder; returns its manifest entry."""
    import transformers

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if repo == MISTRAL_REPO:
        config = mistral_config(dims)
        mistral_tokenizer_files(tokenizer_source, out)
    elif repo == LLAMA3_REPO:
        config = llama3_config(dims)
        llama3_tokenizer_files(tokenizer_source, out)
    else:
        raise DataError(f"no hub layout for {repo!r}")
    config["transformers_version"] = transformers.__version__
    write_json(out / "config.json", config)
    write_json(
        out / "generation_config.json",
        {**GENERATION_CONFIGS[repo], "transformers_version": transformers.__version__},
    )
    index = write_sharded_weights(config, out, seed)
    return {
        "repo": repo,
        "path": str(out),
        "architecture": config["architectures"][0],
        "vocab_size": config["vocab_size"],
        "tokenizer_source": str(tokenizer_source),
        "tokenizer_source_sha256": sha256_file(tokenizer_source),
        "weights_bytes": index["metadata"]["total_size"],
        "shards": sorted(set(index["weight_map"].values())),
        "seed": seed,
    }


def write_hub_fixtures(mistral_common: str, llama_models: str, out_dir: str, seed: int = 0) -> dict:
    """Both hub-layout folders under out_dir (out_dir/<org>/<name>) and out_dir/manifest.json.

    Rewritten only when the manifest is missing or was written from other sources or seed, so
    repeated calls keep the same files (and the modification times that jobs' checkpoints key on).
    """
    sources = {
        MISTRAL_REPO: _need_file(
            mistral_common, MISTRAL_SPM, "Mistral's tokenizer", "mistral-common==1.13.1"
        ),
        LLAMA3_REPO: _need_file(
            llama_models, LLAMA3_BPE, "Llama 3's tokenizer", "llama-models==0.3.0"
        ),
    }
    root = Path(out_dir)
    manifest_path = root / "manifest.json"
    key = {
        "seed": seed,
        "dims": DEFAULT_DIMS,
        "sources": {repo: sha256_file(p) for repo, p in sources.items()},
    }
    if manifest_path.is_file():
        old = read_json(manifest_path)
        if old.get("key") == key and all((root / r / "config.json").is_file() for r in sources):
            log.info("hub fixtures in %s are up to date", root)
            return old
    repos = {
        repo: write_repo(repo, root / repo, src, DEFAULT_DIMS[repo], seed)
        for repo, src in sources.items()
    }
    manifest = {"key": key, "repos": repos}
    write_json(manifest_path, manifest)
    log.info("wrote hub fixtures %s to %s", ", ".join(repos), root)
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mistral-common", required=True, help="pip --target folder of mistral-common")
    ap.add_argument("--llama-models", required=True, help="pip --target folder of llama-models")
    ap.add_argument("--out", required=True, help="folder to write <org>/<repo>/ folders into")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    write_hub_fixtures(args.mistral_common, args.llama_models, args.out, args.seed)


if __name__ == "__main__":
    main()
