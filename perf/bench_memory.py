"""Peak memory of the data steps at N and 10 x N records: it must not grow with the corpus.

Runs prepare_dataset (a local JSONL source with some duplicate ids), templify (synthesis shards
laid out as synthesize_shard writes them: 3 rounds, chains a chunk apart), the mixture (the two
outputs as components) and packing on synthetic texts, each step in a fresh subprocess, and prints
each step's peak resident memory (ru_maxrss of that process and of its own children) at both sizes
and their ratio; the target is below 1.5x for every step. Usage:
    python perf/bench_memory.py [--docs 4000] [--scale 10] [--workers 1] [--steps ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The parent stays small (no instruct_pt, numpy or transformers import): a child's ru_maxrss
# starts from its parent's resident size at fork, which would hide the child's own peak.

STEPS = ("prepare_dataset", "templify", "mixture", "pack")
_WORDS = [
    "cell", "protein", "market", "river", "signal", "binds", "reported", "growth", "the", "of",
    "and", "in", "a", "patients", "revenue", "quarter", "enzyme", "model", "data", "study",
    "increase", "levels", "shares", "trial", "effect", "between", "results", "rate", "new", "was",
]  # fmt: skip
_POOL = 500  # distinct texts, reused with the record number appended


def _texts(rng: random.Random, n: int, words: int) -> list[str]:
    return [" ".join(rng.choices(_WORDS, k=words)) + "." for _ in range(n)]


def make_inputs(work: Path, n_docs: int) -> int:
    """The local source (raw.jsonl) and two synthesis shards; returns the bytes written."""
    from instruct_pt.synthesis.multi_round import collection_positions

    rng = random.Random(0)
    texts = _texts(rng, _POOL, 320)  # ~2 KB each
    questions = _texts(rng, _POOL, 12)
    with open(work / "raw.jsonl", "w", encoding="utf-8") as f:
        for i in range(n_docs):
            rid = f"doc{i - 1 if i % 50 == 7 else i}"  # some ids repeat: renaming is exercised
            f.write(json.dumps({"id": rid, "content": f"{texts[i % _POOL]} {i}"}) + "\n")
    for s in range(2):
        n = n_docs // 2
        chunk = -(-n // 3)
        places = collection_positions(n, 3)
        with open(work / f"shard{s}.jsonl", "w", encoding="utf-8") as f:
            for pos in range(n):
                rnd, i = divmod(pos, chunk)
                pairs = [
                    {"question": questions[(pos + k) % _POOL], "answer": f"answer {pos} {k}"}
                    for k in range(1 + pos % 3)
                ]
                rec = {
                    "id": f"s{s}-{pos}",
                    "text": f"{texts[(pos * 7) % _POOL]} {pos}",
                    "chain": i if pos % 5 else pos,  # most chains span the 3 rounds
                    "round": rnd + 1,
                    "position": places[pos][0],
                    "slot": places[pos][1],
                    "pairs": pairs,
                    "dropped": {},
                    "generation": "",
                }
                f.write(json.dumps(rec) + "\n")
    return sum(p.stat().st_size for p in work.glob("*.jsonl"))


def run_step(step: str, work: Path, workers: int) -> None:
    if step == "tokenizer":  # one tokenizer for both sizes, trained on the text pool
        sys.path.insert(0, str(Path(__file__).parent))
        import common

        corpus = work / "tok_corpus.jsonl"
        texts = _texts(random.Random(0), _POOL, 320)
        corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        common.tokenizer(work, corpus)
    elif step == "prepare_dataset":
        from instruct_pt.data.sources import prepare_dataset

        spec = {"source": "local", "path": str(work / "raw.jsonl"), "fields": {"text": "content"}}
        prepare_dataset("raw_general", spec, None, str(work / "prepared.jsonl"))
    elif step == "templify":
        from instruct_pt.synthesis.templify import templify

        shards = [str(work / f"shard{s}.jsonl") for s in range(2)]
        templify(shards, str(work / "augmented.jsonl"), 12345)
    elif step == "mixture":
        from instruct_pt.data.mixtures import build_mixture

        comps = [
            {"name": "raw", "path": str(work / "prepared.jsonl"), "format": "text"},
            {"name": "aug", "path": str(work / "augmented.jsonl"), "format": "text"},
        ]
        out = work / "mixture"
        extra = {"num_workers": workers} if workers > 1 else {}
        build_mixture(
            "m", comps, str(work.parent / "tok"), str(out / "texts.jsonl"),
            str(out / "manifest.json"), 0, **extra,
        )  # fmt: skip
    elif step == "pack":
        from instruct_pt.data.packing import pack

        texts = str(work / "mixture" / "texts.jsonl")
        pack(texts, str(work.parent / "tok"), str(work / "packed"), 1024, 0, num_workers=workers)
    else:
        raise SystemExit(f"unknown step {step!r}")


def child(step: str, work: Path, workers: int) -> None:
    t = time.perf_counter()
    run_step(step, work, workers)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"peak_kb": max(own, kids), "seconds": time.perf_counter() - t}))


def measure(step: str, work: Path, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--child", step, str(work), "--workers", str(workers)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{step} failed on {work}:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=4000, help="N: raw documents (and shard texts)")
    p.add_argument("--scale", type=int, default=10, help="the large run has scale x N")
    p.add_argument("--workers", type=int, default=1, help="mixture/pack worker processes")
    p.add_argument(
        "--steps",
        default=",".join(STEPS),
        help="comma-separated subset, in order (each step reads the outputs of the ones before)",
    )
    p.add_argument("--child", nargs=2, metavar=("STEP", "WORK"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child[0], Path(a.child[1]), a.workers)
        return
    steps = [s for s in a.steps.split(",") if s]
    if any(s not in STEPS for s in steps):
        raise SystemExit(f"--steps: choose from {', '.join(STEPS)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}")
    results: dict[int, dict] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for n in (a.docs, a.docs * a.scale):
            work = root / f"n{n}"
            work.mkdir()
            size = make_inputs(work, n)
            if n == a.docs:
                measure("tokenizer", root, a.workers)
            print(f"N={n:,}: inputs {size / 1e6:.0f} MB")
            results[n] = {}
            for step in steps:
                r = results[n][step] = measure(step, work, a.workers)
                print(f"  {step:<16} peak {r['peak_kb'] / 1024:7.1f} MB  {r['seconds']:6.1f} s")
    small, large = results[a.docs], results[a.docs * a.scale]
    print(f"whole benchmark: {time.perf_counter() - t0:.0f} s")
    print(f"\npeak RSS ratio, {a.scale}N vs N (target < 1.5x):")
    for step in steps:
        ratio = large[step]["peak_kb"] / small[step]["peak_kb"]
        print(
            f"  {step:<16} {small[step]['peak_kb'] / 1024:7.1f} MB -> "
            f"{large[step]['peak_kb'] / 1024:7.1f} MB: {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
