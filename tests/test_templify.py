"""Templify: chains -> pre-training texts, the official seeds/modes/acceptance, determinism.

Expected values marked "official" were obtained by running the official code
(microsoft/LMOps instruction_pretrain: ``read_compre.cook_pt_entries``, ``read_compre_pt.get_patterns``
/ ``format_options`` / ``parse_QA_list``) on the same inputs; each case says why it returns that.
"""

import json

import pytest

from instruct_pt.common import DataError, read_jsonl, write_jsonl
from instruct_pt.synthesis.multi_round import collection_positions
from instruct_pt.synthesis.protocol import format_cot, format_mc_question
from instruct_pt.synthesis.templates import (
    MODES_FEW_PAIRS,
    MODES_MANY_PAIRS,
    draw_mode,
    shuffled_options,
)
from instruct_pt.synthesis.templify import iter_chains, templify, templify_ft_collection

FREE = {"question": "Who founded Zorvia?", "answer": "Ann Quill"}
MC = {"question": format_mc_question("Which river?", ["Olt", "Mures", "Siret"]), "answer": "Olt"}
COT = dict(
    zip(
        ("question", "answer"),
        format_cot("How old is it?", "It was built in 1900 and now is 2000.", "100 years"),
        strict=True,
    )
)


def _rec(i, chain, rnd, pairs, text=None, position=None, slot=0):
    return {
        "id": f"d{i}",
        "text": text or f"Raw text {i}.",
        "chain": chain,
        "round": rnd,
        "position": i if position is None else position,
        "slot": slot,
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
    # official: 5% of ALL chains are inverted, all of them Classic (see the exact count below)
    for stats in (s_many, s_few):
        assert abs(stats["inverted"] / n - 0.05) < 0.015


def test_chain_becomes_one_text_in_round_order(tmp_path):
    recs = [
        _rec(1, 0, 2, [MC], "Second text.", position=0, slot=1),
        _rec(0, 0, 1, [FREE, COT], "First text.", position=0, slot=0),
        _rec(2, 2, 1, [], "Lonely raw text.", position=1),
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
    assert stats["dropped_pairs"] == {"cot_malformed": 2}


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
    """Shards laid out as synthesize_shard writes them (3 rounds): round r of chunk index i
    continues the chain at index i, so a chain's records are a chunk apart; positions and slots
    from :func:`collection_positions`. A third shard holds the first one's records in reverse
    order."""
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
        places = collection_positions(len(shard), 3)
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
            position, slot = places[pos]
            rec = _rec(pos, chain, rnd + 1, p, text, position=position, slot=slot)
            recs.append({**rec, "id": f"s{s}-{pos}"})
        write_jsonl(tmp / f"shard{s}.jsonl", recs)
        paths.append(str(tmp / f"shard{s}.jsonl"))
        if s == 0:
            write_jsonl(tmp / "shard0r.jsonl", [{**r, "id": r["id"] + "r"} for r in reversed(recs)])
    return [*paths, str(tmp / "shard0r.jsonl")]


def test_file_order_does_not_matter_and_shards_continue_the_positions(tmp_path):
    shards = _synth_shards(tmp_path)
    assert [json.loads(line)["chain"] for line in open(shards[0])] == [
        *(0, 1, 2, 3),
        *(4, 5, 2, 3),
        *(8, 5, 2, 11),
    ]  # chains 2, 3 and 5 span rounds, a chunk (4 records) apart
    fwd, rev = tmp_path / "f.jsonl", tmp_path / "r.jsonl"
    templify(shards[:1], str(fwd), 12345)
    templify(shards[2:], str(rev), 12345)
    texts = [r["text"] for r in read_jsonl(fwd)]
    assert texts == [r["text"] for r in read_jsonl(rev)]
    # 12 texts, 3 rounds of 4: positions 0-3; by position: the chain's augmented text, then
    # its raw texts; position 1 holds chain 1 (s0-1) and chain 5 (s0-5 without pairs, then s0-9)
    ids = [r["id"] for r in read_jsonl(fwd)]
    assert ids[:4] == ["s0-0", "s0-4", "s0-8", "s0-1"]
    # a second shard's collections get the seeds after the first's: seeds 12345 + 0..3, then + 4..
    seeds = [seed for seed, _ in iter_chains(shards[:2], 12345)]
    assert seeds == sorted(seeds) and seeds[0] == 12345 and max(seeds) == 12345 + 3 + 4


def test_workers_and_batches_do_not_change_the_bytes(tmp_path, monkeypatch):
    from instruct_pt.synthesis import templify as module

    shards = _synth_shards(tmp_path)
    one, one_stats = tmp_path / "w1.jsonl", tmp_path / "w1.stats.json"
    templify(shards, str(one), 12345, stats_path=str(one_stats))
    monkeypatch.setattr(module, "_CHAINS_PER_BATCH", 2)
    monkeypatch.setattr(module, "POOL_MIN_BYTES", 0)
    out, stats = tmp_path / "w2.jsonl", tmp_path / "w2.stats.json"
    templify(shards, str(out), 12345, stats_path=str(stats), num_workers=2)
    assert out.read_bytes() == one.read_bytes() and stats.read_bytes() == one_stats.read_bytes()


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


def test_chain_position_and_slot_must_be_integers(tmp_path):
    write_jsonl(tmp_path / "s.jsonl", [_rec(0, 0, 1, [FREE]), _rec(1, "c1", 1, [FREE])])
    with pytest.raises(DataError, match=r"s\.jsonl:2: 'chain' must be an integer, got 'c1'"):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)
    write_jsonl(tmp_path / "s.jsonl", [{**_rec(0, 0, 1, [FREE]), "slot": 0.5}])
    with pytest.raises(DataError, match=r"s\.jsonl:1: 'slot' must be an integer"):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)
    write_jsonl(tmp_path / "s.jsonl", [_rec(0, 0, 1, [FREE]), _rec(1, 1, 1, [FREE], position=0)])
    with pytest.raises(DataError, match=r"s\.jsonl: two records have the same position and slot"):
        templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=0)


