"""External models the paper starts from or compares with (Mistral-7B, Llama3-8B/70B, Pythia,
BLOOM, the released synthesizer).

Paper scale: the hub weights are downloaded once into the Hugging Face cache (``HF_HOME``; run
the rule where the network is: compute nodes of many clusters have none), and the run's model
folder holds links to the cached files, so a 70B model is stored once, not once per run
(``copy: true`` on a base model copies instead, e.g. when the cache is not on a shared disk). Miniature scale: a small stand-in is
pre-trained on the world's general corpus by the same training loop as every other model, so
the rest of the DAG cannot tell the two apart. Stand-ins whose training would compute the same
weights (:func:`instruct_pt.design.stand_in_twins`) are trained once: the later ones take the
first one's weights under their own config (:func:`take_weights`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from instruct_pt.common import DataError, write_json

log = logging.getLogger(__name__)


def _materialize(snapshot: Path, out: Path, copy: bool) -> int:
    """Link (or copy) every file of a cached snapshot into ``out``; returns the file count."""
    if not snapshot.is_dir():
        raise DataError(f"hub snapshot {snapshot} is not a folder")
    n = 0
    for src in sorted(p for p in snapshot.rglob("*") if p.is_file()):
        dest = out / src.relative_to(snapshot)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if copy:
            shutil.copy2(src, dest)
        else:
            dest.symlink_to(src.resolve())
        n += 1
    if not n:
        raise DataError(f"hub snapshot {snapshot} holds no model files")
    return n


def take_weights(twin_dir: str, arch: dict, tokenizer_dir: str, out_dir: str, dtype: str | None):
    """A stand-in folder from its twin's trained weights under this stand-in's own config (family,
    max_position_embeddings) and tokenizer; its training summary and loss curve are the twin's."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from instruct_pt.data.tokenizer import load_tokenizer
    from instruct_pt.training.modeling import make_config, save_model

    src = Path(twin_dir)
    summary = json.loads((src / "train_summary.json").read_text(encoding="utf-8"))
    tok = load_tokenizer(tokenizer_dir)
    config = make_config(arch, len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    state = load_file(src / "model.safetensors")
    if model.config.tie_word_embeddings:
        state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
    model.load_state_dict(state, strict=True, assign=True)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    tensors = {k: v for k, v in model.state_dict().items() if k not in tied}  # as training exports
    extra = {**summary, "weights_of": src.name}
    save_model(model, tokenizer_dir, out_dir, extra=extra, state_dict=tensors, dtype=dtype)
    if (src / "metrics.jsonl").is_file():
        shutil.copyfile(src / "metrics.jsonl", Path(out_dir) / "metrics.jsonl")
    log.info("took the trained weights of %s (same recipe): nothing to train", src)
    return {"weights_of": src.name, **summary}


def prepare_base_model(
    spec: dict,
    out_dir: str,
    packed_dir: str | None = None,
    tokenizer_dir: str | None = None,
    train: dict | None = None,
    checkpoint_dir: str | None = None,
    seed: int = 0,
    threads: int | None = None,
    twin_dir: str | None = None,
) -> dict:
    """A base model's folder: hub weights linked, a local folder copied, a stand-in pre-trained,
    or (``twin_dir``) a stand-in that takes the weights its twin trained."""
    from instruct_pt.training.settings import TrainConfig

    source = spec["source"]
    if twin_dir is not None:
        if source != "pretrain" or not (tokenizer_dir and train):
            raise DataError("only a stand-in (source: pretrain) takes a twin's weights")
        summary = {
            "source": "pretrain",
            **take_weights(
                twin_dir,
                spec["arch"],
                tokenizer_dir,
                out_dir,
                train.get("export_dtype", TrainConfig.export_dtype),
            ),
        }
    elif source == "hub":
        from huggingface_hub import snapshot_download

        log.info("downloading %s (revision %s)", spec["id"], spec.get("revision"))
        snapshot = snapshot_download(
            repo_id=spec["id"],
            revision=spec.get("revision"),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"],
        )
        files = _materialize(Path(snapshot), Path(out_dir), copy=bool(spec.get("copy")))
        summary = {
            "source": "hub",
            "id": spec["id"],
            "revision": spec.get("revision"),
            "snapshot": str(snapshot),
            "files": files,
            "linked": not spec.get("copy"),
        }
    elif source == "local":
        src = Path(spec["path"])
        if not src.is_dir():
            raise DataError(
                f"base model folder {src} does not exist (config key base_models.*.path)"
            )
        shutil.copytree(src, out_dir, dirs_exist_ok=True)
        summary = {"source": "local", "path": str(src)}
    elif source == "pretrain":
        from instruct_pt.training.stages import pretrain

        if not (packed_dir and tokenizer_dir and train and checkpoint_dir):
            raise DataError(
                "a stand-in base model needs packed data, a tokenizer and train settings"
            )
        summary = {
            "source": "pretrain",
            **pretrain(
                packed_dir,
                out_dir,
                tokenizer_dir,
                train,
                checkpoint_dir,
                seed,
                arch=spec["arch"],
                threads=threads,
            ),
        }
    else:
        raise DataError(f"unknown base model source '{source}' (config key base_models.*.source)")
    # the same bytes however the training went: this attempt's numbers (RUN_KEYS: resumed
    # step, tokens/s, wall time) are in train_run.json beside it
    from instruct_pt.training.stages import RUN_KEYS

    record = {k: v for k, v in summary.items() if k not in RUN_KEYS}
    write_json(Path(out_dir) / "base_model.json", {"spec": spec, "summary": record})
    return summary
