"""Tables and figures from hand-made result files: exact CSVs, header notes, reproducible figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from instruct_pt.common import DataError, write_json
from instruct_pt.reports import cells, pages, plotting
from instruct_pt.reports.cells import CSV_FIELDS, MINIATURE_NOTE, ORIENTATION, read_report_csv
from instruct_pt.reports.registry import make

HEADER = ",".join(CSV_FIELDS) + "\n"
GENERAL = [
    ("arc_easy", "ARC-e"),
    ("arc_challenge", "ARC-c"),
    ("boolq", "BoolQ"),
    ("siqa", "SIQA"),
    ("winogrande", "WinoGrande"),
    ("piqa", "PIQA"),
    ("openbookqa", "OBQA"),
    ("hellaswag", "HellaSwag"),
    ("mmlu", "MMLU"),
]


def put(
    eval_dir: Path,
    model: str,
    setting: str,
    task: str,
    paper_name: str,
    value,
    stderr=1.0,
    n=100,
    metric="acc_norm",
    suite=None,
):
    write_json(
        eval_dir / model / setting / f"{task}.json",
        {
            "model": model,
            "suite": suite or setting,
            "task": task,
            "paper_name": paper_name,
            "metric": metric,
            "value": value,
            "stderr": stderr,
            "n": n,
            "num_fewshot": 0,
            "harness": "lm-eval 0.4.13",
            "task_hash": "h",
        },
    )


def outputs(tmp_path: Path, stem: str) -> dict:
    return {"out_csv": tmp_path / f"{stem}.csv", "out_md": tmp_path / f"{stem}.md"}


@pytest.fixture
def two_models(tmp_path):
    ev = tmp_path / "eval"
    put(ev, "van", "general", "arc_easy", "ARC-e", 50.0, 1.0, 100)
    put(ev, "van", "general", "boolq", "BoolQ", 60.5, 2.0, 200)
    put(ev, "ins", "general", "arc_easy", "ARC-e", 52.0, 1.0, 100)
    put(ev, "ins", "general", "boolq", "BoolQ", 63.0, 2.0, 200)
    rows = [
        {"label": "500M Vanilla PT", "model": "van"},
        {"label": "500M Instruct PT", "model": "ins"},
    ]
    return ev, rows


def test_table1_paper_scale_csv_is_exact(tmp_path, two_models):
    ev, rows = two_models
    out = outputs(tmp_path, "t1")
    make("table1", ev, rows, **out, run="r1", scale="paper")
    assert out["out_csv"].read_text() == HEADER + (
        'table1,500M Vanilla PT,ARC-e,50,1,100,,UNCONFIRMED,"acc_norm, task arc_easy",eval/van/general/arc_easy.json\n'
        'table1,500M Vanilla PT,BoolQ,60.5,2,200,57.5,[S],"acc_norm, task boolq",eval/van/general/boolq.json\n'
        "table1,500M Vanilla PT,Avg,55.25,1.118,,,UNCONFIRMED,mean of 2 tasks,"
        "eval/van/general/arc_easy.json;eval/van/general/boolq.json\n"
        'table1,500M Instruct PT,ARC-e,52,1,100,54.8,[S],"acc_norm, task arc_easy",eval/ins/general/arc_easy.json\n'
        'table1,500M Instruct PT,BoolQ,63,2,200,62,[S2],"acc_norm, task boolq",eval/ins/general/boolq.json\n'
        "table1,500M Instruct PT,Avg,57.5,1.118,,46.6,[S2],mean of 2 tasks; "
        "paper: from Table 2; paper: the paper's Avg is taken as the mean of its 9 general tasks,"
        "eval/ins/general/arc_easy.json;eval/ins/general/boolq.json\n"
        # No task data in the suites' folder (a hub suite): floors are empty cells, with why.
        "table1,floor: chance,ARC-e,,,,,,n/a: no task data general/arc_easy.jsonl in the "
        "suites' folder,\n"
        "table1,floor: chance,BoolQ,,,,,,n/a: no task data general/boolq.jsonl in the "
        "suites' folder,\n"
        "table1,floor: chance,Avg,,,,,,n/a: a task's floor is not available,\n"
        "table1,floor: majority,ARC-e,,,,,,n/a: no task data general/arc_easy.jsonl in the "
        "suites' folder,\n"
        "table1,floor: majority,BoolQ,,,,,,n/a: no task data general/boolq.jsonl in the "
        "suites' folder,\n"
        "table1,floor: majority,Avg,,,,,,n/a: a task's floor is not available,\n"
    )
    md = out["out_md"].read_text()
    assert "Run: `r1` · scale: paper" in md and MINIATURE_NOTE not in md
    assert (
        "| 500M Instruct PT | 52.0 ± 1.0 | 63.0 ± 2.0 | 57.5 ± 1.1 | 54.8 [S] | 62.0 [S2] | 46.6 [S2] |"
        in md
    )
    assert "| 500M Vanilla PT | 50.0 ± 1.0 | 60.5 ± 2.0 | 55.2 ± 1.1 |  | 57.5 [S] |  |" in md


def test_table1_miniature_shows_paper_only_for_the_average(tmp_path, two_models):
    ev, rows = two_models
    out = outputs(tmp_path, "t1")
    records = make("table1", ev, rows, **out, run="mini", scale="miniature")
    by_cell = {(r["row"], r["column"]): r for r in records}
    assert [r["column"] for r in records[:3]] == ["arc_easy", "boolq", "Avg"]
    task_cell = by_cell[("500M Instruct PT", "arc_easy")]
    assert (task_cell["paper"], task_cell["paper_tag"]) == ("", "")
    assert "analogue of ARC-e" in task_cell["note"]
    avg = by_cell[("500M Instruct PT", "Avg")]
    assert (avg["paper"], avg["paper_tag"]) == ("46.6", "[S2]") and ORIENTATION in avg["note"]
    md = out["out_md"].read_text()
    assert "Run: `mini` · scale: miniature" in md
    assert MINIATURE_NOTE in md
    assert f"| {ORIENTATION}: Avg |" in md
    assert read_report_csv(out["out_csv"]) == records


def test_no_unconfirmed_recollection_is_ever_printed(tmp_path):
    ev = tmp_path / "eval"
    labels = [
        "500M Vanilla PT",
        "500M Mix PT",
        "500M Instruct PT",
        "1.3B Vanilla PT",
        "1.3B Instruct PT",
    ]
    for i, _ in enumerate(labels):
        for j, (task, name) in enumerate(GENERAL):
            put(ev, f"m{i}", "general", task, name, 30.25 + 3 * i + j)
    rows = [{"label": label, "model": f"m{i}"} for i, label in enumerate(labels)]
    for scale in ("paper", "miniature"):
        out = outputs(tmp_path, f"t1-{scale}")
        make("table1", ev, rows, **out, run="r", scale=scale)
        text = out["out_csv"].read_text() + out["out_md"].read_text()
        for value in ("27.4", "47.3", "55.9", "33.4", "54.3"):  # UNC-rec values of Table 1
            assert not re.search(rf"(?<![\d.]){re.escape(value)}(?!\d)", text), (scale, value)
        assert "46.6 [S2]" in text and "49.7 [S2]" in text


def test_missing_result_file_is_named(tmp_path, two_models):
    ev, rows = two_models
    (ev / "ins" / "general" / "boolq.json").unlink()
    with pytest.raises(
        FileNotFoundError, match=re.escape(str(ev / "ins" / "general" / "boolq.json"))
    ):
        make("table1", ev, rows, **outputs(tmp_path, "t1"), run="r", scale="paper")
    rows.append({"label": "1.3B Vanilla PT", "model": "absent"})
    with pytest.raises(FileNotFoundError, match="absent"):
        make("table1", ev, rows, **outputs(tmp_path, "t1"), run="r", scale="paper")


def test_bad_result_file_and_scale_are_rejected(tmp_path, two_models):
    ev, rows = two_models
    path = ev / "van" / "general" / "boolq.json"
    path.write_text(json.dumps({"model": "van", "task": "boolq"}))
    with pytest.raises(DataError, match="boolq.json: missing key"):
        make("table1", ev, rows, **outputs(tmp_path, "t1"), run="r", scale="paper")
    with pytest.raises(ValueError, match="scale"):
        make("table1", ev, rows, **outputs(tmp_path, "t1"), run="r", scale="big")


def test_table2_params_tokens_and_average(tmp_path, two_models):
    ev, _ = two_models
    rows = [
        {
            "label": "Instruct PT 500M",
            "model": "ins",
            "params": 1230000,
            "tokens": 3000000,
            "ours": True,
        },
        {"label": "Pythia-1B", "model": "van", "params": 5000000, "tokens": 9000000, "ours": False},
    ]
    out = outputs(tmp_path, "t2")
    make("table2", ev, rows, **out, run="r", scale="paper")
    lines = out["out_csv"].read_text().splitlines()
    assert lines[1:4] == [
        "table2,Instruct PT 500M,Params,1230000,,,500000000,[S2],trained in this run,",
        "table2,Instruct PT 500M,Tokens,3000000,,,100000000000,[P],trained in this run,",
        "table2,Instruct PT 500M,Avg,57.5,1.118,,46.6,[S2],mean of 2 tasks,"
        "eval/ins/general/arc_easy.json;eval/ins/general/boolq.json",
    ]
    assert lines[4] == "table2,Pythia-1B,Params,5000000,,,1000000000,[S2],reference model,"
    md = out["out_md"].read_text()
    assert "| Instruct PT 500M | 1.23M | 3M | 57.5 ± 1.1 | 0.5B [S2] | 100B [P] | 46.6 [S2] |" in md


def domain_fixture(tmp_path):
    ev = tmp_path / "eval"
    for model, base in (("ib", 70.0), ("vb", 60.0)):
        put(ev, model, "biomedicine", "pubmedqa", "PubMedQA", base + 1, 1.0, 50)
        put(ev, model, "biomedicine", "chemprot", "ChemProt", base - 1, 1.0, 50)
    put(ev, "if", "finance", "fpb", "FPB", 80.0, 2.0, 40)
    rows = [
        {"label": "Instruct PT-8B", "models": {"biomedicine": "ib", "finance": "if"}},
        {"label": "Vanilla PT-8B", "models": {"biomedicine": "vb"}},
    ]
    return ev, rows


def test_table3_tasks_and_domain_averages(tmp_path):
    ev, rows = domain_fixture(tmp_path)
    out = outputs(tmp_path, "t3")
    make("table3", ev, rows, **out, run="r", scale="paper")
    lines = out["out_csv"].read_text().splitlines(keepends=True)
    floors = [line for line in lines if line.startswith("table3,floor: ")]
    assert [line.split(",")[1:3] for line in floors] == [
        [row, column]
        for row in ("floor: chance", "floor: majority")
        for column in ("PubMedQA", "ChemProt", "Biomed avg", "FPB", "Finance avg")
    ]
    assert "".join(line for line in lines if line not in floors) == HEADER + (
        'table3,Instruct PT-8B,PubMedQA,71,1,50,68.7,[S],"acc_norm, task pubmedqa",eval/ib/biomedicine/pubmedqa.json\n'
        'table3,Instruct PT-8B,ChemProt,69,1,50,,UNCONFIRMED,"acc_norm, task chemprot",'
        "eval/ib/biomedicine/chemprot.json\n"
        "table3,Instruct PT-8B,Biomed avg,70,0.7071,,61.3,[S2],mean of 2 tasks,"
        "eval/ib/biomedicine/chemprot.json;eval/ib/biomedicine/pubmedqa.json\n"
        'table3,Instruct PT-8B,FPB,80,2,40,,UNCONFIRMED,"acc_norm, task fpb",eval/if/finance/fpb.json\n'
        "table3,Instruct PT-8B,Finance avg,80,2,,74.7,[S2],mean of 1 task,eval/if/finance/fpb.json\n"
        'table3,Vanilla PT-8B,PubMedQA,61,1,50,,UNCONFIRMED,"acc_norm, task pubmedqa",'
        "eval/vb/biomedicine/pubmedqa.json\n"
        'table3,Vanilla PT-8B,ChemProt,59,1,50,,UNCONFIRMED,"acc_norm, task chemprot",'
        "eval/vb/biomedicine/chemprot.json\n"
        "table3,Vanilla PT-8B,Biomed avg,60,0.7071,,58.4,[S2],mean of 2 tasks,"
        "eval/vb/biomedicine/chemprot.json;eval/vb/biomedicine/pubmedqa.json\n"
        "table3,Vanilla PT-8B,Finance avg,,,,72,[S2],no finance model in this run,\n"
    )


def test_table3_miniature_columns_follow_the_papers_task_order(tmp_path):
    """World tasks keep their own names but sit where the paper task they stand for sits."""
    ev = tmp_path / "eval"
    for task, paper in (("usmle_like", "USMLE"), ("chemprot_like", "ChemProt")):
        put(ev, "ib", "biomedicine", task, paper, 50.0, 1.0, 40)
    put(ev, "ib", "biomedicine", "pubmedqa_like", "PubMedQA", 50.0, 1.0, 40)
    out = outputs(tmp_path, "t3m")
    rows = [{"label": "Instruct PT-8B", "models": {"biomedicine": "ib"}}]
    records = make("table3", ev, rows, **out, run="r", scale="miniature")
    assert [r["column"] for r in records if r["row"] == "Instruct PT-8B"] == [
        "pubmedqa_like",
        "chemprot_like",
        "usmle_like",
        "Biomed avg",
    ]


def test_table4_miniature_averages_only(tmp_path):
    ev, rows = domain_fixture(tmp_path)
    rows = [{**rows[0], "label": "Instruct PT"}, {**rows[1], "label": "Rule-based"}]
    out = outputs(tmp_path, "t4")
    records = make("table4", ev, rows, **out, run="mini", scale="miniature")
    models = [r for r in records if not r["row"].startswith("floor: ")]
    assert [(r["row"], r["column"], r["ours"], r["paper"]) for r in models] == [
        ("Instruct PT", "Biomed avg", "70", "61.3"),
        ("Instruct PT", "Finance avg", "80", "74.7"),
        ("Rule-based", "Biomed avg", "60", "58.8"),
        ("Rule-based", "Finance avg", "", "73.1"),
    ]
    assert all(ORIENTATION in r["note"] for r in models)
    floors = [(r["row"], r["column"]) for r in records if r not in models]
    assert floors == [
        (row, column)
        for row in ("floor: chance", "floor: majority")
        for column in ("Biomed avg", "Finance avg")
    ]
    assert MINIATURE_NOTE in out["out_md"].read_text()


def test_table5_has_no_paper_numbers(tmp_path):
    settings = [
        {
            "model": m,
            "split": s,
            "shots": k,
            "response_accuracy": acc,
            "pair_quality": 20.0,
            "n": 10,
        }
        for m, acc in (("base", 30.0), ("synthesizer", 55.5))
        for s in ("seen", "unseen")
        for k in (0, 2)
    ]
    src = tmp_path / "synth_eval.json"
    write_json(src, {"settings": settings})
    out = outputs(tmp_path, "t5")
    records = make("table5", src, **out, run="r", scale="paper")
    assert len(records) == 16
    first = records[0]
    assert (first["row"], first["column"], first["ours"]) == (
        "Base model",
        "seen zero-shot response accuracy",
        "30",
    )
    assert {r["paper"] for r in records} == {""} and {r["paper_tag"] for r in records} == {
        "UNCONFIRMED"
    }
    assert records[8]["row"] == "Instruction synthesizer" and records[8]["ours"] == "55.5"
    write_json(src, {"settings": settings + settings[:1]})
    with pytest.raises(DataError, match="duplicate"):
        make("table5", src, **out, run="r", scale="paper")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        make("table5", tmp_path / "nope.json", **out, run="r", scale="paper")


def quality_json(
    path: Path, corpus: str, relevance: float, accuracy: float | None, shares: dict
) -> Path:
    write_json(
        path,
        {
            "corpus": corpus,
            "n_texts": 5,
            "n_pairs": 20,
            "context_relevance": relevance,
            "response_accuracy": accuracy,
            "n_categories": sum(1 for v in shares.values() if v),
            "categories": shares,
            "method": "world-ground-truth",
            "n_fact_pairs": 16,
        },
    )
    return path


def test_table6_values_rates_and_conflicts(tmp_path):
    q = {
        "general": quality_json(
            tmp_path / "g.json", "general", 90.0, 75.0, {"fact lookup": 0.5, "multiple choice": 0.5}
        ),
        "biomedicine": quality_json(
            tmp_path / "b.json", "biomedicine", 100.0, None, {"fact lookup": 1.0}
        ),
    }
    out = outputs(tmp_path, "t6")
    records = make("table6", q, **out, run="r", scale="miniature")
    got = {(r["row"], r["column"]): r for r in records}
    general = got[("General", "Context relevance")]
    assert (general["ours"], general["ours_stderr"], general["n"], general["paper"]) == (
        "90",
        "6.7082",
        "20",
        "92.9",
    )
    assert got[("General", "Response accuracy")]["n"] == "16"
    assert got[("Biomedicine", "Response accuracy")]["ours"] == ""
    assert "conflicts" in got[("Biomedicine", "Task categories")]["note"]
    assert got[("General", "Task categories")]["ours"] == "2"


def test_figure4_and_figure6_are_byte_reproducible(tmp_path):
    ev = tmp_path / "eval"
    curves = []
    for label, variant, base in (
        ("Vanilla PT", "vanilla", 25.0),
        ("Instruct PT", "instruct", 27.0),
    ):
        steps = {}
        for step in (0, 100, 200):
            model = f"it-{variant}-{step}"
            put(ev, model, "probe0", "mmlu", "MMLU", base + step / 100)
            put(ev, model, "probe5", "mmlu", "MMLU", base + 1 + step / 50)
            steps[str(step)] = model
        curves.append({"label": label, "variant": variant, "steps": steps})
    settings = {"zero-shot": "probe0", "few-shot": "probe5"}
    q = {
        "general": quality_json(
            tmp_path / "g.json", "general", 90.0, 75.0, {"fact lookup": 0.75, "arithmetic": 0.25}
        )
    }
    blobs = []
    for attempt in ("a", "b"):
        d = tmp_path / attempt
        f4 = dict(
            out_csv=d / "f4.csv", out_md=d / "f4.md", out_png=d / "f4.png", out_pdf=d / "f4.pdf"
        )
        f6 = dict(
            out_csv=d / "f6.csv", out_md=d / "f6.md", out_png=d / "f6.png", out_pdf=d / "f6.pdf"
        )
        records = make("figure4", ev, curves, settings, "mmlu", **f4, run="r", scale="miniature")
        make("figure6", q, **f6, run="r", scale="miniature")
        blobs.append(
            {
                k: p.read_bytes()
                for k, p in {
                    **{f"4{k}": v for k, v in f4.items()},
                    **{f"6{k}": v for k, v in f6.items()},
                }.items()
            }
        )
    assert blobs[0] == blobs[1]
    assert blobs[0]["4out_png"].startswith(b"\x89PNG") and blobs[0]["4out_pdf"].startswith(b"%PDF")
    got = {(r["row"], r["column"]): r["ours"] for r in records}
    assert (
        got[("Instruct PT", "zero-shot final")] == "29"
        and got[("Vanilla PT", "few-shot final")] == "30"
    )
    assert got[("Vanilla PT", "zero-shot step 100")] == "26"
    assert "![Figure 4" in (tmp_path / "a" / "f4.md").read_text()
    f6_lines = (tmp_path / "a" / "f6.csv").read_text().splitlines()
    assert f6_lines[1:] == [
        "figure6,General,fact lookup,75,,20,,,% of pairs,",
        "figure6,General,arithmetic,25,,20,,,% of pairs,",
    ]


def test_figure4_missing_point_is_named(tmp_path):
    ev = tmp_path / "eval"
    put(ev, "m0", "probe0", "mmlu", "MMLU", 30.0)
    curves = [{"label": "Instruct PT", "variant": "instruct", "steps": {0: "m0"}}]
    out = dict(
        out_csv=tmp_path / "f.csv",
        out_md=tmp_path / "f.md",
        out_png=tmp_path / "f.png",
        out_pdf=tmp_path / "f.pdf",
    )
    with pytest.raises(FileNotFoundError, match=re.escape(str(ev / "m0" / "probe5" / "mmlu.json"))):
        make(
            "figure4",
            ev,
            curves,
            {"zero-shot": "probe0", "few-shot": "probe5"},
            "mmlu",
            **out,
            run="r",
            scale="paper",
        )


def test_table9_lists_contamination_per_task(tmp_path):
    from instruct_pt.common import write_json

    src = tmp_path / "contamination.json"
    write_json(
        src,
        {
            "n": 8,
            "n_synth_texts": 10,
            "n_synth_pairs": 40,
            "tasks": {"general/knowledge": {"contaminated": 3, "total": 40, "percent": 7.5}},
        },
    )
    out_csv, out_md = tmp_path / "t9.csv", tmp_path / "t9.md"
    records = make("table9", src, out_csv=out_csv, out_md=out_md, run="r", scale="miniature")
    assert [(r["row"], r["column"], r["ours"]) for r in records] == [
        ("general/knowledge", "Contaminated", "3"),
        ("general/knowledge", "Total", "40"),
    ]
    assert all(r["paper"] == "" for r in records)  # the world's tasks are not the paper's
    assert "general/knowledge" in out_md.read_text()
    with pytest.raises(FileNotFoundError, match="missing.json"):
        make(
            "table9",
            tmp_path / "missing.json",
            out_csv=out_csv,
            out_md=out_md,
            run="r",
            scale="paper",
        )


def test_table9_paper_scale_uses_paper_names_and_lists_unavailable_tasks(tmp_path):
    from instruct_pt.common import write_json

    src = tmp_path / "contamination.json"
    write_json(
        src,
        {
            "n": 13,
            "n_synth_texts": 10,
            "n_synth_pairs": 40,
            "tasks": {"general/mmlu": {"contaminated": 2, "total": 14042, "percent": 0.01}},
            "unavailable": {"finance/ner": "OSError: no network"},
            "paper_names": {"general/mmlu": "MMLU"},
        },
    )
    out_csv, out_md = tmp_path / "t9.csv", tmp_path / "t9.md"
    records = make("table9", src, out_csv=out_csv, out_md=out_md, run="r", scale="paper")
    cells = {(r["row"], r["column"]): r for r in records}
    assert (
        cells[("general/mmlu", "Contaminated")]["paper"],
        cells[("general/mmlu", "Total")]["paper"],
    ) == ("2", "14042")
    ner = cells[("finance/ner", "Total")]
    assert ner["ours"] == "" and "not available: OSError: no network" in ner["note"]
    assert "finance/ner" in out_md.read_text()


def test_table2_reads_what_was_trained_here(tmp_path, two_models):
    """Stand-ins and our own models report their trained parameters and tokens, not config's."""
    ev, _ = two_models
    model_dir = tmp_path / "models" / "stand-in"
    write_json(model_dir / "train_summary.json", {"parameters": 1_310_000, "tokens": 800_000})
    rows = [{"label": "Pythia-1B", "model": "van", "params": None, "tokens": None,
             "model_dir": str(model_dir), "ours": False}]  # fmt: skip
    out = outputs(tmp_path, "t2s")
    records = make("table2", ev, rows, **out, run="r", scale="miniature")
    cells = {r["column"]: r for r in records}
    assert (cells["Params"]["ours"], cells["Tokens"]["ours"]) == ("1310000", "800000")
    assert "as trained here" in cells["Tokens"]["note"]
    rows[0]["model_dir"] = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere/train_summary.json"):
        make("table2", ev, rows, **out, run="r", scale="miniature")


