"""One training loop for pre-training, continual pre-training, synthesizer tuning and instruction tuning.

The paper's trainings differ only in what a batch is:

- `pretrain`: packed fixed-length sequences, next-token loss on every token (§2, §4; from scratch
  with an `arch`, or continual from `init_from`).
- `finetune_synthesizer`: few-shot sequences of (raw text, instruction-response pairs) examples from
  one dataset, loss only on the pairs (§1.2).
- `instruction_tune`: one instruction-response example per row, loss only on the response (§3).

So each builds a `_Source` (rows of token ids + labels, -100 = no loss) and hands it to `_run`, a
nanoGPT-style loop: AdamW, linear warm-up + cosine decay, gradient accumulation and clipping,
bf16 autocast, periodic atomic checkpoints with everything needed for a bit-identical resume, and
FSDP when launched under torchrun.

At paper scale (Llama3-8B, vocab 128,256, 16 x 4096 tokens per GPU) the same loop must fit a GPU:
FSDP2 full sharding with bf16 mixed precision (bf16 compute, fp32 gradient reduction, fp32 master
weights and Adam states), activation checkpointing (`gradient_checkpointing`), a loss that never
holds the logits of more than `loss_chunk_tokens` tokens (`chunked_ce_sum`), sharded checkpoints
(torch.distributed.checkpoint: each rank writes and reads only its shard), a saved model read by
rank 0 alone and broadcast into the shards, and exports in `export_dtype`. `check_train` runs
first of all, before any data or model is read, so a bad batch split fails in a second.

Determinism and resume: which rows make up the batch of step s is a pure function of (seed, s) —
rows are visited in a fresh seeded permutation per epoch — and the learning rate is a pure
function of s, so a checkpoint only needs the step, model, optimizer and RNG states. A run killed
at any point and rerun continues from its last checkpoint to the same final bytes (on CPU).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections import Counter, defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from instruct_pt.common import (
    DataError,
    dir_identity,
    iter_jsonl,
    read_jsonl,
    set_torch_threads,
    stable_hash,
    write_json,
)
from instruct_pt.dirlock import FolderLock, FolderLocked, holder_id, pid_alive
from instruct_pt.modeling import (
    EXPORT_DTYPES,
    build_model,
    count_parameters,
    empty_model,
    flops_per_token,
    load_model,
    save_model,
)
from instruct_pt.progress import eta_seconds, progress_line, quiet_progress_bars
from instruct_pt.protocol import format_context, format_example

log = logging.getLogger(__name__)

IGNORE = -100
CKPT_PREFIX = "step"
CKPT_FORMAT = "dcp-1"  # state.json "format": checkpoints of another layout are not resumed
# Keys of a run's summary that describe this attempt, not the trained model (a resumed run has
# other values than an uninterrupted one): returned, and written to train_run.json beside the
# model, but kept out of train_summary.json so that it is the same file however the run went.
RUN_KEYS = ("resumed_from_step", "tokens_this_run", "tokens_per_s", "wall_time_s")

# Keys of `train` that change the result; the others (logging, checkpoint cadence) do not, so a
# run may be resumed after changing them.
_SEMANTIC_KEYS = (
    "tokens",
    "steps",
    "epochs",
    "batch_size",
    "micro_batch_size",
    "lr",
    "min_lr_ratio",
    "warmup_steps",
    "warmup_fraction",
    "weight_decay",
    "betas",
    "eps",
    "grad_clip",
    "precision",
)
# Not semantic: loss_chunk_tokens and gradient_checkpointing (and compile) compute the same
# per-token losses and gradients; only the order of fp32 sums changes (float noise, as a
# different GPU count changes it). Changing them is what one does after running out of memory,
# and that must resume the run, not restart it. export_dtype only changes the exported copy, not
# the checkpoints: a finished run asked for another dtype re-exports without training.


# ----------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    batch_size: int
    micro_batch_size: int
    lr: float
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None
    warmup_fraction: float | None = None
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0
    precision: str = "bf16"
    compile: bool = False
    gradient_checkpointing: bool = False
    loss_chunk_tokens: int = 0
    export_dtype: str = "float32"
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    device: str = "auto"
    peak_flops: float | None = None
    wandb: dict | None = None
    tokens: int | None = None
    steps: int | None = None
    epochs: float | None = None

    @classmethod
    def from_dict(cls, train: dict) -> TrainConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(train) - known)
        if unknown:
            raise DataError(f"train: unknown key(s) {', '.join(unknown)}")
        for key in ("batch_size", "micro_batch_size", "lr"):
            if key not in train:
                raise DataError(f"train: missing key {key!r}")
        cfg = cls(**{**train, "betas": tuple(train.get("betas", (0.9, 0.95)))})
        if cfg.precision not in ("bf16", "fp32"):
            raise DataError(f"train: precision must be bf16|fp32, got {cfg.precision!r}")
        chunk = cfg.loss_chunk_tokens
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
            raise DataError(
                f"train: loss_chunk_tokens must be an integer >= 0 (0 = one chunk), got {chunk!r}"
            )
        if cfg.export_dtype not in EXPORT_DTYPES:
            raise DataError(
                f"train: export_dtype must be one of {'|'.join(EXPORT_DTYPES)}, "
                f"got {cfg.export_dtype!r}"
            )
        if not isinstance(cfg.gradient_checkpointing, bool):
            raise DataError(
                f"train: gradient_checkpointing must be true|false, got {cfg.gradient_checkpointing!r}"
            )
        if cfg.tokens is None and cfg.steps is None and cfg.epochs is None:
            raise DataError("train: give one of 'tokens', 'steps' or 'epochs'")
        return cfg

    def for_world(self, world: int) -> TrainConfig:
        """These settings on `world` processes: the global batch splits into equal per-process
        batches of whole micro-batches. `micro_batch_size` is per process, capped at the
        per-process batch (no accumulation then); raises DataError when the batch cannot split."""
        if world < 1:
            raise DataError(f"train: {world} processes")
        if self.batch_size % world:
            raise DataError(
                f"train: batch_size {self.batch_size} sequences does not split over {world} "
                f"processes (GPUs); make batch_tokens / seq_len a multiple of the job's GPUs"
            )
        local = self.batch_size // world
        micro = min(self.micro_batch_size, local)
        if local % micro:
            raise DataError(
                f"train: the per-process batch ({self.batch_size} / {world} = {local} sequences) "
                f"is not a multiple of micro_batch_size {micro}"
            )
        return dataclasses.replace(self, micro_batch_size=micro)

    def total_steps(self, n_rows: int, seq_len: int) -> int:
        """steps, else ceil(epochs * rows / batch), else ceil(tokens / (batch * seq_len))."""
        if self.steps is not None:
            return int(self.steps)
        if self.epochs is not None:
            return math.ceil(self.epochs * n_rows / self.batch_size)
        return math.ceil(self.tokens / (self.batch_size * seq_len))

    def warmup(self, total: int) -> int:
        if self.warmup_steps is not None:
            return min(int(self.warmup_steps), total)
        if self.warmup_fraction is not None:
            return min(int(round(self.warmup_fraction * total)), total)
        return 0


def check_train(train: dict, world: int) -> TrainConfig:
    """The start-up checks of a training job on `world` processes (one per GPU), made before any
    data or model is loaded; returns the settings as the job runs them (`TrainConfig.for_world`)."""
    return TrainConfig.from_dict(train).for_world(world)


def _env_world() -> int:
    """Processes of this job: torchrun's WORLD_SIZE, 1 without torchrun."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise DataError(f"WORLD_SIZE={raw!r} is not an integer") from None


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr_ratio: float) -> float:
    """Linear warm-up to lr over `warmup` steps, then cosine decay to lr * min_lr_ratio at `total`."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    min_lr = lr * min_lr_ratio
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------- data sources


class _Source:
    """Rows of a training set. `get(rows)` -> (input_ids, labels) int64 tensors [len(rows), T]."""

    n: int
    seq_len: int
    pad_id: int
    fingerprint: str

    def get(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def tokens(self, rows: np.ndarray) -> int:
        """Real (non-padding) tokens in these rows, for throughput accounting."""
        raise NotImplementedError


class PackedSource(_Source):
    """Packed pre-training sequences; every token is a target."""

    def __init__(self, packed_dir: str):
        from instruct_pt.packing import PackedDataset

        self.ds = PackedDataset(packed_dir)
        self.n, self.seq_len = len(self.ds), self.ds.seq_len
        self.pad_id = 0
        self.vocab_size = int(self.ds.meta["vocab_size"])
        self.fingerprint = str(stable_hash(json.dumps(self.ds.meta, sort_keys=True)))

    def get(self, rows):
        x = torch.from_numpy(self.ds.data[rows].astype(np.int64))
        return x, x

    def tokens(self, rows):
        return len(rows) * self.seq_len


class ExampleSource(_Source):
    """Variable-length rows (ids, labels) padded on the right to the longest row of each batch."""

    def __init__(self, rows: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int):
        self.rows = [
            (np.asarray(i, dtype=np.int64), np.asarray(lab, dtype=np.int64)) for i, lab in rows
        ]
        self.n, self.seq_len, self.pad_id = len(rows), seq_len, pad_id
        h = hashlib.sha256()
        for ids, lab in self.rows:
            h.update(np.int64(len(ids)).tobytes() + ids.tobytes() + lab.tobytes())
        self.fingerprint = h.hexdigest()

    def get(self, rows):
        width = max(len(self.rows[r][0]) for r in rows)
        x = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        y = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for b, r in enumerate(rows):
            ids, lab = self.rows[r]
            x[b, : len(ids)] = torch.from_numpy(ids)
            y[b, : len(lab)] = torch.from_numpy(lab)
        return x, y

    def tokens(self, rows):
        return int(sum(len(self.rows[r][0]) for r in rows))


class _Plan:
    """Which rows make up the global batch of step s: epochs of seeded permutations, back to back."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n == 0:
            raise DataError("training data has no rows")
        self.n, self.batch_size, self.seed = n, batch_size, seed

    @lru_cache(maxsize=4)  # noqa: B019 - a handful of plans per process
    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def rows(self, step: int) -> np.ndarray:
        pos = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        epochs, offsets = pos // self.n, pos % self.n
        return np.array([self.permutation(int(e))[o] for e, o in zip(epochs, offsets, strict=True)])

    def position(self, step: int) -> dict:
        pos = step * self.batch_size
        return {"epoch": pos // self.n, "offset": pos % self.n, "rows_seen": pos}


# ----------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup(device_pref: str) -> _Dist:
    """Pick the device; under torchrun (WORLD_SIZE > 1) join the process group (nccl / gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (
        torch.cuda.is_available() if device_pref == "auto" else device_pref.startswith("cuda")
    )
    if world <= 1:
        return _Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return _Dist(
        dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}" if use_cuda else "cpu")
    )


def _all_sum(x: float, d: _Dist) -> float:
    if d.world == 1:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return float(t.item())


def _barrier(d: _Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _mp_policy(precision: str):
    """FSDP2 mixed precision for `precision`: bf16 = parameters all-gathered and computed in
    bf16, gradients reduce-scattered in fp32 (also what gloo can reduce), fp32 master weights
    and Adam states in the (sharded) optimizer; fp32 = no casts."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if precision == "bf16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def _shard_model(model: torch.nn.Module, layers, precision: str):
    """FSDP2: shard every decoder layer, then the rest (embeddings, tied head, final norm) as the
    root unit: `model` is the _LossModel whose forward is the whole training computation."""
    from torch.distributed.fsdp import fully_shard

    mp = _mp_policy(precision)
    for layer in layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


# ----------------------------------------------------------------------------- the loss


def _ce_sum(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module) -> torch.Tensor:
    """Summed fp32 cross-entropy of head(hidden) [n, V] against targets [n] (no IGNORE inside)."""
    logits = head(hidden)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def chunked_ce_sum(
    hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module, chunk_tokens: int
) -> torch.Tensor:
    """Summed next-token cross-entropy of `head` (the LM head) over final hidden states, without
    ever holding the logits of more than `chunk_tokens` tokens.

    hidden [..., H] and targets [...] are aligned (hidden[i] predicts targets[i]); targets equal
    to IGNORE are left out before the head runs. With 0 (or a chunk as large as the targets) the
    logits are computed at once; otherwise chunk by chunk, each under torch.utils.checkpoint so
    that neither its logits nor its fp32 copy are kept for backward: a chunk's logits exist only
    while it is computed, then again while its gradient is.
    """
    h = hidden.reshape(-1, hidden.size(-1))
    t = targets.reshape(-1)
    keep = t != IGNORE
    if not bool(keep.all()):
        h, t = h[keep], t[keep]
    n = t.numel()
    if chunk_tokens <= 0 or chunk_tokens >= n:
        # also n = 0: the head still runs (on no rows), so every parameter gets a (zero)
        # gradient and FSDP reduces the same tensors on every rank
        return _ce_sum(h, t, head)
    from torch.utils.checkpoint import checkpoint

    total = None
    for start in range(0, n, chunk_tokens):
        part = checkpoint(
            _ce_sum,
            h[start : start + chunk_tokens],
            t[start : start + chunk_tokens],
            head,
            use_reentrant=False,
        )
        total = part if total is None else total + part
    return total


class _LossModel(torch.nn.Module):
    """A causal LM whose forward is the training loss: the decoder to the final hidden states,
    then the LM head and fp32 cross-entropy chunk by chunk (`chunked_ce_sum`).

    It is the FSDP root, so the head runs inside the root's forward (its weights gathered there,
    its gradients reduce-scattered with the root's) although it no longer runs in the model's own
    forward. Its state dict is the model's with the prefix `lm.`.
    """

    def __init__(self, lm, chunk_tokens: int):
        super().__init__()
        self.lm = lm
        self.chunk_tokens = chunk_tokens

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed CE of predicting labels[:, 1:] from input_ids (labels IGNORE = no loss)."""
        out = self.lm.get_decoder()(input_ids=input_ids, use_cache=False)
        hidden = out.last_hidden_state[:, :-1]
        return chunked_ce_sum(
            hidden, labels[:, 1:], self.lm.get_output_embeddings(), self.chunk_tokens
        )


def _model_loader(model_dir: str, d: _Dist):
    """model_fn for _run(rank0_loads=True): the saved model in fp32 on rank 0 (and on a single
    process), its empty meta-device twin on the other ranks."""

    def load():
        if d.world == 1 or d.main:
            return load_model(model_dir, dtype=torch.float32)
        return empty_model(model_dir, dtype=torch.float32)

    return load


def _fill_from_rank0(model, full: dict, d: _Dist) -> None:
    """Give the freshly sharded model rank 0's weights: `full` (rank 0: the full state dict on
    CPU; others: {}) is broadcast tensor by tensor and every rank keeps its shard. Buffers (the
    rotary tables, not in the state dict) are broadcast as they are."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if not d.main:
        model.to_empty(device=d.device)  # meta -> allocated (values arrive below)
    set_model_state_dict(
        model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    )
    for buf in model.buffers():
        dist.broadcast(buf, src=0)


