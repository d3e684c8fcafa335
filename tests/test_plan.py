"""The plan (instruct_pt.plan, `snakemake plan`): formulas against hand computations, the plan of
a small job list, and the paper-scale DAG planned end to end: every job of `snakemake -n`, every
training job through its start-up check, none over 80 GB per GPU; a config whose batch cannot
split over a job's GPUs fails the plan naming that job."""

import json
import math
import shutil

import pytest
from test_workflow import ROOT, planned_jobs, snakemake

from instruct_pt import plan as P

GiB = 2**30

# The 500M from-scratch model of config.yaml (Mistral family, untied), Mistral's 32000 vocab.
ARCH_500M = {
    "family": "mistral", "hidden_size": 1280, "num_layers": 24, "num_heads": 20,
    "num_kv_heads": 20, "intermediate_size": 3584, "max_position_embeddings": 2048,
    "tie_embeddings": False, "rope_theta": 10000.0,
}  # fmt: skip


# ----------------------------------------------------------------------------- parameters


def test_parameter_counts_match_the_published_sizes():
    # Mistral-7B: embed 32000*4096 = 131,072,000 (x2, untied); layer: q,o 2*4096^2 = 33,554,432,
    # k,v 2*4096*1024 = 8,388,608, MLP 3*4096*14336 = 176,160,768, norms 8192 -> 218,112,000;
    # 32 layers = 6,979,584,000; + final norm 4096 = 7,241,732,096 (the model card's count).
    assert P.param_counts(P.HUB_ARCHS["mistralai/Mistral-7B-v0.1"])["total"] == 7_241_732_096
    # Llama3-8B: the same layers, embeddings 128256*4096 = 525,336,576 x 2 -> 8,030,261,248.
    assert P.param_counts(P.HUB_ARCHS["meta-llama/Meta-Llama-3-8B"])["total"] == 8_030_261_248
    # Llama3-70B: layer 2*8192^2 + 2*8192*1024 + 3*8192*28672 + 16384 = 855,654,400; x80
    # = 68,452,352,000; + 2*128256*8192 + 8192 = 70,553,706,496.
    assert P.param_counts(P.HUB_ARCHS["meta-llama/Meta-Llama-3-70B"])["total"] == 70_553_706_496
    # Pythia-1B and BLOOM-3B carry biases we leave out: within 0.1% of 1,011,781,632 and
    # 3,002,557,440.
    assert P.param_counts(P.HUB_ARCHS["EleutherAI/pythia-1b"])["total"] == pytest.approx(
        1_011_781_632, rel=1e-3
    )
    assert P.param_counts(P.HUB_ARCHS["bigscience/bloom-3b"])["total"] == pytest.approx(
        3_002_557_440, rel=1e-3
    )


def test_500m_parameters_by_hand():
    n = P.param_counts({**ARCH_500M, "vocab_size": 32000})
    # layer: 4*1280^2 = 6,553,600 + 3*1280*3584 = 13,762,560 + 2*1280 = 20,318,720
    assert n["layer"] == 20_318_720
    # root: 2 * 32000*1280 + 1280 = 81,921,280; total 81,921,280 + 24*20,318,720 = 569,570,560
    assert n["root"] == 81_921_280
    assert n["total"] == 569_570_560


# ----------------------------------------------------------------------------- memory


def test_training_memory_500m_by_hand():
    """500M on 8 GPUs, 32 sequences of 2048 per process (config: 256 / 8 GPUs, micro 64 capped
    at 32), bf16, no checkpointing, no loss chunking."""
    m = P.estimate_training_memory(
        ARCH_500M, {"micro_batch_size": 32, "precision": "bf16"}, 2048, 8, 32000, overhead_gb=3
    )
    b = m["bytes"]
    assert b["params_grads_optimizer"] == 1_139_141_120  # 16 * 569,570,560 / 8
    assert b["gathered_params_grads"] == 449_597_440  # 2 * (2*81,921,280 + 3*20,318,720)
    # per token per layer: 18*1280 + 4*1280 + 8*3584 = 56,832 bytes; T = 65,536 tokens
    assert b["activations"] == 89_389_006_848  # 24 * 65,536 * 56,832
    assert b["loss"] == 25_165_824_000  # 12 * 65,536 * 32,000
    assert m["allocated_gb"] == pytest.approx(116_143_569_408 / GiB)  # 108.17
    assert m["total_gb"] == pytest.approx(108.167 + 3, abs=1e-3)


