"""pack(): BOS + ids + EOS per document, cut into seq_len rows, streamed, deterministic bytes."""

import hashlib
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, write_jsonl  # noqa: E402
from instruct_pt.data.packing import PackedDataset, pack  # noqa: E402
from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer  # noqa: E402

TEXTS = [f"document {i} says " + "word " * (i % 7) + "end." for i in range(50)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("p")
    write_jsonl(
        tmp / "texts.jsonl", [{"id": str(i), "text": t, "source": "x"} for i, t in enumerate(TEXTS)]
    )
    prepare_tokenizer(
        {"source": "train", "vocab_size": 300}, [str(tmp / "texts.jsonl")], str(tmp / "tok"), 0
    )
    return tmp, load_tokenizer(str(tmp / "tok"))


def _expected_stream(tok, texts):
    out = []
    for t in texts:
        out += [1] + tok(t, add_special_tokens=False)["input_ids"] + [2]
    return np.array(out)


def test_rows_are_the_document_stream_cut_to_seq_len(env):
    tmp, tok = env
    meta = pack(str(tmp / "texts.jsonl"), str(tmp / "tok"), str(tmp / "out"), seq_len=32, seed=0)
    stream = _expected_stream(tok, TEXTS)
    n = len(stream) // 32
    assert meta["n_sequences"] == n and meta["tokens"] == n * 32
    assert meta["dropped_tail_tokens"] == len(stream) - n * 32
    assert meta["documents"] == len(TEXTS) and meta["dtype"] == "uint16"
    assert (meta["bos_id"], meta["eos_id"], meta["vocab_size"]) == (1, 2, len(tok))
    ds = PackedDataset(str(tmp / "out"))
    assert ds.data.shape == (n, 32) and len(ds) == n
    assert np.array_equal(np.asarray(ds.data).reshape(-1), stream[: n * 32])
    assert read_json(tmp / "out" / "meta.json") == meta


def test_without_bos_eos(env, tmp_path):
    tmp, tok = env
    meta = pack(
        str(tmp / "texts.jsonl"),
        str(tmp / "tok"),
        str(tmp_path),
        16,
        0,
        add_bos=False,
        add_eos=False,
    )
    stream = np.concatenate([tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS])
    assert meta["tokens"] + meta["dropped_tail_tokens"] == len(stream)
    assert not np.isin(PackedDataset(str(tmp_path)).data, [1, 2]).any()


def _digest(d):
    return hashlib.sha256(open(os.path.join(d, "tokens.bin"), "rb").read()).hexdigest()


def test_workers_do_not_change_the_bytes(env, tmp_path):
    tmp, _ = env
    src, tok = str(tmp / "texts.jsonl"), str(tmp / "tok")
    pack(src, tok, str(tmp_path / "a"), 24, 0)
    pack(src, tok, str(tmp_path / "b"), 24, 0, num_workers=2, chunk_docs=7)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(1, 60), seq_len=st.integers(2, 90))
def test_chunking_never_changes_the_output(env, tmp_path_factory, chunk, seq_len):
    tmp, tok = env
    out = tmp_path_factory.mktemp("h")
    meta = pack(
        str(tmp / "texts.jsonl"), str(tmp / "tok"), str(out / "a"), seq_len, 0, chunk_docs=chunk
    )
    stream = _expected_stream(tok, TEXTS)
    assert meta["tokens"] + meta["dropped_tail_tokens"] == len(stream)
    assert meta["dropped_tail_tokens"] < seq_len
    got = np.fromfile(out / "a" / "tokens.bin", dtype=np.uint16)
    assert np.array_equal(got, stream[: meta["tokens"]])


def test_empty_texts_are_dropped_and_counted(env, tmp_path):
    tmp, _ = env
    write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "text": "end."}, {"id": "b", "text": ""}])
    meta = pack(str(tmp_path / "t.jsonl"), str(tmp / "tok"), str(tmp_path / "o"), 2, 0)
    assert meta["documents"] == 1 and meta["dropped"] == {"empty_text": 1}


def test_bad_line_names_file_and_line(env, tmp_path):
    tmp, _ = env
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"id": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        pack(str(tmp_path / "bad.jsonl"), str(tmp / "tok"), str(tmp_path / "o"), 8, 0)
    assert not (tmp_path / "o" / "tokens.bin").exists()


def test_packed_dataset_rejects_a_truncated_file(env, tmp_path):
    tmp, _ = env
    pack(str(tmp / "texts.jsonl"), str(tmp / "tok"), str(tmp_path), 32, 0)
    data = (tmp_path / "tokens.bin").read_bytes()
    (tmp_path / "tokens.bin").write_bytes(data[:-2])
    with pytest.raises(DataError, match="bytes"):
        PackedDataset(str(tmp_path))


def test_ordered_map_keeps_order_and_reads_ahead_only_a_window():
    from multiprocessing.pool import ThreadPool

    from instruct_pt.data.packing import ordered_map

    consumed: list[int] = []

    def items():
        for i in range(50):
            consumed.append(i)
            yield i

    with ThreadPool(2) as pool:
        results = ordered_map(pool, lambda x: x * x, items(), 3)
        assert next(results) == 0 and len(consumed) == 3  # not the whole input (imap would)
        assert list(results) == [i * i for i in range(1, 50)]