# ----------------------------------------------------------------------------- honest labels, floors


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def summary(models: Path, model: str, kind: str, parameters: int, tokens: int | None) -> None:
    write_json(
        models / model / "train_summary.json",
        {"kind": kind, "parameters": parameters, "tokens": tokens, "tokens_this_run": 1234},
    )


def first_line(path: Path) -> str:
    return path.read_text().splitlines()[0]


PAPER_SIZES = ("100B", "Llama3-8B", "Llama3-70B", "GPT-4", "500 texts")


@pytest.fixture
def world_run(tmp_path):
    """A miniature run's layout: results/{run}/eval (results + tasks/) and results/{run}/models."""
    ev = tmp_path / "results" / "mini" / "eval"
    tasks = ev / "tasks" / "general"
    # 4 documents; gold texts a, a, b, r; 1/len(choices) = 1/4, 1/4, 1/2, 1/4.
    write_jsonl(
        tasks / "knowledge.jsonl",
        [
            {"id": "k0", "query": "q0", "choices": ["a", "b", "c", "d"], "gold": 0},
            {"id": "k1", "query": "q1", "choices": ["x", "a", "y", "z"], "gold": 1},
            {"id": "k2", "query": "q2", "choices": ["b", "c"], "gold": 0},
            {"id": "k3", "query": "q3", "choices": ["p", "q", "r", "s"], "gold": 2},
        ],
    )
    write_jsonl(
        tasks / "arithmetic.jsonl",
        [{"id": f"a{i}", "query": f"q{i}", "answer": a} for i, a in enumerate(["4", "4", "7"])],
    )
    for model, value in (("scratch-van", 40.0), ("scratch-ins", 45.0)):
        put(ev, model, "general", "knowledge", "MMLU", value, 5.0, 4)
        put(ev, model, "general", "arithmetic", "", value, 5.0, 3, metric="exact_match")
    models = tmp_path / "results" / "mini" / "models"
    summary(models, "scratch-van", "pretrain", 812345, 600000)
    summary(models, "scratch-ins", "pretrain", 1612345, 600000)
    rows = [
        {"label": "500M Vanilla PT", "model": "scratch-van"},
        {"label": "1.3B Instruct PT", "model": "scratch-ins"},
    ]
    return ev, rows


