"""build_mixture: repeats, 1:1-by-token matching of whole documents, deterministic shuffling."""

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, read_jsonl, write_jsonl  # noqa: E402
from instruct_pt.data.mixtures import build_mixture  # noqa: E402
from instruct_pt.data.packing import pack  # noqa: E402
from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    raw = [
        {"id": f"r{i}", "text": f"raw text {i} " + "lorem ipsum " * (1 + i % 5), "meta": {}}
        for i in range(40)
    ]
    ft = [{"id": f"f{i}", "text": f"Question {i}? Answer {i}."} for i in range(6)]
    ins = [
        {"id": f"q{i}", "question": f"What is {i}?", "response": f"It is {i}."} for i in range(5)
    ]
    for name, recs in (("raw", raw), ("ft", ft), ("ins", ins)):
        write_jsonl(tmp / f"{name}.jsonl", recs)
    paths = [str(tmp / f"{n}.jsonl") for n in ("raw", "ft")]
    prepare_tokenizer({"source": "train", "vocab_size": 300}, paths, str(tmp / "tok"), 0)
    return tmp, load_tokenizer(str(tmp / "tok"))


def _build(tmp, comps, seed=0, tag="m"):
    out = tmp / tag
    manifest = build_mixture(
        tag, comps, str(tmp / "tok"), str(out / "texts.jsonl"), str(out / "manifest.json"), seed
    )
    return manifest, read_jsonl(out / "texts.jsonl")


def _ntok(tok, text):
    return len(tok(text, add_special_tokens=False)["input_ids"]) + 2  # + BOS + EOS


