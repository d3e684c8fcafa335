"""Templify: chains -> pre-training texts, mode probabilities, determinism, ablation variant."""

import json

import pytest

from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.protocol import format_cot, format_mc_question
from instruct_pt.templify import MODES_FEW_PAIRS, MODES_MANY_PAIRS, templify, templify_ft_collection

FREE = {"question": "Who founded Zorvia?", "answer": "Ann Quill"}
MC = {"question": format_mc_question("Which river?", ["Olt", "Mures", "Siret"]), "answer": "Olt"}
COT = dict(
    zip(
        ("question", "answer"),
        format_cot("How old is it?", "It was built in 1900 and now is 2000.", "100 years"),
        strict=True,
    )
)


def _rec(i, chain, rnd, pairs, text=None):
    return {
        "id": f"d{i}",
        "text": text or f"Raw text {i}.",
        "chain": chain,
        "round": rnd,
        "pairs": pairs,
        "dropped": {},
        "generation": "",
    }


def _chi_square(counts: dict, probs: dict, n: int) -> float:
    total = sum(probs.values())
    return sum((counts.get(k, 0) - n * p / total) ** 2 / (n * p / total) for k, p in probs.items())


def test_mode_distribution_matches_paper_probabilities(tmp_path):
    n = 3000
    many = [_rec(i, i, 1, [FREE, MC]) for i in range(n)]
    few = [_rec(n + i, n + i, 1, [FREE]) for i in range(n)]
    write_jsonl(tmp_path / "many.jsonl", many)
    write_jsonl(tmp_path / "few.jsonl", few)
    s_many = templify([str(tmp_path / "many.jsonl")], str(tmp_path / "a.jsonl"), seed=12345)
    s_few = templify([str(tmp_path / "few.jsonl")], str(tmp_path / "b.jsonl"), seed=12345)
    assert set(s_many["modes"]) == set(MODES_MANY_PAIRS) and set(s_few["modes"]) == set(
        MODES_FEW_PAIRS
    )
    # chi-square critical values at p = 0.001: df=4 -> 18.47, df=1 -> 10.83
    assert _chi_square(s_many["modes"], MODES_MANY_PAIRS, n) < 18.47
    assert _chi_square(s_few["modes"], MODES_FEW_PAIRS, n) < 10.83
    n_inv = s_many["modes"]["classic"] + s_many["modes"]["dialog"]
    assert abs(s_many["inverted"] / n_inv - 0.05) < 0.015


def test_chain_becomes_one_text_in_round_order(tmp_path):
    recs = [
        _rec(1, 0, 2, [MC], "Second text."),
        _rec(0, 0, 1, [FREE, COT], "First text."),
        _rec(2, 2, 1, [], "Lonely raw text."),
    ]
    write_jsonl(tmp_path / "s.jsonl", recs)
    stats = templify(
        [str(tmp_path / "s.jsonl")],
        str(tmp_path / "o.jsonl"),
        seed=3,
        stats_path=str(tmp_path / "o.stats.json"),
    )
    out = read_jsonl(tmp_path / "o.jsonl")
    assert [(r["id"], r["source"]) for r in out] == [("d0", "augmented"), ("d2", "raw")]
    text = out[0]["text"]
    assert text.index("First text.") < text.index("Second text.")  # round 1 before round 2
    assert text.index("Who founded Zorvia?") < text.index(
        "Second text."
    )  # pairs stay with their text
    for s in (
        "First text.",
        "Second text.",
        "Who founded Zorvia?",
        "Ann Quill",
        "Which river?",
        "Mures",
        "How old is it?",
        "100 years",
        "built in 1900",
    ):
        assert s in text
    for marker in ("<QUE>", "<ANS>", "</END>", "<CON>", "Options:\n- "):
        assert marker not in text
    assert out[1]["text"] == "Lonely raw text."
    assert (
        stats["pairs"] == 3
        and stats["raw"] == 1
        and stats["formats"] == {"cot": 1, "free": 1, "mc": 1}
    )
    assert json.loads((tmp_path / "o.stats.json").read_text())["augmented"] == 1


