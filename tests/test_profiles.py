"""The cluster setup: the Slurm profile against the installed executor plugin (what sbatch and the
in-job srun get), where jobs run (localrules) and what they ask for per kind, and the hub
prefetch (what it asks the hub for, offline with the download functions replaced)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from instruct_pt.common import DataError
from instruct_pt.data import prefetch as pf

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


def gpu_rules() -> set[str]:
    """Rules that declare a `gpu=` resource."""
    found = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M):
            name = re.match(r"rule (\w+):", block)
            if name and re.search(r"^\s+gpu=", block, flags=re.M):
                found.add(name.group(1))
    return found


# ----------------------------------------------------------------------------- Slurm profile


def test_every_gpu_rule_has_a_gpu_partition_and_one_task():
    rules = gpu_rules()
    assert {"pretrain_from_scratch", "continual_pretrain", "evaluate", "synthesize"} <= rules
    sets = PROFILE["set-resources"]
    for rule in sorted(rules):
        assert rule in sets, f"profiles/slurm: set-resources lacks GPU rule {rule}"
        assert sets[rule].get("slurm_partition"), f"{rule}: no slurm_partition"
        assert sets[rule].get("tasks_per_gpu") == 0, f"{rule}: tasks_per_gpu must be 0"
        assert "tasks" not in sets[rule], f"{rule}: `tasks` becomes --ntasks-per-gpu"
    # CPU rules stay on the default (CPU) partition
    assert set(sets) == rules, sorted(set(sets) ^ rules)
    assert PROFILE["default-resources"]["slurm_partition"] == "cpu"


class _Resources(dict):
    __getattr__ = dict.__getitem__


def _job(resources: dict, threads: int = 8):
    return SimpleNamespace(resources=_Resources(resources), threads=threads)


def _sbatch(job) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {
        "run_uuid": "u",
        "slurm_logfile": "l",
        "comment_str": "c",
        "account": "-A acc",
        "partition": "-p gpu",
        "workdir": "/w",
    }
    return get_submit_command(job, params) + set_gres_string(job)


def test_plugin_gives_a_training_job_one_task_with_all_its_gpus():
    """pretrain_from_scratch at paper scale: 8 GPUs (config compute.gpus.pretrain), 8 threads."""
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting, get_gpu_setting

    assert CONFIG["compute"]["gpus"]["pretrain"] == 8
    res = {
        "gpu": 8,
        "mem_mb": 200000,
        "runtime": 4320,
        **PROFILE["set-resources"]["pretrain_from_scratch"],
    }
    sbatch = _sbatch(_job(res))
    assert "--ntasks-per-gpu" not in sbatch and "--ntasks=" not in sbatch
    assert "--gpus=8" in sbatch and "--cpus-per-gpu=8" in sbatch and "--mem 200000" in sbatch
    # inside the allocation the job runs as one step holding all 8 GPUs
    job = _job(res)
    assert get_gpu_setting(job) == "--gpus=8"
    assert get_cpu_setting(job, True) == "--cpus-per-gpu=8"
    # the trap the profile avoids: `tasks` (or tasks_per_gpu >= 1) starts N tasks of 1 GPU
    assert "--ntasks-per-gpu=1" in _sbatch(_job({**res, "tasks_per_gpu": None, "tasks": 1}))


def test_plugin_offers_squeue_for_clusters_without_accounting():
    """The profile documents slurm-status-command: squeue; the pinned plugin has the option."""
    import dataclasses

    from snakemake_executor_plugin_slurm import ExecutorSettings

    fields = {f.name for f in dataclasses.fields(ExecutorSettings)}
    assert "status_command" in fields
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert "# slurm-status-command: squeue" in text
    # no account: slurm_account null (2.8.0 ignores slurm-no-account; make check-slurm runs it)
    assert PROFILE["default-resources"]["slurm_account"] is None
    assert "slurm-no-account: true" not in text
    ci = yaml.safe_load((ROOT / "profiles" / "slurm-ci" / "config.yaml").read_text())
    assert ci["slurm-status-command"] == "squeue"
    assert not {"set-resources", "default-resources"} & set(ci), "would replace slurm's tables"


def test_ci_cluster_keeps_finished_jobs_long_enough_for_squeue():
    """.ci/slurm-up.sh's cluster: no accounting, and squeue still lists a finished job when the
    executor next looks (below 3 x the first-check delay the plugin goes back to sacct)."""
    conf = dict(re.findall(r"^(\w+)=(\S+)", (ROOT / ".ci" / "slurm-up.sh").read_text(), re.M))
    assert conf["AccountingStorageType"] == "accounting_storage/none"
    ci = yaml.safe_load((ROOT / "profiles" / "slurm-ci" / "config.yaml").read_text())
    assert int(conf["MinJobAge"]) >= max(300, 3 * ci["slurm-init-seconds-before-status-checks"])
    # every partition profiles/slurm names exists there
    parts = set(
        re.findall(r"^PartitionName=(\w+)", (ROOT / ".ci" / "slurm-up.sh").read_text(), re.M)
    )
    named = {PROFILE["default-resources"]["slurm_partition"]}
    named |= {r["slurm_partition"] for r in PROFILE["set-resources"].values()}
    assert named <= parts, named - parts


# ----------------------------------------------------------------------------- where jobs run

_LOCALRULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
files = [Path(p) for p in sys.argv[1:]]
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=files),
        snakefile=Path("Snakefile"),
        workdir=Path.cwd(),
    )
    print(json.dumps(sorted(wf._workflow._localrules)))
"""


