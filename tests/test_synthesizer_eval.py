"""Held-out split and Table 5 evaluation of the synthesizer."""

import re

import pytest

from instruct_pt.analysis.synthesizer_eval import (
    score_synthesizer,
    split_heldout,
    synthesizer_generations,
)
from instruct_pt.common import DataError, read_json, read_jsonl, write_jsonl
from instruct_pt.synthesis.protocol import format_pairs


def _ft(n_per=10):
    recs = []
    for d, seen in (("squad", True), ("race", True), ("novelqa", False)):
        for i in range(n_per):
            recs.append(
                {
                    "id": f"{d}-{i}",
                    "dataset": d,
                    "task_type": "qa",
                    "seen": seen,
                    "context": f"{d} context {i} says the code is K{i}.",
                    "pairs": [
                        {
                            "question": f"What is the {d} code {i}?",
                            "answer": f"K{i} {d}",
                            "format": "free",
                        },
                        {
                            "question": f"Which dataset has item {d}{i}?",
                            "answer": d,
                            "format": "free",
                        },
                    ],
                }
            )
    return recs


def test_split_heldout(tmp_path):
    write_jsonl(tmp_path / "ft.jsonl", _ft())
    stats = split_heldout(
        str(tmp_path / "ft.jsonl"),
        str(tmp_path / "train.jsonl"),
        str(tmp_path / "held.jsonl"),
        0.2,
        seed=1,
    )
    train, held = read_jsonl(tmp_path / "train.jsonl"), read_jsonl(tmp_path / "held.jsonl")
    assert stats["heldout_unseen"] == 10 and stats["heldout_seen"] == 4 and stats["train"] == 16
    assert not any(not r["seen"] for r in train)
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in held)
    assert (
        sum(r["dataset"] == "squad" for r in held) == 2
        and sum(r["dataset"] == "race" for r in held) == 2
    )
    split_heldout(
        str(tmp_path / "ft.jsonl"),
        str(tmp_path / "t2.jsonl"),
        str(tmp_path / "h2.jsonl"),
        0.2,
        seed=1,
    )
    assert (tmp_path / "h2.jsonl").read_bytes() == (tmp_path / "held.jsonl").read_bytes()


def test_split_heldout_rejects_bad_seen(tmp_path):
    recs = _ft(1)
    recs[1]["seen"] = "yes"
    write_jsonl(tmp_path / "ft.jsonl", recs)
    with pytest.raises(DataError, match="ft.jsonl:2"):
        split_heldout(
            str(tmp_path / "ft.jsonl"),
            str(tmp_path / "a.jsonl"),
            str(tmp_path / "b.jsonl"),
            0.2,
            seed=1,
        )


class OracleEngine:
    """Answers from the gold data it was given; generates the gold pairs for a context."""

    name = "oracle"

    def __init__(self, records, wrong=False):
        self.by_q = {p["question"]: p["answer"] for r in records for p in r["pairs"]}
        self.by_ctx = {r["context"]: r["pairs"] for r in records}
        self.wrong, self.prompts, self.tokens_generated = wrong, [], 0

    def generate(self, prompts, max_new_tokens):
        out = []
        for p in prompts:
            self.prompts.append(p)
            if self.wrong:
                out.append("zzz </END>")
            elif p.endswith("<ANS>"):
                q = p.rsplit("<QUE> ", 1)[1][: -len(" <ANS>")]
                out.append(f" {self.by_q[q]} </END>\n\n<QUE> more")
            else:
                ctx = re.findall(r"<CON> (.*?) </CON>", p)[-1]
                out.append(format_pairs(self.by_ctx[ctx]) + "</s>")
        return out


def test_evaluate_synthesizer_scores_and_prompts(tmp_path):
    recs = _ft()
    write_jsonl(tmp_path / "held.jsonl", recs)
    oracle, wrong = OracleEngine(recs), OracleEngine(recs, wrong=True)
    gens = {
        "synthesizer": _generate(tmp_path, recs, "synthesizer", oracle),
        "base": _generate(tmp_path, recs, "base", wrong),
    }
    res = score_synthesizer(
        gens, str(tmp_path / "held.jsonl"), str(tmp_path / "t5.json"), **SETTINGS
    )
    assert read_json(tmp_path / "t5.json") == res
    cells = {(s["model"], s["split"], s["shots"]): s for s in res["settings"]}
    assert set(cells) == {
        (m, sp, k) for m in ("synthesizer", "base") for sp in ("seen", "unseen") for k in (0, 2)
    }
    for key, s in cells.items():
        assert s["n"] == 5
        if key[0] == "synthesizer":
            assert (
                s["response_accuracy"] == 100.0
                and s["pair_quality"] == 100.0
                and s["parse_rate"] == 100.0
            )
        else:
            assert s["response_accuracy"] == 0.0 and s["parse_rate"] == 0.0
    # few-shot prompts hold two complete examples of the same dataset before the test context
    few = [p for p in oracle.prompts if p.count("<s> <CON>") == 3]
    assert len(few) == 2 * 2 * 5
    for p in few:
        datasets = re.findall(r"<CON> (\w+) context", p)
        assert len(set(datasets)) == 1 and p.count("</s>") == 2
    zero = [p for p in oracle.prompts if p.count("<s> <CON>") == 1]
    assert len(zero) == 2 * 2 * 5