def test_floors_from_the_suites_task_data(tmp_path, world_run):
    ev, rows = world_run
    out = outputs(tmp_path, "t1")
    records = make("table1", ev, rows, **out, run="mini", scale="miniature")
    got = {(r["row"], r["column"]): r for r in records}
    # chance: mean of 1/len(choices); majority: always 'a', right on 2 of 4 documents
    assert got[("floor: chance", "knowledge")]["ours"] == "31.25"
    assert got[("floor: majority", "knowledge")]["ours"] == "50"
    assert got[("floor: majority", "knowledge")]["n"] == "4"
    assert "always 'a' (2/4 gold)" in got[("floor: majority", "knowledge")]["note"]
    # generation: no guessing floor; the best constant answer '4' matches 2 of 3
    assert got[("floor: chance", "arithmetic")]["ours"] == "0"
    assert "distinct" not in got[("floor: chance", "knowledge")]["note"]
    assert got[("floor: majority", "arithmetic")]["ours"] == "66.6667"
    assert "constant answer '4'" in got[("floor: majority", "arithmetic")]["note"]
    assert got[("floor: chance", "Avg")]["ours"] == "15.625"
    assert got[("floor: majority", "Avg")]["ours"] == fmt((50 + 200 / 3) / 2)
    md = out["out_md"].read_text()
    assert "| chance | 0.0 | 31.2 | 15.6 |" in md
    assert "| majority answer | 66.7 | 50.0 | 58.3 |" in md
    assert "Floors: 'chance' is the expected accuracy" in md
    # the model rows come first and are unchanged: the claims scorecard reads cells by row name
    assert [r["row"] for r in records[:3]] == ["500M Vanilla PT"] * 3
    assert read_report_csv(out["out_csv"]) == records


