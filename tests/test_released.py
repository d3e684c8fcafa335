"""The released checkpoints, evaluated (target `released`): the plan from config, the table
beside the paper's numbers, and the target run for real on stand-ins in hub format (tiny random
Mistral / Llama models in an offline Hugging Face cache, under the released models' own ids)."""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from instruct_pt import config as cfg
from instruct_pt.config import ConfigError
from instruct_pt.reports import released

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IDS = {
    "instructlm_500m": ("instruction-pretrain/InstructLM-500M", "mistral"),
    "instructlm_1.3b": ("instruction-pretrain/InstructLM-1.3B", "mistral"),
    "medicine_llama3_8b": ("instruction-pretrain/medicine-Llama3-8B", "llama"),
    "finance_llama3_8b": ("instruction-pretrain/finance-Llama3-8B", "llama"),
}


def paper_config(*presets):
    return cfg.load_config(ROOT / "config.yaml", *(ROOT / "presets" / p for p in presets))


# ----------------------------------------------------------------------------- the plan


@pytest.mark.parametrize("presets", [(), ("smoke.yaml",), ("tiny.yaml",)])
def test_config_and_presets_validate_and_plan_the_four_released_models(presets):
    config = paper_config(*presets)
    cfg.validate_config(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    for name, (hub_id, _) in IDS.items():
        assert config["base_models"][name]["source"] == "hub"
        assert config["base_models"][name]["id"] == hub_id
    rows = released.plan(config)
    got = [(r["model"], r["label"], r["setting"], r["paper"]) for r in rows]
    assert got == [
        ("base-instructlm_500m", "InstructLM-500M", "general",
         {"table": "table1", "row": "500M Instruct PT", "avg_column": "Avg"}),
        ("base-instructlm_1.3b", "InstructLM-1.3B", "general",
         {"table": "table1", "row": "1.3B Instruct PT", "avg_column": "Avg"}),
        ("base-medicine_llama3_8b", "medicine-Llama3-8B", "biomedicine",
         {"table": "table3", "row": "Instruct PT-8B", "avg_column": "Biomed avg"}),
        ("base-finance_llama3_8b", "finance-Llama3-8B", "finance",
         {"table": "table3", "row": "Instruct PT-8B", "avg_column": "Finance avg"}),
    ]  # fmt: skip
    assert config["base_models"]["instructlm_500m"]["tokenizer"] == "mistral"
    assert config["base_models"]["medicine_llama3_8b"]["tokenizer"] == "llama3"


def test_paper_task_groups():
    assert released.paper_tasks("table1", "Avg") == [
        "ARC-e", "ARC-c", "BoolQ", "SIQA", "WinoGrande", "PIQA", "OBQA", "HellaSwag", "MMLU",
    ]  # fmt: skip
    assert released.paper_tasks("table3", "Biomed avg") == [
        "PubMedQA", "ChemProt", "MQP", "RCT", "USMLE",
    ]  # fmt: skip
    assert released.paper_tasks("table3", "Finance avg") == [
        "ConvFinQA", "FPB", "FiQA SA", "Headline", "NER",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"nope": {"settings": {"general": None}}},
            r"'released\.nope': 'nope' is not in base_models",
        ),
        (
            {"instructlm_500m": {"settings": {"gen": None}}},
            r"'released\.instructlm_500m\.settings\.gen': 'gen' is not in evaluation\.settings",
        ),
        (
            {"instructlm_500m": {"settings": {"general": {"table": "table1", "row": "500M"}}}},
            r"settings\.general\.row': '500M' is not a row of table1",
        ),
        (
            {
                "instructlm_500m": {
                    "settings": {"general": {"table": "table3", "row": "Instruct PT-8B"}}
                }
            },
            r"settings\.general\.table': Table 3 has averages for the suites",
        ),
    ],
)
def test_bad_released_entries_name_the_key(entry, message):
    config = paper_config()
    config["released"] = entry
    with pytest.raises(ConfigError, match=message):
        released.plan(config)


