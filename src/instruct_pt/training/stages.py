"""The training stages of the paper, one entry point each: what to train on, from which model,
and what to write.

- `pretrain`: packed sequences, next-token loss on every token, from scratch with an `arch`
  (§2) or continual from `init_from` (§4);
- `finetune_synthesizer`: the instruction synthesizer's few-shot tuning (§1.2);
- `instruction_tune`: instruction tuning with a model saved at each step of `save_steps` (§3);
- `ceiling_tune`: a compared model tuned on its suite's task-format training records.

Each runs `check_train` first of all (before any data or model is read), builds a
`batches.Source` (`finetune_data` for the fine-tunings), trains with `loop.run` with the
checkpoint folder locked, and exports the model (in `export_dtype`; a full state gathered on
rank 0) with train_summary.json, metrics.jsonl and timing.jsonl beside it. `launch` calls these
on one or N processes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from instruct_pt.common import DataError, iter_jsonl, read_jsonl, set_torch_threads, write_json
from instruct_pt.training.batches import ExampleSource, PackedSource
from instruct_pt.training.checkpoint import METRICS_LOG, TIMING_LOG, checkpoint_lock
from instruct_pt.training.distributed import (
    Dist,
    barrier,
    full_state,
    init_process,
    model_loader,
)
from instruct_pt.training.finetune_data import instruction_rows, synth_sequences, task_rows
from instruct_pt.training.loop import run
from instruct_pt.training.loss import LossModel
from instruct_pt.training.modeling import build_model, save_model
from instruct_pt.training.settings import TrainConfig, check_train, env_world

# Keys of a run's summary that describe this attempt, not the trained model (a resumed run has
# other values than an uninterrupted one): returned, and written to train_run.json beside the
# model, but kept out of train_summary.json so that it is the same file however the run went.
RUN_KEYS = ("resumed_from_step", "tokens_this_run", "tokens_per_s", "wall_time_s")


def _export(
    model: LossModel,
    d: Dist,
    tokenizer_dir: str,
    out_dir: str,
    summary: dict | None,
    dtype: str = "float32",
) -> None:
    """Gather the full weights and (rank 0) write a model folder (+ train_summary.json, the
    summary without its RUN_KEYS) whose tensors are `dtype` (train.export_dtype).

    Gathered tensors no longer share storage, so tied copies (lm_head = embeddings) are dropped
    here exactly as save_pretrained drops them for an unsharded model: same bytes either way.
    """
    full = full_state(model)
    prefix = "lm."
    msd = {k.removeprefix(prefix): v for k, v in full.items()}
    del full
    for key in getattr(model.lm, "all_tied_weights_keys", None) or {}:
        msd.pop(key, None)
    if d.main:
        extra = None if summary is None else summary_file(summary)
        save_model(model.lm, tokenizer_dir, out_dir, extra=extra, state_dict=msd, dtype=dtype)
    barrier(d)


def summary_file(summary: dict) -> dict:
    """train_summary.json's content: the summary less the facts of this attempt (RUN_KEYS)."""
    return {k: v for k, v in summary.items() if k not in RUN_KEYS}


def _copy_metrics(checkpoint_dir: str, out_dir: str, summary: dict) -> None:
    """Beside the model: the logs (metrics.jsonl, timing.jsonl) and train_run.json (RUN_KEYS)."""
    for name in (METRICS_LOG, TIMING_LOG):
        src = Path(checkpoint_dir) / name
        if src.exists():
            shutil.copyfile(src, Path(out_dir) / name)
    write_json(Path(out_dir) / "train_run.json", {k: summary.get(k) for k in RUN_KEYS})


