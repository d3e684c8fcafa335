"""The README's list of what each preset changes is the files' (instruct_pt.reports.preset_diff)."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_pt.common import DataError
from instruct_pt.config import deep_merge
from instruct_pt.reports import preset_diff

ROOT = Path(__file__).resolve().parents[1]


def test_readme_lists_the_presets_differences_as_they_are():
    readme = (ROOT / "README.md").read_text()
    assert preset_diff.current_block(readme) == preset_diff.table(ROOT), (
        "README's preset list is stale: python -m instruct_pt.reports.preset_diff --readme README.md"
    )


def test_the_list_names_what_the_issue_found_changed():
    block = preset_diff.table(ROOT)
    tiny = {line.split(" | ")[0]: line for line in block.splitlines() if line.startswith("| `")}
    assert "`engine`" in tiny["| `synthesis`"]
    assert "ngram" in tiny["| `analysis`"] and "judge" in tiny["| `analysis`"]
    assert "probe_fewshot" in tiny["| `evaluation`"]
    assert "`eval` (n_examples, shots)" in tiny["| `synthesizer`"]


keys = st.sampled_from(["a", "b", "c", "d"])
values = st.one_of(
    st.integers(-2, 2), st.booleans(), st.none(), st.lists(st.integers(0, 2), max_size=2)
)
trees = st.recursive(values, lambda kids: st.dictionaries(keys, kids, max_size=3), max_leaves=10)
configs = st.dictionaries(keys, trees, max_size=4)


@given(configs, configs)
def test_changed_keys_are_exactly_where_the_merge_differs(base, overlay):
    merged = deep_merge(base, overlay)
    changed = preset_diff.changed_keys(base, merged)
    b, m = dict(preset_diff.leaves(base)), dict(preset_diff.leaves(merged))
    for path in set(b) | set(m):
        same = path in b and path in m and type(b[path]) is type(m[path]) and b[path] == m[path]
        assert (path in changed) == (not same), path
    assert preset_diff.changed_keys(base, base) == []
    assert changed == sorted(changed)


def test_readme_block_is_replaced_between_the_markers():
    text = f"intro\n{preset_diff.BEGIN}\nold\n{preset_diff.END}\nafter\n"
    out = preset_diff.replace_block(text, "| new |\n")
    assert out == f"intro\n{preset_diff.BEGIN}\n| new |\n{preset_diff.END}\nafter\n"
    assert preset_diff.current_block(out) == "| new |\n"
    with pytest.raises(DataError, match="exactly one"):
        preset_diff.replace_block("no markers", "x")