def localrules(*configfiles: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _LOCALRULES, *configfiles],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_downloads_run_on_the_submitting_host():
    paper = localrules()
    # hub downloads, the remote judge, and the reports stay off the (offline) compute nodes
    assert {"fetch_hub", "prefetch", "base_model", "data_quality", "report_table1"} <= paper
    assert not {"prepare_dataset", "pretrain_from_scratch", "evaluate", "contamination"} & paper
    # miniature: base models are stand-ins trained on GPUs, the judge is off
    smoke = localrules("presets/smoke.yaml")
    assert "fetch_hub" in smoke and not {"base_model", "data_quality"} & smoke


def dry_run_jobs(*targets: str) -> dict[str, list[dict]]:
    """{rule: [{"resources": {...}, "input": str}]} of a paper-scale dry run on the Slurm profile."""
    out = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--profile", "profiles/slurm", *targets],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out.stdout):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        inp = re.search(r"^\s+input: (.*)$", block, flags=re.M)
        resources = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        jobs.setdefault(m.group(1), []).append(
            {"resources": resources, "input": inp.group(1) if inp else ""}
        )
    return jobs


def test_resources_per_kind_of_job_at_paper_scale():
    jobs = dry_run_jobs(
        "results/paper/models/base-mistral_7b",
        "results/paper/data/raw_general.jsonl",
        "results/paper/eval/tasks/general",
        "results/paper/models/scratch-500m-vanilla",
        "results/paper/models/cpt-biomedicine-vanilla",
    )
    # a hub base model is a download: no GPU, download memory/runtime, its bf16 weights as disk
    base = jobs["base_model"][0]["resources"]
    assert (base["gpu"], base["mem_mb"], base["runtime"]) == ("0", "8000", "2880")
    assert jobs["base_model"][0]["resources"]["disk_mb"] in ("14584", "16161")  # 2 B x params
    # a hub data set waits for its prefetch record; CPU partition, data kind
    raw = next(j for j in jobs["prepare_dataset"] if "raw_general" in j["input"])
    assert raw["input"] == "results/paper/prefetch/dataset-raw_general.json"
    assert raw["resources"]["slurm_partition"] == "cpu"
    assert (raw["resources"]["mem_mb"], raw["resources"]["disk_mb"]) == ("32000", "600000")
    # suite YAMLs: a light job, after the suite's data is fetched
    suite = jobs["eval_tasks"][0]
    assert suite["input"] == "results/paper/prefetch/suite-general.json"
    assert (suite["resources"]["mem_mb"], suite["resources"]["runtime"]) == ("4000", "60")
    # training disk = params x 40 B: 500M arch with vocab 128256 has 815,985,920 params
    # (embeddings 2 x 128256 x 1280 + 24 x 20,318,720 + 1280) -> 32,639.4 MB; Llama3-8B
    # 8,030,261,248 params -> 321,210.4 MB
    assert jobs["pretrain_from_scratch"][0]["resources"]["disk_mb"] == "32640"
    assert jobs["continual_pretrain"][0]["resources"]["disk_mb"] == "321211"
    assert jobs["pretrain_from_scratch"][0]["resources"]["slurm_partition"] == "gpu"


