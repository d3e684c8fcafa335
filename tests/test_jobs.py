"""Around every job: checkpoints removed once its outputs are complete (kept when the config says
so, or when the job did not finish), and a console heartbeat for long jobs. (A benchmark on
every rule that does work: tests/test_timing.py.)"""

import ast
import io
import re
import runpy
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import InputFiles, Params

from instruct_pt import config as cfg
from instruct_pt.common import DataError
from instruct_pt.training import jobs

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "rules").glob("*.smk"))
SCRIPTS = ROOT / "workflow" / "scripts"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

# Rules with a checkpoint_dir that is not a training or synthesis checkpoint.
NOT_REMOVED = {"data_quality": "a cache of LLM-judge replies (paid API calls), kept for reruns"}


def _checkpoint(root: Path, name: str = "scratch-500m-vanilla") -> Path:
    ckpt = root / "results" / "run" / "checkpoints" / name
    (ckpt / "step00000010").mkdir(parents=True)
    (ckpt / "step00000010" / "model.pt").write_bytes(b"\0" * 1000)
    (ckpt / "metrics.jsonl").write_text('{"step": 10}\n')
    return ckpt


def _outputs(root: Path) -> list[str]:
    out = root / "results" / "run" / "models" / "scratch-500m-vanilla"
    out.mkdir(parents=True)
    (out / "model.safetensors").write_bytes(b"x")
    return [str(out)]


# ------------------------------------------------------------------ finish_checkpoints


def test_checkpoints_are_removed_once_the_outputs_are_complete(tmp_path):
    ckpt = _checkpoint(tmp_path)
    removed = jobs.finish_checkpoints(ckpt, _outputs(tmp_path), keep=False)
    assert not ckpt.exists()
    assert removed == 1000 + len('{"step": 10}\n')


def test_checkpoints_are_kept_when_the_config_keeps_them(tmp_path):
    ckpt = _checkpoint(tmp_path)
    assert jobs.finish_checkpoints(ckpt, _outputs(tmp_path), keep=True) == 0
    assert (ckpt / "step00000010" / "model.pt").is_file()


def test_checkpoints_are_kept_while_an_output_is_missing(tmp_path, caplog):
    ckpt = _checkpoint(tmp_path)
    outputs = [*_outputs(tmp_path), str(tmp_path / "results" / "run" / "missing.json")]
    assert jobs.finish_checkpoints(ckpt, outputs, keep=False) == 0
    assert (ckpt / "step00000010").is_dir()
    assert "missing.json" in caplog.text


def test_a_path_outside_a_checkpoints_folder_is_never_removed(tmp_path):
    victim = tmp_path / "results" / "run" / "models"
    victim.mkdir(parents=True)
    with pytest.raises(DataError, match="not under a 'checkpoints' folder"):
        jobs.finish_checkpoints(victim, [], keep=False)
    assert victim.is_dir()


def test_no_checkpoint_folder_is_nothing_to_do(tmp_path):
    assert jobs.finish_checkpoints(tmp_path / "checkpoints" / "none", [], keep=False) == 0


def test_keep_finished_checkpoints_reads_the_config():
    assert jobs.keep_finished_checkpoints({"compute": {}}) is False
    assert jobs.keep_finished_checkpoints({"compute": {"keep_finished_checkpoints": True}})
    with pytest.raises(DataError, match="'compute.keep_finished_checkpoints'"):
        jobs.keep_finished_checkpoints({"compute": {"keep_finished_checkpoints": "yes"}})


def test_the_schema_knows_keep_finished_checkpoints():
    c = cfg.load_config(ROOT / "config.yaml")
    assert c["compute"]["keep_finished_checkpoints"] is False
    c["compute"]["keep_finished_checkpoints"] = True
    cfg.validate_config(c, SCHEMA)
    c["compute"]["keep_finished_checkpoints"] = "no"
    with pytest.raises(cfg.ConfigError, match="'compute.keep_finished_checkpoints'"):
        cfg.validate_config(c, SCHEMA)


# ------------------------------------------------------------------ the scripts call it last


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in RULES:
        parts = re.split(r"^(?=\s*(?:rule|checkpoint) \w+:)", path.read_text(), flags=re.M)
        for block in parts:
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if m:
                blocks[m.group(1)] = block
    return blocks


def _script_of(block: str) -> Path | None:
    m = re.search(r'^\s+script:\s*\n\s+"\.\./workflow/scripts/([\w.]+)"', block, re.M)
    return SCRIPTS / m.group(1) if m else None


def _last_statement(script: Path) -> ast.stmt:
    body = ast.parse(script.read_text()).body
    last = body[-1]
    if isinstance(last, ast.If) and "__main__" in ast.unparse(last.test):
        last = last.body[-1]
    return last


