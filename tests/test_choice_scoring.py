"""The domain suites' choice scoring (mean per-token NLL, as the paper / AdaptLLM score options)
and the AdaptLLM field checks, on the tiny random Mistral of conftest.py."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from instruct_pt.common import DataError, read_json, read_jsonl, write_jsonl  # noqa: E402
from instruct_pt.evaluation import hooks as H  # noqa: E402
from instruct_pt.evaluation import lm_tasks as LT  # noqa: E402
from instruct_pt.evaluation import runner as R  # noqa: E402
from instruct_pt.evaluation import suites as S  # noqa: E402


@pytest.fixture(scope="module")
def hflm(tiny_lm):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=tiny_lm, add_bos_token=True, device="cpu", dtype="float32")


def _instance(context: str, continuation: str):
    from lm_eval.api.instance import Instance

    return Instance("loglikelihood", doc={}, arguments=(context, continuation), idx=0)


# ---------------------------------------------------------------------------- the rule


def test_mean_nll_picks_another_option_than_sum_and_acc_norm():
    choices = ["no", "not stated in the text", "yes, it does"]  # 2, 22, 12 characters
    results = [(-2.0, False, 1), (-4.0, False, 2), (-5.0, False, 5)]  # (loglik, greedy, tokens)
    # summed loglik: -2 > -4 > -5                                   -> "no"
    # lm-eval acc_norm, loglik per character: -1.0, -0.18, -0.42     -> "not stated in the text"
    # mean per-token NLL: 2/1 = 2.0, 4/2 = 2.0, 5/5 = 1.0 (argmin)   -> "yes, it does"
    lls = [r[0] for r in results]
    assert max(range(3), key=lls.__getitem__) == 0
    assert max(range(3), key=lambda i: lls[i] / len(choices[i])) == 1
    assert [H.mean_nll(ll, n) for ll, _, n in results] == [2.0, 2.0, 1.0]
    for gold in range(3):
        doc = {"choices": choices, "gold": gold}
        assert H.lm_mc_accuracy(doc, results) == {"accuracy": float(gold == 2)}
        assert H.lm_mc_micro_f1(doc, results) == {"micro_f1": (gold, 2)}
    # ties go to the first option, like torch.argmin in AdaptLLM's choice_losses
    tie = [(-2.0, False, 1), (-4.0, False, 2), (-9.0, False, 3)]
    assert H.lm_mc_weighted_f1({"options": choices, "gold_index": 1}, tie)["weighted_f1"] == (1, 0)


# ---------------------------------------------------------------------------- token counts

PAIRS = [
    ("Q: what colour is item 3?\nA:", " red"),  # one-token option after the ' ' delimiter
    ("Q: what colour is item 3?\nA:", " The cat sat on the mat."),  # multi-token option
    ("Q: what colour is item 3?\nA: ", "red"),  # trailing space moves onto the continuation
    ("Does A1 bind B1?  \n", " yes"),  # trailing whitespace incl. a newline
    ("Birds fly", "  south in winter"),  # leading double space
    ("<s> <CON> The cat sat on the mat. </CON>", " Paris </END>"),  # context opens with BOS text
    ("Q: café?", " ja, très"),  # bytes outside the BPE's training text
    ("", " yes"),  # empty context: scored after the prefix (BOS) token
]


def test_token_count_is_the_split_lm_eval_scores(hflm, monkeypatch):
    """Our count equals the continuation lm-eval's HFLM hands its scorer, for every pair."""
    captured = []

    def score(requests, **kwargs):  # what TemplateLM.loglikelihood passes on, not scored
        captured.extend(requests)
        return [(0.0, False)] * len(requests)

    monkeypatch.setattr(hflm, "_loglikelihood_tokens", score)
    hflm.loglikelihood([_instance(c, x) for c, x in PAIRS], disable_tqdm=True)
    monkeypatch.undo()
    assert [req[0] for req in captured] == PAIRS
    counts = [LT.continuation_token_count(hflm, c, x) for c, x in PAIRS]
    assert counts == [len(cont_enc) for _, _, cont_enc in captured]

    tok = hflm.tokenizer
    for (context, continuation), n in zip(PAIRS[:-1], counts[:-1], strict=True):
        assert n == len(hflm._encode_pair(context, continuation)[1])
        # by hand: trailing whitespace of the context joins the continuation, then
        # len(enc(context + continuation)) - len(enc(context)); BOS cancels out
        stripped = context.rstrip()
        whole = tok.encode(context + continuation)
        assert n == len(whole) - len(tok.encode(stripped)), (context, continuation)
    assert counts[2] == counts[0] and counts[1] > counts[0] > 1  # multi-token options
    assert counts[-1] == len(tok.encode(" yes", add_special_tokens=False))