# ----------------------------------------------------------------------------- prefetch

# lm-eval 0.4.13's task YAMLs: (dataset_path, dataset_name) of each general-suite task
LM_EVAL_DATASETS = {
    "arc_easy": [("allenai/ai2_arc", "ARC-Easy")],
    "arc_challenge": [("allenai/ai2_arc", "ARC-Challenge")],
    "boolq": [("aps/super_glue", "boolq")],
    "social_iqa": [("lighteval/siqa", None)],
    "winogrande": [("allenai/winogrande", "winogrande_xl")],
    "piqa": [("baber/piqa", None)],
    "openbookqa": [("allenai/openbookqa", "main")],
    "hellaswag": [("Rowan/hellaswag", None)],
}
MMLU_SUBJECTS = 57


def test_plan_of_the_paper_config():
    groups = pf.plan(CONFIG)
    datasets = {g for g in groups if g.startswith("dataset-")}
    assert datasets == {
        "dataset-raw_general",
        "dataset-raw_biomedicine",
        "dataset-synth_ft",
        "dataset-general_instructions",
        "dataset-instruction_tuning",
    }  # raw_finance is a local file
    assert len(groups["dataset-synth_ft"]) == 29  # one per config of the collection
    assert groups["dataset-raw_biomedicine"] == [
        {
            "kind": "dataset",
            "key": "datasets.raw_biomedicine",
            "id": "EleutherAI/pile",
            "config": None,
            "split": "train",
            "revision": None,
        }
    ]
    assert {g for g in groups if g.startswith("tokenizer-")} == {
        "tokenizer-mistral",
        "tokenizer-llama3",
    }
    models = {g for g in groups if g.startswith("model-")}
    assert {"model-mistral_7b", "model-llama3_8b", "model-llama3_70b", "model-pythia_1b"} <= models
    assert {g for g in groups if g.startswith("suite-")} == {
        "suite-general",
        "suite-biomedicine",
        "suite-finance",
    }
    assert [a["task"] for a in groups["suite-general"]] == [
        "arc_challenge",
        "arc_easy",
        "boolq",
        "hellaswag",
        "mmlu",
        "openbookqa",
        "piqa",
        "social_iqa",
        "winogrande",
    ]  # sorted by our task names (siqa -> social_iqa)


def test_miniature_has_nothing_on_the_hub():
    smoke = yaml.safe_load((ROOT / "presets" / "smoke.yaml").read_text())
    merged = {**CONFIG, **smoke}  # every section the plan reads is replaced by the preset
    for section in ("datasets", "tokenizers", "base_models"):
        assert section in smoke
    merged["evaluation"] = {**CONFIG["evaluation"], **smoke["evaluation"]}
    assert pf.plan(merged) == {}
    assert pf.fetch([]) == []


