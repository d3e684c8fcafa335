"""The conda environments pin the same versions as the tested pip set (requirements.lock)."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[norm(name)] = version.strip()
    return pins


ENVS = sorted((ROOT / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_lock(env):
    spec = yaml.safe_load(env.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = lock()
    for req in pip:
        assert "==" in req, f"{env.name}: '{req}' is not pinned with =="
        name, version = req.split("==", 1)
        if env.name == "vllm.yaml" and norm(name) == "vllm":
            continue  # vLLM (CUDA) is not in the CPU test set; it pins its own torch
        assert norm(name) in pins, f"{env.name}: {name} is not in requirements.lock"
        assert pins[norm(name)] == version, (
            f"{env.name}: {name}=={version} but requirements.lock has {pins[norm(name)]}"
        )


def test_torch_is_pinned_exactly():
    assert lock()["torch"] == "2.13.0"
