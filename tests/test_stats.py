"""benchmark.stats: calibration on simulated experiments, agreement with scipy, sklearn and
scikit-posthocs, pairing over shared seeds, verdicts that agree with their intervals, and the cross-dataset
summary. Every random draw is seeded. tests/test_calibration.py has the verdicts' family-wise calibration."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import special, stats
from sklearn.metrics import f1_score

from benchmark.stats import (
    INTERVAL_NONE,
    INTERVAL_SEEDS_AND_TEST,
    INTERVAL_TEST_ONLY,
    Difference,
    MethodStats,
    compare_methods,
    draw_rank_diagram,
    summarize_across_datasets,
)
from benchmark.stats.bootstrap import Scores, _metric_from_weights
from benchmark.stats.difference import _mixture_p, _mixture_spread
from benchmark.verdicts import BEST, DIFFERS, EQUIVALENT, INCONCLUSIVE, WORSE, verdict

ALPHA = 0.05
NULL_EXPERIMENTS = 800
POWER_EXPERIMENTS = 200
# one-sided 99% Monte-Carlo margin on a rate of ALPHA estimated from NULL_EXPERIMENTS experiments
NULL_BOUND = ALPHA + 2.33 * np.sqrt(ALPHA * (1 - ALPHA) / NULL_EXPERIMENTS)


def simulate_experiment(rng, n_seeds: int, gap: float = 0.0, n_test: int = 500, seed_sd=0.15, item_sd=1.0):
    """Two methods on one binary task, in the benchmark's protocol (logistic model of being right).

    The test set is drawn once and shared by every seed. A seed's sample makes every method better or worse
    (shared) and each method better or worse on its own (seed_sd); each test item is harder or easier for every
    method and, on its own, for each method (item_sd). Method b is better by ``gap`` logits; 0 is the null.
    """
    y = rng.integers(0, 2, n_test)
    difficulty = rng.normal(0, 1, n_test)
    sample_quality = rng.normal(0, 0.3, n_seeds)
    predictions = {}
    for method, shift in (("a", 0.0), ("b", gap)):
        affinity = rng.normal(0, item_sd, n_test)
        seed_effect = sample_quality + rng.normal(0, seed_sd, n_seeds)
        logit = 1.1 + shift + difficulty + affinity + seed_effect[:, None]
        correct = rng.random((n_seeds, n_test)) < 1 / (1 + np.exp(-logit))
        predictions[method] = {s: np.where(correct[s], y, 1 - y) for s in range(n_seeds)}
    return y, predictions


# (seed_sd, item_sd): both sources matter; or the seeds dominate, where a Welch-Satterthwaite interval on the summed
# variances is liberal with 3 seeds (its estimated degrees of freedom grow when the seed variance is underestimated)
NOISE = {"mixed": (0.15, 1.0), "seed-dominated": (0.5, 0.5)}


@cache
def null_rates(n_seeds: int, noise: str = "mixed") -> dict[str, float]:
    """How often 'different from the best' is marked with no true difference, by us and by two one-source tests."""
    rng = np.random.default_rng(1000 + n_seeds)
    seed_sd, item_sd = NOISE[noise]
    marks = {"ours": 0, "seeds only (paired t)": 0, "test set only (paired z)": 0}
    for _ in range(NULL_EXPERIMENTS):
        y, predictions = simulate_experiment(rng, n_seeds, seed_sd=seed_sd, item_sd=item_sd)
        seed = int(rng.integers(2**31))
        result = compare_methods(y, predictions, "accuracy", 2, alpha=ALPHA, resamples=200, seed=seed)
        marks["ours"] += result[1].verdict == WORSE
        right = {m: np.array([p == y for p in by_seed.values()], dtype=float) for m, by_seed in predictions.items()}
        per_seed = right["a"].mean(axis=1) - right["b"].mean(axis=1)
        t = per_seed.mean() / (per_seed.std(ddof=1) / np.sqrt(n_seeds))
        marks["seeds only (paired t)"] += 2 * special.stdtr(n_seeds - 1, -abs(t)) < ALPHA  # ttest_1samp, faster
        per_item = (right["a"] - right["b"]).mean(axis=0)
        z = per_item.mean() / (per_item.std(ddof=1) / np.sqrt(len(per_item)))
        marks["test set only (paired z)"] += 2 * stats.norm.sf(abs(z)) < ALPHA
    return {name: count / NULL_EXPERIMENTS for name, count in marks.items()}


@pytest.mark.parametrize("noise", list(NOISE))
@pytest.mark.parametrize("n_seeds", [3, 5, 10])
def test_no_true_difference_is_marked_different_at_most_alpha_of_the_time(n_seeds, noise):
    assert null_rates(n_seeds, noise)["ours"] <= NULL_BOUND


def test_the_simulated_null_catches_a_test_that_ignores_either_source_of_noise():
    # Makes the calibration test above meaningful: in this simulation, forgetting the shared test set (t-test over
    # seeds) or the seeds (test over examples) exceeds alpha, so a method that does either would fail it.
    assert null_rates(10)["seeds only (paired t)"] > NULL_BOUND
    assert null_rates(3)["test set only (paired z)"] > NULL_BOUND


def test_a_real_difference_is_found_and_more_often_with_more_seeds():
    power = {}
    for n_seeds in (3, 5, 10):
        rng = np.random.default_rng(2000 + n_seeds)
        found = 0
        for _ in range(POWER_EXPERIMENTS):
            y, predictions = simulate_experiment(rng, n_seeds, gap=0.35)
            best, other = compare_methods(y, predictions, "accuracy", 2, resamples=200, seed=int(rng.integers(2**31)))
            found += best.method == "b" and other.verdict == WORSE
        power[n_seeds] = found / POWER_EXPERIMENTS
    assert power[3] + 0.15 < power[5] < power[10] - 0.15
    assert power[10] >= 0.75


def test_with_one_seed_the_interval_is_the_paired_bootstrap_over_test_examples():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    a = np.where(rng.random(1000) < 0.8, y, 1 - y)
    b = np.where(rng.random(1000) < 0.9, a, 1 - y)  # mostly a's predictions: pairing narrows the interval a lot
    predictions = {"a": {0: a}, "b": {0: b}}
    best, other = compare_methods(y, predictions, "accuracy", 2, resamples=20_000, seed=4)
    reference = stats.bootstrap(
        ((predictions["b"][0] == y).astype(float), (predictions["a"][0] == y).astype(float)),
        lambda b, a, axis: b.mean(axis=axis) - a.mean(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=20_000,
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert (best.method, other.method, other.n_paired, other.interval) == ("a", "b", 1, INTERVAL_TEST_ONLY)
    # tolerance: two steps of the metric's 1/1000 grid plus Monte-Carlo error (~0.0002 here)
    assert other.delta_ci_low == pytest.approx(reference.low, abs=0.0025)
    assert other.delta_ci_high == pytest.approx(reference.high, abs=0.0025)
    assert (other.delta_ci_high < 0) == (other.p_adjusted < ALPHA) == (other.verdict == WORSE)  # they agree


def test_the_intervals_are_simultaneous_over_every_pair_of_the_blocks_methods():
    """Four methods: 6 pairs. Each delta interval is the pivot's interval at alpha / 6, on the same bootstrap draws
    compare_methods made; the adjusted p-value is Bonferroni's and falls below alpha exactly when it excludes 0."""
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    predictions = {
        name: {s: np.where(rng.random(300) < accuracy, y, 1 - y) for s in range(5)}
        for name, accuracy in (("a", 0.80), ("b", 0.78), ("c", 0.76), ("d", 0.70))
    }
    best, *others = compare_methods(y, predictions, "accuracy", 2, resamples=2000, seed=7)
    scores = Scores.of(y, predictions, "accuracy", 2, 2000, np.random.default_rng(7))
    for other in others:
        difference = scores.difference(other.method, best.method, list(range(5)))
        assert (other.delta_ci_low, other.delta_ci_high) == pytest.approx(difference.interval(ALPHA / 6))
        assert other.family_size == 6 and other.p_adjusted == pytest.approx(min(1, 6 * other.p_raw))
        excludes_zero = other.delta_ci_high < 0
        assert excludes_zero == (other.p_adjusted < ALPHA) == (other.verdict == WORSE)
    assert {o.verdict for o in others} == {WORSE, INCONCLUSIVE}  # the test sees both kinds
    assert (best.p_raw, best.p_adjusted, best.verdict, best.family_size) == (None, None, BEST, 6)