def fmt(x: float) -> str:
    return cells.fmt_number(x)


def test_majority_floor_is_scored_with_the_tasks_metric(tmp_path):
    """Weighted F1 of always 'neutral' (3 of 4 gold): 0.75 x F1(neutral) = 0.75 x 6/7."""
    ev = tmp_path / "eval"
    labels = ["negative", "neutral", "positive"]
    golds = [1, 1, 1, 2]
    write_jsonl(
        ev / "tasks" / "finance" / "fpb_like.jsonl",
        [
            {"id": f"f{i}", "query": f"q{i % 2}", "choices": labels, "gold": g}
            for i, g in enumerate(golds)
        ],
    )
    put(ev, "cpt", "finance", "fpb_like", "FPB", 30.0, None, 4, metric="weighted_f1")
    rows = [{"label": "Instruct PT", "models": {"finance": "cpt"}}]
    records = make("table3", ev, rows, **outputs(tmp_path, "t3"), run="r", scale="miniature")
    got = {(r["row"], r["column"]): r["ours"] for r in records}
    assert got[("floor: majority", "fpb_like")] == fmt(100 * 0.75 * 6 / 7)
    assert got[("floor: chance", "fpb_like")] == fmt(100 / 3)
    assert got[("floor: majority", "Finance avg")] == fmt(100 * 0.75 * 6 / 7)
    # repeated questions are flagged: the task's stderr treats them as independent
    notes = {(r["row"], r["column"]): r["note"] for r in records}
    assert "2 distinct questions in 4 documents" in notes[("floor: chance", "fpb_like")]


