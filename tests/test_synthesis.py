"""Corpus split, multi-round synthesis (chaining, resume), and the transformers engine."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.protocol import format_example
from instruct_pt.synthesis import (
    TransformersEngine,
    VLLMEngine,
    make_engine,
    split_corpus,
    synthesize_shard,
)


def _raw(tmp_path, n=23):
    path = tmp_path / "raw.jsonl"
    write_jsonl(
        path,
        [
            {"id": f"d{i}", "text": f"text number {i} about topic {i % 3}.", "meta": {}}
            for i in range(n)
        ],
    )
    return path


def test_split_corpus_is_deterministic_and_complete(tmp_path):
    raw = _raw(tmp_path)
    outs = []
    for run in range(2):
        shards = [str(tmp_path / f"r{run}_s{i}.jsonl") for i in range(3)]
        rest = str(tmp_path / f"r{run}_rest.jsonl")
        stats = split_corpus(str(raw), 0.4, 3, 7, shards, rest)
        outs.append([open(p, "rb").read() for p in [*shards, rest]])
        recs = [read_jsonl(p) for p in shards]
        assert stats["converted"] == round(0.4 * 23) == sum(stats["shard_sizes"])
        assert max(stats["shard_sizes"]) - min(stats["shard_sizes"]) <= 1
        assert all([r["index"] for r in shard] == list(range(len(shard))) for shard in recs)
        ids = [r["id"] for shard in recs for r in shard] + [r["id"] for r in read_jsonl(rest)]
        assert sorted(ids) == sorted(f"d{i}" for i in range(23))
    assert outs[0] == outs[1]
    other = split_corpus(
        str(raw),
        0.4,
        3,
        8,
        [str(tmp_path / f"o{i}.jsonl") for i in range(3)],
        str(tmp_path / "o.jsonl"),
    )
    assert other["converted"] == stats["converted"]
    assert read_jsonl(tmp_path / "o.jsonl") != read_jsonl(tmp_path / "r0_rest.jsonl")


def test_split_corpus_picks_exactly_k_for_any_size(tmp_path):
    """Selection sampling picks exactly round(fraction * n), in corpus order, for edge sizes."""
    for n, fraction in [(0, 0.5), (1, 1.0), (1, 0.0), (10, 0.2), (101, 0.37)]:
        raw = _raw(tmp_path, n)
        shards = [str(tmp_path / f"s{i}.jsonl") for i in range(4)]
        stats = split_corpus(str(raw), fraction, 4, 3, shards, str(tmp_path / "rest.jsonl"))
        assert stats["converted"] == round(fraction * n) and stats["rest"] == n - stats["converted"]
        chosen = [int(r["id"][1:]) for p in shards for r in read_jsonl(p)]
        assert len(chosen) == len(set(chosen)) == stats["converted"]
        for p in shards:  # each shard keeps corpus order
            ids = [int(r["id"][1:]) for r in read_jsonl(p)]
            assert ids == sorted(ids)


def test_split_corpus_rejects_bad_input(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(DataError, match="bad.jsonl:2: duplicate id 'a' \\(first at record 1\\)"):
        split_corpus(str(path), 1.0, 1, 0, [str(tmp_path / "s.jsonl")], str(tmp_path / "r.jsonl"))
    assert not (tmp_path / "s.jsonl").exists()  # nothing half-written


class FakeEngine:
    """Deterministic stand-in: pairs derived from the prompt; can crash after k calls."""

    name = "fake"

    def __init__(self, crash_after=None, empty_for=()):
        self.calls, self.crash_after, self.empty_for = 0, crash_after, set(empty_for)
        self.prompts = []
        self.tokens_generated = 0

    def generate(self, prompts, max_new_tokens):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise RuntimeError("injected crash")
        self.calls += 1
        self.prompts += prompts
        out = []
        for p in prompts:
            text = p.rsplit("<CON> ", 1)[1].split(" </CON>")[0]
            if text in self.empty_for:
                out.append("nothing useful")
            else:
                out.append(
                    f"<QUE> What is {text}? <ANS> It is {text}. </END>\n\n<QUE> Unfinished <ANS> x"
                )
            self.tokens_generated += 10
        return out


def _shard(tmp_path, n=10, words=3):
    path = tmp_path / "shard.jsonl"
    write_jsonl(
        path, [{"id": f"d{i}", "text": " ".join([f"t{i}"] * words), "index": i} for i in range(n)]
    )
    return path


def _synth(
    tmp_path, shard, engine, out="out.jsonl", rounds=3, max_model_len=4096, ckpt="ckpt", every=2
):
    return synthesize_shard(
        str(shard),
        "fake-model",
        str(tmp_path / out),
        rounds,
        {"engine": "fake"},
        16,
        max_model_len,
        str(tmp_path / ckpt),
        seed=0,
        checkpoint_every=every,
        engine=engine,
    )


def test_multi_round_chains(tmp_path):
    shard = _shard(tmp_path, n=10)
    engine = FakeEngine(empty_for={"t1 t1 t1"})
    stats = _synth(tmp_path, shard, engine)
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in recs] == [f"d{i}" for i in range(10)]
    # chunks of ceil(10/3)=4: rounds 1,1,1,1,2,2,2,2,3,3
    assert [r["round"] for r in recs] == [1] * 4 + [2] * 4 + [3] * 2
    # index 0 chains across all rounds; d1 had no pairs so d5 starts a new chain, which d9 continues
    assert [r["chain"] for r in recs] == [0, 1, 2, 3, 0, 5, 2, 3, 0, 5]
    assert recs[0]["pairs"] == [{"question": "What is t0 t0 t0?", "answer": "It is t0 t0 t0."}]
    assert recs[0]["dropped"] == {"unfinished": 1}
    # the round-3 prompt for d8 is the chain d0, d4 then d8 itself
    expected = (
        format_example("t0 t0 t0", recs[0]["pairs"])
        + format_example("t4 t4 t4", recs[4]["pairs"])
        + "<s> <CON> t8 t8 t8 </CON>\n\n"
    )
    assert expected in engine.prompts
    assert (
        "<s> <CON> t5 t5 t5 </CON>\n\n" in engine.prompts
    )  # not prefixed: its predecessor had no pairs
    assert stats["texts"] == 10 and stats["pairs"] == 9 and stats["engine"] == "fake"
    assert stats["dropped_pieces"] == {"unfinished": 10}  # 9 unfinished pairs + d1's junk


def test_length_check_starts_a_new_chain(tmp_path):
    shard = _shard(tmp_path, n=4, words=30)
    engine = FakeEngine()
    # budget 80 - 16 = 64 estimated tokens: one text (~35 words*1.5) fits, a chained prompt does not
    _synth(tmp_path, shard, engine, rounds=2, max_model_len=80)
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["chain"] for r in recs] == [0, 1, 2, 3]
    assert all(p.count("<s>") == 1 for p in engine.prompts)


def test_resume_after_crash_is_byte_identical(tmp_path):
    shard = _shard(tmp_path, n=11)
    _synth(
        tmp_path, shard, FakeEngine(empty_for={"t2 t2 t2"}), out="clean.jsonl", ckpt="ckpt_clean"
    )
    for k in (0, 1, 3, 5):
        with pytest.raises(RuntimeError, match="injected crash"):
            _synth(
                tmp_path,
                shard,
                FakeEngine(crash_after=k, empty_for={"t2 t2 t2"}),
                out="resumed.jsonl",
                ckpt=f"ckpt{k}",
            )
        assert not (tmp_path / "resumed.jsonl").exists()
        engine = FakeEngine(empty_for={"t2 t2 t2"})
        stats = _synth(tmp_path, shard, engine, out="resumed.jsonl", ckpt=f"ckpt{k}")
        assert (tmp_path / "resumed.jsonl").read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
        assert stats["resumed_texts"] == 2 * k  # k batches of 2 were kept
        assert stats["generated_texts"] == 11 - 2 * k
        (tmp_path / "resumed.jsonl").unlink()


def test_stale_checkpoint_is_discarded(tmp_path):
    shard = _shard(tmp_path, n=4)
    _synth(tmp_path, shard, FakeEngine(), out="a.jsonl", rounds=2)
    stats = _synth(tmp_path, shard, FakeEngine(), out="b.jsonl", rounds=1)  # same dir, other job
    assert stats["resumed_texts"] == 0
    assert [r["round"] for r in read_jsonl(tmp_path / "b.jsonl")] == [1, 1, 1, 1]


def test_make_engine_errors():
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine({"engine": "nope", "model_dir": "x"})
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install vllm"):
            VLLMEngine("some/model")


# ----------------------------------------------------------------------------- real transformers engine


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_lm) -> str:
    return tiny_lm


def test_transformers_engine_batched_equals_single(tiny_model_dir):
    engine = TransformersEngine(tiny_model_dir, batch_size=4, max_model_len=64)
    prompts = [
        "<s> <CON> The cat sat. </CON>\n\n",
        "<s> <CON> Birds fly south in winter and the cat sat on the mat. </CON>\n\n",
        "<s> <CON> Paris </CON>\n\n<QUE>",
        "<s> <CON> What is the capital of the cat? The mat. </CON>\n\n",
        "<s> <CON> x </CON>\n\n",
    ]
    batched = engine.generate(prompts, max_new_tokens=12)
    single = [engine.generate([p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single
    assert any(batched)
    assert all("</s>" not in g for g in batched)
    assert engine.tokens_generated > 0
    # the prompt's "<s>" is the BOS token, not characters
    assert engine.tokenizer("<s> <CON>", add_special_tokens=False)["input_ids"][0] == 1
    # over-long prompts are left-truncated to max_model_len - max_new_tokens
    long = "<s> <CON> " + "the cat sat on the mat " * 40 + "</CON>\n\n"
    assert len(engine.generate([long], max_new_tokens=12)) == 1


def test_synthesize_shard_with_transformers_engine(tmp_path, tiny_model_dir):
    shard = _shard(tmp_path, n=4)
    cfg = {"engine": "transformers", "batch_size": 2}
    stats = synthesize_shard(
        str(shard),
        tiny_model_dir,
        str(tmp_path / "o.jsonl"),
        2,
        cfg,
        8,
        128,
        str(tmp_path / "ck"),
        seed=0,
    )
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert (
        len(recs) == 4 and stats["engine"] == "transformers" and stats["generated_tokens_per_s"] > 0
    )
    assert all(isinstance(r["generation"], str) for r in recs)


def test_cli_end_to_end(tmp_path, tiny_model_dir, capsys):
    from instruct_pt.cli import synthesize_main

    with pytest.raises(SystemExit):
        synthesize_main(["--help"])
    assert "example:" in capsys.readouterr().out

    write_jsonl(tmp_path / "in.jsonl", [{"body": f"The cat sat on mat {i}."} for i in range(5)])
    argv = [
        "--input",
        str(tmp_path / "in.jsonl"),
        "--output",
        str(tmp_path / "aug.jsonl"),
        "--synthesizer",
        tiny_model_dir,
    ]
    argv += [
        "--rounds",
        "2",
        "--max-new-tokens",
        "8",
        "--max-model-len",
        "128",
        "--batch-size",
        "4",
        "--work-dir",
        str(tmp_path / "w"),
        "--text-field",
        "body",
    ]
    assert synthesize_main(argv) == 0
    out = read_jsonl(tmp_path / "aug.jsonl")
    # a random tiny model rarely emits a valid pair: every text is accounted for, raw or in a chain
    texts = " ".join(r["text"] for r in out)
    assert all(f"The cat sat on mat {i}." in texts for i in range(5))
    assert {r["source"] for r in out} <= {"raw", "augmented"}


def test_cli_engine_settings():
    from instruct_pt.cli import build_parser, engine_config

    base = ["--input", "i", "--output", "o", "--work-dir", "w"]
    args = build_parser().parse_args(base)
    assert engine_config(args) == {
        "engine": "transformers", "batch_size": 32, "device": "cpu", "dtype": "float32",
    }  # fmt: skip
    args = build_parser().parse_args(
        [*base, "--engine", "vllm", "--gpu-memory-utilization", "0.1", "--enforce-eager"]
    )
    assert engine_config(args) == {
        "engine": "vllm", "tensor_parallel_size": 1, "gpu_memory_utilization": 0.1,
        "enforce_eager": True,
    }  # fmt: skip


def test_retrained_synthesizer_invalidates_checkpoints(tmp_path):
    """Same shard, same path, new weights: nothing may be resumed from the old model's output."""
    shard = _shard(tmp_path, n=4)
    model = tmp_path / "synth"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"old weights")

    def run(out):
        return synthesize_shard(
            str(shard), str(model), str(tmp_path / out), 1, {"engine": "fake"}, 16, 4096,
            str(tmp_path / "ckpt"), seed=0, checkpoint_every=2, engine=FakeEngine(),
        )  # fmt: skip

    run("a.jsonl")
    assert run("b.jsonl")["resumed_texts"] == 4  # unchanged model: everything resumed
    (model / "model.safetensors").write_bytes(b"new weights, retrained")
    assert run("c.jsonl")["resumed_texts"] == 0
