"""Data jobs' logs hold readable progress lines, never tqdm's carriage returns: each data step
(tokenizer corpus, mixture, packing, rule-based synthesis, templify) run as a rule's script
runs it (logging and stderr sent to the job's log file, as `common.setup_logging` does); and
Hugging Face's and lm-eval's bars off in a log."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from instruct_pt import progress
from instruct_pt.common import write_jsonl
from instruct_pt.progress import Progress, iter_progress


class Job:
    """A job's log file as `setup_logging` makes it: inside ``with job:`` stderr and logging
    (at INFO) go into it. (Entered in the test's body: pytest puts its own stderr back between
    a fixture's setup and the test.)"""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.handler = logging.StreamHandler(self.file)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        self.level, self.stderr = root.level, sys.stderr
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        sys.stderr = self.file
        return self

    def __exit__(self, *exc):
        sys.stderr = self.stderr
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
        self.file.close()

    def text(self) -> str:
        return self.path.read_bytes().decode("utf-8")  # not read_text: it turns "\r" into "\n"


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A job whose progress lines come at every update."""
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    return Job(tmp_path / "job.log")


def test_progress_lines_count_items_and_never_write_a_carriage_return(job):
    with job:
        assert list(iter_progress(range(4), "count", "items", total=4)) == [0, 1, 2, 3]
        assert list(iter_progress([[1, 2], [3]], "chunks", "docs", weight=len)) == [[1, 2], [3]]
    text = job.text()
    assert "\r" not in text
    assert "count items 2/4 (50%)" in text and "count items 4/4 (100%)" in text
    assert re.search(r"count: 4 items in \d+s \([\d,.]+ items/s\)", text)
    assert "chunks docs 2 " in text and "chunks docs 3 " in text  # no total: counts only
    assert "chunks: 3 docs in" in text


def test_a_loop_left_by_an_error_has_no_closing_line(job):
    with job, pytest.raises(ValueError), Progress("failing", "steps", 3) as p:
        p.update()
        raise ValueError("stop")
    text = job.text()
    assert "failing steps 1/3" in text and "failing:" not in text


def test_a_terminal_gets_a_bar_and_no_lines(monkeypatch, caplog):
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with caplog.at_level(logging.INFO), Progress("tty", "items", 2) as p:
        assert p.bar is not None
        p.update(2)
    assert not [r for r in caplog.records if r.getMessage().startswith("tty")]


def test_tokenizer_corpus_log(job, tmp_path):
    from instruct_pt.data.tokenizer import iter_corpus_texts

    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, [{"text": f"text {i}"} for i in range(3)])
    with job:
        assert list(iter_corpus_texts([str(path)])) == ["text 0", "text 1", "text 2"]
    text = job.text()
    assert "\r" not in text and "tokenizer corpus corpus.jsonl records 3/3 (100%)" in text


def test_mixture_and_packing_logs(job, tmp_path):
    from instruct_pt.data.mixtures import build_mixture
    from instruct_pt.data.packing import pack
    from instruct_pt.data.tokenizer import prepare_tokenizer

    raw = [
        {"id": f"r{i}", "text": f"raw text {i} " + "lorem ipsum " * (1 + i % 5)} for i in range(30)
    ]
    write_jsonl(tmp_path / "raw.jsonl", raw)
    prepare_tokenizer({"source": "train", "vocab_size": 300}, [str(tmp_path / "raw.jsonl")],
                      str(tmp_path / "tok"), 0)  # fmt: skip
    comps = [{"name": "raw", "path": str(tmp_path / "raw.jsonl"), "format": "text"}]
    texts = tmp_path / "m" / "texts.jsonl"
    with job:
        build_mixture(
            "m", comps, str(tmp_path / "tok"), str(texts), str(tmp_path / "m" / "man.json"), 0
        )
        pack(str(texts), str(tmp_path / "tok"), str(tmp_path / "packed"), 16, 0)
    text = job.text()
    assert "\r" not in text
    assert "mixture scan raw documents 30 " in text  # counted in documents, not chunks
    assert "mixture m documents 30/30 (100%)" in text
    assert "pack texts.jsonl: 30 texts in" in text


def test_rule_based_and_templify_logs(job, tmp_path):
    from instruct_pt.synthesis.rule_based import rule_based_shard
    from instruct_pt.synthesis.templify import templify

    shard = tmp_path / "s.jsonl"
    body = "The bridge was closed for repairs, so traffic moved to the old road. " * 3
    write_jsonl(shard, [{"id": f"d{i}", "text": f"{body} Doc {i}."} for i in range(4)])
    with job:
        rule_based_shard(str(shard), str(tmp_path / "o.jsonl"), seed=5)
        templify([str(tmp_path / "o.jsonl")], str(tmp_path / "t.jsonl"), seed=1)
    text = job.text()
    assert "\r" not in text
    assert "rule-based texts 4 " in text and "rule-based: 4 texts in" in text
    assert "templify chains 4/4 (100%)" in text


def test_harness_bars_are_off_in_a_log_and_put_back_after(job):
    import lm_eval.api.task
    import lm_eval.models.huggingface  # noqa: F401 - its request loops' bars
    from tqdm import tqdm

    from instruct_pt.evaluation.runner import harness_bars_off

    with job, harness_bars_off() as patched:
        assert {"lm_eval.api.task", "lm_eval.models.huggingface"} <= set(patched)
        assert list(lm_eval.api.task.tqdm(range(3), total=3, disable=False)) == [0, 1, 2]
    assert lm_eval.api.task.tqdm is tqdm
    assert "\r" not in job.text()
    with job:  # outside the context the bars are back
        list(lm_eval.api.task.tqdm(range(3), total=3))
    assert job.text().count("\r") >= 1 and "3/3" in job.text()


def test_hugging_face_bars_off_in_a_log(job, monkeypatch):
    import datasets
    from transformers.utils import logging as hf_logging

    try:
        with job:
            progress.quiet_progress_bars()
        assert not hf_logging.is_progress_bar_enabled()
        assert not datasets.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
        datasets.enable_progress_bars()