def test_schema_rejects_an_unknown_table():
    config = paper_config()
    config["released"]["instructlm_500m"]["settings"]["general"]["table"] = "table9"
    with pytest.raises(ConfigError, match=r"released\.instructlm_500m\.settings\.general\.table"):
        cfg.validate_config(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


# ----------------------------------------------------------------------------- the table

GENERAL = {  # task -> (paper_name, metric, value, stderr, n); hand-written results
    "arc_easy": ("ARC-e", "acc_norm", 56.0, 1.0, 2376),
    "arc_challenge": ("ARC-c", "acc_norm", 28.0, 1.3, 1172),
    "boolq": ("BoolQ", "acc", 60.0, 0.9, 3270),
    "siqa": ("SIQA", "acc", 46.0, 1.1, 1954),
    "winogrande": ("WinoGrande", "acc", 54.0, 1.4, 1267),
    "piqa": ("PIQA", "acc_norm", 70.0, 1.1, 1838),
    "openbookqa": ("OBQA", "acc_norm", 31.0, 2.1, 500),
    "hellaswag": ("HellaSwag", "acc_norm", 48.0, 0.5, 10042),
    "mmlu": ("MMLU", "acc", 26.0, 0.4, 14042),
}
BIOMED = {
    "pubmedqa": ("PubMedQA", "acc", 70.0, 2.0, 500),
    "chemprot": ("ChemProt", "micro_f1", 40.0, None, 1000),
    "mqp": ("MQP", "acc", 75.0, 2.5, 600),
    "rct": ("RCT", "micro_f1", 50.0, None, 1000),
    "usmle": ("USMLE", "acc", 40.0, 1.4, 1273),
}
FINANCE = {  # NER left out: the average is then not the paper's
    "convfinqa": ("ConvFinQA", "numeric_em", 70.0, 1.0, 1490),
    "fpb": ("FPB", "weighted_f1", 80.0, None, 970),
    "fiqa_sa": ("FiQA_SA", "weighted_f1", 75.0, None, 235),
    "headline": ("Headline", "mean_weighted_f1", 85.0, None, 20547),
}


def write_results(eval_dir: Path, model: str, setting: str, tasks: dict) -> None:
    d = eval_dir / model / setting
    d.mkdir(parents=True)
    for task, (paper_name, metric, value, stderr, n) in tasks.items():
        rec = {"model": model, "task": task, "paper_name": paper_name, "metric": metric,
               "value": value, "stderr": stderr, "n": n}  # fmt: skip
        (d / f"{task}.json").write_text(json.dumps(rec))


def test_table_beside_the_paper_at_paper_scale(tmp_path):
    eval_dir = tmp_path / "eval"
    write_results(eval_dir, "base-instructlm_500m", "general", GENERAL)
    write_results(eval_dir, "base-medicine_llama3_8b", "biomedicine", BIOMED)
    write_results(eval_dir, "base-finance_llama3_8b", "finance", FINANCE)
    rows = [r for r in released.plan(paper_config()) if r["name"] != "instructlm_1.3b"]
    out_csv, out_md = tmp_path / "released.csv", tmp_path / "released.md"
    released.report(eval_dir, rows, out_csv=out_csv, out_md=out_md, run="r", scale="paper")
    with open(out_csv, newline="") as f:
        lines = list(csv.DictReader(f))
    assert tuple(lines[0]) == released.FIELDS
    cell = {(ln["label"], ln["task"]): ln for ln in lines}
    # 9 + Avg, 5 + avg, 4 + avg; tasks in the paper's column order.
    assert len(lines) == 10 + 6 + 5
    assert [ln["paper_column"] for ln in lines[:10]] == [
        "ARC-e", "ARC-c", "BoolQ", "SIQA", "WinoGrande", "PIQA", "OBQA", "HellaSwag", "MMLU", "Avg",
    ]  # fmt: skip

    arc = cell[("InstructLM-500M", "arc_easy")]
    assert (arc["ours"], arc["ours_stderr"], arc["n"]) == ("56", "1", "2376")
    assert (arc["paper"], arc["paper_tag"], arc["paper_row"]) == ("54.8", "[S]", "500M Instruct PT")
    # An UNCONFIRMED cell keeps its tag, never a number.
    arc_c = cell[("InstructLM-500M", "arc_challenge")]
    assert (arc_c["paper"], arc_c["paper_tag"]) == ("", "UNCONFIRMED")
    # Avg: (56+28+60+46+54+70+31+48+26)/9 = 419/9; se = sqrt(sum se^2)/9 = sqrt(12.7)/9.
    avg = cell[("InstructLM-500M", "Avg")]
    assert avg["metric"] == "mean" and avg["ours"] == "46.5556"
    assert avg["ours_stderr"] == "0.396"
    assert (avg["paper"], avg["paper_tag"]) == ("46.6", "[S2]")
    assert "not the paper's average" not in avg["note"]

    pubmed = cell[("medicine-Llama3-8B", "pubmedqa")]
    assert (pubmed["paper"], pubmed["paper_tag"], pubmed["paper_column"]) == (
        "68.7",
        "[S]",
        "PubMedQA",
    )
    bio = cell[("medicine-Llama3-8B", "Biomed avg")]
    assert bio["ours"] == "55" and bio["ours_stderr"] == ""  # (70+40+75+50+40)/5; F1s have no se
    assert (bio["paper"], bio["paper_tag"]) == ("61.3", "[S2]")
    assert cell[("medicine-Llama3-8B", "chemprot")]["paper_tag"] == "UNCONFIRMED"

    # FiQA_SA is the paper's "FiQA SA"; an average over 4 of the 5 tasks is not the paper's.
    assert cell[("finance-Llama3-8B", "fiqa_sa")]["paper_column"] == "FiQA SA"
    fin = cell[("finance-Llama3-8B", "Finance avg")]
    assert fin["ours"] == "77.5" and (fin["paper"], fin["paper_tag"]) == ("74.7", "[S2]")
    assert "not the paper's average" in fin["note"] and "not evaluated here: NER" in fin["note"]

    md = out_md.read_text()
    assert (
        "| InstructLM-500M | general | arc_easy | acc_norm | 56.0 ± 1.0 | 2376 | 54.8 [S] |" in md
    )
    assert (
        "| InstructLM-500M | general | arc_challenge | acc_norm | 28.0 ± 1.3 | 1172 | UNCONFIRMED |"
        in md
    )
    assert (
        "| medicine-Llama3-8B | biomedicine | **Biomed avg** | mean | 55.0 | — | 61.3 [S2] | Table 3, Instruct PT-8B, Biomed avg |"
        in md
    )
    assert "- finance-Llama3-8B Finance avg: not the paper's average" in md
    # Deterministic: a rerun writes the same bytes.
    before = out_csv.read_bytes(), md
    released.report(eval_dir, rows, out_csv=out_csv, out_md=out_md, run="r", scale="paper")
    assert (out_csv.read_bytes(), out_md.read_text()) == before


def test_miniature_scale_shows_the_paper_only_for_averages(tmp_path):
    """World tasks stand in for the paper's: paper order through paper_name, no per-task numbers."""
    eval_dir = tmp_path / "eval"
    write_results(eval_dir, "base-medicine_llama3_8b", "biomedicine", {
        "usmle_like": ("USMLE", "acc", 30.0, 5.0, 12),
        "pubmedqa_like": ("PubMedQA", "acc", 60.0, 4.0, 12),
        "zeta": ("", "acc", 15.0, None, 12),
    })  # fmt: skip
    rows = [r for r in released.plan(paper_config()) if r["name"] == "medicine_llama3_8b"]
    out_csv, out_md = tmp_path / "r.csv", tmp_path / "r.md"
    lines = released.report(eval_dir, rows, out_csv=out_csv, out_md=out_md, run="m",
                            scale="miniature")  # fmt: skip
    assert [ln["task"] for ln in lines] == ["pubmedqa_like", "usmle_like", "zeta", "Biomed avg"]
    assert all(
        (ln["paper"], ln["paper_tag"], ln["paper_column"]) == ("", "", "") for ln in lines[:3]
    )
    avg = lines[-1]
    assert avg["ours"] == "35" and avg["ours_stderr"] == ""  # (60+30+15)/3; one task has no se
    assert (avg["paper"], avg["paper_tag"]) == ("61.3", "[S2]")
    assert "for orientation" in avg["note"] and "not the paper's average" not in avg["note"]
    md = out_md.read_text()
    assert "Miniature-scale numbers" in md
    assert (
        "| medicine-Llama3-8B | biomedicine | pubmedqa_like | acc | 60.0 ± 4.0 | 12 | — | Table 3, Instruct PT-8B |"
        in md
    )


def test_a_setting_without_a_paper_cell(tmp_path):
    """`setting: null`: our scores and their mean, no paper column (e.g. a 500M model on finance)."""
    config = paper_config()
    config["released"] = {"instructlm_500m": {"settings": {"finance": None}}}
    (row,) = released.plan(config)
    assert (row["label"], row["setting"], row["paper"]) == ("instructlm_500m", "finance", None)
    write_results(tmp_path, "base-instructlm_500m", "finance", FINANCE)
    lines = released.report(tmp_path, [row], out_csv=tmp_path / "r.csv", out_md=tmp_path / "r.md",
                            run="r", scale="paper")  # fmt: skip
    # No paper group: by column name (the paper's task names at paper scale).
    assert [ln["task"] for ln in lines] == ["convfinqa", "fpb", "fiqa_sa", "headline", "Avg"]
    assert lines[-1]["ours"] == "77.5"
    assert all(ln["paper_table"] == ln["paper"] == ln["paper_tag"] == "" for ln in lines)


def test_missing_results_are_named(tmp_path):
    rows = released.plan(paper_config())[:1]
    with pytest.raises(FileNotFoundError, match=r"base-instructlm_500m/general: no results"):
        released.report(tmp_path, rows, out_csv=tmp_path / "a.csv", out_md=tmp_path / "a.md",
                        run="r", scale="paper")  # fmt: skip
    with pytest.raises(ConfigError, match="config key 'released'"):
        released.report(tmp_path, [], out_csv=tmp_path / "a.csv", out_md=tmp_path / "a.md",
                        run="r", scale="paper")  # fmt: skip


# ----------------------------------------------------------------------------- the target

ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_MODE": "disabled",
}