def test_bad_task_data_is_named_with_its_line(tmp_path, world_run):
    ev, rows = world_run
    path = ev / "tasks" / "general" / "knowledge.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({"id": "k1", "query": "q", "choices": ["x", "a"], "gold": 5})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: gold 5")):
        make("table1", ev, rows, **outputs(tmp_path, "t1"), run="mini", scale="miniature")


def test_miniature_titles_say_what_the_run_is(tmp_path, world_run):
    ev, rows = world_run
    out = outputs(tmp_path, "t1")
    make("table1", ev, rows, **out, run="mini", scale="miniature")
    title = first_line(out["out_md"])
    assert title == (
        "# Table 1 (miniature run `mini`): general performance of models pre-trained from "
        "scratch (pre-trained here: 812K and 1.61M parameters, 600K tokens; "
        "3-4 questions per task)"
    )
    assert not any(word in title for word in PAPER_SIZES)
    md = out["out_md"].read_text()
    assert "Paper: Table 1: general performance of the pre-trained base models (100B tokens)" in md

    make("table1", ev, rows, **out, run="mini", scale="paper")
    assert first_line(out["out_md"]) == (
        "# Table 1: general performance of the pre-trained base models (100B tokens)"
    )
    assert "Paper: " not in out["out_md"].read_text()


