"""Synthesis throughput: the batched transformers engine (KV cache, length-sorted batches) vs a
naive loop that generates for one text at a time, same model, texts and greedy settings.

Prints texts/s and generated tokens/s of both, measured in this one run, and their ratio. Usage:
    python perf/bench_synthesis.py [--texts 64] [--batch-size 32] [--max-new-tokens 64]
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

from instruct_pt.synthesis.engines import TransformersEngine  # noqa: E402
from instruct_pt.synthesis.protocol import build_prompt  # noqa: E402
from instruct_pt.training.modeling import build_model, save_model  # noqa: E402
from instruct_pt.world import generate_dataset  # noqa: E402

ARCH = {  # the tiny preset's synthesizer base
    "family": "mistral", "hidden_size": 128, "num_layers": 4, "num_heads": 4, "num_kv_heads": 4,
    "intermediate_size": 512, "max_position_embeddings": 512, "tie_embeddings": True,
    "rope_theta": 10000.0,
}  # fmt: skip


def run(engine: TransformersEngine, prompts: list[str], new: int) -> tuple[float, float]:
    engine.tokens_generated = 0
    t = time.perf_counter()
    engine.generate(prompts, new)
    wall = time.perf_counter() - t
    return len(prompts) / wall, engine.tokens_generated / wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    texts = [r["text"] for r in generate_dataset("raw_finance", {"seed": 7})][: a.texts]
    prompts = [build_prompt(t) for t in texts]
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        tok = common.tokenizer(work, common.world_corpus(work))
        model_dir = work / "model"
        save_model(build_model(ARCH, str(tok), 0), str(tok), str(model_dir))
        batched = TransformersEngine(str(model_dir), batch_size=a.batch_size, max_model_len=512)
        naive = TransformersEngine(str(model_dir), batch_size=1, max_model_len=512)
        run(batched, prompts[:4], 8)  # warm-up
        b_texts, b_tok = run(batched, prompts, a.max_new_tokens)
        n_texts, n_tok = run(naive, prompts, a.max_new_tokens)
    print(f"machine: {common.machine()}; torch threads {a.threads}")
    print(f"{len(prompts)} world texts, greedy, up to {a.max_new_tokens} new tokens, fp32")
    print(f"naive (one text at a time): {n_texts:.2f} texts/s, {n_tok:,.0f} generated tokens/s")
    print(
        f"batched (batch {a.batch_size}):        {b_texts:.2f} texts/s, {b_tok:,.0f} generated tokens/s"
    )
    print(f"ratio (batched / naive): {b_tok / n_tok:.1f}x")


if __name__ == "__main__":
    main()