def test_verdicts_never_contradict_the_interval_beside_them():
    """Over many random blocks: worse only when the interval lies below 0, equivalent only when it holds 0 and lies
    inside the margin, inconclusive otherwise; and the interval of a verdict is simultaneous (never narrower than
    the per-comparison one)."""
    rng = np.random.default_rng(13)
    seen = set()
    for trial in range(40):
        n_test, n_seeds, margin = int(rng.integers(50, 2000)), int(rng.integers(1, 6)), float(rng.uniform(0.01, 0.1))
        y = rng.integers(0, 3, n_test)
        base = rng.uniform(0.5, 0.9)
        predictions = {
            f"m{i}": {s: np.where(rng.random(n_test) < base - 0.02 * i, y, rng.integers(0, 3, n_test))
                      for s in range(n_seeds)}
            for i in range(int(rng.integers(2, 5)))
        }  # fmt: skip
        for row in compare_methods(y, predictions, "macro_f1", 3, margin=margin, resamples=300, seed=trial)[1:]:
            low, high = row.delta_ci_low, row.delta_ci_high
            seen.add(row.verdict)
            if row.verdict == WORSE:
                assert high < 0
            elif row.verdict == EQUIVALENT:
                assert -margin < low <= 0 <= high < margin
            else:
                assert row.verdict == INCONCLUSIVE and low <= 0 <= high and (low <= -margin or high >= margin)
    assert seen == {WORSE, EQUIVALENT, INCONCLUSIVE}