def pretrain(
    packed_dir: str,
    out_dir: str,
    tokenizer_dir: str,
    train: dict,
    checkpoint_dir: str,
    seed: int,
    arch: dict | None = None,
    init_from: str | None = None,
    threads: int | None = None,
) -> dict:
    """Next-token pre-training on a packed folder, from scratch (`arch`) or continual (`init_from`).

    Writes the model folder to out_dir (with train_summary.json) and returns the summary.
    """
    if (arch is None) == (init_from is None):
        raise DataError("pretrain: give exactly one of 'arch' (from scratch) or 'init_from'")
    cfg = check_train(train, env_world())  # before any data or model is loaded
    set_torch_threads(threads)
    source = PackedSource(packed_dir)

    def model_fn():
        if arch is not None:
            return build_model(arch, tokenizer_dir, seed)
        return model_loader(init_from, d)()

    d = init_process(cfg.device)
    run_config = {
        "train": train,
        "arch": arch,
        "init_from": init_from,
        "seed": seed,
        "data": source.ds.meta,
    }

    def check_vocab(m):
        if source.vocab_size > m.config.vocab_size:
            raise DataError(
                f"{packed_dir}/meta.json: vocab_size {source.vocab_size} exceeds the model's "
                f"{m.config.vocab_size} (packed with a different tokenizer?)"
            )
        return m

    with checkpoint_lock(checkpoint_dir, d):
        model, summary = run(
            kind="pretrain" if arch is not None else "continual_pretrain",
            model_fn=lambda: check_vocab(model_fn()),
            source=source,
            cfg=cfg,
            checkpoint_dir=checkpoint_dir,
            seed=seed,
            d=d,
            run_config=run_config,
            rank0_loads=init_from is not None,
        )
        _export(model, d, tokenizer_dir, out_dir, summary, cfg.export_dtype)
        if d.main:
            _copy_metrics(checkpoint_dir, out_dir, summary)
    return summary


def _tune_and_export(
    stage, base_model_dir, out_dir, tok, rows, data_stats, seq_len, cfg, train, checkpoint_dir,
    seed, d,
) -> dict:  # fmt: skip
    """Tune on rows, save the final model to out_dir and copy the metrics beside it (with the
    checkpoint folder locked)."""
    with checkpoint_lock(checkpoint_dir, d):
        model, summary = _tune(
            stage, base_model_dir, tok, rows, data_stats, seq_len, cfg, train, checkpoint_dir,
            seed, d,
        )  # fmt: skip
        _export(model, d, base_model_dir, out_dir, summary, cfg.export_dtype)
        if d.main:
            _copy_metrics(checkpoint_dir, out_dir, summary)
    return summary


def _tune(
    kind: str,
    base_model_dir: str,
    tok,
    rows: list,
    data_stats: dict,
    seq_len: int,
    cfg: TrainConfig,
    train: dict,
    checkpoint_dir: str,
    seed: int,
    d: Dist,
    on_step=None,
):
    """Fine-tune the saved model in base_model_dir on (input_ids, labels) rows: the part the
    synthesizer's tuning and instruction tuning share. Returns (model, summary)."""
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model, summary = run(
        kind=kind,
        model_fn=model_loader(base_model_dir, d),
        source=ExampleSource(rows, seq_len, pad_id),
        cfg=cfg,
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        d=d,
        run_config={"train": train, "init_from": base_model_dir, "seed": seed, "data": data_stats},
        on_step=on_step,
        rank0_loads=True,
    )
    summary["data"] = data_stats
    return model, summary


def _finetune_start(train: dict, threads, base_model_dir: str, make_rows):
    """What every fine-tuning stage does first: check the settings (before any data or model is
    loaded), set the threads, load the base model's tokenizer, build the rows with
    ``make_rows(tok) -> (rows, data_stats)``, join the process group.
    Returns (cfg, tok, rows, data_stats, dist)."""
    from instruct_pt.data.tokenizer import load_tokenizer

    cfg = check_train(train, env_world())
    set_torch_threads(threads)
    tok = load_tokenizer(base_model_dir)
    rows, data_stats = make_rows(tok)
    return cfg, tok, rows, data_stats, init_process(cfg.device)