def test_miniature_domain_titles_name_the_continual_pretraining(tmp_path):
    ev, rows = domain_fixture(tmp_path)  # models ib, if (continual pre-training), vb (no summary)
    models = tmp_path / "models"
    summary(models, "ib", "continual_pretrain", 1311872, 300000)
    summary(models, "if", "continual_pretrain", 1311872, None)  # -> tokens_this_run
    for table in ("table3", "table4"):
        out = outputs(tmp_path, table)
        make(table, ev, rows, **out, run="mini", scale="miniature")
        title = first_line(out["out_md"])
        assert title.startswith(f"# Table {table[-1]} (miniature run `mini`): ")
        assert "(continually pre-trained here: 1.31M parameters, 1.23K and 300K tokens; " in title
        assert title.endswith("; 40-50 questions per task)")
        assert not any(word in title for word in PAPER_SIZES)


def test_quality_titles_name_the_method_and_texts(tmp_path):
    q = {
        c: quality_json(tmp_path / f"{c}.json", c, 90.0, 75.0, {"fact lookup": 1.0})
        for c in ("general", "finance")
    }
    out = outputs(tmp_path, "t6")
    make("table6", q, **out, run="mini", scale="miniature")
    title = first_line(out["out_md"])
    assert title == (
        "# Table 6 (miniature run `mini`): quality of the instruction-augmented corpora "
        "(world ground truth (not an LLM judge); 5 texts per corpus)"
    )
    assert "Paper: Table 6: quality of the instruction-augmented corpora (GPT-4 judge" in (
        out["out_md"].read_text()
    )
    data = json.loads(Path(q["finance"]).read_text())
    write_json(q["finance"], {**data, "method": "llm-judge:some-model", "n_texts": 100})
    make("table6", q, **out, run="mini", scale="miniature")
    assert first_line(out["out_md"]).endswith(
        "(world ground truth (not an LLM judge) and LLM judge some-model; 5-100 texts per corpus)"
    )


def test_figure4_floors_and_miniature_title(tmp_path):
    ev = tmp_path / "eval"
    write_jsonl(
        ev / "tasks" / "general" / "knowledge.jsonl",
        [{"id": f"k{i}", "query": "q", "choices": ["a", "b"], "gold": i % 2} for i in range(4)],
    )
    steps = {}
    for step in (0, 10):
        model = f"it-500m-instruct-step{step}"
        for setting in ("probe0", "probe3"):
            put(ev, model, setting, "knowledge", "MMLU", 50.0 + step, 2.0, 4, suite="general")
        steps[step] = model
    summary(tmp_path / "models", "it-500m-instruct", "instruction_tune", 812345, None)
    curves = [{"label": "Instruct PT", "variant": "instruct", "steps": steps}]
    out = {f"out_{k}": tmp_path / f"f4.{k}" for k in ("csv", "md", "png", "pdf")}
    records = make("figure4",
        ev, curves, {"zero-shot": "probe0", "few-shot": "probe3"}, "knowledge", **out,
        run="mini", scale="miniature",
    )  # fmt: skip
    got = {(r["row"], r["column"]): r["ours"] for r in records}
    assert got[("floor: chance", "zero-shot final")] == "50"
    assert got[("floor: majority", "few-shot final")] == "50"
    assert first_line(out["out_md"]) == (
        "# Figure 4 (miniature run `mini`): knowledge vs instruction-tuning steps "
        "(instruction-tuned here: 812K parameters, 1.23K tokens; 4 questions)"
    )


# ----------------------------------------------------------------------------- issue 13: rendered


