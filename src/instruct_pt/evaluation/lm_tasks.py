"""lm-eval task class for the domain suites: the paper's choice scoring and AdaptLLM field checks.

lm-eval loads it through the `class: !function instruct_pt.evaluation.lm_tasks.DomainTask`
line of the task YAMLs that `instruct_pt.evaluation.suites.build_suite` writes for (a) every
multiple-choice task scored by one of our `lm_mc_*` hooks (the domain metrics, world and
AdaptLLM) and (b) every AdaptLLM task. It imports lm-eval (~1 s), which is why the other evaluation modules import it only inside
functions. lm-eval's built-in tasks and `acc`/`acc_norm` world tasks stay plain
`ConfigurableTask`s.

Choice scoring. The paper ranks a question's options by their mean per-token NLL,
-loglikelihood / (number of answer tokens), and predicts the argmin (AdaptLLM's `inference.py`,
`choice_losses`). lm-eval hands `process_results(doc, results)` only (loglikelihood, is_greedy)
per option. `DomainTask.apply_filters`, which lm-eval's evaluator calls after the model has
answered and right before `process_results`, appends each option's token count, so our hooks get
(loglikelihood, is_greedy, n_tokens). The count is taken from the request itself (the exact
few-shot context string and ' ' + option) with the scoring model's own split, the one
`TemplateLM.loglikelihood` feeds `_loglikelihood_tokens` (whose summed log-probs cover exactly
these tokens): `continuation_token_count`. The model object is made available by
`scoring_model(lm)`, a context manager `instruct_pt.evaluation.runner.evaluate` wraps around its
`simple_evaluate` call; running these YAMLs some other way (lm-eval's CLI) fails with a clear
error instead of scoring with another rule.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from lm_eval.api.task import ConfigurableTask

from instruct_pt.common import DataError

_SCORING_LM: contextvars.ContextVar[Any] = contextvars.ContextVar("instruct_pt_scoring_lm")


@contextlib.contextmanager
def scoring_model(lm: Any) -> Iterator[Any]:
    """Make `lm` (an lm-eval `TemplateLM`, e.g. HFLM) the model whose tokens DomainTask counts."""
    token = _SCORING_LM.set(lm)
    try:
        yield lm
    finally:
        _SCORING_LM.reset(token)


def continuation_token_count(lm: Any, context: str, continuation: str) -> int:
    """Number of tokens whose log-probabilities lm-eval sums for `continuation` after `context`.

    Mirrors `TemplateLM.loglikelihood` (lm-eval 0.4.13): an empty context scores the
    continuation encoded without special tokens after the prefix token (dropping the first token
    if it is the prefix token itself); otherwise `_encode_pair` encodes context + continuation
    and the context alone (after moving the context's trailing whitespace onto the continuation)
    and the continuation is what follows the context's tokens.
    """
    if context == "":
        enc = lm.tok_encode(continuation, add_special_tokens=False)
        return len(enc) - 1 if enc and enc[0] == lm.prefix_token_id else len(enc)
    return len(lm._encode_pair(context, continuation)[1])


class DomainTask(ConfigurableTask):
    """A ConfigurableTask whose choice results carry token counts and whose data is checked.

    `metadata.required_fields` in the YAML lists the record fields the task reads; a dataset
    without one of them fails at load time with a DataError naming the field and the dataset.
    """

    def __init__(self, config: dict | None = None, **kwargs: Any) -> None:
        # lm-eval's factory passes the whole YAML, including the `class` key TaskConfig rejects.
        cfg = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=cfg, **kwargs)

    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().download(dataset_kwargs, **kwargs)
        required = (self.config.metadata or {}).get("required_fields") or []
        where = self.config.dataset_path
        if self.config.dataset_name:
            where = f"{where} (config {self.config.dataset_name})"
        splits = {self.config.test_split, self.config.fewshot_split} - {None}
        for split in sorted(splits):
            if split not in self.dataset:
                raise DataError(f"{where}: no split {split!r} (has {sorted(self.dataset)})")
            columns = self.dataset[split].column_names
            missing = [f for f in required if f not in columns]
            if missing:
                raise DataError(
                    f"{where}, split {split!r}: records lack field(s) {missing} that task "
                    f"{self.config.task} reads (they have {sorted(columns)})"
                )

    def apply_filters(self) -> Any:
        out = super().apply_filters()
        if self.OUTPUT_TYPE != "multiple_choice":
            return out
        lm = _SCORING_LM.get(None)
        if lm is None:
            raise DataError(
                f"task {self.config.task} scores options by mean per-token NLL and needs the "
                "model's tokenizer: run it through instruct_pt.evaluation.runner.evaluate"
            )
        for inst in self._instances:
            context, continuation = inst.args[:2]
            n_tokens = continuation_token_count(lm, context, continuation)
            for key, resp in inst.filtered_resps.items():
                inst.filtered_resps[key] = (resp[0], resp[1], n_tokens)
        return out
