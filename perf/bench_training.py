"""Our training loop vs transformers' Trainer: same model, data, batch, schedule, precision.

Prints tokens/s of each, measured in this one run, and their ratio. Usage:
    python perf/bench_training.py [--steps 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import common  # noqa: E402

from instruct_pt.data.packing import PackedDataset  # noqa: E402
from instruct_pt.training.modeling import build_model  # noqa: E402
from instruct_pt.training.stages import pretrain  # noqa: E402

ARCH = {  # the tiny preset's 500M stand-in
    "family": "mistral", "hidden_size": 128, "num_layers": 4, "num_heads": 4, "num_kv_heads": 4,
    "intermediate_size": 512, "max_position_embeddings": 256, "tie_embeddings": True,
    "rope_theta": 10000.0,
}  # fmt: skip


def ours(
    packed: Path, tok: Path, work: Path, steps: int, batch: int, seq_len: int, compile_: bool
) -> float:
    train = {
        "compile": compile_,
        "tokens": steps * batch * seq_len, "batch_size": batch, "micro_batch_size": batch,
        "lr": 2e-3, "warmup_steps": 5, "min_lr_ratio": 0.1, "precision": "bf16",
        "checkpoint_every": 10**9, "log_every": 10**9, "wandb": {"mode": "disabled"},
    }  # fmt: skip
    tag = "ours_compiled" if compile_ else "ours"  # separate folders: no resuming across runs
    summary = pretrain(
        str(packed), str(work / tag), str(tok), train, str(work / f"{tag}_ck"), 0, arch=ARCH
    )
    return summary["tokens_per_s"]


def trainer(packed: Path, tok: Path, work: Path, steps: int, batch: int, seq_len: int) -> float:
    from transformers import Trainer, TrainingArguments

    data = PackedDataset(str(packed)).data

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            ids = torch.from_numpy(data[i].astype("int64"))
            return {"input_ids": ids, "labels": ids}

    args = TrainingArguments(
        output_dir=str(work / "trainer"), max_steps=steps, per_device_train_batch_size=batch,
        learning_rate=2e-3, warmup_steps=5, lr_scheduler_type="cosine", weight_decay=0.1,
        adam_beta2=0.95, max_grad_norm=1.0, bf16=True, use_cpu=True, logging_steps=10**9,
        save_strategy="no", report_to=[], dataloader_num_workers=0, seed=0, disable_tqdm=True,
    )  # fmt: skip
    model = build_model(ARCH, str(tok), 0)
    t = time.perf_counter()
    Trainer(model=model, args=args, train_dataset=Rows()).train()
    return steps * batch * seq_len / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--compile", action="store_true", help="also time our loop with torch.compile")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        corpus = common.world_corpus(work)
        tok = common.tokenizer(work, corpus)
        packed = common.packed(work, corpus, tok, a.seq_len)
        trainer(packed, tok, work, 5, a.batch, a.seq_len)  # warm-up: imports, kernels
        t_hf = trainer(packed, tok, work, a.steps, a.batch, a.seq_len)
        t_ours = ours(packed, tok, work, a.steps, a.batch, a.seq_len, False)
        t_comp = ours(packed, tok, work, a.steps, a.batch, a.seq_len, True) if a.compile else None
    print(f"machine: {common.machine()}; torch threads {a.threads}")
    print(f"model: {ARCH['family']} hidden {ARCH['hidden_size']} x {ARCH['num_layers']} layers; "
          f"batch {a.batch} x {a.seq_len} tokens; {a.steps} steps; bf16 autocast")  # fmt: skip
    print(f"transformers Trainer: {t_hf:,.0f} tokens/s")
    print(f"our training loop:    {t_ours:,.0f} tokens/s")
    print(f"ratio (ours / Trainer): {t_ours / t_hf:.2f}x")
    if t_comp is not None:
        print(f"our loop + torch.compile (compile time included): {t_comp:,.0f} tokens/s, "
              f"{t_comp / t_hf:.2f}x the Trainer")  # fmt: skip


if __name__ == "__main__":
    main()
