"""Every evidence tag, secondary-source name and "facts §x" reference cited in the repository
resolves: tags and source names to an entry of docs/evidence.md, section references to a section
of docs/paper-facts.md (docs/evidence.md explains both)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "docs" / "evidence.md"
FACTS = ROOT / "docs" / "paper-facts.md"

# Where citations live: code, config, presets, resources, workflow, docs. Not tests/, which cite
# unknown tags on purpose (an unknown tag must be rejected).
SCANNED = (
    "README.md",
    "config.yaml",
    "Makefile",
    "docs/*.md",
    "presets/*.yaml",
    "profiles/**/*.yaml",
    "src/**/*.py",
    "src/**/*.yaml",
    "workflow/**/*.py",
    "workflow/**/*.yaml",
    "workflow/**/*.smk",
    "workflow/Snakefile",
    "rules/*.smk",
    "perf/*.py",
)

TAG = re.compile(r"\[(?:[PS]\d*|derived|ours)\]|\bUNC[A-Z]*(?:-[a-z]+)?\b")
SOURCE = re.compile(r"(?<![\w-])S-[a-z][a-z0-9]*(?![\w-])")
# "§x" unless it is "paper §x" (a section of the paper itself, which we cannot check).
SECTION = re.compile(r"(?<![Pp]aper )§ ?(\d+(?:\.\d+)*)")
ENTRY = re.compile(r"^\|\s*`([^`]+)`\s*\|", re.M)
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)*)[. ]", re.M)
INDEX_ROW = re.compile(r"^\| (\d+(?:\.\d+)*) \|", re.M)


def scanned_files() -> list[Path]:
    files = {p for pattern in SCANNED for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(files)


def entries(evidence_text: str) -> set[str]:
    """The tags and source names docs/evidence.md defines (first cell of a table row, in ``)."""
    return set(ENTRY.findall(evidence_text))


def sections(facts_text: str) -> set[str]:
    """The section numbers of paper-facts.md's headings ("## 2. ...", "### 2.4 ...")."""
    return set(HEADING.findall(facts_text))


def unresolved(name: str, text: str, known: set[str], known_sections: set[str]) -> list[str]:
    """One line per citation in ``text`` that has no entry / no section: "name:line: what"."""
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in TAG.finditer(line):
            if m.group(0) not in known:
                problems.append(f"{name}:{lineno}: evidence tag {m.group(0)} not in evidence.md")
        for m in SOURCE.finditer(line):
            if m.group(0) not in known:
                problems.append(f"{name}:{lineno}: source {m.group(0)} not in evidence.md")
        if name != "docs/paper-facts.md":  # its own "§x" are the paper's sections
            for m in SECTION.finditer(line):
                if m.group(1).rstrip(".") not in known_sections:
                    problems.append(
                        f"{name}:{lineno}: §{m.group(1)} is no section of docs/paper-facts.md"
                    )
    return problems


@pytest.fixture(scope="module")
def known() -> tuple[set[str], set[str]]:
    return entries(EVIDENCE.read_text(encoding="utf-8")), sections(
        FACTS.read_text(encoding="utf-8")
    )


def test_every_citation_in_the_repository_resolves(known):
    files = scanned_files()
    assert ROOT / "src" / "instruct_pt" / "resources" / "paper_values.yaml" in files
    problems = []
    n_cited = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        n_cited += len(TAG.findall(text)) + len(SOURCE.findall(text))
        problems += unresolved(rel, text, *known)
    assert not problems, "\n".join(problems)
    assert n_cited > 300  # the scan does see the citations (paper_values.yaml alone has ~100)


def test_the_paper_value_tags_and_sources_are_all_defined(known):
    """paper_values.yaml's tags and source names, read as data: each has an entry."""
    import yaml

    values = yaml.safe_load(
        (ROOT / "src" / "instruct_pt" / "resources" / "paper_values.yaml").read_text("utf-8")
    )
    tags, names = set(), set()

    def walk(node):
        if isinstance(node, dict):
            if "tag" in node and "value" in node:
                tags.add(node["tag"])
                names.update(SOURCE.findall(str(node.get("source", ""))))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(values)
    assert {"[P]", "[S]", "[S2]", "UNCONFIRMED"} <= tags
    assert {"S-sum", "S-course", "S-zh"} <= names
    assert not (tags | names) - known[0]


def test_evidence_md_lists_the_sections_of_paper_facts(known):
    listed = set(INDEX_ROW.findall(EVIDENCE.read_text(encoding="utf-8")))
    assert listed == known[1]
    assert {"0", "1.2", "1.3", "1.4", "1.6", "4.3", "4.5"} <= known[1]


def test_a_citation_without_an_entry_is_reported(known):
    text = "value 3 [S3] per S-newblog; see facts §9.9 and paper §7.7.\nfine: [S2] S-sum facts §1.2"
    problems = unresolved("x.py", text, *known)
    assert problems == [
        "x.py:1: evidence tag [S3] not in evidence.md",
        "x.py:1: source S-newblog not in evidence.md",
        "x.py:1: §9.9 is no section of docs/paper-facts.md",
    ]


@given(st.from_regex(r"S-[a-z][a-z0-9]{1,10}", fullmatch=True))
def test_any_source_name_is_found_and_checked(name):
    known_entries = {"S-sum"}
    problems = unresolved("f.md", f"a number ({name}, [S]).", known_entries | {"[S]"}, set())
    assert problems == (
        [] if name in known_entries else [f"f.md:1: source {name} not in evidence.md"]
    )