# ----------------------------------------------------------------------------- the official draws


# (seed, mode with >= 2 pairs per text, inverted, mode with < 2 pairs, inverted): official
# get_patterns(pattern_dict, seed, min_num_of_QAs) for the collections at positions 3, 15, 19, 23
# 29, 46 of the README loop (seed = idx + 12345). One uniform u = Random(seed).random() decides
# both draws: 12348 has u < 0.05 (inverted, Classic in both tables); 12360 has u >= 0.95 (the last
# mode: Next_turn_dialog, or Dialog with few pairs); 12391 falls in Dialog's [0.80, 0.85) with
# many pairs but in Classic's [0, 0.95) with few.
OFFICIAL_MODES = [
    (12345, "classic", False, "classic", False),
    (12348, "classic", True, "classic", True),
    (12360, "next_turn_dialog", False, "dialog", False),
    (12364, "classic", True, "classic", True),
    (12368, "inline_fewshot", False, "classic", False),
    (12374, "numbered", False, "classic", False),
    (12391, "dialog", False, "classic", False),
]


@pytest.mark.parametrize("seed,many,many_inv,few,few_inv", OFFICIAL_MODES)
def test_mode_and_inversion_equal_the_official_draw(seed, many, many_inv, few, few_inv):
    assert draw_mode(seed, 2) == (many, many_inv)
    assert draw_mode(seed, 5) == (many, many_inv)
    assert draw_mode(seed, 1) == (few, few_inv)
    assert draw_mode(seed, 0) == (few, few_inv)


def test_inversion_is_classic_only_and_exactly_the_official_count():
    # official, seeds 0..19999 with min_num_of_QAs = 2: Classic 16185, Inline_FS 990,
    # Numbered_Questions 961, Dialog 942, Next_turn_dialog 922; 1081 inverted, all Classic
    counts: dict = {}
    inverted = 0
    for seed in range(20000):
        mode, inv = draw_mode(seed, 2)
        counts[mode] = counts.get(mode, 0) + 1
        inverted += inv
        assert not inv or mode == "classic"
    assert counts == {
        "classic": 16185,
        "inline_fewshot": 990,
        "numbered": 961,
        "dialog": 942,
        "next_turn_dialog": 922,
    }
    assert inverted == 1081


def test_option_shuffle_equals_the_official():
    # official format_options shuffles with random.Random(seed * idx), idx = the pair's index in
    # its text's parsed pairs: seed 12345, pair 2 -> Random(24690); every first pair -> Random(0)
    assert shuffled_options(["a", "b", "c", "d", "e"], 12345, 2) == ["b", "a", "d", "c", "e"]
    assert shuffled_options(["a", "b", "c", "d", "e"], 999, 0) == ["c", "b", "a", "e", "d"]
    assert shuffled_options(["red", "blue", "green"], 12346, 1) == ["red", "green", "blue"]


def _one_style(monkeypatch, item="upper"):
    """Pin our template bank to one choice per list (the official draws are not affected)."""
    from instruct_pt.synthesis import templates as module

    monkeypatch.setattr(
        module, "QA_PATTERNS", [module.QAPattern("Q: ", "{question}", "\n", "A: ", "\n\n")]
    )
    monkeypatch.setattr(module, "OPTION_HEADERS", ["Choices:"])
    monkeypatch.setattr(module, "OPTION_ITEMS", [item])
    monkeypatch.setattr(module, "OPTION_DELIMITERS", ["\n"])
    monkeypatch.setattr(module, "READ_FRAMES", [("{context}", "\n\n")])


def _cook(tmp_path, recs, seed=12345, **kw):
    write_jsonl(tmp_path / "s.jsonl", recs)
    stats = templify([str(tmp_path / "s.jsonl")], str(tmp_path / "o.jsonl"), seed=seed, **kw)
    return read_jsonl(tmp_path / "o.jsonl"), stats