def test_every_rule_with_a_checkpoint_removes_it_last():
    """Every training and synthesis rule's script ends with finish_checkpoints, after its work."""
    blocks = _rule_blocks()
    with_checkpoints = {r: b for r, b in blocks.items() if "checkpoint_dir=" in b}
    assert {"pretrain_from_scratch", "synthesize", "instruction_tune"} <= set(with_checkpoints)
    for rule, block in sorted(with_checkpoints.items()):
        if rule in NOT_REMOVED:
            continue
        script = _script_of(block)
        assert script is not None, f"{rule}: no script"
        last = _last_statement(script)
        assert (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func) == "finish_checkpoints"
        ), f"{script.name}: finish_checkpoints is not its last statement"
        assert "snakemake.params.checkpoint_dir" in ast.unparse(last)


class _Namedlist(list):
    def __getattr__(self, name):
        return self[0]


def _fake_snakemake(tmp_path, keep=False):
    ckpt = tmp_path / "results" / "run" / "checkpoints" / "scratch-500m-vanilla"
    out = tmp_path / "results" / "run" / "models" / "scratch-500m-vanilla"
    return SimpleNamespace(
        log=[str(tmp_path / "logs" / "job.log")],
        rule="pretrain_from_scratch",
        input=InputFiles(fromdict={"packed": "p", "tokenizer": "t"}),
        output=_Namedlist([str(out)]),
        params=Params(fromdict={"train": {}, "checkpoint_dir": str(ckpt), "seed": 1, "arch": {}}),
        resources=SimpleNamespace(gpu=0),
        threads=1,
        config={"compute": {"keep_finished_checkpoints": keep}},
    )


@pytest.mark.parametrize("outcome", ["success", "killed", "kept"])
def test_pretrain_script_removes_checkpoints_only_after_success(tmp_path, monkeypatch, outcome):
    """The rule's own script, its training replaced by a stand-in that checkpoints, then either
    writes the model or dies: the checkpoint goes only after the model is written."""
    import instruct_pt.training.launch

    smk = _fake_snakemake(tmp_path, keep=outcome == "kept")

    def fake_launch(entry, kwargs, nproc):
        _checkpoint(tmp_path)
        if outcome == "killed":
            raise KeyboardInterrupt("killed")
        Path(kwargs["out_dir"]).mkdir(parents=True)
        (Path(kwargs["out_dir"]) / "train_summary.json").write_text("{}\n")

    monkeypatch.setattr(instruct_pt.training.launch, "launch", fake_launch)
    monkeypatch.setenv(jobs.HEARTBEAT_ENV, "0")
    if outcome == "killed":
        with pytest.raises(KeyboardInterrupt):
            runpy.run_path(str(SCRIPTS / "train_lm.py"), init_globals={"snakemake": smk})
    else:
        runpy.run_path(str(SCRIPTS / "train_lm.py"), init_globals={"snakemake": smk})
    ckpt = Path(smk.params.checkpoint_dir)
    assert ckpt.exists() == (outcome != "success")
    if outcome == "success":
        assert "checkpoints/scratch-500m-vanilla: removed" in Path(smk.log[0]).read_text()


def _params_of(block: str) -> list[str]:
    m = re.search(r"^    params:\n((?:        .*\n|\s*\n)+)", block, re.M)
    return re.findall(r"^        (\w+)=", m.group(1), re.M) if m else []