def snakemake(workdir: Path, *args, env=ENV, timeout=300):
    return subprocess.run(
        [str(BIN / "snakemake"), "--directory", str(workdir), "--snakefile", str(ROOT / "Snakefile"),
         *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def planned_jobs(text: str) -> dict[str, int]:
    block = text.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", block, re.M)}


def hub_snapshot(cache: Path, repo_id: str, folder: Path, commit: str) -> None:
    """Lay a model folder out as the hub cache does: blobs by hash, a snapshot of links, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    for src in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = src.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / src.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """The four released ids as tiny random models in an offline hub cache (HF_HOME/hub)."""
    from instruct_pt.data.tokenizer import train_bpe
    from instruct_pt.training.modeling import build_model, save_model

    home = tmp_path_factory.mktemp("hf_home")
    texts = ["Does A1 bind B1? yes", "The company reported a profit.", "Q: what? A: red"] * 20
    tok_dir = tmp_path_factory.mktemp("tok")
    train_bpe(iter(texts), vocab_size=300).save_pretrained(tok_dir)
    for i, (name, (repo_id, family)) in enumerate(IDS.items()):
        arch = {
            "family": family, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 2048, "tie_embeddings": True,
            "rope_theta": 10000.0,
        }  # fmt: skip
        out = tmp_path_factory.mktemp(name)
        save_model(build_model(arch, str(tok_dir), i), str(tok_dir), str(out))
        hub_snapshot(home / "hub", repo_id, out, f"{i:040x}")
    return home


def mini_args(tmp_path: Path) -> tuple[str, ...]:
    """config.yaml + the smoke preset (world suites) + 4 documents per task, run "rel"."""
    overlay = tmp_path / "mini.yaml"
    limit = "{ limit: 4 }"
    overlay.write_text(
        "run: rel\n"
        "evaluation:\n"
        "  settings:\n"
        f"    general: {limit}\n    biomedicine: {limit}\n    finance: {limit}\n"
    )
    return ("--configfile", str(ROOT / "config.yaml"), str(ROOT / "presets" / "smoke.yaml"),
            str(overlay))  # fmt: skip


def test_released_target_plans_exactly_its_jobs_and_the_default_none(tmp_path):
    args = mini_args(tmp_path)
    dry = snakemake(tmp_path, "released", "-n", *args)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    # Fetch the four models, build the three suites, evaluate, report: nothing is trained.
    assert planned_jobs(dry.stdout + dry.stderr) == {
        "base_model": 4, "eval_tasks": 3, "evaluate": 4, "report_released": 1, "released": 1,
        "total": 13,
    }  # fmt: skip
    for name, setting in [("instructlm_500m", "general"), ("instructlm_1.3b", "general"),
                          ("medicine_llama3_8b", "biomedicine"), ("finance_llama3_8b", "finance")]:  # fmt: skip
        assert f"results/rel/models/base-{name}" in dry.stdout
        assert f"results/rel/eval/base-{name}/{setting}" in dry.stdout
    # The preset's default target plans none of them.
    default = snakemake(tmp_path, "-n", *args)
    assert default.returncode == 0, (default.stdout + default.stderr)[-3000:]
    assert "report_released" not in default.stdout and "evaluate" in default.stdout
    assert not any(f"base-{name}" in default.stdout for name in IDS)


@pytest.mark.slow  # ~70 s of CPU (13 jobs); minutes of wall time on a busy 2-core machine
def test_released_target_runs_offline_on_hub_stand_ins(tmp_path, hub_cache):
    args = mini_args(tmp_path)
    env = {**ENV, "HF_HOME": str(hub_cache), "HF_HUB_CACHE": str(hub_cache / "hub")}
    result = snakemake(tmp_path, "released", "--cores", "2", *args, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

    # The hub path: each model folder links the cached snapshot of its own id.
    for i, (name, (repo_id, family)) in enumerate(IDS.items()):
        folder = tmp_path / f"results/rel/models/base-{name}"
        base = json.loads((folder / "base_model.json").read_text())
        assert base["summary"]["id"] == repo_id
        assert base["summary"]["snapshot"].endswith(f"snapshots/{i:040x}")
        assert json.loads((folder / "config.json").read_text())["model_type"] == family
    with open(tmp_path / "paper_figures/rel/released.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    by_model: dict[str, list[dict]] = {}
    for ln in lines:
        by_model.setdefault(ln["label"], []).append(ln)
    assert list(by_model) == ["InstructLM-500M", "InstructLM-1.3B", "medicine-Llama3-8B",
                              "finance-Llama3-8B"]  # fmt: skip
    for label, model_lines in by_model.items():
        *tasks, avg = model_lines
        assert tasks and all(ln["n"] == "4" for ln in tasks), label  # limit: 4 documents
        scores = [float(ln["ours"]) for ln in tasks]
        assert all(0 <= s <= 100 for s in scores)
        assert float(avg["ours"]) == pytest.approx(sum(scores) / len(scores), abs=1e-3)
        # Miniature scale: only the average shows the paper's number, for orientation.
        assert all(ln["paper"] == "" and ln["paper_tag"] == "" for ln in tasks)
    bio = by_model["medicine-Llama3-8B"]
    assert [ln["task"] for ln in bio] == [  # the paper's column order, through paper_name
        "pubmedqa_like", "chemprot_like", "mqp_like", "rct_like", "usmle_like", "Biomed avg",
    ]  # fmt: skip
    assert (bio[-1]["paper"], bio[-1]["paper_tag"]) == ("61.3", "[S2]")
    assert "for orientation" in bio[-1]["note"]
    md = (tmp_path / "paper_figures/rel/released.md").read_text()
    assert "Miniature-scale numbers" in md and "| finance-Llama3-8B | finance |" in md