def test_an_interval_that_excludes_zero_is_a_difference_even_inside_the_margin():
    """A small, real gap (b wrong on 0.5% more of 20,000 examples, on every seed) is worse, not equivalent."""
    rng = np.random.default_rng(14)
    y = rng.integers(0, 2, 20_000)
    a = np.where(rng.random(20_000) < 0.8, y, 1 - y)
    b = a.copy()
    b[np.flatnonzero(a == y)[:100]] ^= 1  # 100 of a's right answers made wrong
    best, other = compare_methods(y, {"a": {s: a for s in range(3)}, "b": {s: b for s in range(3)}}, "accuracy", 2,
                                  margin=0.02, resamples=2000)  # fmt: skip
    assert other.delta_to_best == pytest.approx(-0.005)
    assert -0.02 < other.delta_ci_low < other.delta_ci_high < 0 and other.verdict == WORSE


@pytest.mark.parametrize(
    "low, high, expected",
    [(-0.005, 0.004, EQUIVALENT), (-0.012, 0.004, INCONCLUSIVE), (-0.004, -0.001, DIFFERS), (0.001, 0.2, DIFFERS),
     (0.0, 0.0, EQUIVALENT), (-0.01, 0.0, INCONCLUSIVE), (float("nan"), float("nan"), INCONCLUSIVE)],
)  # fmt: skip
def test_the_verdict_of_an_interval(low, high, expected):
    assert verdict(low, high, margin=0.01) == expected


