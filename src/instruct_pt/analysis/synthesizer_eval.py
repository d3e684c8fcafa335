"""Evaluation of the instruction synthesizer (paper §5.1, Table 5; facts §1.6).

Two measures, each zero-shot (the test context alone) and few-shot (``shots`` examples of the same
dataset, formatted as a chain, before the test context), on seen and unseen datasets:

* response accuracy: given the context (and the gold pairs before it) and a gold question, the
  model's answer up to ``</END>`` is scored by token F1 (SQuAD normalisation) against the gold
  answer;
* pair quality: the model generates pairs for the context; each parsed pair is scored by its best
  token F1 (question + answer) against the gold pairs. The paper's judge for pair quality is
  UNCONFIRMED; token F1 is our stand-in. The parse rate (texts with >= 1 valid pair) is reported
  as well.

All scores are x100.
"""

from __future__ import annotations

import hashlib
import logging
import random

from instruct_pt.common import (
    DataError,
    iter_jsonl,
    read_jsonl,
    stable_hash,
    write_json,
    write_jsonl,
)
from instruct_pt.evaluation.metrics import token_f1
from instruct_pt.synthesis.engines import (  # torch and vLLM load only with an engine
    Engine,
    load_engine,
)
from instruct_pt.synthesis.protocol import (
    ANS,
    DELIMITER,
    END,
    QUE,
    build_prompt,
    format_example,
    format_pair,
    parse_pairs,
)

log = logging.getLogger(__name__)

_FT_KEYS = ("id", "dataset", "seen", "context", "pairs")


def split_heldout(
    ft_path: str, train_out: str, heldout_out: str, heldout_fraction: float, seed: int
) -> dict:
    """Hold out every unseen record and ``heldout_fraction`` of each seen dataset (file order kept).

    Each seen dataset's held-out records are drawn with ``random.Random(stable_hash(seed, dataset))``
    so adding a dataset does not change the others' split.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    records = []
    for lineno, rec in enumerate(iter_jsonl(ft_path, required=_FT_KEYS), 1):
        if not isinstance(rec["seen"], bool):
            raise DataError(f"{ft_path}:{lineno}: 'seen' must be true or false")
        records.append(rec)
    by_dataset: dict[str, list[int]] = {}
    for k, rec in enumerate(records):
        if rec["seen"]:
            by_dataset.setdefault(rec["dataset"], []).append(k)
    held = {k for k, rec in enumerate(records) if not rec["seen"]}
    for dataset, idx in by_dataset.items():
        n = round(heldout_fraction * len(idx))
        held.update(random.Random(stable_hash(seed, dataset)).sample(idx, n))
    train = [r for k, r in enumerate(records) if k not in held]
    heldout = [r for k, r in enumerate(records) if k in held]
    write_jsonl(train_out, train)
    write_jsonl(heldout_out, heldout)
    return {
        "records": len(records),
        "train": len(train),
        "heldout": len(heldout),
        "heldout_seen": sum(1 for r in heldout if r["seen"]),
        "heldout_unseen": sum(1 for r in heldout if not r["seen"]),
        "heldout_fraction": heldout_fraction,
        "seed": seed,
    }


# ----------------------------------------------------------------------------- prompts


def _gold(pairs: list[dict]) -> list[dict]:
    return [{"question": p["question"], "answer": p["answer"]} for p in pairs]


def _demo_chain(test: dict, pool: list[dict], shots: int, rng: random.Random, budget: float) -> str:
    """``shots`` formatted examples of the test's dataset (not the test itself), fitted to ``budget``."""
    if shots == 0:
        return ""
    same = [
        r for r in pool if r["dataset"] == test["dataset"] and r["id"] != test["id"] and r["pairs"]
    ]
    demos = rng.sample(same, min(shots, len(same)))
    examples = [format_example(d["context"], _gold(d["pairs"])) for d in demos]
    while examples and len("".join(examples).split(" ")) * 1.5 > budget:
        examples.pop(0)  # keep the chain within the model's window (same estimate as synthesis)
    return "".join(examples)


def _response_prompt(chain: str, context: str, pairs: list[dict], k: int) -> str:
    """Chain + context + the gold pairs before pair k + ``"<QUE> {question k} <ANS>"``."""
    before = "".join(format_pair(p["question"], p["answer"]) + DELIMITER for p in pairs[:k])
    return build_prompt(context, chain) + before + f"{QUE} {pairs[k]['question']} {ANS}"