def test_checkpointing_and_loss_chunks_by_hand():
    train = {
        "micro_batch_size": 32,
        "precision": "bf16",
        "gradient_checkpointing": True,
        "loss_chunk_tokens": 8192,
    }
    m = P.estimate_training_memory(ARCH_500M, train, 2048, 8, 32000, overhead_gb=0)
    # layer inputs 24 * 65,536 * 2*1280 = 4,026,531,840 + one layer 65,536 * 56,832 = 3,724,541,952
    assert m["bytes"]["activations"] == 7_751_073_792
    assert m["bytes"]["loss"] == 3_145_728_000  # 12 * 8192 * 32000
    assert m["total_gb"] == pytest.approx(12_485_540_352 / GiB)  # 11.63
    # a chunk larger than the micro-batch is the micro-batch
    big = P.estimate_training_memory(
        ARCH_500M, {**train, "loss_chunk_tokens": 10**9}, 2048, 8, 32000
    )
    assert big["bytes"]["loss"] == 12 * 65_536 * 32_000


def test_one_process_and_fp32():
    one = P.estimate_training_memory(ARCH_500M, {"micro_batch_size": 1}, 2048, 1, 32000)
    assert one["bytes"]["params_grads_optimizer"] == 16 * 569_570_560
    assert one["bytes"]["gathered_params_grads"] == 2 * 569_570_560  # autocast's bf16 copies
    fp32 = P.estimate_training_memory(
        ARCH_500M, {"micro_batch_size": 1, "precision": "fp32"}, 2048, 1, 32000
    )
    assert fp32["bytes"]["activations"] == 2 * one["bytes"]["activations"]
    assert fp32["bytes"]["gathered_params_grads"] == 0


def test_estimate_accepts_a_train_config():
    from instruct_pt.training.settings import check_train

    cfg = check_train(
        {"batch_size": 256, "micro_batch_size": 64, "lr": 3e-4, "tokens": 10**9}, world=8
    )
    m = P.estimate_training_memory(ARCH_500M, cfg, 2048, 8, 32000)
    assert m["tokens_per_micro_batch"] == 32 * 2048  # micro capped at the per-process batch


def test_vllm_fits_a_7b_not_a_70b_on_one_gpu():
    ok = P.estimate_vllm_memory(P.HUB_ARCHS["mistralai/Mistral-7B-v0.1"], 1, 4096, 80, 0.9)
    # weights 2 * 7,241,732,096 B = 13.49 GiB; one 4096-token sequence: 2*32*1024*2 B * 4096
    # = 0.5 GiB; budget 0.9 * 80 = 72 GiB
    assert ok["fits"] and ok["needs_gb"] == pytest.approx(13.488 + 0.5, abs=1e-3)
    assert ok["total_gb"] == pytest.approx(72.0)
    big = P.estimate_vllm_memory(P.HUB_ARCHS["meta-llama/Meta-Llama-3-70B"], 1, 4096, 80, 0.9)
    assert not big["fits"]
    assert P.estimate_vllm_memory(P.HUB_ARCHS["meta-llama/Meta-Llama-3-70B"], 4, 4096, 80, 0.9)[
        "fits"
    ]


# ----------------------------------------------------------------------------- time


