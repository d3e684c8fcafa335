"""The training loop: one nanoGPT-style loop for every training of the paper (`run`).

AdamW, linear warm-up + cosine decay, gradient accumulation and clipping, bf16 autocast, a loss
that never holds the whole logits (`loss.LossModel`), activation checkpointing when asked,
periodic atomic checkpoints with everything needed for a bit-identical resume (`checkpoint`),
FSDP when launched under torchrun (`distributed`). The trainings differ only in what a row is
(`batches.Source`) and where the model comes from; `stages` builds both for each stage.

Logs: metrics.jsonl (per log step: loss, lr, grad_norm, tokens; the same lines on a resumed
run) and timing.jsonl (this machine's speed), in the checkpoint folder.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from instruct_pt.common import DataError, dir_identity, stable_hash
from instruct_pt.progress import eta_seconds, progress_line, quiet_progress_bars
from instruct_pt.training.batches import IGNORE, BatchPlan, PackedSource, Source
from instruct_pt.training.checkpoint import (
    METRICS_LOG,
    TIMING_LOG,
    load_checkpoint,
    resumable,
    save_checkpoint,
    trim_logs,
)
from instruct_pt.training.distributed import (
    Dist,
    all_sum,
    fill_from_rank0,
    mp_summary,
    shard_model,
)
from instruct_pt.training.loss import LossModel
from instruct_pt.training.modeling import count_parameters, flops_per_token
from instruct_pt.training.settings import SEMANTIC_KEYS, TrainConfig, lr_at

log = logging.getLogger(__name__)


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not norms, biases), as in nanoGPT / the Llama recipe."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel (CPU and CUDA) updates all parameters in one pass: same arithmetic as the
    # per-parameter loop, several times faster on small models.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=True)


def enable_activation_checkpointing(lm) -> None:
    """Non-reentrant checkpointing of every decoder layer; transformers < 5.23 (5.17 on the GPU
    images we test on) names the method gradient_checkpointing_enable."""
    enable = getattr(lm, "activation_checkpointing_enable", None)
    if enable is not None:
        enable({"use_reentrant": False})
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def run(
    *,
    kind: str,
    model_fn,
    source: Source,
    cfg: TrainConfig,
    checkpoint_dir: str,
    seed: int,
    d: Dist,
    run_config: dict,
    on_step=None,
    rank0_loads: bool = False,
) -> tuple[object, dict]:
    """Train model_fn() on source; returns (model, summary) where model is the LossModel around
    it (`model.lm`: the causal LM, sharded under FSDP). on_step(step, model) runs after every
    optimizer step (and once at step 0 before training) on every rank.

    rank0_loads: on several processes, model_fn() returns the real model on rank 0 only and a
    meta-device one elsewhere (`distributed.model_loader`); rank 0's weights are broadcast into
    the shards, so a single host copy of the full model exists, not one per GPU."""
    quiet_progress_bars()  # progress goes to the log as lines (below), not as bars
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    total = cfg.total_steps(source.n, source.seq_len)
    warmup = cfg.warmup(total)
    cfg = cfg.for_world(d.world)
    local_bs = cfg.batch_size // d.world
    fingerprint = str(
        stable_hash(
            kind,
            seed,
            source.fingerprint,
            json.dumps({k: run_config["train"].get(k) for k in SEMANTIC_KEYS}, sort_keys=True),
            json.dumps(run_config.get("arch"), sort_keys=True),
            run_config.get("init_from"),
            dir_identity(run_config["init_from"]) if run_config.get("init_from") else "",
        )
    )

    lm = model_fn()
    full = None
    if d.world > 1 and rank0_loads:  # rank 0's full weights (CPU), broadcast after sharding
        full = {f"lm.{k}": v for k, v in lm.state_dict().items()} if d.main else {}
    else:
        lm = lm.to(d.device)
    if cfg.gradient_checkpointing:
        # Non-reentrant checkpointing of each decoder layer's forward: only the layer inputs are
        # kept; transformers keeps FSDP2's hooks outside the checkpointed region, and autocast
        # is replayed in the recompute.
        enable_activation_checkpointing(lm)
    model = LossModel(lm, cfg.loss_chunk_tokens)
    if d.world > 1:
        shard_model(model, lm.get_decoder().layers, cfg.precision)
        if full is not None:
            fill_from_rank0(model, full, d)
            del full
    optimizer = _optimizer(model, cfg)

    plan = BatchPlan(source.n, cfg.batch_size, seed)
    step, wall_before, last_loss = 0, 0.0, None
    window: list[float] = []  # losses of the steps since the last log line
    tokens_trained = 0  # real tokens of all steps so far (every rank's)
    found = resumable(ckpt_dir, fingerprint, d)
    if found is not None:
        last, state = found
        load_checkpoint(last, model, optimizer, d, seed, state["step"])
        step, wall_before, last_loss = state["step"], state["wall_time_s"], state["last_loss"]
        window = [float(x) for x in state.get("log_window", [])]
        tokens_trained = state.get("tokens_trained")
        if tokens_trained is None:  # a checkpoint from before it was kept: count the steps done
            tokens_trained = sum(source.tokens(plan.rows(s)) for s in range(step))
        log.info("resumed from %s (step %d of %d)", last, step, total)
        if d.main:
            trim_logs(ckpt_dir, step)
    else:
        torch.manual_seed(seed)  # dropout stream; weights were seeded by model_fn
        if d.main:
            for name in (METRICS_LOG, TIMING_LOG):
                (ckpt_dir / name).unlink(missing_ok=True)
    start_step = step

    train_model = torch.compile(model) if cfg.compile else model
    autocast = (
        torch.autocast(d.device.type, dtype=torch.bfloat16)
        if cfg.precision == "bf16"
        else nullcontext()
    )
    seq_len = source.seq_len
    fpt = flops_per_token(lm.config, seq_len)
    peak = cfg.peak_flops * d.world if cfg.peak_flops else None
    tracker = _wandb_start(cfg, run_config, d)
    metrics_f = open(ckpt_dir / METRICS_LOG, "a", encoding="utf-8") if d.main else None  # noqa: SIM115
    timing_f = open(ckpt_dir / TIMING_LOG, "a", encoding="utf-8") if d.main else None  # noqa: SIM115
    if on_step is not None and step == 0:
        on_step(0, model)

    # A bar only on a terminal; log files get the progress lines below instead.
    bar = None
    if d.main and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc=kind, unit="step")
    t_start = t_log = time.perf_counter()
    tokens_run = tokens_log = 0
    model.train()
    while step < total:
        rows = plan.rows(step)[d.rank * local_bs : (d.rank + 1) * local_bs]
        lr = lr_at(step, total, warmup, cfg.lr, cfg.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro = [
            rows[i : i + cfg.micro_batch_size] for i in range(0, local_bs, cfg.micro_batch_size)
        ]
        batches = [source.get(m) for m in micro]
        n_targets = all_sum(float(sum(int((y[:, 1:] != IGNORE).sum()) for _, y in batches)), d)
        if n_targets == 0:
            raise DataError(f"{kind}: step {step} has no target tokens (all labels are -100)")
        loss_sum = 0.0
        for i, (x, y) in enumerate(batches):
            x, y = x.to(d.device), y.to(d.device)
            if d.world > 1:
                model.set_requires_gradient_sync(i == len(batches) - 1)
            with autocast:
                ce = train_model(x, y)  # summed fp32 CE of this micro-batch
            # FSDP averages gradients over ranks; scale so the result is the global token mean.
            (ce * d.world / n_targets).backward()
            loss_sum += float(ce.detach())
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        last_loss = all_sum(loss_sum, d) / n_targets
        window.append(last_loss)
        n_tok = int(all_sum(float(sum(source.tokens(m) for m in micro)), d))
        tokens_run += n_tok
        tokens_log += n_tok
        tokens_trained += n_tok
        if bar is not None:
            bar.update(1)

        if step % cfg.log_every == 0 or step == total:
            now = time.perf_counter()
            tps = tokens_log / max(now - t_log, 1e-9)
            # metrics.jsonl: what the run computed (a resumed run writes the same lines);
            # timing.jsonl: how fast this machine did it.
            rec = {
                "step": step,
                "loss": sum(window) / len(window),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens": tokens_trained,
            }
            timing = {
                "step": step,
                "tokens_per_s": tps,
                **({"mfu": fpt * tps / peak} if peak else {}),
                "elapsed_s": wall_before + now - t_start,
            }
            if d.main:
                metrics_f.write(json.dumps(rec) + "\n")
                metrics_f.flush()
                timing_f.write(json.dumps(timing) + "\n")
                timing_f.flush()
                if bar is not None:
                    bar.set_postfix(loss=f"{rec['loss']:.3f}", tok_s=f"{tps:.0f}")
                log.info(
                    "%s", _progress(kind, start_step, step, total, rec["loss"], tps, now - t_start)
                )
                if tracker is not None:
                    tracker.log({**rec, **timing}, step=step)
            window, tokens_log, t_log = [], 0, now
        if on_step is not None:
            on_step(step, model)
        if step % cfg.checkpoint_every == 0 or step == total:
            state = {
                "step": step,
                "total_steps": total,
                "fingerprint": fingerprint,
                "data": plan.position(step),
                "last_loss": last_loss,
                "log_window": window,  # so that a resumed run logs the same mean loss
                "tokens_trained": tokens_trained,
                "wall_time_s": wall_before + time.perf_counter() - t_start,
            }
            save_checkpoint(ckpt_dir, step, model, optimizer, state, cfg.keep_checkpoints, d)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t_start
    for f in (metrics_f, timing_f):
        if f is not None:
            f.close()
    if tracker is not None:
        tracker.finish()
    summary = {
        "kind": kind,
        "steps": total,
        "resumed_from_step": start_step,
        "tokens": total * cfg.batch_size * seq_len if isinstance(source, PackedSource) else None,
        "tokens_trained": tokens_trained,
        "tokens_this_run": tokens_run,
        "rows": source.n,
        "epochs": total * cfg.batch_size / source.n,
        "final_loss": last_loss,
        "tokens_per_s": tokens_run / wall if wall > 0 and tokens_run else None,
        "wall_time_s": wall_before + wall,
        "parameters": count_parameters(model),
        "seed": seed,
        "world_size": d.world,
        "fsdp_mixed_precision": mp_summary(model, cfg.precision) if d.world > 1 else None,
    }
    return model, summary


def _progress(kind: str, start_step: int, step: int, total: int, loss, tps, elapsed) -> str:
    """The log's progress line: step/total, loss, tokens/s, ETA at this run's pace."""
    rate = f"loss {loss:.4f} {tps:,.0f} tok/s"
    eta = eta_seconds(step - start_step, total - step, elapsed)
    return progress_line(kind, "step", step, total, rate, eta)


def _wandb_start(cfg: TrainConfig, run_config: dict, d: Dist):
    """A wandb run (rank 0 only) with the full config attached, or None when disabled."""
    w = cfg.wandb or {}
    if not d.main or w.get("mode", "disabled") == "disabled":
        return None
    import wandb

    return wandb.init(
        project=w.get("project", "instruct-pt"),
        dir=w.get("dir"),
        mode=w["mode"],
        name=w.get("name"),
        config=run_config,
    )