def plan_prompts(
    heldout_path: str,
    n_examples: int,
    shots: int,
    max_new_tokens: int,
    max_model_len: int,
    seed: int,
) -> list[dict]:
    """The Table 5 probes, the same for every model: per split (seen, unseen) x shots (0, shots).

    ``n_examples`` test records per split are drawn with ``seed``; for each, one gold pair is the
    response-accuracy probe (drawn with ``stable_hash(seed, id)``). Demonstrations come from the
    same held-out file. Each entry: ``{"id", "split", "shots", "gold", "answer",
    "response_prompt", "pairs_prompt"}``.
    """
    pool = [r for r in read_jsonl(heldout_path, required=_FT_KEYS) if r["pairs"]]
    budget = max_model_len - max_new_tokens
    plan = []
    for split in ("seen", "unseen"):
        candidates = [r for r in pool if r["seen"] == (split == "seen")]
        tests = random.Random(stable_hash(seed, split)).sample(
            candidates, min(n_examples, len(candidates))
        )
        for n_shots in sorted({0, shots}):
            for t in tests:
                rng = random.Random(stable_hash(seed, t["id"], n_shots))
                chain = _demo_chain(
                    t, pool, n_shots, rng, budget - len(t["context"].split(" ")) * 1.5
                )
                k = random.Random(stable_hash(seed, t["id"])).randrange(len(t["pairs"]))
                plan.append(
                    {
                        "id": t["id"],
                        "split": split,
                        "shots": n_shots,
                        "gold": _gold(t["pairs"]),
                        "answer": t["pairs"][k]["answer"],
                        "response_prompt": _response_prompt(
                            chain, t["context"], _gold(t["pairs"]), k
                        ),
                        "pairs_prompt": build_prompt(t["context"], chain),
                    }
                )
    return plan


# ----------------------------------------------------------------------------- generation

GENERATION_KEYS = ("model", "id", "split", "shots", "prompt_sha256", "response", "generation")


def _prompt_sha256(probe: dict) -> str:
    text = probe["response_prompt"] + "\x00" + probe["pairs_prompt"]
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _generate(name: str, plan: list[dict], engine: Engine, max_new_tokens: int) -> list[dict]:
    """One model's answers to every probe: the response up to ``</END>`` and the pairs text."""
    responses = engine.generate([p["response_prompt"] for p in plan], max_new_tokens)
    generations = engine.generate([p["pairs_prompt"] for p in plan], max_new_tokens)
    if len(responses) != len(plan) or len(generations) != len(plan):
        raise RuntimeError(
            f"engine returned {len(responses)} / {len(generations)} generations "
            f"for {len(plan)} prompts"
        )
    return [
        {
            "model": name,
            "id": p["id"],
            "split": p["split"],
            "shots": p["shots"],
            "prompt_sha256": _prompt_sha256(p),
            "response": resp,
            "generation": gen,
        }
        for p, resp, gen in zip(plan, responses, generations, strict=True)
    ]


def synthesizer_generations(
    name: str,
    model_dir: str,
    heldout_path: str,
    out_path: str,
    n_examples: int,
    shots: int,
    engine_cfg: dict,
    max_new_tokens: int,
    max_model_len: int,
    seed: int,
    gpus: int | None = None,
    engine: Engine | None = None,
) -> dict:
    """One model's generations for the Table 5 probes (one job, one engine, one process).

    Writes ``out_path`` (JSONL, one record per probe in plan order, keys ``GENERATION_KEYS``),
    which :func:`score_synthesizer` reads. ``gpus`` (the job's) is passed to ``load_engine``;
    ``engine`` (tests) replaces the one ``engine_cfg`` would build.
    """
    plan = plan_prompts(heldout_path, n_examples, shots, max_new_tokens, max_model_len, seed)
    own = engine is None
    if engine is None:
        engine = load_engine(model_dir, engine_cfg, max_model_len, seed, gpus=gpus)
    records = _generate(name, plan, engine, max_new_tokens)
    if own and hasattr(engine, "close"):
        engine.close()
    write_jsonl(out_path, records)
    log.info(
        "%s: %d generations for %d probes written to %s", name, 2 * len(plan), len(plan), out_path
    )
    return {"model": name, "probes": len(plan), "tokens": getattr(engine, "tokens_generated", None)}