def _full_state(model) -> dict:
    """The full (unsharded) model state dict, on the CPU of rank 0 only (the other ranks get
    {}); a collective under FSDP, gathered tensor by tensor."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


# ----------------------------------------------------------------------------- checkpoints


def _checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints (renamed into place), oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(CKPT_PREFIX) :]))


def _rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rng_file(path: Path, rank: int) -> Path:
    return path / f"rng-rank{rank:05d}.pt"


def _rank0_holder(d: _Dist) -> tuple[str, int]:
    """Rank 0's (host, pid), on every rank (names the temporary folder they all write into)."""
    if d.world == 1:
        return holder_id()
    import torch.distributed as dist

    box = [holder_id()]
    dist.broadcast_object_list(box, src=0)
    host, pid = box[0]
    return str(host), int(pid)


def _tmp_name(step: int, host: str, pid: int) -> str:
    return f".tmp-{CKPT_PREFIX}{step:08d}-{host}-{pid}"


def _tmp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from a `_tmp_name`; None for another layout (older names: no host)."""
    head = f".tmp-{CKPT_PREFIX}"
    rest = name[len(head) :] if name.startswith(head) else ""
    step, _, owner = rest.partition("-")
    host, _, pid = owner.rpartition("-")
    if len(step) != 8 or not step.isdigit() or not host or not pid.isdigit():
        return None
    return host, int(pid)


def _save_checkpoint(
    checkpoint_dir: Path, step: int, model, optimizer, state: dict, keep: int, d: _Dist
):
    """Write step{N}/ atomically, then drop all but the newest `keep` checkpoints.

    torch.distributed.checkpoint (DCP): every rank writes its own shards of the model and
    optimizer (no rank ever holds the full state) and its RNG states, into a temporary folder
    named after rank 0's host and pid; after a barrier rank 0 adds state.json and renames the folder into
    place. A folder named step{N} is therefore complete. One process writes the same way.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = checkpoint_dir / f"{CKPT_PREFIX}{step:08d}"
    tmp = checkpoint_dir / _tmp_name(step, *_rank0_holder(d))
    if d.main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    _barrier(d)
    msd, osd = get_state_dict(model, optimizer)  # this rank's shards (plain tensors on 1 process)
    with warnings.catch_warnings():  # one process: DCP warns that it saves without a group
        warnings.filterwarnings("ignore", "torch.distributed is disabled")
        dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=str(tmp), no_dist=d.world == 1)
    torch.save(_rng_state(), _rng_file(tmp, d.rank))
    _barrier(d)
    if d.main:
        write_json(tmp / "state.json", {**state, "format": CKPT_FORMAT, "world_size": d.world})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in _checkpoints(checkpoint_dir)[:-keep]:
            shutil.rmtree(old)
    _barrier(d)


