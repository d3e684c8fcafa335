"""The engine check of ``make check-vllm``: recorded prompts are regenerated with transformers and
every difference is either a near tie of the model's logits or reported as unexplained."""

import shutil

import pytest
import torch

from instruct_pt.common import write_jsonl
from instruct_pt.synthesis.engine_check import RecordingEngine, compare, divergence, main
from instruct_pt.synthesis.engines import TransformersEngine
from instruct_pt.synthesis.multi_round import synthesize_shard

PROMPT = "<s> <CON> The cat sat on the mat. </CON>\n\n"


@pytest.fixture(scope="module")
def tied_lm(tiny_lm, tmp_path_factory):
    """The tiny model with one output row copied: tokens A and B always have equal logits, and
    greedy decoding picks A (the lower id) at the prompt's first new position."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("tied")
    shutil.copytree(tiny_lm, out, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = tok(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    a = int(torch.argmax(logits))
    # a partner above A whose text is one token on its own, so re-encoding keeps it
    b = next(
        t
        for t in range(a + 1, len(tok))
        if tok(tok.decode([t]), add_special_tokens=False)["input_ids"] == [t]
    )
    with torch.no_grad():
        model.lm_head.weight[b] = model.lm_head.weight[a]
    model.save_pretrained(out)
    return str(out), a, b


def test_identical_engines_agree_on_every_recorded_prompt(tiny_lm, tmp_path):
    shard = tmp_path / "shard.jsonl"
    write_jsonl(shard, [{"id": f"t{i}", "text": f"Text number {i} about cats."} for i in range(6)])
    engine = RecordingEngine(TransformersEngine(tiny_lm, batch_size=4, max_model_len=64))
    synthesize_shard(
        str(shard), tiny_lm, str(tmp_path / "out.jsonl"), rounds=2, engine_cfg={},
        max_new_tokens=8, max_model_len=64, checkpoint_dir=str(tmp_path / "ck"), seed=0,
        engine=engine,
    )  # fmt: skip
    assert len(engine.calls) == 6  # every text prompted once, rounds included
    ref = TransformersEngine(tiny_lm, batch_size=2, max_model_len=64)
    report = compare(engine.calls, ref, max_new_tokens=8, tie_tolerance=1e-3)
    assert report["prompts"] == report["identical"] == 6
    assert report["unexplained"] == 0 and report["differences"] == []


def test_a_flipped_tie_is_explained_and_another_token_is_not(tied_lm):
    model_dir, a, b = tied_lm
    ref = TransformersEngine(model_dir, batch_size=1, max_model_len=64)
    first = ref.generate([PROMPT], 1)[0]
    assert ref.tokenizer(first, add_special_tokens=False)["input_ids"] == [a]

    tie = divergence(ref, PROMPT, first, ref.tokenizer.decode([b]), limit=63)
    assert tie["position"] == 0 and tie["margin"] == pytest.approx(0.0, abs=1e-6)
    report = compare([(PROMPT, ref.tokenizer.decode([b]))], ref, 1, tie_tolerance=1e-3)
    assert (report["identical"], report["near_ties"], report["unexplained"]) == (0, 1, 0)

    # any token other than A's twin is a real disagreement (positive margin: A is the argmax)
    other = next(
        t
        for t in range(len(ref.tokenizer))
        if t not in (a, b)
        and ref.tokenizer(ref.tokenizer.decode([t]), add_special_tokens=False)["input_ids"] == [t]
    )
    report = compare([(PROMPT, ref.tokenizer.decode([other]))], ref, 1, tie_tolerance=1e-3)
    assert report["unexplained"] == 1 and report["differences"][0]["margin"] > 0


def test_prefix_differences_report_no_margin(tiny_lm):
    ref = TransformersEngine(tiny_lm, batch_size=1, max_model_len=64)
    info = divergence(ref, PROMPT, "the cat", "the cat sat", limit=60)
    assert info["margin"] is None and info["ours_len"] < info["theirs_len"]


def test_cli_needs_lengths_or_a_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--shard", "s", "--synthesizer", "m", "--work-dir", str(tmp_path), "--report", "r"])
    assert "--configfile or --rounds" in capsys.readouterr().err
