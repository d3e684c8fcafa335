"""Rule contamination (paper Table 9): n-gram overlap of synthesized pairs with eval sets.

Every suite's evaluated documents are rendered by lm-eval itself (world, AdaptLLM, built-in and
local-mirror tasks alike) into a scratch folder, then matched against the synthesized pairs.
"""

import tempfile
from pathlib import Path

from instruct_pt.common import read_json, setup_logging, write_jsonl
from instruct_pt.evaluation import render_examples
from instruct_pt.quality import contamination

setup_logging(snakemake.log[0])
eval_files, unavailable, paper_names = {}, {}, {}
with tempfile.TemporaryDirectory() as scratch:
    for d in snakemake.input.suites:
        suite = Path(d).name
        examples, missing = render_examples(d)
        tasks = read_json(Path(d) / "suite.json")["tasks"]
        for task, why in missing.items():
            unavailable[f"{suite}/{task}"] = why
        for task, recs in examples.items():
            key = f"{suite}/{task}"
            eval_files[key] = str(Path(scratch) / f"{suite}__{task}.jsonl")
            write_jsonl(eval_files[key], recs)
            paper_names[key] = tasks[task]["paper_name"]
    contamination(
        list(snakemake.input.synthesized),
        eval_files,
        snakemake.output[0],
        n=snakemake.params.ngram,
        unavailable=unavailable,
        paper_names=paper_names,
    )
