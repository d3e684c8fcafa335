"""prepare_tokenizer: a trained byte-level BPE with Mistral's specials, local copies, hub loading."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from instruct_pt.common import DataError, write_jsonl  # noqa: E402
from instruct_pt.data.tokenizer import load_tokenizer, prepare_tokenizer, record_texts  # noqa: E402

WORDS = ["alpha", "beta", "gamma", "delta", "Paris", "Oslo", "born", "studied", "the", "in"]


def _corpus(tmp: Path) -> list[str]:
    raw = [
        {"id": f"r{i}", "text": " ".join(WORDS[(i * j) % len(WORDS)] for j in range(12))}
        for i in range(60)
    ]
    synth = [
        {
            "id": "s0",
            "dataset": "d",
            "task_type": "qa",
            "seen": True,
            "context": "zebra zebra zebra",
            "pairs": [{"question": "Where quokka?", "answer": "quokka quokka", "format": "free"}],
        }
    ]
    instr = [{"id": "i0", "question": "Name a narwhal.", "response": "narwhal narwhal"}]
    paths = [tmp / "raw.jsonl", tmp / "synth.jsonl", tmp / "instr.jsonl"]
    for p, recs in zip(paths, [raw, synth, instr], strict=True):
        write_jsonl(p, recs)
    return [str(p) for p in paths]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tok")
    paths = _corpus(tmp)
    stats = prepare_tokenizer(
        {"source": "train", "vocab_size": 320}, paths, str(tmp / "tok"), seed=0
    )
    return tmp, paths, stats, load_tokenizer(str(tmp / "tok"))


def test_specials_follow_mistral_convention(trained):
    _, _, stats, tok = trained
    assert tok.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<pad>"]) == [0, 1, 2, 3]
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 3)
    assert stats["vocab_size"] == len(tok) <= 320  # BPE stops early when merges run out
    assert (stats["bos_id"], stats["eos_id"], stats["pad_id"]) == (1, 2, 3)


def test_add_special_tokens_prepends_bos_only(trained):
    tok = trained[3]
    plain = tok("alpha beta", add_special_tokens=False)["input_ids"]
    assert tok("alpha beta")["input_ids"] == [1] + plain
    assert 2 not in tok("alpha beta")["input_ids"]


def test_literal_special_strings_map_to_their_ids(trained):
    tok = trained[3]
    ids = tok("<s> <CON> alpha </CON>\n\n</s>", add_special_tokens=False)["input_ids"]
    assert ids[0] == 1 and ids[-1] == 2
    assert ids.count(1) == 1 and ids.count(2) == 1  # "<CON>" is ordinary text, not a special


def test_synth_and_instruction_fields_are_learned(trained):
    tok = trained[3]
    vocab = tok.get_vocab()
    # Words that appear only in a pair answer / a response must have been merged into tokens.
    for word in ("quokka", "narwhal", "zebra"):
        assert len(tok(" " + word, add_special_tokens=False)["input_ids"]) <= 2, word
    assert any("alpha" in t for t in vocab)


def test_record_texts_covers_each_record_type():
    synth = {"context": "c", "pairs": [{"question": "q", "answer": "a"}]}
    assert list(record_texts(synth, "f:1")) == ["c", "q", "a"]
    assert list(record_texts({"question": "q", "response": "r"}, "f:1")) == ["q", "r"]
    assert list(record_texts({"instruction": "i", "response": "r"}, "f:1")) == ["i", "r"]
    with pytest.raises(DataError, match="f:7"):
        list(record_texts({"id": "x"}, "f:7"))


def test_bad_record_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2"):
        prepare_tokenizer({"source": "train", "vocab_size": 300}, [str(p)], str(tmp_path / "t"), 0)


def test_training_is_byte_identical_across_processes(trained):
    tmp, paths, stats, _ = trained
    code = (
        "import sys, json; from instruct_pt.data.tokenizer import prepare_tokenizer; "
        "prepare_tokenizer({'source': 'train', 'vocab_size': 320}, json.loads(sys.argv[1]), sys.argv[2], 0)"
    )
    out = tmp / "tok_again"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, json.dumps(paths), str(out)], check=True, env=env)
    a = hashlib.sha256((tmp / "tok" / "tokenizer.json").read_bytes()).hexdigest()
    b = hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest()
    assert a == b == stats["tokenizer_sha256"]


def test_local_source_copies_tokenizer(trained, tmp_path):
    tmp = trained[0]
    stats = prepare_tokenizer(
        {"source": "local", "path": str(tmp / "tok")}, [], str(tmp_path / "c"), 0
    )
    assert stats["vocab_size"] == len(trained[3])
    copy = load_tokenizer(str(tmp_path / "c"))
    assert copy("gamma delta")["input_ids"] == trained[3]("gamma delta")["input_ids"]


def test_hub_source_passes_id_and_revision(trained, tmp_path, monkeypatch):
    import transformers

    calls = []
    local = str(trained[0] / "tok")
    real = transformers.AutoTokenizer.from_pretrained

    def fake(name, **kw):
        calls.append((name, kw.get("revision")))
        tok = real(local)
        tok.pad_token = None  # like Mistral-7B, which ships without a pad token
        return tok

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    spec = {"source": "hub", "id": "mistralai/Mistral-7B-v0.1", "revision": "abc"}
    stats = prepare_tokenizer(spec, [], str(tmp_path / "h"), 0)
    assert calls[0] == ("mistralai/Mistral-7B-v0.1", "abc")
    assert stats["pad_id"] == stats["eos_id"] == 2  # padding falls back to EOS


@pytest.mark.parametrize(
    "spec", [{"source": "nope"}, {"source": "hub"}, {"source": "local"}, {"source": "train"}]
)
def test_bad_specs_raise(spec, tmp_path):
    with pytest.raises(DataError):
        prepare_tokenizer(spec, [], str(tmp_path / "x"), 0)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_encoding_is_lossless(trained_tok_for_hypothesis, text):
    tok = trained_tok_for_hypothesis
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert 0 not in ids  # byte-level: nothing is ever <unk>
    assert tok.decode(ids) == text


@pytest.fixture(scope="module")
def trained_tok_for_hypothesis(trained):
    return trained[3]


def test_prompt_final_newlines_encode_as_inside_a_text(tmp_path):
    """The synthesizer prompt ends with "\\n\\n"; its tokens must be those the same characters get
    inside a training example, or a greedy model never reaches "<QUE>"."""
    from instruct_pt.data.tokenizer import train_bpe

    texts = [f"<s> <CON> text {i} </CON>\n\n<QUE> q{i}? <ANS> a{i} </END></s>" for i in range(200)]
    texts += [f"A paragraph {i}.\n\n" for i in range(200)]  # teaches GPT-2 BPE a "\n\n" merge
    tok = train_bpe(iter(texts), vocab_size=400)
    prompt = "<s> <CON> text 3 </CON>\n\n"
    full = tok(prompt + "<QUE> q3? <ANS> a3 </END>", add_special_tokens=False)["input_ids"]
    head = tok(prompt, add_special_tokens=False)["input_ids"]
    assert full[: len(head)] == head


_SAVE_BOTH = """
import sys
from instruct_pt.training.modeling import build_model, save_model
from instruct_pt.data.tokenizer import prepare_tokenizer
tok, out = sys.argv[1], sys.argv[2]
prepare_tokenizer({"source": "local", "path": tok}, [], out + "/tok", seed=0)
arch = {"family": "mistral", "hidden_size": 16, "num_layers": 1, "num_heads": 2,
        "num_kv_heads": 1, "intermediate_size": 32, "max_position_embeddings": 64,
        "tie_embeddings": True, "rope_theta": 10000.0}
save_model(build_model(arch, out + "/tok", 0), out + "/tok", out + "/model")
"""


def test_saved_files_do_not_depend_on_hf_hub_offline(trained, tmp_path):
    """A tokenizer copy and a saved model folder are the same bytes with and without
    HF_HUB_OFFLINE (it used to leave `local_files_only` in tokenizer_config.json)."""
    tmp = trained[0]
    src = str(Path(__file__).resolve().parents[1] / "src")
    outs = {}
    for name, offline in (("offline", {"HF_HUB_OFFLINE": "1"}), ("online", {})):
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | offline
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        out = tmp_path / name
        cmd = [sys.executable, "-c", _SAVE_BOTH, str(tmp / "tok"), str(out)]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        outs[name] = {
            p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
        }
    assert {"tok/tokenizer_config.json", "model/tokenizer_config.json"} <= set(outs["offline"])
    assert outs["offline"] == outs["online"]
    config = json.loads(outs["offline"]["model/tokenizer_config.json"])
    assert "local_files_only" not in config and "is_local" not in config
    # the loader's state is gone from the files, not from the loaded tokenizer
    assert load_tokenizer(str(tmp_path / "offline" / "tok")).bos_token == "<s>"