SETTINGS = {"n_examples": 5, "shots": 2, "max_new_tokens": 16, "max_model_len": 4096, "seed": 0}


def _generate(tmp_path, recs, name, engine, **over):
    out = tmp_path / f"gen-{name}-{len(over)}.jsonl"
    synthesizer_generations(
        name,
        "unused",
        str(tmp_path / "held.jsonl"),
        str(out),
        engine_cfg={},
        engine=engine,
        **{**SETTINGS, **over},
    )
    return str(out)


def test_generation_files_hold_the_planned_probes_in_order(tmp_path):
    """One generation job per model writes every probe of the plan, in plan order."""
    recs = _ft()
    write_jsonl(tmp_path / "held.jsonl", recs)
    gens = {
        "base": _generate(tmp_path, recs, "base", OracleEngine(recs, wrong=True)),
        "synthesizer": _generate(tmp_path, recs, "synthesizer", OracleEngine(recs)),
    }
    rows = read_jsonl(gens["synthesizer"])
    # 2 splits x (0, 2 shots) x 5 tests, in plan order; the response and the pairs text
    assert len(rows) == 20
    assert [(r["split"], r["shots"]) for r in rows[::5]] == [
        ("seen", 0),
        ("seen", 2),
        ("unseen", 0),
        ("unseen", 2),
    ]
    assert rows[0]["model"] == "synthesizer" and rows[0]["response"].endswith(
        "</END>\n\n<QUE> more"
    )
    two = score_synthesizer(
        gens, str(tmp_path / "held.jsonl"), str(tmp_path / "two.json"), **SETTINGS
    )
    cells = {(c["model"], c["split"], c["shots"]): c["parse_rate"] for c in two["settings"]}
    assert set(cells.values()) == {0.0, 100.0}
    assert all(v == (100.0 if m == "synthesizer" else 0.0) for (m, _, _), v in cells.items())
    assert [s["model"] for s in two["settings"]] == ["base"] * 4 + ["synthesizer"] * 4
    assert {s["response_accuracy"] for s in two["settings"][4:]} == {100.0}
    assert {s["parse_rate"] for s in two["settings"][:4]} == {0.0}


def test_scoring_rejects_generations_of_other_probes(tmp_path):
    recs = _ft()
    write_jsonl(tmp_path / "held.jsonl", recs)
    good = _generate(tmp_path, recs, "base", OracleEngine(recs))
    held, out = str(tmp_path / "held.jsonl"), str(tmp_path / "t5.json")
    other_seed = _generate(tmp_path, recs, "base", OracleEngine(recs), seed=1)
    with pytest.raises(DataError, match=r"gen-base-1\.jsonl:1: probe .* does not match"):
        score_synthesizer({"base": other_seed}, held, out, **SETTINGS)
    fewer = _generate(tmp_path, recs, "base", OracleEngine(recs), n_examples=3, shots=2)
    with pytest.raises(DataError, match=r"gen-base-2\.jsonl: 12 generations for 20 probes"):
        score_synthesizer({"base": fewer}, held, out, **SETTINGS)
    with pytest.raises(
        DataError, match=r"gen-base-0\.jsonl:1: generations of 'base', not 'synthesizer'"
    ):
        score_synthesizer({"synthesizer": good}, held, out, **SETTINGS)
    # the same records and probe ids, other contexts: the prompts differ
    write_jsonl(
        tmp_path / "held.jsonl", [{**r, "context": r["context"] + " More words."} for r in recs]
    )
    with pytest.raises(DataError, match="prompts differ"):
        score_synthesizer({"base": good}, held, out, **SETTINGS)
    assert not (tmp_path / "t5.json").exists()


def test_load_engine_places_by_the_jobs_gpus(monkeypatch):
    from instruct_pt.synthesis import engines

    built = []
    monkeypatch.setattr(engines, "make_engine", lambda cfg: built.append(cfg) or cfg)
    engines.load_engine("m", {"engine": "vllm"}, 4096, 7, gpus=2)
    engines.load_engine("m", {"engine": "vllm", "tensor_parallel_size": 1}, 4096, 7, gpus=2)
    engines.load_engine("m", {"engine": "vllm"}, 4096, 7, gpus=1)
    engines.load_engine("m", {"engine": "vllm"}, 4096, 7)  # signature as before
    engines.load_engine("m", {"engine": "transformers"}, 4096, 7, gpus=0)
    engines.load_engine("m", {}, 4096, 7)
    assert [c.get("tensor_parallel_size") for c in built[:4]] == [2, 1, None, None]
    assert [c["seed"] for c in built[:4]] == [7] * 4
    assert built[4] == {
        "engine": "transformers",
        "model_dir": "m",
        "max_model_len": 4096,
        "gpus": 0,
    }
    assert built[5] == {"engine": "transformers", "model_dir": "m", "max_model_len": 4096}


def test_transformers_engine_device_auto(tiny_lm, monkeypatch):
    import torch

    from instruct_pt.synthesis.engines import TransformersEngine

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert TransformersEngine(tiny_lm, max_model_len=64).device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TransformersEngine(tiny_lm, max_model_len=64, gpus=0).device == "cpu"  # no GPU: CPU
