"""Distributed training: the process group, FSDP2 sharding and mixed precision, and moving full
weights in (rank 0 reads, broadcast into the shards) and out (gathered on rank 0's CPU).

Under torchrun (WORLD_SIZE > 1) every process trains one GPU's share of the batch; one process
without torchrun is the same code with `Dist(world=1)`, where every collective is a no-op. FSDP2
full sharding with bf16 mixed precision: bf16 compute, fp32 gradient reduction, fp32 master
weights and Adam states. A saved model is read by rank 0 alone and broadcast into the shards, so
one host copy of the full model exists, not one per GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from instruct_pt.training.modeling import empty_model, load_model


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_process(device_pref: str) -> Dist:
    """Pick the device; under torchrun (WORLD_SIZE > 1) join the process group (nccl / gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (
        torch.cuda.is_available() if device_pref == "auto" else device_pref.startswith("cuda")
    )
    if world <= 1:
        return Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(
        dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}" if use_cuda else "cpu")
    )


def all_sum(x: float, d: Dist) -> float:
    if d.world == 1:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return float(t.item())


def barrier(d: Dist) -> None:
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


def shard_model(model: torch.nn.Module, layers, precision: str):
    """FSDP2: shard every decoder layer, then the rest (embeddings, tied head, final norm) as the
    root unit: `model` is the LossModel whose forward is the whole training computation."""
    from torch.distributed.fsdp import fully_shard

    mp = _mp_policy(precision)
    for layer in layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def model_loader(model_dir: str, d: Dist):
    """model_fn for loop.run(rank0_loads=True): the saved model in fp32 on rank 0 (and on a single
    process), its empty meta-device twin on the other ranks."""

    def load():
        if d.world == 1 or d.main:
            return load_model(model_dir, dtype=torch.float32)
        return empty_model(model_dir, dtype=torch.float32)

    return load


def fill_from_rank0(model, full: dict, d: Dist) -> None:
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


def full_state(model) -> dict:
    """The full (unsharded) model state dict, on the CPU of rank 0 only (the other ranks get
    {}); a collective under FSDP, gathered tensor by tensor."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def mp_summary(model, precision: str) -> dict:
    """The mixed precision the FSDP root unit really runs with (read back from FSDP)."""
    from torch.distributed.fsdp import fully_shard

    try:
        mp = fully_shard.state(model)._fsdp_param_group.mp_policy
    except AttributeError:  # FSDP internals of another torch version: the policy asked for
        mp = _mp_policy(precision)
    name = {None: None, torch.bfloat16: "bfloat16", torch.float32: "float32"}
    return {"param_dtype": name[mp.param_dtype], "reduce_dtype": name[mp.reduce_dtype]}