def test_seeds_to_settle_is_the_fewest_whose_predicted_interval_is_narrow_enough():
    """An inconclusive comparison with seed noise: the count is where the predicted half-width first drops under
    what settling needs; with the test set's own noise above that, no number of seeds does and it says so."""
    seed_noise = Difference(estimate=-0.01, n_seeds=3, v_seed=0.02**2 / 3, v_test=0.003**2, overlap=0.0,
                            replicates=None)  # fmt: skip
    needed = max(0.02 - 0.01, 0.01)
    count = seed_noise.seeds_to_settle(0.05, margin=0.02)
    assert count is not None and seed_noise.half_width(0.05) >= needed
    assert seed_noise.half_width(0.05, count) < needed <= seed_noise.half_width(0.05, count - 1)
    test_noise = Difference(estimate=-0.01, n_seeds=3, v_seed=0.0, v_test=0.02**2, overlap=0.0, replicates=None)
    assert test_noise.seeds_to_settle(0.05, margin=0.02) is None  # +-0.039 from the test set alone
    one_seed = Difference(-0.01, 1, 0.0, 0.01**2, 0.0, np.random.default_rng(0).normal(-0.01, 0.01, 1000))
    assert one_seed.seeds_to_settle(0.05, margin=0.02) is None  # no seed spread to extrapolate from


def test_a_method_without_a_seed_in_common_with_the_best_is_inconclusive_with_the_reason():
    y = np.tile([0, 1], 50)
    predictions = {"a": predictions_with_accuracies(y, {0: 0.9, 1: 0.9}), "b": predictions_with_accuracies(y, {2: 0.6})}
    best, other = compare_methods(y, predictions, "accuracy", 2, resamples=200)
    assert other.verdict == INCONCLUSIVE and other.interval == INTERVAL_NONE and other.n_paired == 0
    assert np.isnan(other.delta_ci_low) and other.p_raw is None


