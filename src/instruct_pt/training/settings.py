"""A training job's settings (`train:` in the config) and the arithmetic on them.

`TrainConfig.from_dict` validates the keys; `for_world` splits the global batch over the job's
processes (one per GPU) into whole micro-batches; `total_steps` and `warmup` turn a token, step or
epoch budget into optimizer steps; `lr_at` is the schedule (linear warm-up, cosine decay).
`check_train` runs first of all in every training job, before any data or model is read, so a
bad batch split fails in a second (and `instruct_pt.plan` runs the same check for a whole plan).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from instruct_pt.common import DataError
from instruct_pt.training.modeling import EXPORT_DTYPES

# Keys of `train` that change the result; the others (logging, checkpoint cadence) do not, so a
# run may be resumed after changing them.
SEMANTIC_KEYS = (
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


def env_world() -> int:
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