# ---------------------------------------------------------------------------- DomainTask


def test_domain_task_needs_the_scoring_model(tmp_path):
    data = tmp_path / "d.jsonl"
    write_jsonl(data, [{"query": "Q?", "choices": ["a", "b b"], "gold": 1}])
    cfg = {
        "class": LT.DomainTask,
        "task": "t",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "query",
        "doc_to_choice": "choices",
        "doc_to_target": "gold",
        "process_results": H.lm_mc_accuracy,
        "metric_list": [{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "required_fields": ["query", "choices", "gold"]},
    }
    task = LT.DomainTask(config=cfg)
    task.build_all_requests(limit=None, rank=0, world_size=1)
    for inst, ll in zip(task.instances, (-3.0, -4.0), strict=True):
        inst.resps.append((ll, False))
    with pytest.raises(DataError, match="instruct_pt.evaluation.runner.evaluate"):
        task.apply_filters()

    class FakeLM:  # counts characters: enough to see the triple reach the hook
        def _encode_pair(self, context, continuation):
            return list(context), list(continuation)

    with LT.scoring_model(FakeLM()):
        task.apply_filters()
        task.apply_filters()  # idempotent: still one count per option
    results = [inst.filtered_resps["none"] for inst in task.instances]
    assert results == [(-3.0, False, 2), (-4.0, False, 4)]  # " a", " b b"
    assert task.process_results(task.test_docs()[0], results) == {"accuracy": 1.0}  # 1.0 < 1.5

    cfg["metadata"]["required_fields"] = ["query", "options"]
    with pytest.raises(
        DataError, match=r"json, split 'test': records lack field\(s\) \['options'\]"
    ):
        LT.DomainTask(config=cfg)


def _fake_hub(monkeypatch, records_by_config: dict[str, list[dict]]):
    """Serve AdaptLLM configs from memory where lm-eval calls datasets.load_dataset."""
    import datasets
    import lm_eval.api.task as lm_task

    def load_dataset(path, name=None, **kwargs):
        assert path in S.ADAPTLLM_DATASETS.values(), path
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(records_by_config[name])})

    monkeypatch.setattr(lm_task.datasets, "load_dataset", load_dataset)