def _load_checkpoint(path: Path, model, optimizer, d: _Dist, seed: int, step: int) -> None:
    """Load this rank's shards of a _save_checkpoint folder (DCP reshards if the number of
    processes changed) and this rank's RNG states."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    msd, osd = get_state_dict(model, optimizer)
    state = {"model": msd, "optimizer": osd}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(path), no_dist=d.world == 1)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    rng = _rng_file(path, d.rank)
    if rng.exists():
        _set_rng_state(torch.load(rng, map_location="cpu", weights_only=False))
    else:  # saved by fewer processes: a fresh, still deterministic dropout stream
        log.warning("%s: no RNG state of rank %d; reseeding its dropout stream", path, d.rank)
        torch.manual_seed(stable_hash(seed, "resume-rng", step, d.rank) % 2**63)


def _clear_temporaries(checkpoint_dir: Path) -> None:
    """Remove the temporary folders of checkpoints that killed runs left half-written.

    Called with the folder's lock held, so no other job writes here; still, a temporary of a
    live process of this host (a writer from before folders were locked) is left alone: only
    those of dead processes, of other hosts (their holder released the lock, so it is gone) and
    of the older unnamed layout are removed."""
    here, me = holder_id()
    for tmp in checkpoint_dir.glob(f".tmp-{CKPT_PREFIX}*"):
        owner = _tmp_owner(tmp.name)
        if owner is not None and owner[0] == here and owner[1] != me and pid_alive(owner[1]):
            log.warning("%s: left alone, its writer (pid %d) is still running", tmp, owner[1])
            continue
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _checkpoint_lock(checkpoint_dir: str, d: _Dist, what: str = "training"):
    """Hold checkpoint_dir's lock (`instruct_pt.dirlock`) for the body. Rank 0 takes it for the
    whole job: every rank of this job goes on, and on every rank of a second job on the same
    folder FolderLocked is raised, naming the holder."""
    lock, error = None, None
    if d.main:
        try:
            lock = FolderLock(checkpoint_dir, what)
        except FolderLocked as e:
            error = str(e)
        except OSError as e:  # every rank must learn of it, not wait in the broadcast
            error = f"{checkpoint_dir}: cannot lock the checkpoint folder ({e})"
    if d.world > 1:
        import torch.distributed as dist

        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise FolderLocked(error)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


METRICS_LOG = "metrics.jsonl"  # per log step: loss, lr, grad_norm, tokens (the same on resume)
TIMING_LOG = "timing.jsonl"  # per log step: tokens_per_s, mfu, elapsed_s (this machine's speed)


def _metrics_log(checkpoint_dir: Path, upto_step: int) -> None:
    """Keep only log lines of steps <= upto_step (a resumed run rewrites the rest)."""
    for name in (METRICS_LOG, TIMING_LOG):
        path = checkpoint_dir / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            if rec.get("step", 0) <= upto_step:
                kept.append(line)
        path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")


# ----------------------------------------------------------------------------- the loop


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


def _enable_activation_checkpointing(lm) -> None:
    """Non-reentrant checkpointing of every decoder layer; transformers < 5.23 (5.17 on the GPU
    images we test on) names the method gradient_checkpointing_enable."""
    enable = getattr(lm, "activation_checkpointing_enable", None)
    if enable is not None:
        enable({"use_reentrant": False})
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _run(
    *,
    kind: str,
    model_fn,
    source: _Source,
    cfg: TrainConfig,
    checkpoint_dir: str,
    seed: int,
    d: _Dist,
    run_config: dict,
    on_step=None,
    rank0_loads: bool = False,
) -> tuple[object, dict]:
    """Train model_fn() on source; returns (model, summary) where model is the _LossModel around
    it (`model.lm`: the causal LM, sharded under FSDP). on_step(step, model) runs after every
    optimizer step (and once at step 0 before training) on every rank.

    rank0_loads: on several processes, model_fn() returns the real model on rank 0 only and a
    meta-device one elsewhere (`_model_loader`); rank 0's weights are broadcast into the shards,
    so a single host copy of the full model exists, not one per GPU."""
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
            json.dumps({k: run_config["train"].get(k) for k in _SEMANTIC_KEYS}, sort_keys=True),
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
        _enable_activation_checkpointing(lm)
    model = _LossModel(lm, cfg.loss_chunk_tokens)
    if d.world > 1:
        _shard_model(model, lm.get_decoder().layers, cfg.precision)
        if full is not None:
            _fill_from_rank0(model, full, d)
            del full
    optimizer = _optimizer(model, cfg)

    plan = _Plan(source.n, cfg.batch_size, seed)
    step, wall_before, last_loss = 0, 0.0, None
    window: list[float] = []  # losses of the steps since the last log line
    tokens_trained = 0  # real tokens of all steps so far (every rank's)
    if d.main:
        _clear_temporaries(ckpt_dir)
    _barrier(d)
    existing = _checkpoints(ckpt_dir)
    if existing:
        state = json.loads((existing[-1] / "state.json").read_text(encoding="utf-8"))
        _barrier(d)  # every rank has read it before rank 0 may delete it
        if state["fingerprint"] != fingerprint or state.get("format") != CKPT_FORMAT:
            # Data, seed or settings changed (Snakemake reruns the job for that very reason),
            # or an older checkpoint layout: the old checkpoints belong to another run. Start
            # over rather than resume them.
            log.warning(
                "%s: checkpoints of a different run (data, seed or train settings "
                "changed, or an older format): discarding them and starting over",
                ckpt_dir,
            )
            if d.main:
                for old in existing:
                    shutil.rmtree(old)
            _barrier(d)
            existing = []
    if existing:
        last = existing[-1]
        _load_checkpoint(last, model, optimizer, d, seed, state["step"])
        step, wall_before, last_loss = state["step"], state["wall_time_s"], state["last_loss"]
        window = [float(x) for x in state.get("log_window", [])]
        tokens_trained = state.get("tokens_trained")
        if tokens_trained is None:  # a checkpoint from before it was kept: count the steps done
            tokens_trained = sum(source.tokens(plan.rows(s)) for s in range(step))
        log.info("resumed from %s (step %d of %d)", last, step, total)
        if d.main:
            _metrics_log(ckpt_dir, step)
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
        n_targets = _all_sum(float(sum(int((y[:, 1:] != IGNORE).sum()) for _, y in batches)), d)
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
        last_loss = _all_sum(loss_sum, d) / n_targets
        window.append(last_loss)
        n_tok = int(_all_sum(float(sum(source.tokens(m) for m in micro)), d))
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
            _save_checkpoint(ckpt_dir, step, model, optimizer, state, cfg.keep_checkpoints, d)
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
        "fsdp_mixed_precision": _mp_summary(model, cfg.precision) if d.world > 1 else None,
    }
    return model, summary


def _progress(kind: str, start_step: int, step: int, total: int, loss, tps, elapsed) -> str:
    """The log's progress line: step/total, loss, tokens/s, ETA at this run's pace."""
    rate = f"loss {loss:.4f} {tps:,.0f} tok/s"
    eta = eta_seconds(step - start_step, total - step, elapsed)
    return progress_line(kind, "step", step, total, rate, eta)


def _mp_summary(model, precision: str) -> dict:
    """The mixed precision the FSDP root unit really runs with (read back from FSDP)."""
    from torch.distributed.fsdp import fully_shard

    try:
        mp = fully_shard.state(model)._fsdp_param_group.mp_policy
    except AttributeError:  # FSDP internals of another torch version: the policy asked for
        mp = _mp_policy(precision)
    name = {None: None, torch.bfloat16: "bfloat16", torch.float32: "float32"}
    return {"param_dtype": name[mp.param_dtype], "reduce_dtype": name[mp.reduce_dtype]}


def _wandb_start(cfg: TrainConfig, run_config: dict, d: _Dist):
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


def _export(
    model: _LossModel,
    d: _Dist,
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
    full = _full_state(model)
    prefix = "lm."
    msd = {k.removeprefix(prefix): v for k, v in full.items()}
    del full
    for key in getattr(model.lm, "all_tied_weights_keys", None) or {}:
        msd.pop(key, None)
    if d.main:
        extra = None if summary is None else summary_file(summary)
        save_model(model.lm, tokenizer_dir, out_dir, extra=extra, state_dict=msd, dtype=dtype)
    _barrier(d)


# ----------------------------------------------------------------------------- entry points


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
    cfg = check_train(train, _env_world())  # before any data or model is loaded
    set_torch_threads(threads)
    source = PackedSource(packed_dir)

    def model_fn():
        if arch is not None:
            return build_model(arch, tokenizer_dir, seed)
        return _model_loader(init_from, d)()

    d = _setup(cfg.device)
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

    with _checkpoint_lock(checkpoint_dir, d):
        model, summary = _run(
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
    with _checkpoint_lock(checkpoint_dir, d):
        model, summary = _tune(
            stage, base_model_dir, tok, rows, data_stats, seq_len, cfg, train, checkpoint_dir,
            seed, d,
        )  # fmt: skip
        _export(model, d, base_model_dir, out_dir, summary, cfg.export_dtype)
        if d.main:
            _copy_metrics(checkpoint_dir, out_dir, summary)
    return summary


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

    The official bytes (:func:`instruct_pt.protocol.format_example`): ``"<s> <CON> {context}
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
    d: _Dist,
    on_step=None,
):
    """Fine-tune the saved model in base_model_dir on (input_ids, labels) rows: the part the
    synthesizer's tuning and instruction tuning share. Returns (model, summary)."""
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model, summary = _run(
        kind=kind,
        model_fn=_model_loader(base_model_dir, d),
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
    from instruct_pt.tokenizer import load_tokenizer

    cfg = check_train(train, _env_world())  # before any data or model is loaded
    set_torch_threads(threads)
    records = read_jsonl(train_path, required=("id", "dataset", "context", "pairs"))
    tok = load_tokenizer(base_model_dir)
    rows, data_stats = synth_sequences(records, tok, seq_len, max_per_dataset, seed, train_path)
    d = _setup(cfg.device)
    return _tune_and_export(
        "finetune_synthesizer", base_model_dir, out_dir, tok, rows, data_stats, seq_len,
        cfg, train, checkpoint_dir, seed, d,
    )  # fmt: skip


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
    from instruct_pt.tokenizer import load_tokenizer

    cfg = check_train(train, _env_world())  # before any data or model is loaded
    set_torch_threads(threads)
    tok = load_tokenizer(base_model_dir)
    rows, data_stats = instruction_rows(
        iter_jsonl(train_path, required=("instruction", "response")), tok, seq_len, train_path
    )
    d = _setup(cfg.device)
    total = cfg.total_steps(len(rows), seq_len)
    wanted = sorted({int(s) for s in save_steps if 0 <= int(s) <= total} | {total})
    exports = Path(checkpoint_dir) / "exports"

    def on_step(step: int, model) -> None:
        if step in wanted:
            _export(model, d, base_model_dir, str(exports / f"step{step}"), None, cfg.export_dtype)

    with _checkpoint_lock(checkpoint_dir, d):
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
        _barrier(d)
    return summary


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
    from instruct_pt.tokenizer import load_tokenizer

    cfg = check_train(train, _env_world())  # before any data or model is loaded
    set_torch_threads(threads)
    tok = load_tokenizer(base_model_dir)
    rows, data_stats = task_rows(
        iter_jsonl(train_path, required=("query", "answer")), tok, seq_len, train_path
    )
    d = _setup(cfg.device)
    return _tune_and_export(
        "ceiling_tune", base_model_dir, out_dir, tok, rows, data_stats, seq_len,
        cfg, train, checkpoint_dir, seed, d,
    )  # fmt: skip