def finetune_synthesizer(
    train_path: str,
    base_model_dir: str,
    out_dir: str,
    train: dict,
    checkpoint_dir: str,
    seed: int,
    max_per_dataset: int,
    seq_len: int,
    threads: int | None = None,
) -> dict:
    """Tune the instruction synthesizer on synth_ft records (§1.2): loss only on the pairs."""
    cfg, tok, rows, data_stats, d = _finetune_start(
        train, threads, base_model_dir,
        lambda tok: synth_sequences(
            read_jsonl(train_path, required=("id", "dataset", "context", "pairs")),
            tok, seq_len, max_per_dataset, seed, train_path,
        ),
    )  # fmt: skip
    return _tune_and_export(
        "finetune_synthesizer", base_model_dir, out_dir, tok, rows, data_stats, seq_len,
        cfg, train, checkpoint_dir, seed, d,
    )  # fmt: skip


def instruction_tune(
    train_path: str,
    base_model_dir: str,
    out_dir: str,
    train: dict,
    save_steps: list[int],
    checkpoint_dir: str,
    seed: int,
    seq_len: int,
    threads: int | None = None,
) -> dict:
    """Instruction-tune a base model on FLAN-style records (§3, Fig. 4), loss on responses only.

    Saves a full model folder out_dir/step{N}/ for every N in save_steps (0 = the untouched base)
    and for the final step; out_dir/train_summary.json lists them. The folders are first written
    under checkpoint_dir/exports/ (which outlives a deleted out_dir, as Snakemake deletes outputs
    before a rerun) and copied to out_dir at the end.
    """
    cfg, tok, rows, data_stats, d = _finetune_start(
        train, threads, base_model_dir,
        lambda tok: instruction_rows(
            iter_jsonl(train_path, required=("instruction", "response")), tok, seq_len, train_path
        ),
    )  # fmt: skip
    total = cfg.total_steps(len(rows), seq_len)
    wanted = sorted({int(s) for s in save_steps if 0 <= int(s) <= total} | {total})
    exports = Path(checkpoint_dir) / "exports"

    def on_step(step: int, model) -> None:
        if step in wanted:
            _export(model, d, base_model_dir, str(exports / f"step{step}"), None, cfg.export_dtype)

    with checkpoint_lock(checkpoint_dir, d):
        _, summary = _tune(
            "instruction_tune", base_model_dir, tok, rows, data_stats, seq_len,
            cfg, train, checkpoint_dir, seed, d, on_step=on_step,
        )  # fmt: skip
        summary["saved_steps"] = wanted
        if d.main:
            out = Path(out_dir)
            for step in wanted:
                if not (exports / f"step{step}").is_dir():
                    raise DataError(
                        f"{exports}/step{step}: missing export (checkpoint dir tampered with?)"
                    )
                if (out / f"step{step}").exists():
                    shutil.rmtree(out / f"step{step}")
                shutil.copytree(exports / f"step{step}", out / f"step{step}")
            write_json(out / "train_summary.json", summary_file(summary))
            _copy_metrics(checkpoint_dir, out_dir, summary)
        barrier(d)
    return summary


def ceiling_tune(
    train_path: str,
    base_model_dir: str,
    out_dir: str,
    train: dict,
    checkpoint_dir: str,
    seed: int,
    seq_len: int,
    threads: int | None = None,
) -> dict:
    """Fine-tune a compared model on its suite's task-format training records (a ceiling beside
    the compared models): loss on the answers only; the model is saved to out_dir."""
    cfg, tok, rows, data_stats, d = _finetune_start(
        train, threads, base_model_dir,
        lambda tok: task_rows(
            iter_jsonl(train_path, required=("query", "answer")), tok, seq_len, train_path
        ),
    )  # fmt: skip
    return _tune_and_export(
        "ceiling_tune", base_model_dir, out_dir, tok, rows, data_stats, seq_len,
        cfg, train, checkpoint_dir, seed, d,
    )  # fmt: skip
