"""The bootstrap of instruct_pt.reports.stats: properties, coverage, hierarchy over seeds, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruct_pt.common import DataError, write_json, write_jsonl
from instruct_pt.evaluation import metrics as M
from instruct_pt.reports.stats import (
    TaskItems,
    cell_interval,
    effect,
    load_task_items,
    normal_effect,
    same_documents,
)

FAST = {"n_boot": 200}


def task(values, name="t", aggregation="mean", docs=None):
    return TaskItems(name, aggregation, tuple(docs or range(len(values))), tuple(values))


def one_seed(*tasks):
    """A cell of one run (one world seed)."""
    return [list(tasks)]


scores = st.lists(st.sampled_from([0.0, 1.0, 0.5, 0.25]), min_size=1, max_size=30)
prop = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@prop
@given(scores, st.integers(0, 2**31))
def test_identical_models_have_zero_effect_and_zero_interval(values, seed):
    cell = one_seed(task(values))
    iv = effect(cell, one_seed(task(values)), seed=seed, **FAST)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert iv.method == "paired bootstrap"


@prop
@given(st.data(), st.integers(0, 2**31))
def test_interval_contains_effect_and_swapping_negates(data, seed):
    n = data.draw(st.integers(2, 40))
    left = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))
    right = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n))
    a, b = one_seed(task(left)), one_seed(task(right))
    fwd = effect(a, b, seed=seed, **FAST)
    back = effect(b, a, seed=seed, **FAST)
    assert fwd.low - 1e-9 <= fwd.estimate <= fwd.high + 1e-9
    assert back.estimate == -fwd.estimate
    assert back.low == pytest.approx(-fwd.high, abs=1e-9)
    assert back.high == pytest.approx(-fwd.low, abs=1e-9)


@prop
@given(scores, scores, st.floats(-0.5, 0.5), st.integers(0, 2**31))
def test_constant_shift_moves_effect_and_interval(left, right, shift, seed):
    n = min(len(left), len(right))
    left, right = left[:n], right[:n]
    base = effect(one_seed(task(left)), one_seed(task(right)), seed=seed, **FAST)
    moved = effect(
        one_seed(task([x + shift for x in left])), one_seed(task(right)), seed=seed, **FAST
    )
    for a, b in ((moved.estimate, base.estimate), (moved.low, base.low), (moved.high, base.high)):
        assert a == pytest.approx(b + 100 * shift, abs=1e-7)


def test_deterministic_for_a_seed_and_seed_matters():
    rng = np.random.default_rng(5)
    a = one_seed(task(rng.integers(0, 2, 80).astype(float).tolist()))
    b = one_seed(task(rng.integers(0, 2, 80).astype(float).tolist()))
    first, again = effect(a, b, seed=3), effect(a, b, seed=3)
    assert first == again and first.n_boot == 2000 and first.level == 0.95
    assert effect(a, b, seed=4) != first


def test_paired_interval_is_narrower_than_unpaired_for_correlated_models():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, 300)
    flips = rng.random(300) < 0.1  # the right model differs on 10% of the questions
    left = base.astype(float).tolist()
    right = np.where(flips, 1 - base, base).astype(float).tolist()
    a, b = one_seed(task(left)), one_seed(task(right))
    paired = effect(a, b, seed=1)
    unpaired = effect(a, b, seed=1, paired=False)
    assert paired.estimate == pytest.approx(unpaired.estimate)
    assert (paired.high - paired.low) < 0.6 * (unpaired.high - unpaired.low)


def test_coverage_of_the_true_difference():
    """200 simulated evaluations of two correlated models on 150 questions: the 95% interval
    should cover the true difference of accuracies (5 points) in roughly 95% of them."""
    rng = np.random.default_rng(2024)
    covered = 0
    for i in range(200):
        skill = rng.random(150)
        left = (skill < 0.65).astype(float)
        right = (skill < 0.60).astype(float)  # nested: right is correct only where left is
        noise = rng.random(150) < 0.2  # and some independent answers on top
        right = np.where(noise, (rng.random(150) < 0.6).astype(float), right)
        left = np.where(noise, (rng.random(150) < 0.65).astype(float), left)
        iv = effect(
            one_seed(task(left.tolist())), one_seed(task(right.tolist())), seed=i, n_boot=400
        )
        covered += iv.low <= 5.0 <= iv.high
    assert 0.90 <= covered / 200 <= 0.98


def test_average_of_tasks_is_the_mean_of_task_scores():
    a = one_seed(task([1.0, 1.0, 0.0, 0.0], "x"), task([1.0, 1.0, 1.0, 0.0], "y"))
    b = one_seed(task([1.0, 0.0, 0.0, 0.0], "x"), task([0.0, 1.0, 1.0, 0.0], "y"))
    iv = effect(a, b, seed=0, **FAST)
    assert iv.estimate == pytest.approx(((50 - 25) + (75 - 50)) / 2)
    single = cell_interval(a, seed=0, **FAST)
    assert single.estimate == pytest.approx((50 + 75) / 2)
    assert single.low <= single.estimate <= single.high and single.method == "bootstrap"


def test_corpus_level_f1_items_are_resampled_whole():
    items = [(0, 0), (1, 1), (2, 1), (1, 1), (0, 2), (2, 2)]
    golds, preds = zip(*items, strict=True)
    t = task([list(i) for i in items], aggregation="lm_agg_micro_f1")
    iv = cell_interval(one_seed(t), seed=0, **FAST)
    assert iv.estimate == pytest.approx(100 * M.micro_f1(golds, preds))
    assert 0.0 <= iv.low <= iv.estimate <= iv.high <= 100.0
    assert iv.low < iv.high


def test_hierarchical_bootstrap_spreads_over_seeds():
    """Within each seed every answer is the same, so only the seed draw varies: the interval is
    that of the mean of two seeds drawn from {0, 100}."""
    cell = [[task([0.0] * 10)], [task([1.0] * 10)]]
    iv = cell_interval(cell, seed=0, n_boot=400)
    assert iv.estimate == 50.0 and iv.n_seeds == 2
    assert (iv.low, iv.high) == (0.0, 100.0)
    # The single-seed case is the list of one: no seed variation, no spread here.
    lone = cell_interval([[task([1.0] * 10)]], seed=0, n_boot=400)
    assert (lone.estimate, lone.low, lone.high, lone.n_seeds) == (100.0, 100.0, 100.0, 1)


def test_hierarchical_paired_effect_draws_the_same_seeds_for_both_sides():
    # Seed-to-seed variation shared by both models cancels in a paired effect.
    left = [[task([0.0] * 5 + [1.0] * 5)], [task([1.0] * 10)], [task([1.0] * 10)]]
    right = [[task([0.0] * 10)], [task([0.0] * 5 + [1.0] * 5)], [task([0.0] * 5 + [1.0] * 5)]]
    iv = effect(left, right, seed=0, n_boot=500)
    assert iv.method == "paired bootstrap" and iv.n_seeds == 3
    assert iv.estimate == pytest.approx(50.0)
    assert iv.low <= iv.estimate <= iv.high
    # Docs resampled within seeds: a non-degenerate interval, but never beyond [0, 100].
    assert 0.0 <= iv.low < iv.high <= 100.0


def test_pairing_requires_the_same_documents():
    a = one_seed(task([1.0, 0.0], docs=["d1", "d2"]))
    b = one_seed(task([1.0, 0.0], docs=["d1", "d3"]))
    assert not same_documents(a, b)
    assert effect(a, b, seed=0, **FAST).method == "bootstrap"  # falls back to unpaired
    with pytest.raises(DataError, match="paired bootstrap needs the same"):
        effect(a, b, seed=0, paired=True, **FAST)


def test_bad_input_is_named():
    with pytest.raises(DataError, match="unknown aggregation 'median'"):
        task([1.0], aggregation="median")
    with pytest.raises(DataError, match="2 document ids for 1 items"):
        TaskItems("t", "mean", ("a", "b"), (1.0,))
    with pytest.raises(DataError, match="non-empty list of runs"):
        cell_interval(task([1.0]), seed=0)
    with pytest.raises(DataError, match="lists a task twice"):
        cell_interval([[task([1.0], "x"), task([0.0], "x")]], seed=0)
    with pytest.raises(ValueError, match="level"):
        cell_interval(one_seed(task([1.0])), seed=0, level=95)


def test_normal_effect():
    iv = normal_effect(60.0, 3.0, 50.0, 4.0)
    assert iv.estimate == 10.0 and iv.method == "normal"
    assert (iv.low, iv.high) == pytest.approx((10 - 1.959964 * 5, 10 + 1.959964 * 5))
    exact = normal_effect(60.0, 0.0, 50.0, 0.0)
    assert (exact.low, exact.high, exact.method) == (10.0, 10.0, "exact")
    with pytest.raises(ValueError, match="both standard errors"):
        normal_effect(60.0, None, 50.0, 1.0)


def test_load_task_items(tmp_path):
    write_json(tmp_path / "boolq.json", {"task": "boolq", "n": 3, "aggregation": "mean"})
    write_jsonl(tmp_path / "boolq.docs.jsonl", [{"doc": i, "item": i % 2} for i in range(3)])
    t = load_task_items(tmp_path / "boolq.json")
    assert (t.task, t.docs, t.items) == ("boolq", (0, 1, 2), (0, 1, 0))
    assert t.score() == pytest.approx(100 / 3)

    write_json(tmp_path / "boolq.json", {"task": "boolq", "n": 4, "aggregation": "mean"})
    with pytest.raises(DataError, match=r"boolq.docs.jsonl: 3 documents, but .* says n=4"):
        load_task_items(tmp_path / "boolq.json")
    write_json(tmp_path / "old.json", {"task": "old", "n": 3})
    with pytest.raises(DataError, match="old.json: no 'aggregation'"):
        load_task_items(tmp_path / "old.json")
    write_json(tmp_path / "lost.json", {"task": "lost", "n": 3, "aggregation": "mean"})
    with pytest.raises(FileNotFoundError, match="lost.docs.jsonl"):
        load_task_items(tmp_path / "lost.json")
    (tmp_path / "bad.docs.jsonl").write_text(json.dumps({"doc": 0}) + "\n")
    write_json(tmp_path / "bad.json", {"task": "bad", "n": 1, "aggregation": "mean"})
    with pytest.raises(DataError, match=r"bad.docs.jsonl:1"):
        load_task_items(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "aggregation",
    [
        "lm_agg_micro_f1",
        "lm_agg_weighted_f1",
        "lm_agg_mean_weighted_f1",
        "lm_agg_entity_f1",
        "lm_agg_entity_f1_doc",
    ],
)
def test_vectorised_resample_scores_equal_the_metric(aggregation):
    """The counts-based resample scores are what instruct_pt.evaluation.hooks' aggregation gives on
    the resampled items (read back from JSON)."""
    from instruct_pt.evaluation.hooks import aggregate_items
    from instruct_pt.reports.stats import _Scorer

    rng = np.random.default_rng(7)
    n = 40
    if aggregation.startswith("lm_agg_entity"):
        names = [["acme", "org"], ["bob", "per"], ["x", "loc"], ["acme", "per"]]
        items = [
            [
                [names[j] for j in rng.choice(4, rng.integers(0, 3), replace=False)],
                [names[j] for j in rng.choice(4, rng.integers(0, 3), replace=False)],
            ]
            for _ in range(n)
        ]
    elif aggregation == "lm_agg_mean_weighted_f1":
        items = [
            [int(rng.integers(3)), int(rng.integers(2)), int(rng.integers(2))] for _ in range(n)
        ]
    else:
        items = [[int(rng.integers(4)), int(rng.integers(4))] for _ in range(n)]
    scorer = _Scorer(task(json.loads(json.dumps(items)), aggregation=aggregation))
    assert scorer.kind != "call"
    idx = rng.integers(n, size=(25, n))
    idx[0] = np.arange(n)
    idx[1] = 0  # a resample of one document repeated (sub-questions / classes absent)
    expected = [100 * aggregate_items(aggregation, [items[i] for i in row]) for row in idx]
    assert scorer.rows(idx) == pytest.approx(expected, abs=1e-9)


def test_multi_label_items_fall_back_to_the_metric_itself():
    from instruct_pt.reports.stats import _Scorer

    items = [[[0, 1], [1]], [[2], [2, 0]], [[1], [0]]]
    scorer = _Scorer(task(items, aggregation="lm_agg_micro_f1"))
    assert scorer.kind == "call"
    golds, preds = zip(*[(tuple(g), tuple(p)) for g, p in items], strict=True)
    assert scorer.rows(np.array([[0, 1, 2]]))[0] == pytest.approx(100 * M.micro_f1(golds, preds))