# ----------------------------------------------------------------------------- scoring


def _stderr(scores: list[float]) -> float | None:
    """Standard error (x100, points) of a mean of per-item scores in [0, 1]; None under 2 items."""
    n = len(scores)
    if n < 2:
        return None
    mean = sum(scores) / n
    var = sum((x - mean) ** 2 for x in scores) / (n - 1)
    return 100 * (var / n) ** 0.5


def _score(name: str, plan: list[dict], records: list[dict]) -> list[dict]:
    """The settings rows of one model: per (split, shots) cell, in plan order."""
    cells: dict[tuple[str, int], dict] = {}
    for p, rec in zip(plan, records, strict=True):
        cell = cells.setdefault(
            (p["split"], p["shots"]), {"acc": [], "quality": [], "parsed": 0, "n": 0}
        )
        cell["n"] += 1
        cell["acc"].append(token_f1(rec["response"].split(END, 1)[0].strip(), p["answer"]))
        pairs, _ = parse_pairs(rec["generation"])
        cell["parsed"] += int(bool(pairs))
        for q in pairs:
            text = q["question"] + " " + q["answer"]
            cell["quality"].append(
                max(token_f1(text, g["question"] + " " + g["answer"]) for g in p["gold"])
            )
    settings = []
    for (split, n_shots), c in cells.items():
        settings.append(
            {
                "model": name,
                "split": split,
                "shots": n_shots,
                "response_accuracy": 100 * sum(c["acc"]) / len(c["acc"]),
                "response_accuracy_stderr": _stderr(c["acc"]),
                "pair_quality": 100 * sum(c["quality"]) / len(c["quality"])
                if c["quality"]
                else 0.0,
                "pair_quality_stderr": _stderr(c["quality"]),
                "parse_rate": 100 * c["parsed"] / c["n"],
                "n_pairs": len(c["quality"]),
                "n": c["n"],
            }
        )
        log.info("%s %s %d-shot: %s", name, split, n_shots, settings[-1])
    return settings


def _read_generations(path: str, name: str, plan: list[dict]) -> list[dict]:
    """A generations file, checked to answer exactly ``plan`` (same probes, same prompts)."""
    records = read_jsonl(path, required=GENERATION_KEYS)
    if len(records) != len(plan):
        raise DataError(
            f"{path}: {len(records)} generations for {len(plan)} probes: it was made for "
            "another held-out file or synthesizer.eval setting; regenerate it"
        )
    for lineno, (rec, p) in enumerate(zip(records, plan, strict=True), 1):
        if rec["model"] != name:
            raise DataError(f"{path}:{lineno}: generations of {rec['model']!r}, not {name!r}")
        got = (rec["id"], rec["split"], rec["shots"], rec["prompt_sha256"])
        want = (p["id"], p["split"], p["shots"], _prompt_sha256(p))
        if got != want:
            raise DataError(
                f"{path}:{lineno}: probe {got[:3]} does not match the plan's {want[:3]} (or its "
                "prompts differ): made for another held-out file or setting; regenerate it"
            )
    return records


def _result(settings: list[dict], n_examples: int, shots: int, seed: int) -> dict:
    return {
        "settings": settings,
        "n_examples": n_examples,
        "shots": shots,
        "seed": seed,
        "metric": "token F1 x100",
    }


def score_synthesizer(
    generations: dict[str, str],
    heldout_path: str,
    out_path: str,
    n_examples: int,
    shots: int,
    max_new_tokens: int,
    max_model_len: int,
    seed: int,
) -> dict:
    """Table 5 from the models' generation files (``{model name: path}``, in row order).

    The probes are planned again from the held-out file and the settings, and each file must
    answer exactly them. Writes the result to ``out_path`` and returns it.
    """
    plan = plan_prompts(heldout_path, n_examples, shots, max_new_tokens, max_model_len, seed)
    settings = []
    for name, path in generations.items():
        settings += _score(name, plan, _read_generations(path, name, plan))
    result = _result(settings, n_examples, shots, seed)
    write_json(out_path, result)
    return result