def md_table(md: str) -> list[list[str]]:
    """The cells of the Markdown table's rows (header first, separator left out)."""
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in rows]


def test_unconfirmed_paper_cells_are_empty_never_the_word(tmp_path, two_models):
    ev, rows = two_models
    out = outputs(tmp_path, "t1")
    make("table1", ev, rows, **out, run="r1", scale="paper")
    md = out["out_md"].read_text()
    assert "UNCONFIRMED cells are left empty" in md
    for row in md_table(md):
        assert "UNCONFIRMED" not in row, row
    header, vanilla = md_table(md)[0], md_table(md)[1]
    assert vanilla[header.index("paper [tag]: ARC-e")] == ""  # UNCONFIRMED in the paper
    assert vanilla[header.index("paper [tag]: BoolQ")] == "57.5 [S]"


def test_table1_avg_notes_say_whose_mean(tmp_path, two_models):
    """Ours is the mean of this run's tasks; the paper's note is about the paper's value."""
    ev, rows = two_models
    out = outputs(tmp_path, "t1")
    make("table1", ev, rows, **out, run="mini", scale="miniature")
    notes = [ln for ln in out["out_md"].read_text().splitlines() if ln.startswith("- Avg")]
    assert "- Avg: mean of 2 tasks" in notes
    paper = [n for n in notes if "9" in n]
    assert paper and all(n.startswith("- Avg (paper): ") for n in paper), notes
    assert not any("these 9 tasks" in n for n in notes)


def t5_settings(**extra):
    return [
        {
            "model": m,
            "split": s,
            "shots": k,
            "response_accuracy": acc,
            "pair_quality": 20.0,
            "n": 10,
            "n_pairs": 7,
            **extra,
        }
        for m, acc in (("base", 30.0), ("synthesizer", 55.5))
        for s in ("seen", "unseen")
        for k in (0, 2)
    ]


def test_table5_shows_n_and_standard_errors(tmp_path):
    src = tmp_path / "synth_eval.json"
    write_json(
        src, {"settings": t5_settings(response_accuracy_stderr=4.25, pair_quality_stderr=3.0)}
    )
    out = outputs(tmp_path, "t5")
    records = make("table5", src, **out, run="r", scale="miniature")
    cell = {(r["row"], r["column"]): r for r in records}
    acc = cell[("Instruction synthesizer", "seen zero-shot response accuracy")]
    quality = cell[("Instruction synthesizer", "seen zero-shot pair quality")]
    assert (acc["ours_stderr"], acc["n"]) == ("4.25", "10")
    assert (quality["ours_stderr"], quality["n"]) == ("3", "7")  # over the pairs parsed
    table = md_table(out["out_md"].read_text())
    header, synth = table[0], next(r for r in table if r[0] == "Instruction synthesizer")
    assert synth[header.index("seen zero-shot response accuracy")] == "55.5 ± 4.2 (n=10)"
    assert synth[header.index("seen zero-shot pair quality")] == "20.0 ± 3.0 (n=7)"
    # No paper column: every paper value of Table 5 is UNCONFIRMED, and the notes say so.
    assert not any(h.startswith(ORIENTATION) for h in header)
    assert "UNCONFIRMED (left out)" in out["out_md"].read_text()
    # An old eval.json without standard errors: the cells say so.
    write_json(src, {"settings": t5_settings()})
    records = make("table5", src, **out, run="r", scale="miniature")
    assert all(r["ours_stderr"] == "" for r in records)
    assert all("standard error not recorded" in r["note"] for r in records)


def test_table9_headers_name_counts_of_examples(tmp_path):
    src = tmp_path / "contamination.json"
    write_json(
        src,
        {
            "n": 8,
            "n_synth_pairs": 40,
            "tasks": {"general/knowledge": {"contaminated": 3, "total": 50}},
            "paper_names": {},
        },
    )
    out = outputs(tmp_path, "t9")
    records = make("table9", src, **out, run="r", scale="miniature")
    header, row = md_table(out["out_md"].read_text())[:2]
    assert header == [
        "Evaluation task",
        "contaminated examples (count)",
        "evaluation examples (count)",
    ]
    assert row == ["general/knowledge", "3", "50"]
    notes = {r["column"]: r["note"] for r in records}
    assert "8-gram" in notes["Contaminated"] and "8-gram" not in notes["Total"]
    # The CSV keeps the paper's column names (the claims and the paper's values key on them).
    assert {r["column"] for r in records} == {"Contaminated", "Total"}


@pytest.fixture
def captured_figures(monkeypatch):
    """The matplotlib figures the report functions save, kept open for inspection."""
    figs = []
    save = plotting.save_figure

    def keep(fig, png, pdf):
        figs.append(fig)
        save(fig, png, pdf)

    monkeypatch.setattr(plotting, "save_figure", keep)
    monkeypatch.setattr(plotting, "pyplot", lambda real=plotting.pyplot: _NoClose(real()))
    return figs


class _NoClose:
    """pyplot whose close() does nothing (the test reads the figure after the report closed it)."""

    def __init__(self, plt):
        self._plt = plt

    def close(self, *args):
        pass

    def __getattr__(self, name):
        return getattr(self._plt, name)


def f4_curves(ev: Path, same: bool) -> list[dict]:
    curves = []
    for label, variant, base in (
        ("Vanilla PT", "vanilla", 25.0),
        ("Instruct PT", "instruct", 27.0),
    ):
        steps = {}
        for step in (0, 100):
            model = f"it-{variant}-{step}"
            value = 30.0 if same else base + step / 100
            put(ev, model, "probe0", "mmlu", "MMLU", value, stderr=2.0, n=80)
            put(ev, model, "probe5", "mmlu", "MMLU", value + 1, stderr=2.0, n=80)
            for setting, shots in (("probe0", 0), ("probe5", 5)):
                path = ev / model / setting / "mmlu.json"
                res = json.loads(path.read_text())
                write_json(path, {**res, "num_fewshot": shots})
            steps[str(step)] = model
        curves.append({"label": label, "variant": variant, "steps": steps})
    return curves