def test_deterministic_and_seed_dependent(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [_rec(i, i, 1, [FREE, MC, COT]) for i in range(50)])
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / f"{name}.jsonl"), seed=seed)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def test_without_context_keeps_only_pairs(tmp_path):
    recs = [_rec(i, i, 1, [FREE, MC], f"UNIQUE-RAW-{i} body.") for i in range(200)] + [
        _rec(999, 999, 1, [], "UNIQUE-RAW-999")
    ]
    write_jsonl(tmp_path / "s.jsonl", recs)
    stats = templify(
        [str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0, include_context=False
    )
    out = read_jsonl(tmp_path / "o.jsonl")
    assert len(out) == 200 and all(r["source"] == "augmented" for r in out)
    assert not any("UNIQUE-RAW" in r["text"] for r in out)
    assert all("Who founded Zorvia?" in r["text"] and "Ann Quill" in r["text"] for r in out)
    assert stats["dropped_texts"] == {"no_pairs_without_context": 1}


def test_malformed_cot_pairs_are_dropped_and_counted(tmp_path):
    bad = {"question": "Why?\nLet's think step by step.", "answer": "no final"}
    write_jsonl(tmp_path / "s.jsonl", [_rec(0, 0, 1, [bad]), _rec(1, 1, 1, [bad, FREE])])
    stats = templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)
    assert [r["source"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["raw", "augmented"]
    assert stats["dropped_pairs"] == {"malformed_mc_or_cot": 2}


def test_bad_pairs_name_the_line(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [_rec(0, 0, 1, [FREE]), _rec(1, 1, 1, [{"question": "q"}])])
    with pytest.raises(DataError, match="s.jsonl:2"):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)


def test_chains_from_different_shards_do_not_merge(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [_rec(0, 0, 1, [FREE])])
    write_jsonl(tmp_path / "b.jsonl", [_rec(1, 0, 1, [FREE])])
    stats = templify(
        [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], str(tmp_path / "o.jsonl"), seed=0
    )
    assert stats["chains"] == 2 and stats["augmented"] == 2


def test_ft_collection(tmp_path):
    recs = [
        {
            "id": f"f{i}",
            "dataset": "squad" if i < 3 else "race",
            "task_type": "qa",
            "seen": True,
            "context": f"Context {i}.",
            "pairs": [{**FREE, "format": "free"}],
        }
        for i in range(5)
    ]
    write_jsonl(tmp_path / "ft.jsonl", recs)
    stats = templify_ft_collection(
        str(tmp_path / "ft.jsonl"), str(tmp_path / "o.jsonl"), seed=0, shots=2
    )
    out = read_jsonl(tmp_path / "o.jsonl")
    # squad: [f0 f1] [f2]; race: [f3 f4] -- never mixing datasets
    assert [r["id"] for r in out] == ["f0", "f2", "f3"] and {r["source"] for r in out} == {
        "synth_ft"
    }
    assert (
        "Context 0." in out[0]["text"]
        and "Context 1." in out[0]["text"]
        and "Context 3." not in out[1]["text"]
    )
    assert stats["pairs"] == 5


# ----------------------------------------------------------------------------- streaming


def _synth_shards(tmp) -> list[str]:
    """Shards laid out as synthesize_shard writes them: round r of chunk index i continues the
    chain at index i, so a chain's records are a chunk apart; a third shard holds the first one's
    records in reverse order (rounds descending)."""
    from instruct_pt import world

    small = {"n_people": 20, "n_drugs": 12, "n_companies": 12, "n_ft_examples": 20}
    texts = [r["text"] for r in world.generate_dataset("raw_biomedicine", small)]
    pairs = [
        [{"question": p["question"], "answer": p["answer"]} for p in r["pairs"]]
        for r in world.generate_dataset("synth_ft", small)
    ]
    paths = []
    for s in range(2):
        shard = texts[s::2]
        chunk = -(-len(shard) // 3)
        chains: list[int] = []
        recs = []
        for pos, text in enumerate(shard):
            rnd, i = divmod(pos, chunk)
            p = [] if pos % 6 == 5 else pairs[(pos + s) % len(pairs)][: 1 + pos % 3]
            chain = pos if rnd == 0 or not p or pos % 4 == 0 else chains[i]
            if i < len(chains):
                chains[i] = chain
            else:
                chains.append(chain)
            recs.append({**_rec(pos, chain, rnd + 1, p, text), "id": f"s{s}-{pos}"})
        write_jsonl(tmp / f"shard{s}.jsonl", recs)
        paths.append(str(tmp / f"shard{s}.jsonl"))
        if s == 0:
            write_jsonl(tmp / "shard0r.jsonl", [{**r, "id": r["id"] + "r"} for r in reversed(recs)])
    return [*paths, str(tmp / "shard0r.jsonl")]


def _digest(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]


def test_streaming_writes_the_bytes_of_the_in_memory_version(tmp_path):
    """The sha256 values were computed once with the pre-streaming code (all chains in memory)."""
    shards = _synth_shards(tmp_path)
    assert [json.loads(line)["chain"] for line in open(shards[0])] == [
        *(0, 1, 2, 3),
        *(4, 5, 2, 3),
        *(8, 5, 2, 11),
    ]  # chains 2, 3 and 5 span rounds, a chunk (4 records) apart
    got = {}
    for ctx in (True, False):
        out, stats = tmp_path / f"aug{ctx}.jsonl", tmp_path / f"aug{ctx}.stats.json"
        templify(shards, str(out), 12345, include_context=ctx, stats_path=str(stats))
        got[ctx] = (_digest(out), _digest(stats))
    assert got == {
        True: ("cfe9dca5aa742256", "6665255be154cc45"),
        False: ("9a54cd45cf386b89", "b0006e3ec7dc0500"),
    }
    # chains in order of first appearance: 0, 1, 2 (pos 2 6 10), 3 (3 7), 4, 5 (5 without pairs,
    # stays raw, then 9), 8, 11 (without pairs)
    out = [r["id"] for r in read_jsonl(tmp_path / "augTrue.jsonl")]
    assert out[:9] == ["s0-0", "s0-1", "s0-2", "s0-3", "s0-4", "s0-5", "s0-9", "s0-8", "s0-11"]


def test_ft_collection_streams_the_same_bytes(tmp_path):
    """templify_ft_collection on world synth_ft records; hashes from the pre-streaming code."""
    from instruct_pt import world

    small = {"n_people": 20, "n_drugs": 12, "n_companies": 12, "n_ft_examples": 20}
    recs = sorted(world.generate_dataset("synth_ft", small), key=lambda r: r["dataset"])
    write_jsonl(tmp_path / "ft.jsonl", recs)
    got = {}
    for shots in (1, 3):
        out, stats = tmp_path / f"t{shots}.jsonl", tmp_path / f"t{shots}.json"
        templify_ft_collection(str(tmp_path / "ft.jsonl"), str(out), 7, shots, str(stats))
        got[shots] = (_digest(out), _digest(stats))
    assert got == {
        1: ("5ff78609cf76e445", "81d7ac7e10c9883d"),
        3: ("5cbf78aab763732f", "b5dee143b745b458"),
    }


def test_an_empty_output_is_an_error(tmp_path):
    write_jsonl(tmp_path / "none.jsonl", [])
    with pytest.raises(DataError, match=r"o\.jsonl: no texts from 0 chains.*no records"):
        templify([str(tmp_path / "none.jsonl")], str(tmp_path / "o.jsonl"), seed=0)
    write_jsonl(
        tmp_path / "s.jsonl",
        [
            _rec(0, 0, 1, []),
            _rec(1, 1, 1, [{"question": "Why?\nLet's think step by step.", "answer": "no final"}]),
        ],
    )
    with pytest.raises(
        DataError,
        match=r"no texts from 2 chains .*'no_pairs_without_context': 2.*include_context=false",
    ):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), 0, include_context=False)
    assert not (tmp_path / "o.jsonl").exists()


def test_chain_and_round_must_be_integers(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [_rec(0, 0, 1, [FREE]), _rec(1, "c1", 1, [FREE])])
    with pytest.raises(DataError, match=r"s\.jsonl:2: 'chain' must be an integer, got 'c1'"):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)


def test_workers_and_batches_do_not_change_the_bytes(tmp_path, monkeypatch):
    from instruct_pt import templify as module

    shards = _synth_shards(tmp_path)
    monkeypatch.setattr(module, "_CHAINS_PER_BATCH", 2)
    monkeypatch.setattr(module, "POOL_MIN_BYTES", 0)
    out, stats = tmp_path / "w2.jsonl", tmp_path / "w2.stats.json"
    templify(shards, str(out), 12345, stats_path=str(stats), num_workers=2)
    # the single-process, all-in-memory digests of test_streaming_writes_the_bytes_...
    assert (_digest(out), _digest(stats)) == ("cfe9dca5aa742256", "6665255be154cc45")