def test_mc_answers_follow_the_official_option_rules(tmp_path, monkeypatch):
    _one_style(monkeypatch, "upper")
    options = ["red", "blue", "green"]
    pairs = [
        FREE,  # index 0
        {"question": format_mc_question("Colour of the sky?", options), "answer": "blue"},  # 1
        {"question": format_mc_question("Colour of grass?", options), "answer": "purple"},  # 2
        {"question": format_mc_question("Colour of snow?", options), "answer": "None"},  # 3
    ]
    out, stats = _cook(tmp_path, [_rec(1, 1, 1, pairs, "Text.")])  # position 1: seed 12346
    text = out[0]["text"]
    # pair 1: Random(12346 * 1) shuffles [red, blue, green] to [red, green, blue] (official);
    # lettered items, so the answer is blue's label "C." (official: item_names[match].strip())
    assert "Colour of the sky?\nChoices:\nA. red\nB. green\nC. blue\nA: C." in text
    # pair 2: "purple" is no option and no unanswerable phrase: the official drops the pair
    assert "Colour of grass?" not in text
    assert stats["dropped_pairs"] == {"mc_answer_not_an_option": 1}
    # pair 3: "None" is unanswerable: the answer becomes the collection's phrase,
    # Random(12346).choice(UNANSWERABLE_OPTIONS) = index 59 (official)
    assert text.endswith("A: not a single choice among those offered meets the specified criteria")


def test_bullet_items_keep_the_answer_text(tmp_path, monkeypatch):
    _one_style(monkeypatch, "bullet")
    mc = {"question": format_mc_question("Sky?", ["red", "blue"]), "answer": " blue"}
    out, _ = _cook(tmp_path, [_rec(0, 0, 1, [FREE, mc], "Text.")])
    # official: no distinct item names -> option_answer is the answer as given
    assert out[0]["text"].endswith("Choices:\n- red\n- blue\nA:  blue")  # Random(12345): unmoved


def test_chains_of_one_collection_share_its_seed_and_order(tmp_path):
    # position 0 holds a leftover chain (texts 5, 6: slots 0, 1) and its own chain broken off
    # (text 0 with pairs, text 3 without: slots 2, 3); position 1 one chain. Official order:
    # per chain its augmented text, then its raw texts, chains in collection order.
    recs = [
        _rec(0, 0, 1, [FREE], position=0, slot=2),
        _rec(1, 1, 1, [FREE], position=1, slot=0),
        _rec(3, 3, 2, [], position=0, slot=3),
        _rec(5, 5, 1, [FREE], position=0, slot=0),
        _rec(6, 5, 2, [FREE, MC], position=0, slot=1),
    ]
    write_jsonl(tmp_path / "s.jsonl", recs)
    chains = [
        (seed, [e["id"] for e in c]) for seed, c in iter_chains([str(tmp_path / "s.jsonl")], 7)
    ]
    assert chains == [(7, ["d5", "d6"]), (7, ["d0"]), (7, ["d3"]), (8, ["d1"])]
    out, stats = _cook(tmp_path, recs, seed=7)
    assert [(r["id"], r["source"]) for r in out] == [
        ("d5", "augmented"),
        ("d0", "augmented"),
        ("d3", "raw"),
        ("d1", "augmented"),
    ]
    assert stats["chains"] == 4


def test_raw_texts_of_a_chain_follow_it_latest_first(tmp_path):
    # a chain whose 2nd and 3rd texts lost all their pairs in templify (MC answers not among the
    # options): official cook_pt_entries prepends each raw text as it walks the chain backwards,
    # then the augmented text -> [augmented, text 3, text 2]
    bad = {"question": format_mc_question("Q?", ["x", "y"]), "answer": "z"}
    recs = [
        _rec(0, 0, 1, [FREE], position=0, slot=0),
        _rec(1, 0, 2, [bad], position=0, slot=1),
        _rec(2, 0, 3, [bad], position=0, slot=2),
    ]
    out, stats = _cook(tmp_path, recs)
    assert [r["id"] for r in out] == ["d0", "d2", "d1"]
    # the fewest kept pairs in the chain is 0, so the few-pairs modes apply (official min over
    # the chain's QA_lists after parse_QA_list)
    assert set(stats["modes"]) <= set(MODES_FEW_PAIRS)


def test_braces_in_pairs_are_not_template_slots(tmp_path, monkeypatch):
    _one_style(monkeypatch)
    cot = dict(
        zip(
            ("question", "answer"),
            format_cot("Why {answer}?", "{answer} because", "{question}"),
            strict=True,
        )
    )
    out, _ = _cook(tmp_path, [_rec(0, 0, 1, [cot, FREE], "Text {context}.")])
    text = out[0]["text"]
    assert "Text {context}." in text and "Why {answer}?" in text and "{answer} because" in text