@pytest.mark.parametrize("n_methods,n_seeds", [(2, 1), (2, 3), (3, 3)])
def test_every_field_is_a_plain_python_value_as_summary_json_writes_it(n_methods, n_seeds):
    """numpy scalars (np.bool_, np.float64) broke json.dumps in report.summary; a plain type is a JSON type."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    predictions = {
        f"m{i}": {s: np.where(rng.random(60) < 0.7, y, 1 - y) for s in range(n_seeds)} for i in range(n_methods)
    }
    for result in compare_methods(y, predictions, "macro_f1", 2, resamples=200, seed=1):
        for name, value in vars(result).items():
            assert value is None or type(value) in (bool, int, float, str), (name, type(value))
        json.dumps(vars(result), allow_nan=False)


def predictions_with_accuracies(y: np.ndarray, accuracies: dict[int, float]) -> dict[int, np.ndarray]:
    """seed -> predictions that get exactly the given share of y right (the first ones)."""
    out = {}
    for seed, accuracy in accuracies.items():
        wrong = np.arange(len(y)) >= round(accuracy * len(y))
        out[seed] = np.where(wrong, 1 - y, y)
    return out


def test_means_std_n_and_pairing_over_the_seeds_both_methods_finished():
    y = np.tile([0, 1], 10)
    predictions = {
        "a": predictions_with_accuracies(y, {0: 0.9, 1: 0.5, 2: 0.7}),
        "b": predictions_with_accuracies(y, {0: 0.8, 2: 0.5}),  # failed on seed 1
        "c": predictions_with_accuracies(y, {1: 0.6}),
        "never finished": {},
    }
    a, b, c = compare_methods(y, predictions, "accuracy", 2, resamples=500)
    assert (a.method, a.mean, a.std, a.n) == ("a", pytest.approx(0.7), pytest.approx(0.2), 3)
    assert (a.delta_to_best, a.delta_ci_low, a.delta_ci_high, a.verdict) == (0, 0, 0, BEST)
    assert (b.method, b.mean, b.n) == ("b", pytest.approx(0.65), 2)
    assert b.std == pytest.approx(np.std([0.8, 0.5], ddof=1))
    assert b.delta_to_best == pytest.approx(-0.15)  # seeds 0 and 2 only; unpaired means would give -0.05
    assert (b.n_paired, b.interval) == (2, INTERVAL_SEEDS_AND_TEST)
    assert b.delta_ci_low <= b.delta_to_best <= b.delta_ci_high and b.ci_low <= b.mean <= b.ci_high
    assert (c.n, c.std, c.n_paired, c.interval) == (1, 0.0, 1, INTERVAL_TEST_ONLY)
    assert c.delta_to_best == pytest.approx(0.6 - 0.5)  # paired on seed 1: can be above 0 when seeds are missing


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "f1_positive"])
def test_means_equal_sklearn_on_the_unresampled_test_set(metric):
    rng = np.random.default_rng(8)
    num_labels = 2 if metric == "f1_positive" else 4
    y = rng.integers(0, num_labels if num_labels == 2 else num_labels - 1, 200)  # 4 labels: label 3 never occurs
    predictions = {"m": {0: rng.integers(0, num_labels, 200)}, "no 0": {0: rng.integers(1, num_labels, 200)}}
    for result in compare_methods(y, predictions, metric, num_labels, resamples=100):
        pred = predictions[result.method][0]
        if metric == "accuracy":
            expected = np.mean(pred == y)
        elif metric == "macro_f1":
            expected = f1_score(y, pred, labels=range(num_labels), average="macro", zero_division=0)
        else:
            expected = f1_score(y, pred, pos_label=1, average="binary", zero_division=0)
        assert result.mean == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("num_labels", [4, 15])  # the dense and the sparse path
def test_macro_f1_of_a_resample_equals_sklearn_on_the_resampled_examples(num_labels):
    rng = np.random.default_rng(9)
    y = rng.integers(0, num_labels, 300)
    preds = np.stack([np.where(rng.random(300) < 0.6, y, rng.integers(0, num_labels, 300)) for _ in range(3)])
    picks = [rng.integers(0, 300, 300) for _ in range(4)]
    weights = np.stack([np.bincount(p, minlength=300) for p in picks]).astype(np.float32)
    got = _metric_from_weights(weights, y, preds, "macro_f1", num_labels)
    expected = [
        [f1_score(y[p], pred[p], labels=range(num_labels), average="macro", zero_division=0) for pred in preds]
        for p in picks
    ]
    assert got == pytest.approx(np.array(expected), abs=1e-12)


def test_results_are_deterministic_given_the_seed_and_record_it():
    y, predictions = simulate_experiment(np.random.default_rng(10), 4)
    first = compare_methods(y, predictions, "macro_f1", 2, resamples=300, seed=11)
    assert first == compare_methods(y, predictions, "macro_f1", 2, resamples=300, seed=11)
    assert first != compare_methods(y, predictions, "macro_f1", 2, resamples=300, seed=12)
    assert {(r.rng_seed, r.resamples) for r in first} == {(11, 300)}


def test_the_interval_is_student_t_with_seed_noise_only_and_normal_with_test_noise_only():
    for n_seeds in (2, 3, 5, 10):
        spread, weights = _mixture_spread(v_seed=0.01**2, v_test=0.0, overlap=0.0, n_seeds=n_seeds)
        assert _mixture_p(0.03, spread, weights) == pytest.approx(2 * stats.t.sf(3, n_seeds - 1), rel=1e-3)
        spread, weights = _mixture_spread(v_seed=0.0, v_test=0.01**2, overlap=0.0, n_seeds=n_seeds)
        assert _mixture_p(0.03, spread, weights) == pytest.approx(2 * stats.norm.sf(3), rel=1e-6)


def test_bad_inputs_are_refused():
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="binary"):
        compare_methods(y, {"a": {0: y}}, "f1_positive", 3)
    with pytest.raises(ValueError, match="shape"):
        compare_methods(y, {"a": {0: y[:2]}}, "accuracy", 3)
    with pytest.raises(ValueError, match="unknown metric"):
        compare_methods(y, {"a": {0: y}}, "auc", 3)
    with pytest.raises(ValueError, match="label ids"):
        compare_methods(y, {"a": {0: y + 1}}, "accuracy", 3)


def row(method: str, mean: float, said: str = INCONCLUSIVE) -> MethodStats:
    return MethodStats(
        method=method,
        mean=mean,
        std=0.0,
        n=3,
        ci_low=mean,
        ci_high=mean,
        delta_to_best=0.0,
        delta_ci_low=0.0,
        delta_ci_high=0.0,
        p_raw=None,
        p_adjusted=None,
        verdict=said,
        margin=0.02,
        family_size=3,
        seeds_to_settle=None,
        n_paired=3,
        interval=INTERVAL_SEEDS_AND_TEST,
        resamples=100,
        rng_seed=0,
    )


def test_summary_means_ranks_verdict_counts_and_incomplete_datasets():
    summary = summarize_across_datasets(
        {
            "d1": [row("a", 0.9, BEST), row("b", 0.8), row("c", 0.7, WORSE)],
            "d2": [row("b", 0.8, BEST), row("a", 0.8, EQUIVALENT), row("c", 0.6, WORSE)],  # a, b share rank 1.5
            "d3": [row("a", 0.5, BEST), row("b", 0.4, EQUIVALENT)],  # c failed here: not ranked
        }
    )
    assert summary.methods == ("a", "b", "c") and summary.rank_datasets == ("d1", "d2")
    assert summary.mean_over_datasets["a"] == pytest.approx((0.9 + 0.8 + 0.5) / 3)
    assert summary.mean_over_datasets["c"] is None  # incomplete, never an average over fewer datasets
    assert summary.per_dataset_means["d3"] == {"a": 0.5, "b": 0.4, "c": None}
    assert summary.average_rank == {"a": pytest.approx(1.25), "b": pytest.approx(1.75), "c": pytest.approx(3.0)}
    assert summary.n_datasets == {"a": 3, "b": 3, "c": 2}
    assert summary.n_best_or_equivalent == {"a": 3, "b": 2, "c": 0}  # b is inconclusive on d1: not counted
    assert summary.n_worse == {"a": 0, "b": 0, "c": 2}


def test_summary_when_no_dataset_has_every_method():
    """Each method ran on a different dataset (a variant run on one dataset only): means per dataset, no ranks."""
    summary = summarize_across_datasets({"d1": [row("a", 0.9, BEST)], "d2": [row("b", 0.7, BEST)]})
    assert summary.rank_datasets == () and summary.average_rank == {"a": None, "b": None}
    assert summary.mean_over_datasets == {"a": None, "b": None}
    assert "too few datasets" in summary.test_note


def random_datasets(n_datasets: int, seed: int = 12) -> dict[str, list[MethodStats]]:
    rng = np.random.default_rng(seed)
    skill = {"a": 0.04, "b": 0.02, "c": 0.0, "d": -0.03}
    out = {}
    for i in range(n_datasets):
        base = rng.uniform(0.5, 0.9)
        out[f"d{i}"] = [row(m, base + s + rng.normal(0, 0.02)) for m, s in skill.items()]
    return out


def test_five_datasets_are_too_few_for_a_test():
    summary = summarize_across_datasets(random_datasets(5))
    assert summary.friedman_p is None and summary.pairwise_p is None
    assert "too few datasets" in summary.test_note


def test_six_or_more_datasets_get_friedman_and_wilcoxon_holm():
    per_dataset = random_datasets(9)
    summary = summarize_across_datasets(per_dataset)
    table = np.array([[r.mean for r in rows] for rows in per_dataset.values()])
    assert summary.test_note is None
    assert summary.friedman_p == pytest.approx(stats.friedmanchisquare(*table.T).pvalue)
    long = pd.DataFrame([{"method": r.method, "value": r.mean} for rows in per_dataset.values() for r in rows])
    expected = scikit_posthocs.posthoc_wilcoxon(long, val_col="value", group_col="method", p_adjust="holm")
    assert pd.DataFrame(summary.pairwise_p).loc[expected.index, expected.columns].to_numpy() == pytest.approx(
        expected.to_numpy()
    )
    assert summarize_across_datasets(random_datasets(6)).friedman_p is not None


@pytest.mark.parametrize("n_datasets", [5, 9])
def test_rank_diagram_draws_on_agg(n_datasets):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    draw_rank_diagram(summarize_across_datasets(random_datasets(n_datasets)), ax)
    figure.canvas.draw()
    drawn = " ".join([t.get_text() for t in ax.texts] + [t.get_text() for t in ax.get_yticklabels()])
    assert all(method in drawn for method in "abcd")
