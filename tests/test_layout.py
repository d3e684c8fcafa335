"""The package's layout rules (docs/architecture.md, "Layout rules"), checked on the source:
every module says in its docstring's first line the one concept it holds; a module over 500
lines says why ("500 lines" in its docstring); no module uses another module's private
(`_name`) names; the modules import each other without a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "instruct_pt"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """{dotted name: path} of every module and package of the tree under ``package``."""
    return {_module_name(p): p for p in sorted(package.rglob("*.py"))}


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """(modules of the tree that ``module`` imports anywhere in its file, private names it
    takes from other modules of the tree: `from m import _x`, or `alias._x` on a module alias)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    deps: set[str] = set()
    private: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module of the tree it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    deps.add(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node)
            if source not in known:
                continue
            for a in node.names:
                sub = f"{source}.{a.name}"
                if sub in known:  # a submodule
                    deps.add(sub)
                    aliases[a.asname or a.name] = sub
                else:
                    deps.add(source)
                    if a.name.startswith("_") and source != module:
                        private.append(f"{module} imports {source}.{a.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and aliases[node.value.id] != module
        ):
            private.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    deps.discard(module)
    return deps, private


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    modules = package_modules(package)
    graph, private = {}, []
    for name, path in modules.items():
        graph[name], found = imports(name, path, set(modules))
        private += found
    return graph, private


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_every_module_says_its_concept_and_the_long_ones_say_why():
    problems = []
    for name, path in package_modules().items():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text))
        if not doc or not doc.splitlines()[0].strip():
            problems.append(f"{name}: no docstring naming its concept")
            continue
        n = len(text.splitlines())
        if n > MAX_LINES and f"{MAX_LINES} lines" not in doc:
            problems.append(f"{name}: {n} lines and its docstring does not say why")
    assert not problems, "\n".join(problems)


def test_no_module_uses_another_modules_private_names():
    _, private = import_graph()
    assert not private, "\n".join(private)


def test_no_import_circle():
    graph, _ = import_graph()
    assert not circles(graph), circles(graph)


def test_the_checks_see_circles_and_private_names(tmp_path):
    """The checks themselves, on a made-up package: a circle through a relative import inside a
    function, a private name taken with `from`, and one reached through a module alias."""
    pkg = tmp_path / "instruct_pt"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Root."""\n')
    (pkg / "sub" / "__init__.py").write_text('"""Sub."""\n')
    (pkg / "sub" / "a.py").write_text('"""A."""\nfrom instruct_pt.b import _hidden\n')
    (pkg / "b.py").write_text(
        '"""B."""\ndef f():\n    from .sub import a as m\n    return m._x\n_hidden = 1\n'
    )
    (pkg / "c.py").write_text('"""C."""\nimport instruct_pt.b\n')
    modules = {_dotted(p, tmp_path): p for p in pkg.rglob("*.py")}
    graph, private = {}, []
    for name, path in modules.items():
        graph[name], found = imports(name, path, set(modules))
        private += found
    assert circles(graph) == [["instruct_pt.b", "instruct_pt.sub.a"]]
    assert sorted(private) == [
        "instruct_pt.b uses instruct_pt.sub.a._x",
        "instruct_pt.sub.a imports instruct_pt.b._hidden",
    ]
    assert "instruct_pt.b" in graph["instruct_pt.c"]


def _dotted(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


@pytest.mark.parametrize("name", ["instruct_pt.evaluation", "instruct_pt.training"])
def test_the_graph_sees_the_subpackages(name):
    graph, _ = import_graph()
    assert any(d.startswith(name + ".") for deps in graph.values() for d in deps)


BEGIN, END = "<!-- modules:begin -->", "<!-- modules:end -->"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("|", "/")


def module_table() -> str:
    """docs/architecture.md's module table: every module, its docstring's first paragraph, and
    the workflow scripts and rule files that import it."""
    modules = package_modules()
    known = set(modules)
    callers: dict[str, list[str]] = {m: [] for m in modules}
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        for dep in sorted(imports("workflow.scripts." + script.stem, script, known)[0]):
            callers[dep].append(f"`{script.name}`")
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        lines = [ln for ln in smk.read_text(encoding="utf-8").splitlines()
                 if ln.startswith(("from instruct_pt", "import instruct_pt"))]  # fmt: skip
        tree = ast.parse("\n".join(lines), filename=str(smk))  # its import lines only
        for node in tree.body:
            names = [a.name for a in node.names]
            base = node.module if isinstance(node, ast.ImportFrom) else None
            for n in names:
                dep = f"{base}.{n}" if base and f"{base}.{n}" in known else (base or n)
                if dep in known and f"`rules/{smk.name}`" not in callers[dep]:
                    callers[dep].append(f"`rules/{smk.name}`")
    rows = ["| module | concept (its docstring's first paragraph) | called by |", "|---|---|---|"]
    for name, path in modules.items():
        short = name.removeprefix("instruct_pt.") if name != "instruct_pt" else name
        kind = " (package)" if path.name == "__init__.py" else ""
        rows.append(f"| `{short}`{kind} | {_summary(path)} | {', '.join(callers[name])} |")
    return "\n".join(rows) + "\n"


def test_the_architecture_module_table_is_the_code(request):
    """Regenerate with LAYOUT_UPDATE=1 (like the bad-input table)."""
    import os

    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{ARCHITECTURE}: no {BEGIN} ... {END} markers"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    fresh = f"{head}{BEGIN}\n{module_table()}{END}{tail}"
    if os.environ.get("LAYOUT_UPDATE") == "1":
        ARCHITECTURE.write_text(fresh, encoding="utf-8")
    assert text == fresh, f"{ARCHITECTURE} module table is stale: LAYOUT_UPDATE=1 pytest {__file__}"