def test_repeat_counts_documents_and_tokens(env):
    tmp, tok = env
    comps = [
        {"name": "raw", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {"name": "ft", "path": str(tmp / "ft.jsonl"), "format": "text", "repeat": 4},
    ]
    manifest, texts = _build(tmp, comps, tag="rep")
    ft_tokens = sum(_ntok(tok, r["text"]) for r in read_jsonl(tmp / "ft.jsonl"))
    assert manifest["sources"]["ft"]["documents"] == 24
    assert manifest["sources"]["ft"]["unique_documents"] == 6
    assert manifest["sources"]["ft"]["tokens"] == 4 * ft_tokens
    assert manifest["total_documents"] == len(texts) == 64
    assert len({r["id"] for r in texts}) == len(texts)  # copies get "#k" ids
    assert Counter(r["source"] for r in texts) == {"raw": 40, "ft": 24}
    assert sum(_ntok(tok, r["text"]) for r in texts) == manifest["total_tokens"]
    assert read_json(tmp / "rep" / "manifest.json") == manifest


def test_instruction_records_become_question_space_response(env):
    tmp, _ = env
    comps = [{"name": "ins", "path": str(tmp / "ins.jsonl"), "format": "instruction"}]
    _, texts = _build(tmp, comps, tag="ins")
    assert sorted(r["text"] for r in texts) == sorted(f"What is {i}? It is {i}." for i in range(5))
    assert all(set(r) == {"id", "text", "source"} for r in texts)


@settings(max_examples=10, deadline=None)
@given(ratio=st.sampled_from([0.1, 0.5, 1.0, 2.5]), seed=st.integers(0, 5))
def test_match_reaches_ratio_with_whole_documents(env, ratio, seed):
    tmp, tok = env
    comps = [
        {"name": "raw", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {
            "name": "ins",
            "path": str(tmp / "ins.jsonl"),
            "format": "instruction",
            "match": "raw",
            "ratio": ratio,
        },
    ]
    manifest, texts = _build(tmp, comps, seed=seed, tag=f"match{seed}")
    target = ratio * manifest["sources"]["raw"]["tokens"]
    ins_docs = [r for r in texts if r["source"] == "ins"]
    got = sum(_ntok(tok, r["text"]) for r in ins_docs)
    assert got == manifest["sources"]["ins"]["tokens"] >= target
    assert (
        got - max(_ntok(tok, r["text"]) for r in ins_docs) < target
    )  # stops at the first doc reaching it
    # the 5 instruction docs are far fewer tokens than the raw corpus: they are cycled, whole
    originals = {f"What is {i}? It is {i}." for i in range(5)}
    assert {r["text"] for r in ins_docs} <= originals
    assert manifest["sources"]["ins"]["unique_documents"] == len({r["text"] for r in ins_docs})


def test_mixture_tokens_equal_what_packing_sees(env):
    tmp, _ = env
    comps = [
        {"name": "raw", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {"name": "ins", "path": str(tmp / "ins.jsonl"), "format": "instruction", "match": "raw"},
    ]
    manifest, _ = _build(tmp, comps, tag="packcheck")
    meta = pack(
        str(tmp / "packcheck" / "texts.jsonl"), str(tmp / "tok"), str(tmp / "packed"), 16, 0
    )
    assert meta["tokens"] + meta["dropped_tail_tokens"] == manifest["total_tokens"]


def test_same_seed_same_bytes_other_seed_other_order(env):
    tmp, _ = env
    comps = [
        {"name": "raw", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {"name": "ft", "path": str(tmp / "ft.jsonl"), "format": "text", "repeat": 2},
    ]
    _build(tmp, comps, seed=1, tag="s1a")
    _build(tmp, comps, seed=1, tag="s1b")
    _build(tmp, comps, seed=2, tag="s2")
    a, b, c = ((tmp / t / "texts.jsonl").read_bytes() for t in ("s1a", "s1b", "s2"))
    assert a == b and a != c
    assert sorted(a.splitlines()) == sorted(c.splitlines())


def test_empty_texts_are_dropped_and_counted(env, tmp_path):
    tmp, _ = env
    write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "  "}])
    comps = [{"name": "e", "path": str(tmp_path / "e.jsonl"), "format": "text"}]
    m = build_mixture(
        "e", comps, str(tmp / "tok"), str(tmp_path / "t.jsonl"), str(tmp_path / "m.json"), 0
    )
    assert m["sources"]["e"]["documents"] == 1 and m["sources"]["e"]["dropped"] == {"empty_text": 1}


@pytest.mark.parametrize(
    "comps, message",
    [
        ([{"name": "a", "path": "RAW", "format": "text", "match": "zz"}], "unknown"),
        (
            [
                {"name": "a", "path": "RAW", "format": "text", "match": "b"},
                {"name": "b", "path": "RAW", "format": "text", "match": "a"},
            ],
            "cycle",
        ),
        ([{"name": "a", "path": "RAW", "format": "text", "match": "a", "repeat": 2}], "repeat"),
        ([{"name": "a", "path": "RAW", "format": "html"}], "format"),
        ([{"name": "a", "path": "RAW"}], "format"),
        ([{"name": "a", "path": "INS", "format": "text"}], r"ins\.jsonl:1"),
        ([{"name": "a", "path": "RAW", "format": "instruction"}], r"raw\.jsonl:1"),
        ([], "no components"),
    ],
)
def test_bad_mixtures_raise(env, tmp_path, comps, message):
    tmp, _ = env
    for c in comps:
        c["path"] = str(tmp / ("raw.jsonl" if c["path"] == "RAW" else "ins.jsonl"))
    with pytest.raises(DataError, match=message):
        build_mixture(
            "x", comps, str(tmp / "tok"), str(tmp_path / "t.jsonl"), str(tmp_path / "m.json"), 0
        )


def test_match_a_list_counts_the_sum_of_the_matched_components(env):
    """Domain mixing: instructions 1:1 with the augmented texts AND the texts left raw."""
    tmp, _ = env
    comps = [
        {"name": "aug", "path": str(tmp / "raw.jsonl"), "format": "text"},
        {"name": "rest", "path": str(tmp / "ft.jsonl"), "format": "text"},
        {
            "name": "ins",
            "path": str(tmp / "ins.jsonl"),
            "format": "instruction",
            "match": ["aug", "rest"],
        },
    ]
    manifest, _ = _build(tmp, comps, tag="matchlist")
    src = manifest["sources"]
    target = src["aug"]["tokens"] + src["rest"]["tokens"]
    assert src["ins"]["tokens"] >= target > src["aug"]["tokens"]
    assert src["ins"]["match"] == ["aug", "rest"]


def test_an_empty_mixture_is_an_error_naming_its_components(env):
    tmp, _ = env
    (tmp / "empty.jsonl").write_text("")
    comps = [
        {"name": "aug", "path": str(tmp / "empty.jsonl"), "format": "text"},
        {"name": "ins", "path": str(tmp / "ins.jsonl"), "format": "instruction", "match": "aug"},
    ]
    with pytest.raises(DataError, match=r"no documents.*aug .*empty.jsonl"):
        _build(tmp, comps, tag="empty")


# ----------------------------------------------------------------------------- streaming, workers

WORLD = {"n_people": 20, "n_drugs": 12, "n_companies": 12, "n_ft_examples": 20}


def _world_mixture_inputs(tmp) -> list[dict]:
    """Components from the miniature world (with an empty text and a blank line) and a BPE."""
    from instruct_pt.world import generate_dataset

    raw = generate_dataset("raw_general", WORLD)
    aug = [{"id": r["id"], "text": r["text"]} for r in generate_dataset("raw_biomedicine", WORLD)]
    aug.insert(3, {"id": "empty", "text": "  "})
    ft = [{"id": r["id"], "text": r["context"]} for r in generate_dataset("synth_ft", WORLD)]
    write_jsonl(tmp / "w_raw.jsonl", raw)
    write_jsonl(tmp / "w_aug.jsonl", aug)
    with open(tmp / "w_aug.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    write_jsonl(tmp / "w_ft.jsonl", ft)
    write_jsonl(tmp / "w_ins.jsonl", generate_dataset("general_instructions", WORLD))
    paths = [str(tmp / "w_raw.jsonl"), str(tmp / "w_aug.jsonl")]
    prepare_tokenizer({"source": "train", "vocab_size": 400}, paths, str(tmp / "wtok"), 0)
    return [
        {"name": "raw", "path": str(tmp / "w_raw.jsonl"), "format": "text"},
        {"name": "aug", "path": str(tmp / "w_aug.jsonl"), "format": "text"},
        {"name": "ft", "path": str(tmp / "w_ft.jsonl"), "format": "text", "repeat": 2},
        {
            "name": "ins",
            "path": str(tmp / "w_ins.jsonl"),
            "format": "instruction",
            "match": ["raw", "aug"],
            "ratio": 1.5,
        },
    ]


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]


def test_workers_and_batches_keep_the_bytes_of_the_single_process_version(tmp_path, monkeypatch):
    """The sha256 values were computed once with the code before the worker pool existed (and
    recomputed when the world's synth_ft records changed: one reserved person per record, and
    the manifest gained each component's ``head``)."""
    from instruct_pt.data import mixtures

    comps = _world_mixture_inputs(tmp_path)
    pools = []

    def counting_pool(*args):
        pools.append(args)
        return worker_pool(*args)

    worker_pool = mixtures.worker_pool
    monkeypatch.setattr(mixtures, "worker_pool", counting_pool)
    got = {}
    for workers, batch in ((1, 1024), (2, 7)):
        monkeypatch.setattr(mixtures, "_BATCH", batch)
        monkeypatch.setattr(mixtures, "POOL_MIN_BYTES", 0)
        out = tmp_path / f"w{workers}"
        build_mixture(
            "m",
            comps,
            str(tmp_path / "wtok"),
            str(out / "texts.jsonl"),
            str(out / "manifest.json"),
            3,
            num_workers=workers,
        )
        got[workers] = (_sha(out / "texts.jsonl"), _sha(out / "manifest.json"))
    assert got[1] == got[2] == ("336cbd7122cf7832", "0847671733068ffb")
    assert [n for _, n in pools] == [2]  # the two-worker run did use a pool
    manifest = read_json(tmp_path / "w2" / "manifest.json")
    assert manifest["sources"]["aug"]["dropped"] == {"empty_text": 1}