def test_training_gpu_hours_500m_by_hand():
    from instruct_pt.training.modeling import flops_per_token

    arch = {**ARCH_500M, "vocab_size": 32000}
    # 6 * (24 * (4*1280^2 + 3*1280*3584) + 32000*1280) + 12*24*1280*2048 = 3,926,261,760
    assert flops_per_token(arch, 2048) == 3_926_261_760
    # 100B tokens in batches of 256 x 2048: ceil(1e11 / 524,288) = 190,735 steps
    tokens = P.trained_tokens({"tokens": 10**11, "batch_size": 256}, 2048)
    assert tokens == 190_735 * 524_288
    gpu_s = P.training_gpu_seconds(3_926_261_760 * tokens, 312e12, 0.4)
    assert gpu_s / 3600 == pytest.approx(873.9, abs=0.1)


def test_measured_mfu_is_the_median_of_the_log(tmp_path):
    lines = [{"step": i, "mfu": v} for i, v in enumerate([0.9] + [0.3, 0.5, 0.4] * 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert P.measured_mfu(str(tmp_path)) == pytest.approx(0.4)  # first 10% (the 0.9) dropped
    assert P.measured_mfu(str(tmp_path / "none")) is None
    # training now logs speed in timing.jsonl (metrics.jsonl: the numbers a resume reproduces)
    (tmp_path / "timing.jsonl").write_text(json.dumps({"step": 5, "mfu": 0.25}) + "\n")
    assert P.measured_mfu(str(tmp_path)) == pytest.approx(0.25)


def test_eval_tokens_follow_tasks_shots_and_limit():
    suite = {"source": "lm_eval", "tasks": {"mmlu": {"lm_eval_task": "mmlu"}}}
    zero = P.eval_tokens({"suite": "general", "tasks": ["mmlu"]}, suite)
    assert zero == 14042 * 4 * 120
    assert P.eval_tokens({"tasks": ["mmlu"], "num_fewshot": 5}, suite) == 6 * zero
    assert P.eval_tokens({"tasks": ["mmlu"], "limit": 10}, suite) == 10 * 4 * 120


# ----------------------------------------------------------------------------- a job list


def _config():
    from instruct_pt.config import load_config

    return load_config(ROOT / "config.yaml")


def _train_job(name, batch_size, gpus, deps=()):
    return {
        "name": name,
        "rule": "pretrain_from_scratch",
        "wildcards": {"run": "paper", "size": "500m", "variant": "vanilla"},
        "params": {
            "arch": ARCH_500M,
            "train": {
                "batch_size": batch_size,
                "micro_batch_size": 4,
                "lr": 3e-4,
                "tokens": 10**9,
                "gradient_checkpointing": True,
            },  # fmt: skip
            "checkpoint_dir": "results/paper/checkpoints/none",
        },
        "resources": {"gpu": gpus},
        "threads": 8,
        "input": ["results/paper/packed/mistral/general-vanilla.L2048"],
        "output": ["results/paper/models/scratch-500m-vanilla"],
        "deps": list(deps),
    }


def test_plan_of_a_job_list_fails_naming_the_job():
    config = _config()
    good = _train_job("pretrain_from_scratch[size=500m,variant=vanilla]", 256, 8)
    bad = _train_job("pretrain_from_scratch[size=500m,variant=mix]", 4, 8)
    gpu_job = {
        **good, "name": "mystery", "rule": "mystery", "params": {}, "deps": [],
    }  # fmt: skip
    report1 = {**good, "name": "report_table1", "rule": "report_table1", "params": {},
               "resources": {}, "deps": [good["name"], bad["name"]]}  # fmt: skip
    report3 = {**report1, "name": "report_table3", "rule": "report_table3", "deps": [good["name"]]}
    plan = P.make_plan([good, bad, gpu_job, report1, report3], config, ["all"])
    jobs = {r["name"]: r for r in plan["jobs"]}
    assert jobs[good["name"]]["fits"] and jobs[good["name"]]["check"] == "ok"
    assert "does not split over 8 processes" in jobs[bad["name"]]["check"]
    assert not jobs["mystery"]["fits"]  # a GPU job the plan cannot estimate fails it
    failed = "\n".join(P.check_plan(plan))
    assert bad["name"] in failed and "mystery" in failed and good["name"] + ":" not in failed
    # a job upstream of two tables counts in both
    assert jobs[good["name"]]["tables"] == ["Table 1", "Table 3"]
    t = plan["totals"]["tables"]
    assert t["Table 1"]["gpu_hours"] == pytest.approx(
        jobs[good["name"]]["gpu_hours"] + jobs[bad["name"]]["gpu_hours"], abs=0.1
    )
    assert t["Table 3"]["gpu_hours"] == pytest.approx(jobs[good["name"]]["gpu_hours"], abs=0.1)
    md = P.render_md(plan)
    assert "| Table 1 |" in md and f"**{bad['name']}**" in md


def test_unknown_hub_model_is_named():
    config = _config()
    config["base_models"]["odd"] = {"source": "hub", "id": "someone/odd-model"}
    with pytest.raises(P.PlanError, match=r"base_models\.odd.*someone/odd-model"):
        P.model_arch("base-odd", config)


# ----------------------------------------------------------------------------- the real DAG

RUN = "pytest-plan"


def _plan_run(*extra):
    for folder in ("results", "logs"):
        shutil.rmtree(ROOT / folder / RUN, ignore_errors=True)
    return snakemake("--cores", "1", "plan", "--config", f"run={RUN}", *extra)


@pytest.mark.slow
def test_plan_of_the_paper_scale_dag():
    """`snakemake plan` on config.yaml: every job of the dry run, each training job through the
    start-up check its script makes, none above 80 GB per GPU."""
    result = _plan_run()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    plan = json.loads((ROOT / "results" / RUN / "plan.json").read_text())
    dry = planned_jobs(snakemake("-n", "--forceall", "--quiet", "rules", "--config", f"run={RUN}"))
    total = dry.pop("total")
    assert plan["totals"]["jobs"] == total
    assert plan["totals"]["jobs_by_rule"] == dry
    jobs = plan["jobs"]
    assert len(jobs) == total and len({j["name"] for j in jobs}) == total
    train = [j for j in jobs if j["kind"] == "train"]
    assert {j["rule"] for j in train} >= {
        "pretrain_from_scratch", "continual_pretrain", "finetune_synthesizer", "instruction_tune",
    }  # fmt: skip
    assert all(j["check"] == "ok" for j in train)
    assert all(j["fits"] and j["memory_gb_per_gpu"] <= 80 for j in jobs)
    for j in jobs:
        assert {"name", "rule", "gpus", "processes", "memory_gb_per_gpu", "fits"} <= set(j)
    assert plan["totals"]["tables"]["Table 1"]["gpu_hours"] > 0
    assert plan["totals"]["tables"]["Table 3"]["gpu_hours"] > 0
    assert not math.isnan(plan["totals"]["gpu_hours"])
    assert (ROOT / "results" / RUN / "plan.md").read_text().startswith("# Plan of run")


@pytest.mark.slow
def test_plan_fails_naming_a_job_whose_batch_cannot_split(tmp_path):
    """Instruction tuning with 4 sequences per batch (8192 / 2048) on its 8 GPUs: the job's
    start-up check would abort it after the DAG ran for days. The config's check refuses it
    before the DAG is built; a GPU count from --set-resources (which the config does not know):
    the plan fails first, naming the job."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("instruction_tuning:\n  train:\n    batch_tokens: 8192\n")
    result = _plan_run("--configfile", str(ROOT / "config.yaml"), str(overlay))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config key 'instruction_tuning.train.batch_tokens'" in out
    assert "do not split over compute.gpus.instruction_tune = 8 processes" in out
    result = _plan_run("--set-resources", "instruction_tune:gpu=3")  # 64 sequences on 3
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "instruction_tune[size=500m,variant=instruct]" in out
    assert "does not split over 3 processes" in out
    assert not (ROOT / "results" / RUN / "plan.json").exists()  # a failed plan leaves its log
    log = (ROOT / "logs" / RUN / "plan.log").read_text()
    assert "## Failures" in log


def teardown_module():
    for folder in ("results", "logs"):
        shutil.rmtree(ROOT / folder / RUN, ignore_errors=True)
