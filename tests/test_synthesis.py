"""Corpus split, multi-round synthesis (chaining, resume), and the transformers engine."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.synthesis.corpus_split import split_corpus
from instruct_pt.synthesis.engines import TransformersEngine, VLLMEngine, make_engine
from instruct_pt.synthesis.multi_round import (
    _truncate_to_fit,
    collection_positions,
    synthesize_shard,
)
from instruct_pt.synthesis.protocol import build_prompt, format_example


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
    for n, fraction in [(1, 1.0), (1, 0.0), (10, 0.2), (101, 0.37)]:
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
    with pytest.raises(DataError, match="bad.jsonl:2: duplicate id 'a' \\(first at line 1\\)"):
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
    # ceil(10/3)=4: rounds of 4, 4, 2; the short round leaves collections 2 and 3 without a
    # text, so they are prepended to collections 0 and 1 (slots 0-1), whose own entries follow
    assert [(r["position"], r["slot"]) for r in recs] == [
        (0, 2), (1, 2), (0, 0), (1, 0), (0, 3), (1, 3), (0, 1), (1, 1), (0, 4), (1, 4),
    ]  # fmt: skip
    assert [(r["position"], r["slot"]) for r in recs] == collection_positions(10, 3)
    assert list(recs[0]) == [
        "id", "text", "chain", "round", "position", "slot", "truncated", "pairs", "dropped",
        "generation",
    ]  # fmt: skip
    assert not any(r["truncated"] for r in recs)  # the fake engine has no tokenizer: no fitting
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


def test_vllm_engine_passes_token_ids_and_counts_left_cuts(tiny_tokenizer):
    """VLLMEngine.generate without vLLM: a stand-in LLM records what it is given."""
    from types import SimpleNamespace

    class LLM:
        def generate(self, inputs, params, use_tqdm):
            self.inputs, self.params = inputs, params
            out = SimpleNamespace(text="<QUE> q <ANS> a </END></s>junk", token_ids=[5, 6, 7])
            return [SimpleNamespace(outputs=[out]) for _ in inputs]

    engine = VLLMEngine.__new__(VLLMEngine)  # skip __init__ (needs vllm and a GPU)
    engine._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    engine.llm, engine.tokenizer, engine.max_model_len = LLM(), tiny_tokenizer, 40
    engine.tokens_generated = engine.left_truncated_prompts = 0
    short, long = build_prompt("The cat sat."), build_prompt(LONG)
    out = engine.generate([short, long], max_new_tokens=8)
    assert out == ["<QUE> q <ANS> a </END>"] * 2  # cut at </s>
    ids = [x["prompt_token_ids"] for x in engine.llm.inputs]
    assert ids[0] == tiny_tokenizer(short, add_special_tokens=False)["input_ids"]  # no 2nd BOS
    assert ids[1] == tiny_tokenizer(long, add_special_tokens=False)["input_ids"][-32:]
    assert engine.left_truncated_prompts == 1 and engine.tokens_generated == 6
    assert engine.llm.params == {"temperature": 0, "max_tokens": 8, "stop": ["</s>"]}


def test_make_engine_errors():
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine({"engine": "nope", "model_dir": "x"})
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install vllm"):
            VLLMEngine("some/model")


# ----------------------------------------------------------------------------- collection positions


def _official_collections(n, rounds):
    """The official README loop + ``get_dataset`` + ``process_syn_raw_text``, on shard indices.

    Each round appends text j to collection j; collections left without a text (the round is
    shorter than the list) are prepended to collections 0, 1, ... of the new list. Raises
    IndexError exactly where the official code does (more leftovers than texts in the round).
    """
    size = -(-n // rounds)
    prev = []
    for r in range(rounds):
        cur = list(range(r * size, min(n, (r + 1) * size)))
        new = [(prev[j] if j < len(prev) else []) + [s] for j, s in enumerate(cur)]
        for j, leftover in enumerate(prev[len(cur) :]):
            new[j] = leftover + new[j]
        prev = new
    return prev


def test_collection_positions_by_hand():
    # N=5, M=2: BSZ=3. Round 1: collections [0] [1] [2]; round 2 has L=2 texts: [0,3] [1,4];
    # leftover collection 2 is prepended to collection 0 -> final [[2,0,3], [1,4]]
    assert collection_positions(5, 2) == [(0, 1), (1, 0), (0, 0), (0, 2), (1, 1)]
    # N=6, M=3: BSZ=2, every round full: [[0,2,4], [1,3,5]], no leftovers
    assert collection_positions(6, 3) == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    # N=7, M=2: BSZ=4; round 2 has 3 texts: [0,4] [1,5] [2,6]; leftover [3] goes before
    # collection 0 -> final [[3,0,4], [1,5], [2,6]]
    assert collection_positions(7, 2) == [
        (0, 1), (1, 0), (2, 0), (0, 0), (0, 2), (1, 1), (2, 1),
    ]  # fmt: skip
    # N=10, M=4: BSZ=3, rounds of 3, 3, 3, 1. Leftover collection 1 ([1,4,7]) goes before
    # collection 0 ([0,3,6,9]); leftover collection 2 would go to new collection 1, which does
    # not exist: the official code raises IndexError. Ours keeps it at position 2 (vacant).
    with pytest.raises(IndexError):
        _official_collections(10, 4)
    assert collection_positions(10, 4) == [
        (0, 3), (0, 0), (2, 0), (0, 4), (0, 1), (2, 1), (0, 5), (0, 2), (2, 2), (0, 6),
    ]  # fmt: skip
    # N=4, M=3: BSZ=2, rounds of 2, 2, 0: the empty round crashes the official code (its two
    # collections are leftovers with no text to join); ours treats it as a no-op
    with pytest.raises(IndexError):
        _official_collections(4, 3)
    assert collection_positions(4, 3) == [(0, 0), (1, 0), (0, 1), (1, 1)]
    # M=1: one round, each text its own collection, in order (the one-shot method)
    assert collection_positions(3, 1) == [(0, 0), (1, 0), (2, 0)]
    assert collection_positions(0, 3) == []
    with pytest.raises(ValueError, match="rounds >= 1"):
        collection_positions(3, 0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 80), st.integers(1, 12))
def test_collection_positions_match_the_official_loop(n, rounds):
    got = collection_positions(n, rounds)
    assert len(got) == n
    by_position = {}
    for pos, slot in got:
        by_position.setdefault(pos, []).append(slot)
    assert len(set(got)) == n  # every (position, slot) once
    for slots in by_position.values():  # slots of a collection are 0..k-1
        assert sorted(slots) == list(range(len(slots)))
    try:
        official = _official_collections(n, rounds)
    except IndexError:  # the crash cases: no official answer, only the invariants above
        assert n and max(p for p, _ in got) < -(-n // rounds)
        return
    size = -(-n // rounds) if n else 0
    last = n - (rounds - 1) * size if n else 0  # texts in the last round
    assert sorted(by_position) == list(range(last))
    assert {s: (pos, slot) for pos, c in enumerate(official) for slot, s in enumerate(c)} == dict(
        enumerate(got)
    )


# ----------------------------------------------------------------------------- prompts that fit


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_lm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm)


class TokenizedFakeEngine(FakeEngine):
    """The fake engine with a real tokenizer, so that synthesize_shard fits its prompts."""

    def __init__(self, tokenizer, **kw):
        super().__init__(**kw)
        self.tokenizer = tokenizer


def _n_tokens(tok, text):
    return len(tok(text, add_special_tokens=False)["input_ids"])


LONG = "Birds fly south in winter and the cat sat on the mat. " * 30


def test_long_text_is_cut_inside_the_framing(tmp_path, tiny_tokenizer):
    path = tmp_path / "shard.jsonl"
    texts = ["The cat sat.", LONG, "Birds fly south."]
    write_jsonl(path, [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    engine = TokenizedFakeEngine(tiny_tokenizer)
    stats = _synth(tmp_path, path, engine, rounds=1, max_model_len=80)  # 80 - 16 = 64 tokens
    budget = 64
    assert _n_tokens(tiny_tokenizer, build_prompt(LONG)) > budget  # the test needs a long text
    short0, long_prompt, short2 = engine.prompts
    # short texts: the very bytes they had before fitting existed
    assert (short0, short2) == (build_prompt(texts[0]), build_prompt(texts[2]))
    assert long_prompt.startswith("<s> <CON> ") and long_prompt.endswith(" </CON>\n\n")
    assert _n_tokens(tiny_tokenizer, long_prompt) <= budget
    head = long_prompt[len("<s> <CON> ") : -len(" </CON>\n\n")]
    assert head and LONG.startswith(head) and len(head) < len(LONG)
    # the longest such head: one more token of the text no longer fits
    enc = tiny_tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)
    k = next(i for i, (_, end) in enumerate(enc["offset_mapping"]) if end >= len(head))
    longer = LONG[: enc["offset_mapping"][k + 1][1]].rstrip()
    assert _n_tokens(tiny_tokenizer, build_prompt(longer)) > budget
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["truncated"] for r in recs] == [False, True, False]
    assert recs[1]["text"] == LONG  # the record keeps the whole text (templify uses it)
    assert stats["truncated_texts"] == 1 and stats["unchained_by_tokens"] == 0


def test_slow_tokenizer_cut_decodes_tokens(tiny_tokenizer):
    class Slow:  # no character offsets: the head is decoded from the first k tokens
        is_fast = False

        def __call__(self, text, add_special_tokens, return_offsets_mapping=False):
            assert not return_offsets_mapping
            return tiny_tokenizer(text, add_special_tokens=add_special_tokens)

        def decode(self, ids, **kw):
            return tiny_tokenizer.decode(ids, **kw)

    fast = _truncate_to_fit(tiny_tokenizer, LONG, 40)
    slow = _truncate_to_fit(Slow(), LONG, 40)
    for head in (fast, slow):
        assert LONG.startswith(head) and _n_tokens(tiny_tokenizer, build_prompt(head)) <= 40
    with pytest.raises(ValueError, match="3 tokens cannot hold even one token"):
        _truncate_to_fit(tiny_tokenizer, LONG, 3)


def test_chain_too_long_in_tokens_is_dropped(tmp_path, tiny_tokenizer):
    # Odd letter runs: few words (a low words x 1.5 estimate), many byte-level tokens
    texts = ["qzxv kjwp vvqz jxkq", "wqpz xjvk zqkw pvjx"]
    path = tmp_path / "shard.jsonl"
    write_jsonl(path, [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    pairs0 = [{"question": f"What is {texts[0]}?", "answer": f"It is {texts[0]}."}]
    chained = format_example(texts[0], pairs0) + build_prompt(texts[1])
    bare, full = (
        _n_tokens(tiny_tokenizer, build_prompt(texts[1])),
        _n_tokens(tiny_tokenizer, chained),
    )
    budget = (bare + full) // 2
    assert len(chained.split(" ")) * 1.5 <= budget < full  # the estimate keeps it, tokens do not
    engine = TokenizedFakeEngine(tiny_tokenizer)
    stats = _synth(tmp_path, path, engine, rounds=2, max_model_len=budget + 16)
    assert engine.prompts == [build_prompt(texts[0]), build_prompt(texts[1])]
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["chain"] for r in recs] == [0, 1]  # d1 starts its own chain
    assert [r["truncated"] for r in recs] == [False, False]
    assert stats["unchained_by_tokens"] == 1 and stats["unchained_by_estimate"] == 0
    # with room for the chain, the same shard chains d1 after d0
    engine = TokenizedFakeEngine(tiny_tokenizer)
    _synth(tmp_path, path, engine, out="roomy.jsonl", ckpt="ck2", rounds=2, max_model_len=full + 16)
    assert engine.prompts[1] == chained
    assert [r["chain"] for r in read_jsonl(tmp_path / "roomy.jsonl")] == [0, 0]


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
    # over-long prompts are left-truncated to max_model_len - max_new_tokens, and counted
    assert engine.left_truncated_prompts == 0
    long = "<s> <CON> " + "the cat sat on the mat " * 40 + "</CON>\n\n"
    assert len(engine.generate([long], max_new_tokens=12)) == 1
    assert engine.left_truncated_prompts == 1


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
    assert stats["left_truncated_prompts"] == 0 and stats["truncated_texts"] == 0


def test_synthesize_shard_fits_prompts_before_the_engine_cuts(tmp_path, tiny_model_dir):
    """With the real engine built inside, a long text is fitted (no left cut by the engine), and
    a rerun resumed entirely from the checkpoint (no engine built) writes the same bytes."""
    path = tmp_path / "shard.jsonl"
    write_jsonl(path, [{"id": "a", "text": "The cat sat."}, {"id": "b", "text": LONG}])
    args = (2, {"engine": "transformers", "batch_size": 2}, 8, 72, str(tmp_path / "ck"))
    stats = synthesize_shard(str(path), tiny_model_dir, str(tmp_path / "o.jsonl"), *args, seed=0)
    assert stats["truncated_texts"] == 1 and stats["left_truncated_prompts"] == 0
    again = synthesize_shard(str(path), tiny_model_dir, str(tmp_path / "p.jsonl"), *args, seed=0)
    assert again["resumed_texts"] == 2 and again["truncated_texts"] == 1
    assert (tmp_path / "o.jsonl").read_bytes() == (tmp_path / "p.jsonl").read_bytes()


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


_HOLD = """
import sys, time
from instruct_pt.training.dirlock import FolderLock
lock = FolderLock(sys.argv[1], "synthesis")
print("locked", flush=True)
time.sleep(600)
"""


def test_synthesis_on_a_locked_checkpoint_folder_fails_before_generating(tmp_path):
    import subprocess
    import sys

    from instruct_pt.training.dirlock import FolderLocked

    shard = _shard(tmp_path, n=4)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path / "ckpt")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        engine = FakeEngine()
        with pytest.raises(FolderLocked, match=rf"ckpt: .* synthesis \(pid {holder.pid} on host "):
            _synth(tmp_path, shard, engine)
        assert engine.calls == 0 and not (tmp_path / "out.jsonl").exists()
        assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
    assert _synth(tmp_path, shard, FakeEngine())["generated_texts"] == 4  # free once it is gone


def test_stale_checkpoint_is_emptied_under_its_lock(tmp_path):
    shard = _shard(tmp_path, n=4)
    _synth(tmp_path, shard, FakeEngine(), out="a.jsonl", rounds=2)
    assert (tmp_path / "ckpt" / "round1_batch000000.jsonl").exists()
    _synth(tmp_path, shard, FakeEngine(), out="b.jsonl", rounds=1)
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == [".lock", "meta.json", "round0_batch000000.jsonl", "round0_batch000001.jsonl"]


def test_synthesis_logs_progress_lines(tmp_path, caplog, capfd):
    import logging
    import re

    shard = _shard(tmp_path, n=10)
    with caplog.at_level(logging.INFO, logger="instruct_pt.synthesis.multi_round"):
        _synth(tmp_path, shard, FakeEngine(), rounds=3, every=2)
    pat = r"synthesis texts (\d+)/10 \((\d+)%\) \d+\.\d\d texts/s ETA (\S+)"
    lines = [re.fullmatch(pat, r.getMessage()) for r in caplog.records]
    lines = [m for m in lines if m]
    # rounds of 4, 4, 2 texts in batches of 2: one line per batch, texts done so far
    assert [int(m[1]) for m in lines] == [2, 4, 6, 8, 10]
    assert [int(m[2]) for m in lines] == [20, 40, 60, 80, 100] and lines[-1][3] == "0s"
    assert "\r" not in capfd.readouterr().err
    # a resumed run logs only the batches it generates
    caplog.clear()
    (tmp_path / "ckpt" / "round2_batch000000.jsonl").unlink()
    with caplog.at_level(logging.INFO, logger="instruct_pt.synthesis.multi_round"):
        _synth(tmp_path, shard, FakeEngine(), out="again.jsonl", rounds=3, every=2)
    lines = [re.fullmatch(pat, r.getMessage()) for r in caplog.records]
    assert [int(m[1]) for m in lines if m] == [10]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 13),
    rounds=st.integers(1, 4),
    empty=st.sets(st.integers(0, 12), max_size=4),
)
def test_pairs_made_without_a_model_are_laid_out_as_the_synthesizer_lays_them_out(n, rounds, empty):
    """shard_records (rule-based, oracle) places texts in the chains, rounds, collection
    positions and slots multi-round synthesis gives them, given the same texts with pairs."""
    import tempfile
    from pathlib import Path

    from instruct_pt.synthesis.multi_round import shard_records

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        shard = _shard(tmp, n=n)
        texts_without = {" ".join([f"t{i}"] * 3) for i in empty}
        _synth(tmp, shard, FakeEngine(empty_for=texts_without), rounds=rounds)

        def pairs(rec, where):
            return [] if rec["text"] in texts_without else [{"question": "q", "answer": "a"}]

        shard_records(str(shard), str(tmp / "made.jsonl"), pairs, "test", rounds)
        keys = ("id", "chain", "round", "position", "slot")
        synthesized = [{k: r[k] for k in keys} for r in read_jsonl(tmp / "out.jsonl")]
        made = [{k: r[k] for k in keys} for r in read_jsonl(tmp / "made.jsonl")]
        assert made == synthesized