@pytest.fixture(scope="module")
def task_index():
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def test_fetch_asks_the_hub_for_exactly_the_paper_artefacts(monkeypatch, task_index):
    import datasets
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    snapshots, loads = [], []

    def fake_snapshot(repo_id, revision=None, allow_patterns=None):
        snapshots.append((repo_id, revision, tuple(allow_patterns)))
        return f"/cache/models--{repo_id.replace('/', '--')}/snapshots/abc123"

    def fake_load(path, name=None, split=None, revision=None, **kwargs):
        loads.append((path, name, split, revision, tuple(sorted(kwargs))))
        return SimpleNamespace(
            num_rows=3,
            cache_files=[{"filename": f"/hf/datasets/{path}/{name}/0.0.0/deadbeef/x.arrow"}],
        )

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    groups = pf.plan(CONFIG)
    records = pf.fetch([a for g in sorted(groups) for a in groups[g]], task_index=task_index)

    # models and tokenizers: one snapshot each, weights only for models
    tok = tuple(pf.TOKENIZER_PATTERNS)
    assert ("mistralai/Mistral-7B-v0.1", None, tok) in snapshots
    assert ("meta-llama/Meta-Llama-3-8B", None, tok) in snapshots
    assert ("meta-llama/Meta-Llama-3-70B", None, tuple(pf.MODEL_PATTERNS)) in snapshots
    n_models = sum(1 for g in groups if g.startswith("model-"))
    assert len(snapshots) == n_models + 2
    assert "*.safetensors" not in tok and "*.safetensors" in pf.MODEL_PATTERNS

    # hub data sets: in full (no streaming), with their split
    hub_sets = [x for x in loads if x[2] is not None]
    assert ("tiiuae/falcon-refinedweb", None, "train", None, ()) in hub_sets
    assert (
        "instruction-pretrain/ft-instruction-synthesizer-collection",
        "squad",
        "train",
        None,
        (),
    ) in hub_sets
    assert len(hub_sets) == 1 + 1 + 29 + 1 + 1

    # evaluation data as lm-eval loads it (path, name, every split)
    eval_sets = [(p, n) for p, n, split, _, _ in loads if split is None]
    for task, expected in LM_EVAL_DATASETS.items():
        for item in expected:
            assert item in eval_sets, (task, item)
    mmlu = [n for p, n in eval_sets if p == "cais/mmlu"]
    assert len(mmlu) == MMLU_SUBJECTS and "abstract_algebra" in mmlu
    assert [n for p, n in eval_sets if p == "AdaptLLM/medicine-tasks"] == [
        "ChemProt",
        "MQP",
        "PubMedQA",
        "RCT",
        "USMLE",
    ]
    assert [n for p, n in eval_sets if p == "AdaptLLM/finance-tasks"] == [
        "ConvFinQA",
        "FiQA_SA",
        "FPB",
        "Headline",
        "NER",
    ]  # by our task names: convfinqa, fiqa_sa, fpb, headline, ner
    assert len(eval_sets) == len(LM_EVAL_DATASETS) + MMLU_SUBJECTS + 10
    # the manifest records the commit of each snapshot / cached data set
    model = next(r for r in records if r["key"] == "base_models.llama3_70b")
    assert model["sha"] == "abc123"
    assert all(r["sha"] == "deadbeef" for r in records if r["kind"] == "dataset")


def test_fetch_names_every_failure_and_refuses_offline(monkeypatch):
    import huggingface_hub

    def fail(repo_id, **kwargs):
        raise OSError(f"no route to {repo_id}")

    arts = pf.plan({**CONFIG, "datasets": {}, "evaluation": {"suites": {}}})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(DataError) as e:
        pf.fetch(arts["tokenizer-mistral"] + arts["model-llama3_8b"])
    assert "tokenizers.mistral" in str(e.value) and "base_models.llama3_8b" in str(e.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="login node"):
        pf.fetch(arts["tokenizer-mistral"])


def test_prefetch_writes_an_empty_manifest_at_miniature_scale(tmp_path):
    run = f"pytest_prefetch_{os.getpid()}"
    try:
        out = subprocess.run(
            [
                str(BIN / "snakemake"),
                "--configfile",
                "presets/smoke.yaml",
                "--config",
                f"run={run}",
                "--cores",
                "1",
                "--nolock",
                "prefetch",
            ],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        manifest = json.loads((ROOT / "results" / run / "prefetch" / "manifest.json").read_text())
        assert manifest == {"run": run, "groups": []}
    finally:
        shutil.rmtree(ROOT / "results" / run, ignore_errors=True)
        shutil.rmtree(ROOT / "logs" / run, ignore_errors=True)


def test_prefetch_target_fetches_what_the_paper_targets_read():
    """`snakemake prefetch` at paper scale: every group, models only those the DAG reads."""
    jobs = dry_run_jobs("prefetch")
    groups = {Path(p).stem for p in jobs["prefetch"][0]["input"].split(", ")}
    assert {g for g in groups if g.startswith("model-")} == {
        "model-mistral_7b",  # the synthesizer's base
        "model-llama3_8b",  # continual pre-training start, Table 3
        "model-llama3_70b",  # Table 3
        "model-pythia_1b",  # Table 2
        "model-bloom_3b",  # Table 2
    }  # not released_synthesizer (synthesizer.use: finetuned), nor the `released` target's
    assert len(groups) == 5 + 2 + 5 + 3  # data sets, tokenizers, models, suites
    assert len(jobs["fetch_hub"]) == len(groups)


def test_a_missing_kind_of_job_is_named():
    from instruct_pt.config import ConfigError, validate_config

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    del cfg["compute"]["disk_mb"]["light"]
    with pytest.raises(ConfigError, match=r"compute\.disk_mb.*'light' is a required property"):
        validate_config(cfg, ROOT / "workflow" / "schemas" / "config.schema.yaml")