def test_adaptllm_missing_field_names_field_dataset_and_config(tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    S.build_suite("finance", {"source": "adaptllm", "tasks": ["headline"]}, str(tmp_path), None)
    record = {
        "input": "Headline: gold up. Does it say the price went up?",
        "options": ["Yes", "No"],
    }
    _fake_hub(monkeypatch, {"Headline": [{**record, "gold_index": 0}]})  # no class_id
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    with pytest.raises(DataError) as err:
        manager.load(["ipt_finance_headline"])
    message = str(err.value)
    assert "AdaptLLM/finance-tasks (config Headline)" in message and "['class_id']" in message


def test_evaluate_adaptllm_suite_offline(tmp_path, monkeypatch, tiny_lm):
    """The generated AdaptLLM YAMLs run end to end on (fake) hub records: field checks pass,
    options are scored by mean NLL, generation answers come from `label`, window 2048."""
    from lm_eval.models.huggingface import HFLM

    prompts = [f"Sentence {i}: the company sold more.\nSentiment:" for i in range(4)]
    options = ["negative", "neutral", "positive"]
    fpb = [{"input": p, "options": options, "gold_index": i % 3} for i, p in enumerate(prompts)]
    ner = [{"input": p.replace("Sentiment:", "Entities:"), "label": ["Acme"]} for p in prompts]
    ner[0]["input"] = "Birds fly south in winter. " * 400 + ner[0]["input"]  # > 2048 tokens
    _fake_hub(monkeypatch, {"FPB": fpb, "NER": ner})
    lms, prompt_lengths = [], []
    real_scoring_model, real_generate = LT.scoring_model, HFLM._model_generate

    def scoring_model(lm):
        lms.append(lm)
        return real_scoring_model(lm)

    def model_generate(self, context, *args, **kwargs):
        prompt_lengths.append(context.shape[1])
        return real_generate(self, context, *args, **kwargs)

    monkeypatch.setattr(LT, "scoring_model", scoring_model)
    monkeypatch.setattr(HFLM, "_model_generate", model_generate)
    suite_dir, out = tmp_path / "suite", tmp_path / "out"
    S.build_suite("finance", {"source": "adaptllm", "tasks": ["fpb", "ner"]}, str(suite_dir), None)
    recs = R.evaluate(tiny_lm, str(suite_dir), str(out), "tiny", "finance", batch_size=4)
    assert [(r["task"], r["metric"], r["n"]) for r in recs] == [
        ("fpb", "weighted_f1", 4),
        ("ner", "entity_f1", 4),
    ]
    # each task's result and its per-document items (for the bootstrap intervals)
    assert sorted(p.name for p in out.iterdir()) == [
        "fpb.docs.jsonl",
        "fpb.json",
        "ner.docs.jsonl",
        "ner.json",
    ]
    assert lms and lms[0].max_length == S.ADAPTLLM_MAX_LENGTH
    # the long NER prompt is left-truncated to 2048 - 100 tokens (lm-eval batches by length)
    assert max(prompt_lengths) == S.ADAPTLLM_MAX_LENGTH - S.GENERATION_KWARGS["max_gen_toks"]


# ---------------------------------------------------------------------------- end to end


GOLDS = [0, 0, 0, 0, 0, 1, 1, 1, 2]  # unbalanced: rules that disagree score differently


def _verdict_suite(suite, world_cfg, out_dir):
    """A world-style domain suite: 3-way choice; "maybe" has more tokens per character."""
    choices = ["yes", "no", "maybe"]
    write_jsonl(
        Path(out_dir) / "verdict.jsonl",
        [
            {
                "id": f"v{i}",
                "query": f"Passage: drug D{i} was given to {10 * i} patients.\nDoes it help?",
                "choices": choices,
                "gold": gold,
            }
            for i, gold in enumerate(GOLDS)
        ],
    )
    return {"verdict": {"type": "multiple_choice", "metric": "accuracy", "paper_name": "V"}}


def test_evaluate_world_domain_suite_ranks_by_mean_nll(tmp_path, monkeypatch, tiny_lm, hflm):
    monkeypatch.setitem(
        sys.modules, "instruct_pt.world", types.SimpleNamespace(write_eval_suite=_verdict_suite)
    )
    suite_dir = tmp_path / "suite"
    S.build_suite("biomedicine", {"source": "world"}, str(suite_dir), {})
    (rec,) = R.evaluate(tiny_lm, str(suite_dir), str(tmp_path / "out"), "tiny", "biomedicine")
    assert rec == read_json(tmp_path / "out" / "verdict.json")
    assert (rec["metric"], rec["n"], rec["num_fewshot"]) == ("accuracy", 9, 0)

    # The same predictions by hand: lm-eval's log-likelihoods, tokens counted on the tokenizer.
    tok = hflm.tokenizer
    correct = correct_acc_norm = 0
    for doc in read_jsonl(suite_dir / "verdict.jsonl"):
        conts = [" " + c for c in doc["choices"]]
        lls = [ll for ll, _ in hflm.loglikelihood([_instance(doc["query"], c) for c in conts])]
        ctx_len = len(tok.encode(doc["query"]))
        n_tokens = [len(tok.encode(doc["query"] + c)) - ctx_len for c in conts]
        nll = [-ll / n for ll, n in zip(lls, n_tokens, strict=True)]
        pred = min(range(3), key=nll.__getitem__)
        per_char = max(range(3), key=lambda i: lls[i] / len(doc["choices"][i]))  # acc_norm
        correct += pred == doc["gold"]
        correct_acc_norm += per_char == doc["gold"]
    assert n_tokens[2] > n_tokens[0] > 1  # multi-token options (tiny BPE)
    assert rec["value"] == pytest.approx(100.0 * correct / 9)
    # on this model the two rules disagree, so the run above cannot have used acc_norm
    assert correct != correct_acc_norm