def test_the_shared_training_scripts_match_their_entry_points():
    """train_lm.py serves both pre-training rules, finetune.py the three fine-tuning rules (the
    rule's name is its entry point, its params are the keyword arguments): every rule's params
    are arguments its entry point takes, so no rule calls a stage with a key it does not know."""
    import inspect

    from instruct_pt.training import stages
    from instruct_pt.training.launch import ENTRY_POINTS

    blocks = _rule_blocks()
    users: dict[str, list[str]] = {}
    for rule, block in blocks.items():
        script = _script_of(block)
        if script is not None and script.name in ("train_lm.py", "finetune.py"):
            users.setdefault(script.name, []).append(rule)
    assert sorted(users["train_lm.py"]) == [
        "ceiling_pretrain",  # the general ceiling: Instruct PT on the oracle's pairs
        "continual_pretrain",
        "pretrain_from_scratch",
    ]
    assert sorted(users["finetune.py"]) == [
        "ceiling_tune",
        "finetune_synthesizer",
        "instruction_tune",
    ]
    for script, rules in users.items():
        for rule in rules:
            entry = "pretrain" if script == "train_lm.py" else rule
            assert entry in ENTRY_POINTS
            accepted = set(inspect.signature(getattr(stages, entry)).parameters)
            params = _params_of(blocks[rule])
            assert {"train", "checkpoint_dir", "seed"} <= set(params), rule
            assert set(params) <= accepted, f"{rule}: {set(params) - accepted} not taken by {entry}"


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ("finetune_synthesizer", {"max_per_dataset": 7, "seq_len": 64}),
        ("instruction_tune", {"save_steps": [0, 5], "seq_len": 32}),
        ("ceiling_tune", {"seq_len": 16}),
    ],
)
def test_finetune_script_calls_the_rules_entry_point_with_its_params(
    tmp_path, monkeypatch, rule, params
):
    import instruct_pt.training.launch

    smk = _fake_snakemake(tmp_path, keep=True)
    smk.rule = rule
    smk.input = InputFiles(fromdict={"base": "b", "data": "d.jsonl"})
    ckpt = str(tmp_path / "checkpoints" / rule)
    smk.params = Params(fromdict={"train": {"lr": 1}, **params, "checkpoint_dir": ckpt, "seed": 4})
    calls = []

    def fake_launch(entry, kwargs, nproc):
        calls.append((entry, kwargs, nproc))
        Path(kwargs["out_dir"]).mkdir(parents=True)

    monkeypatch.setattr(instruct_pt.training.launch, "launch", fake_launch)
    monkeypatch.setenv(jobs.HEARTBEAT_ENV, "0")
    runpy.run_path(str(SCRIPTS / "finetune.py"), init_globals={"snakemake": smk})
    common = {"train_path": "d.jsonl", "base_model_dir": "b", "out_dir": smk.output[0]}
    expected = {
        **common,
        "threads": 1,
        "train": {"lr": 1},
        **params,
        "checkpoint_dir": ckpt,
        "seed": 4,
    }
    assert calls == [(rule, expected, 0)]


def test_train_lm_script_trains_from_scratch_or_from_the_base(tmp_path, monkeypatch):
    import instruct_pt.training.launch

    calls = []
    monkeypatch.setattr(
        instruct_pt.training.launch, "launch", lambda e, kw, nproc: calls.append((e, kw))
    )
    monkeypatch.setenv(jobs.HEARTBEAT_ENV, "0")
    smk = _fake_snakemake(tmp_path, keep=True)
    runpy.run_path(str(SCRIPTS / "train_lm.py"), init_globals={"snakemake": smk})
    smk.rule = "continual_pretrain"
    smk.input = InputFiles(fromdict={"base": "base", "packed": "p", "tokenizer": "t"})
    ckpt = str(tmp_path / "checkpoints" / "cpt")
    smk.params = Params(fromdict={"train": {}, "checkpoint_dir": ckpt, "seed": 1})
    runpy.run_path(str(SCRIPTS / "train_lm.py"), init_globals={"snakemake": smk})
    (e1, scratch), (e2, cpt) = calls
    assert e1 == e2 == "pretrain"
    assert (scratch["arch"], scratch["init_from"]) == ({}, None)
    assert (cpt["arch"], cpt["init_from"]) == (None, "base")


# ------------------------------------------------------------------ heartbeat


def test_last_line_takes_the_newest_state_of_a_carriage_return_bar(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("start\n 10%|#   | 1/10\r 50%|#####  | 5/10\r\n\n")
    assert jobs.last_line(log) == "50%|#####  | 5/10"
    log.write_text("x" * 500 + "\n")
    assert len(jobs.last_line(log, width=80)) == 80
    assert jobs.last_line(tmp_path / "absent.log") == ""


def test_heartbeat_prints_the_newest_log_line_while_the_log_grows(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("step 10/100 loss 3.2\n")
    console = io.StringIO()
    stop = jobs.start_heartbeat(str(log), interval=0.05, stream=console)
    try:
        deadline = time.monotonic() + 5
        while "step 10/100" not in console.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the log did not grow: no repeat
        assert console.getvalue().count("step 10/100") == 1
        with open(log, "a") as f:
            f.write("step 20/100 loss 3.0\n")
        while "step 20/100" not in console.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
    lines = console.getvalue().splitlines()
    assert re.fullmatch(
        rf"\[alive \d+m\d\ds\] {re.escape(str(log))}: step 20/100 loss 3.0", lines[-1]
    )


def test_heartbeat_off(tmp_path, monkeypatch):
    assert jobs.start_heartbeat(None) is None
    monkeypatch.setenv(jobs.HEARTBEAT_ENV, "0")
    assert jobs.start_heartbeat(str(tmp_path / "job.log")) is None
    monkeypatch.setenv(jobs.HEARTBEAT_ENV, "soon")
    with pytest.raises(DataError, match=jobs.HEARTBEAT_ENV):
        jobs.start_heartbeat(str(tmp_path / "job.log"))