def test_figure4_shows_metric_error_bars_chance_shots_and_no_hidden_line(
    tmp_path, captured_figures
):
    ev = tmp_path / "eval"
    docs = [{"query": f"q{i}", "choices": ["a", "b", "c", "d"], "gold": i % 4} for i in range(8)]
    for suite in ("probe0", "probe5"):  # the results' suite (put: the setting's name)
        (ev / "tasks" / suite).mkdir(parents=True)
        (ev / "tasks" / suite / "mmlu.jsonl").write_text(
            "".join(json.dumps(d) + "\n" for d in docs)
        )
    curves = f4_curves(ev, same=True)  # identical curves: one must not hide the other
    out = {k: tmp_path / f"f4.{k[4:]}" for k in ("out_csv", "out_md", "out_png", "out_pdf")}
    make("figure4",
        ev, curves, {"zero-shot": "probe0", "few-shot": "probe5"}, "mmlu", **out, run="r",
        scale="miniature", models_dir=tmp_path / "models",
    )  # fmt: skip
    (fig,) = captured_figures
    axes = fig.axes
    assert len(axes) == 2
    for ax, shots in zip(axes, (0, 5), strict=True):
        assert "acc_norm" in ax.get_ylabel()
        assert f"({shots} shots)" in ax.get_title() and "n=80" in ax.get_title()
        bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        assert len(bars) == 2 and all(c.has_yerr for c in bars)
        # Curves with the same values are drawn at different x and with different markers.
        xs = [tuple(c.lines[0].get_xdata()) for c in bars]
        assert xs[0] != xs[1]
        assert bars[0].lines[0].get_marker() != bars[1].lines[0].get_marker()
        chance = [ln for ln in ax.get_lines() if ln.get_label() == "chance"]
        assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(25.0)
    md = out["out_md"].read_text()
    assert "shifted by up to" in md and "the table has the true steps" in md
    assert "step 100" in md  # the CSV / table keep the true steps


def test_figure6_panels_share_x_and_drop_empty_categories(tmp_path, captured_figures):
    q = {
        "general": quality_json(
            tmp_path / "g.json",
            "general",
            90.0,
            75.0,
            {"fact lookup": 0.9, "arithmetic": 0.1, "sentiment": 0.0, "other": 0.0},
        ),
        "finance": quality_json(
            tmp_path / "f.json",
            "finance",
            90.0,
            75.0,
            {"fact lookup": 0.2, "arithmetic": 0.0, "sentiment": 0.8, "other": 0.0},
        ),
    }
    out = {k: tmp_path / f"f6.{k[4:]}" for k in ("out_csv", "out_md", "out_png", "out_pdf")}
    make("figure6", q, **out, run="r", scale="miniature")
    (fig,) = captured_figures
    a, b = fig.axes
    assert a.get_xlim() == b.get_xlim()
    labels = [t.get_text() for t in a.get_yticklabels()]
    assert labels == ["fact lookup", "arithmetic", "sentiment"]  # "other" is empty everywhere
    assert "n=20 pairs" in a.get_title() and "% of pairs" == a.get_xlabel()
    md = out["out_md"].read_text()
    assert "not plotted: other." in md
    q["finance"] = quality_json(
        tmp_path / "f.json", "finance", 90.0, 75.0, {"fact lookup": 0.5, "other": 0.5}
    )
    make("figure6", {"finance": q["finance"]}, **out, run="r", scale="miniature")
    assert "none left out of the figure" in out["out_md"].read_text()


def test_markdown_page_embeds_tables_and_figures(tmp_path, two_models):
    ev, rows = two_models
    out = outputs(tmp_path, "t1")
    make("table1", ev, rows, **out, run="r1", scale="paper")
    page = tmp_path / "t1.html"
    pages.markdown_page(out["out_md"], page)
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html
    assert "<td>52.0 ± 1.0</td>" in html and "<td>54.8 [S]</td>" in html
    # A figure's page carries its image inline; a missing image is named.
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    md = tmp_path / "fig.md"
    md.write_text("# Figure <x>\n\nFigure: ![Figure](fig.png)\n")
    pages.markdown_page(md, tmp_path / "fig.html")
    html = (tmp_path / "fig.html").read_text()
    assert 'src="data:image/png;base64,' in html and "<title>Figure &lt;x&gt;</title>" in html
    (tmp_path / "fig.png").unlink()
    with pytest.raises(FileNotFoundError, match="fig.png"):
        pages.markdown_page(md, tmp_path / "fig.html")


def test_claims_summary_counts_and_lists_every_claim(tmp_path, capsys):
    claims = [
        {"id": "a", "verdict": "held"},
        {"id": "b", "verdict": "inconclusive"},
        {"id": "c", "verdict": "inconclusive"},
        {"id": "d", "verdict": "not evaluated"},
    ]
    path = tmp_path / "claims.json"
    write_json(path, {"run": "tiny", "scale": "miniature", "seeds": None, "claims": claims})
    assert pages.main(["summary", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "Claims scorecard (run tiny, miniature scale): 1 held, 0 refuted, 2 inconclusive, "
        "1 not evaluated of 4"
    )
    assert [ln.split()[-1] for ln in lines[1:]] == ["a", "b", "c", "d"]
    write_json(path, {"claims": [{"id": "x"}]})
    assert pages.main(["summary", str(path)]) == 1
    assert "claims[0]: missing key 'verdict'" in capsys.readouterr().err
    assert pages.main(["summary", str(tmp_path / "nope.json")]) == 1
    assert "nope.json" in capsys.readouterr().err
