"""Which gaps between methods are real: intervals, verdicts against the best method, cross-dataset ranks.

Within one (dataset, budget) every method is trained on the same few-shot sample for a given seed and scored on
the same fixed test set, so every comparison is paired twice: by seed and by test example. Two sources of noise
move a score: which sample the seed drew, and which finite test set happens to be used. ``compare_methods``
accounts for both: a paired bootstrap over test examples (the same resampled indices for every seed and method)
measures the test-set part, the spread of the per-seed values measures the seed part with its few degrees of
freedom, and a generalized-pivot (t-like) interval combines them.

Each comparison gets one of three verdicts read from one interval for the difference, simultaneous over its
family (Bonferroni): it excludes 0 (a difference), it lies inside (-margin, +margin) (equivalent: two one-sided
tests, Schuirmann 1987), or neither (inconclusive: more seeds needed). The interval shown beside a verdict is
the one it was read from, so the two cannot disagree. ``summarize_across_datasets`` turns the per-dataset results
of one budget into mean ranks, verdict counts and, with enough datasets, Friedman and Wilcoxon-Holm tests.
docs/statistics.md explains the method, its assumptions and its calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from statistics import fmean

import numpy as np
from scipy import optimize, special, stats

from benchmark.verdicts import (
    ALPHA,
    BEST,
    DIFFERS,
    EQUIVALENT,
    INCONCLUSIVE,
    LEADERBOARD_MARGIN,
    MAX_SEEDS_TO_SETTLE,
    WORSE,
    check_margin,
    verdict,
)

SUPPORTED_METRICS = ("accuracy", "macro_f1", "f1_positive")
MIN_DATASETS_FOR_TESTS = 6  # the smallest N at which an exact two-sided Wilcoxon p-value can fall below 0.05
INTERVAL_SEEDS_AND_TEST = "seeds and test set"
INTERVAL_TEST_ONLY = "test set only (1 seed): the seed-to-seed spread is not in this interval"
INTERVAL_NONE = "no seed shared with the best method: no paired comparison"

_WEIGHT_ENTRIES_PER_CHUNK = 4_000_000  # resample weights held at once (float32: 16 MB)
_DENSE_MAX_LABELS = 12  # above this a sparse product beats the dense one (measured on 2 cores, 70 cells)
_MIXTURE_NODES = 500


@dataclass(frozen=True)
class MethodStats:
    """One method's result on one (dataset, budget): its mean over seeds and its verdict against the best.

    ``ci_*`` is the (1 - alpha) interval for the method's own expected score. ``delta_ci_*`` is simultaneous over
    the block's family of ``family_size`` comparisons (every pair of the block's methods: the best is picked on
    the same data), at level 1 - alpha / family_size; ``verdict`` is read from it and from nothing else.
    """

    method: str
    mean: float  # over the seeds the method finished
    std: float  # ddof=1 over those seeds; 0.0 when n == 1
    n: int  # seeds the method finished
    ci_low: float
    ci_high: float
    delta_to_best: float  # method minus best over the seeds both finished; 0 for the best
    delta_ci_low: float  # the simultaneous interval the verdict is read from (0, 0 for the best; NaN: no pairing)
    delta_ci_high: float
    p_raw: float | None  # two-sided p-value of delta_to_best == 0, unadjusted; None for the best itself
    p_adjusted: float | None  # Bonferroni over the family: below alpha exactly when the interval excludes 0
    verdict: str  # BEST, EQUIVALENT (interval inside +-margin), WORSE (interval below 0) or INCONCLUSIVE
    margin: float  # of practical equivalence, in the metric's units
    family_size: int  # comparisons the level is divided among
    seeds_to_settle: int | None  # inconclusive only: paired seeds that would roughly settle it (None: unknown)
    n_paired: int  # seeds both this method and the best finished (the delta uses these)
    interval: str  # INTERVAL_SEEDS_AND_TEST; INTERVAL_TEST_ONLY if n or n_paired is 1; INTERVAL_NONE if n_paired is 0
    resamples: int  # bootstrap resamples of the test set
    rng_seed: int  # seed of the bootstrap's random generator: rerunning with it gives the same numbers


@dataclass(frozen=True)
class BudgetSummary:
    """Methods across the datasets of one budget. Dataset and method orders are those of the input."""

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    per_dataset_means: dict[str, dict[str, float | None]]  # dataset -> method -> mean (None: no result)
    mean_over_datasets: dict[str, float | None]  # None ('incomplete') unless the method has every dataset
    average_rank: dict[str, float | None]  # over rank_datasets (1 = best, ties averaged); None if there are none
    rank_datasets: tuple[str, ...]  # datasets where every method has a result: ranks and tests use these only
    n_datasets: dict[str, int]  # datasets where the method has a result
    n_best_or_equivalent: dict[str, int]  # of those, where it is the best or equivalent to the best
    n_worse: dict[str, int]  # where it is worse than the best
    friedman_p: float | None
    pairwise_p: dict[str, dict[str, float]] | None  # Wilcoxon signed-rank over rank_datasets, Holm-adjusted
    test_note: str | None  # why a test did not run (None when every test ran)
    alpha: float


def compare_methods(
    y_true: np.ndarray,
    predictions: dict[str, dict[int, np.ndarray]],
    metric: str,
    num_labels: int,
    alpha: float = ALPHA,
    margin: float = LEADERBOARD_MARGIN,
    resamples: int = 10_000,
    seed: int = 0,
) -> list[MethodStats]:
    """Every method's mean over seeds and its verdict against the best; best first.

    ``predictions`` maps method -> seed -> predicted label ids on ``y_true``'s test set. Methods with no
    finished seed are left out. The best is the highest mean (input order breaks exact ties). The family is
    every pair of the k methods with a result, k(k - 1)/2 comparisons: the best is chosen on the same data, so its
    k - 1 comparisons are a data-selected subset of the pairs, which Bonferroni over all pairs covers whatever was
    selected (over the k - 1 alone it does not: docs/statistics.md measures the difference).
    """
    y_true = np.asarray(y_true)
    _check_inputs(y_true, predictions, metric, num_labels, alpha, resamples)
    check_margin(margin)
    runs = {method: dict(sorted(by_seed.items())) for method, by_seed in predictions.items() if by_seed}
    if not runs:
        return []
    scores = _Scores.of(y_true, runs, metric, num_labels, resamples, np.random.default_rng(seed))
    summaries = {method: scores.summary(method, list(by_seed), alpha) for method, by_seed in runs.items()}
    order = sorted(runs, key=lambda m: -summaries[m][0])  # stable: input order breaks ties
    best = order[0]
    family = max(1, len(runs) * (len(runs) - 1) // 2)
    results = []
    for method in order:
        mean, std, n, low, high = summaries[method]
        row = MethodStats(method, mean, std, n, low, high, delta_to_best=0.0, delta_ci_low=0.0, delta_ci_high=0.0,
                          p_raw=None, p_adjusted=None, verdict=BEST, margin=margin, family_size=family,
                          seeds_to_settle=None, n_paired=n, interval=_interval_kind(n, n), resamples=resamples,
                          rng_seed=seed)  # fmt: skip
        if method != best:
            shared = [s for s in runs[method] if s in runs[best]]
            difference = scores.difference(method, best, shared) if shared else None
            row = _against_best(row, difference, summaries[best][0], alpha)
        results.append(row)
    return results


def _against_best(row: MethodStats, difference: Difference | None, best_mean: float, alpha: float) -> MethodStats:
    """The row's difference to the best, its interval simultaneous over the row's family at family-wise level
    `alpha`, and the verdict read from it."""
    if difference is None:  # no seed shared with the best: nothing to pair, nothing settled
        nan = float("nan")
        return replace(row, delta_to_best=row.mean - best_mean, delta_ci_low=nan, delta_ci_high=nan,
                       verdict=INCONCLUSIVE, n_paired=0, interval=INTERVAL_NONE)  # fmt: skip
    judged = judge(difference, alpha, row.margin, row.family_size)
    said = judged.verdict
    if said == DIFFERS:
        # above 0 only over fewer shared seeds than the best's mean used: not worse, and not equivalent either
        # (the interval excludes 0); the best's missing seeds would settle it
        said = WORSE if judged.high < 0 else INCONCLUSIVE
    return replace(
        row,
        delta_to_best=difference.estimate,
        delta_ci_low=judged.low,
        delta_ci_high=judged.high,
        p_raw=judged.p_raw,
        p_adjusted=judged.p_adjusted,
        verdict=said,
        seeds_to_settle=judged.seeds_to_settle,
        n_paired=difference.n_seeds,
        interval=_interval_kind(row.n, difference.n_seeds),
    )


@dataclass(frozen=True)
class Judgement:
    """A comparison's verdict and the simultaneous interval it was read from."""

    low: float
    high: float
    verdict: str  # EQUIVALENT, DIFFERS or INCONCLUSIVE
    p_raw: float  # two-sided, of a true difference of 0, unadjusted
    p_adjusted: float  # Bonferroni over the family: below alpha exactly when the interval excludes 0
    seeds_to_settle: int | None  # inconclusive only: paired seeds that would roughly settle it (None: unknown)


def judge(difference: Difference, alpha: float, margin: float, family: int) -> Judgement:
    """One comparison of a family of `family`, at family-wise level `alpha`: its interval at alpha / family
    (Bonferroni: every interval of the family covers its truth at once with probability at least 1 - alpha, and
    then every verdict read from them is right) and the verdict read from that interval."""
    level = alpha / family
    low, high = difference.interval(level)
    said = verdict(low, high, margin)
    p = difference.p()
    settle = difference.seeds_to_settle(level, margin) if said == INCONCLUSIVE else None
    return Judgement(low, high, said, p, min(1.0, p * family), settle)


def paired_difference(
    y_true: np.ndarray,
    a: dict[int, np.ndarray],
    b: dict[int, np.ndarray],
    metric: str,
    num_labels: int,
    resamples: int = 10_000,
    seed: int = 0,
) -> Difference:
    """B minus A over the seeds both have (seed -> predicted label ids on ``y_true``'s test set), as the
    leaderboard compares a method with the best; its interval at any level from ``Difference.interval``."""
    y_true = np.asarray(y_true)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("A and B share no seed: nothing to pair")
    runs = {"a": {s: a[s] for s in seeds}, "b": {s: b[s] for s in seeds}}
    _check_inputs(y_true, runs, metric, num_labels, 0.05, resamples)
    scores = _Scores.of(y_true, runs, metric, num_labels, resamples, np.random.default_rng(seed))
    return scores.difference("b", "a", seeds)


def _interval_kind(n: int, n_paired: int) -> str:
    if n_paired == 0:
        return INTERVAL_NONE
    return INTERVAL_TEST_ONLY if min(n, n_paired) == 1 else INTERVAL_SEEDS_AND_TEST


@dataclass(frozen=True, eq=False)
class Difference:
    """The seed-mean of a paired quantity (a difference between two methods, or one method's score) with what
    its uncertainty is made of, so that its interval can be had at any level and its width predicted for more
    seeds. Components as in docs/statistics.md: the seed part `v_seed` (known to n_seeds - 1 degrees of freedom),
    the test-set part `v_test` and the seed-by-example interaction `overlap` both contain. One seed: the bootstrap
    replicates themselves (a percentile interval)."""

    estimate: float
    n_seeds: int
    v_seed: float
    v_test: float
    overlap: float
    replicates: np.ndarray | None  # one seed only

    @classmethod
    def of(cls, per_seed: np.ndarray, replicates: np.ndarray) -> Difference:
        estimate = float(per_seed.mean())
        if len(per_seed) == 1:
            return cls(estimate, 1, 0.0, float(np.var(replicates[:, 0], ddof=1)), 0.0, replicates[:, 0])
        n_seeds = len(per_seed)
        v_seed = float(np.var(per_seed, ddof=1)) / n_seeds
        v_test = float(np.var(replicates.mean(axis=1), ddof=1))
        v_per_seed = float(np.var(replicates, axis=0, ddof=1).mean())
        overlap = max(0.0, (v_per_seed - v_test) / (n_seeds - 1))
        return cls(estimate, n_seeds, v_seed, v_test, overlap, None)

    def interval(self, alpha: float, lowest: float = -1.0, highest: float = 1.0) -> tuple[float, float]:
        """The two-sided (1 - alpha) interval, clipped to [lowest, highest] (every metric lies in [0, 1])."""
        if self.replicates is not None:
            low, high = np.quantile(self.replicates, [alpha / 2, 1 - alpha / 2])
        else:
            spread, weights = _mixture_spread(self.v_seed, self.v_test, self.overlap, self.n_seeds)
            half_width = _mixture_quantile(spread, weights, alpha)
            low, high = self.estimate - half_width, self.estimate + half_width
        return max(lowest, float(low)), min(highest, float(high))

    def p(self) -> float:
        """Two-sided p-value of a true value of 0: below alpha exactly when the (1 - alpha) interval excludes 0
        (for one seed up to the bootstrap's +1 and interpolation)."""
        if self.replicates is not None:
            values = self.replicates
            tail = min(np.count_nonzero(values <= 0), np.count_nonzero(values >= 0))
            return min(1.0, 2 * (1 + int(tail)) / (1 + len(values)))
        spread, weights = _mixture_spread(self.v_seed, self.v_test, self.overlap, self.n_seeds)
        return float(_mixture_p(self.estimate, spread, weights))

    def half_width(self, alpha: float, n_seeds: int | None = None) -> float:
        """The interval's half-width now, or predicted for `n_seeds` paired seeds if the components stay as
        measured: the seed part and the interaction shrink as 1/seeds, the test set's own part does not (every
        seed is scored on the same test set), and the t-like correction eases with the degrees of freedom. One
        seed: the percentile interval's half-width as it is (there is no seed spread to predict from)."""
        n_seeds = n_seeds or self.n_seeds
        if self.replicates is not None:
            low, high = np.quantile(self.replicates, [alpha / 2, 1 - alpha / 2])
            return float(high - low) / 2
        shrink = self.n_seeds / n_seeds
        fixed = max(0.0, self.v_test - self.overlap)
        spread, weights = _mixture_spread(self.v_seed * shrink, fixed + self.overlap * shrink, self.overlap * shrink,
                                          n_seeds)  # fmt: skip
        return _mixture_quantile(spread, weights, alpha)

    def seeds_to_settle(self, alpha: float, margin: float, most: int = MAX_SEEDS_TO_SETTLE) -> int | None:
        """Roughly how many paired seeds would settle an inconclusive verdict at the observed spread and
        estimate: the fewest whose interval would be narrower than max(margin - |estimate|, |estimate|) (the
        larger of what equivalence and a difference need). None when it cannot be told: one seed (no seed
        spread to go on) or not within `most` seeds (the test set's own noise may be too large for any number)."""
        if not 2 <= self.n_seeds < most:
            return None
        needed = max(margin - abs(self.estimate), abs(self.estimate))
        if self.half_width(alpha, most) >= needed:
            return None
        low, high = self.n_seeds, most  # half_width(high) < needed; the smallest such count, by bisection
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self.half_width(alpha, middle) < needed else (middle, high)
        return high


@dataclass
class _Scores:
    """Every cell's metric on the full test set (`point`) and on each bootstrap resample (`replicates`), with the
    cells' columns by (method, seed)."""

    point: np.ndarray
    replicates: np.ndarray
    column: dict[tuple[str, int], int]

    @classmethod
    def of(cls, y_true, runs: dict[str, dict[int, np.ndarray]], metric: str, num_labels: int, resamples: int, rng):
        cells = [(method, s) for method, by_seed in runs.items() for s in by_seed]
        preds = np.stack([np.asarray(runs[m][s]) for m, s in cells])
        point = _metric_from_weights(np.ones((1, len(y_true)), np.float32), y_true, preds, metric, num_labels)[0]
        replicates = _bootstrap_metric(y_true, preds, metric, num_labels, resamples, rng)
        return cls(point, replicates, {cell: i for i, cell in enumerate(cells)})

    def _columns(self, method: str, seeds: list[int]) -> list[int]:
        return [self.column[(method, s)] for s in seeds]

    def summary(self, method: str, seeds: list[int], alpha: float) -> tuple[float, float, int, float, float]:
        """(mean, std, n, ci_low, ci_high) of the method's seeds; every supported metric lies in [0, 1], and so
        does the interval for its expected value."""
        cols = self._columns(method, seeds)
        values = self.point[cols]
        low, high = Difference.of(values, self.replicates[:, cols]).interval(alpha, 0.0, 1.0)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return float(values.mean()), std, len(values), low, high

    def difference(self, method: str, best: str, seeds: list[int]) -> Difference:
        """The method minus the best over `seeds`."""
        mine, theirs = self._columns(method, seeds), self._columns(best, seeds)
        return Difference.of(
            self.point[mine] - self.point[theirs], self.replicates[:, mine] - self.replicates[:, theirs]
        )


def summarize_across_datasets(per_dataset: dict[str, list[MethodStats]], alpha: float = 0.05) -> BudgetSummary:
    """One budget across datasets: means, average ranks, verdict counts and, with 6+ complete datasets, tests.

    Ranks and tests use only the datasets where every method has a result (a method missing from one dataset
    removes that dataset from the ranking rather than being ranked on fewer datasets than the others).
    """
    datasets = tuple(per_dataset)
    methods = tuple(dict.fromkeys(s.method for results in per_dataset.values() for s in results))
    by_dataset = {d: {s.method: s for s in results} for d, results in per_dataset.items()}
    means = {d: {m: (by_dataset[d][m].mean if m in by_dataset[d] else None) for m in methods} for d in datasets}
    mean_over = {
        m: fmean(means[d][m] for d in datasets) if all(means[d][m] is not None for d in datasets) else None
        for m in methods
    }
    complete = tuple(d for d in datasets if all(means[d][m] is not None for m in methods))
    rows = [[means[d][m] for m in methods] for d in complete]
    table = np.array(rows, dtype=float).reshape(len(complete), len(methods))  # (0, methods) when none is complete
    if complete:
        ranks = stats.rankdata(-table, axis=1, method="average")  # 1 = highest mean; ties share the average rank
        average_rank = {m: float(ranks[:, j].mean()) for j, m in enumerate(methods)}
    else:
        average_rank = dict.fromkeys(methods)
    n_datasets = {m: sum(m in by_dataset[d] for d in datasets) for m in methods}
    verdicts = {m: [by_dataset[d][m].verdict for d in datasets if m in by_dataset[d]] for m in methods}

    friedman_p, pairwise_p, note = None, None, None
    if len(methods) < 2:
        note = "fewer than 2 methods: nothing to test"
    elif len(complete) < MIN_DATASETS_FOR_TESTS:
        note = (
            f"too few datasets for a test: {len(complete)} with every method's result, a test needs at least "
            f"{MIN_DATASETS_FOR_TESTS} (below that a two-sided Wilcoxon p-value cannot fall below 0.05)"
        )
    else:
        pairwise_p = _pairwise_wilcoxon_holm(table, methods)
        if len(methods) >= 3:
            with np.errstate(invalid="ignore"):  # every dataset a full tie: 0/0, no evidence of a difference
                friedman_p = _nan_to_one(stats.friedmanchisquare(*table.T).pvalue)
        else:
            note = "Friedman needs at least 3 methods: only the pairwise Wilcoxon test ran"
    return BudgetSummary(
        datasets=datasets,
        methods=methods,
        per_dataset_means=means,
        mean_over_datasets=mean_over,
        average_rank=average_rank,
        rank_datasets=complete,
        n_datasets=n_datasets,
        n_best_or_equivalent={m: sum(v in (BEST, EQUIVALENT) for v in verdicts[m]) for m in methods},
        n_worse={m: verdicts[m].count(WORSE) for m in methods},
        friedman_p=friedman_p,
        pairwise_p=pairwise_p,
        test_note=note,
        alpha=alpha,
    )


def draw_rank_diagram(summary: BudgetSummary, ax) -> None:
    """A critical-difference diagram (Wilcoxon-Holm cliques) when the tests ran, else a plain average-rank plot."""
    import textwrap

    ranked = {m: r for m, r in summary.average_rank.items() if r is not None}
    if not ranked:
        ax.text(0.5, 0.5, "no dataset has every method's result: no ranks", ha="center", va="center")
        ax.set_axis_off()
        return
    if summary.pairwise_p is not None:
        import pandas as pd
        import scikit_posthocs

        scikit_posthocs.critical_difference_diagram(
            pd.Series(ranked), pd.DataFrame(summary.pairwise_p), ax=ax, alpha=summary.alpha
        )
        title = (
            f"average rank over {len(summary.rank_datasets)} datasets; a bar joins methods not distinguishable "
            f"(Wilcoxon, Holm, alpha={summary.alpha})"
        )
        ax.set_title(textwrap.fill(title, 80), fontsize="small", pad=20)
        return
    names = sorted(ranked, key=ranked.get)
    positions = np.arange(len(names))
    ax.scatter([ranked[m] for m in names], positions)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0.5, len(summary.methods) + 0.5)
    ax.set_xlabel(f"average rank over {len(summary.rank_datasets)} datasets (1 = best)")
    ax.set_title(textwrap.fill(summary.test_note or "", 80), fontsize="small")


def _check_inputs(y_true, predictions, metric, num_labels, alpha, resamples) -> None:
    if metric not in SUPPORTED_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(SUPPORTED_METRICS)}")
    if metric == "f1_positive" and num_labels != 2:
        raise ValueError(f"f1_positive is defined for binary tasks only, not for {num_labels} labels")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, not {resamples}")
    if y_true.ndim != 1 or len(y_true) == 0 or len(y_true) >= 2**24:  # counts stay exact in float32
        raise ValueError("y_true must be a non-empty 1-D array of fewer than 2**24 label ids")
    arrays = {"y_true": y_true}
    arrays |= {f"{m}, seed {s}": np.asarray(p) for m, by_seed in predictions.items() for s, p in by_seed.items()}
    for name, values in arrays.items():
        if values.shape != y_true.shape:
            raise ValueError(f"predictions of {name} have shape {values.shape}, y_true has {y_true.shape}")
        if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= num_labels:
            raise ValueError(f"{name} must hold integer label ids in [0, {num_labels})")


def _labels_scored(metric: str, num_labels: int) -> np.ndarray:
    return np.array([1]) if metric == "f1_positive" else np.arange(num_labels)


def _features(y_true: np.ndarray, preds: np.ndarray, metric: str, num_labels: int):
    """A 0/1 matrix (test examples x columns) whose weighted column sums give every cell's metric.

    accuracy: one column per cell (correct). F1: per cell and scored label l, TP_l (correct, y == l) and FP_l
    (wrong, pred == l), plus one shared support column per label; F1_l = 2 TP / (TP + FP + support).
    """
    import scipy.sparse as sparse

    n_cells, n = preds.shape
    if metric == "accuracy":
        return (preds == y_true).T.astype(np.float32)
    labels = _labels_scored(metric, num_labels)
    position = np.full(num_labels, -1)
    position[labels] = np.arange(len(labels))
    correct = preds == y_true
    slot = np.where(correct, position[y_true][None, :], position[preds])  # which label's TP / FP column
    offset = np.where(correct, 0, len(labels))
    column = np.arange(n_cells)[:, None] * 2 * len(labels) + offset + slot
    keep = slot >= 0
    support_column = n_cells * 2 * len(labels) + position[y_true]
    rows = np.concatenate([np.broadcast_to(np.arange(n), preds.shape)[keep], np.flatnonzero(position[y_true] >= 0)])
    cols = np.concatenate([column[keep], support_column[position[y_true] >= 0]])
    matrix = sparse.csc_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n, (2 * n_cells + 1) * len(labels))
    )
    return matrix.toarray() if len(labels) <= _DENSE_MAX_LABELS else matrix


def _metric_from_counts(counts: np.ndarray, n_cells: int, n_labels: int, metric: str, total: float) -> np.ndarray:
    if metric == "accuracy":
        return counts / total
    per_cell = counts[:, : 2 * n_cells * n_labels].reshape(len(counts), n_cells, 2, n_labels)
    tp, fp = per_cell[:, :, 0, :], per_cell[:, :, 1, :]
    support = counts[:, None, 2 * n_cells * n_labels :]
    denominator = tp + fp + support
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)  # zero_division=0
    return f1.mean(axis=2)


def _metric_from_weights(weights, y_true, preds, metric, num_labels, features=None) -> np.ndarray:
    """The metric of every cell (columns) under every row of test-example weights (counts of a resample)."""
    if features is None:
        features = _features(y_true, preds, metric, num_labels)
    counts = np.asarray(weights @ features, dtype=np.float64)  # features may be a scipy sparse matrix
    n_labels = len(_labels_scored(metric, num_labels))
    return _metric_from_counts(counts, len(preds), n_labels, metric, float(len(y_true)))


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def _bootstrap_metric(y_true, preds, metric, num_labels, resamples, rng) -> np.ndarray:
    """resamples x cells: each cell's metric on test sets resampled with replacement, the same for all cells."""
    n = len(y_true)
    features = _features(y_true, preds, metric, num_labels)
    chunk = max(1, min(resamples, _WEIGHT_ENTRIES_PER_CHUNK // n))
    out = np.empty((resamples, len(preds)))
    # These products are thin (few columns): on a shared 2-core machine one BLAS thread was 30x faster for
    # small ones and no slower for the largest, where drawing the resamples dominates anyway.
    with _blas_controller().limit(limits=1, user_api="blas"):
        for start in range(0, resamples, chunk):
            size = min(chunk, resamples - start)
            picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
            weights = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float32)
            out[start : start + size] = _metric_from_weights(weights, y_true, preds, metric, num_labels, features)
    return out


@lru_cache(maxsize=64)
def _chi2_nodes(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights for an expectation over a chi-square(df) variable.

    Midpoints in v with u = v**4 crowd the nodes into the lower tail, where small chi-square values (large
    variances) decide small p-values; relative error under 2e-4 down to p = 1e-9 (checked against Student t).
    """
    v = (np.arange(_MIXTURE_NODES) + 0.5) / _MIXTURE_NODES
    weights = 4 * v**3
    return stats.chi2.ppf(v**4, df), weights / weights.sum()


def _mixture_spread(v_seed: float, v_test: float, overlap: float, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations (and their weights) of the generalized pivot for the seed mean.

    The seed variance estimate is (S-1) * v_seed / chi2(S-1) under normal seed effects; the test-set variance,
    estimated from hundreds or thousands of examples, is taken as known. Without the test part this is Student's
    t with S-1 degrees of freedom, without the seed part the normal. A Welch-Satterthwaite interval instead is
    liberal for S <= 3: its estimated degrees of freedom grow exactly when the seed variance is underestimated.
    """
    nodes, weights = _chi2_nodes(n_seeds - 1)
    seed_part = np.maximum(0.0, (n_seeds - 1) * v_seed / nodes - overlap)
    # a zero spread (no variation at all) becomes a tiny one: the tail is then 1 at distance 0 and 0 beyond
    return np.maximum(np.sqrt(seed_part + v_test), np.finfo(float).tiny), weights


def _two_sided_tail(distance: float, spread: np.ndarray, weights: np.ndarray) -> float:
    """P(|X| >= distance) for X a weighted mixture of centred normals with these standard deviations. Exactly 1
    at distance 0 (identical samples), where the weights' rounded sum would give 0.9999999999999999."""
    if distance <= 0:
        return 1.0
    return min(1.0, float(np.dot(weights, special.erfc(distance / (np.sqrt(2) * spread)))))


def _mixture_p(estimate: float, spread: np.ndarray, weights: np.ndarray) -> float:
    return _two_sided_tail(abs(estimate), spread, weights)


def _mixture_quantile(spread: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    if spread.max() <= np.finfo(float).tiny:
        return 0.0
    z = special.ndtri(1 - alpha / 2)  # every component's own quantile brackets the mixture's
    low, high = z * spread.min(), z * spread.max()
    if high - low <= 1e-12 * high:
        return float(high)

    def excess(c: float) -> float:
        return _two_sided_tail(c, spread, weights) - alpha

    # the bracket holds exactly; in floating point a nearly constant spread (many seeds) can put both ends on one
    # side by a rounding error (the weights sum to 1 - 1e-16), and then that end is the quantile to within it
    if excess(low) <= 0:
        return float(low)
    if excess(high) >= 0:
        return float(high)
    return float(optimize.brentq(excess, low, high, xtol=1e-12 * high, rtol=1e-7))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values, by name."""
    if len(p_values) < 2:  # Holm over one comparison is that comparison; multipletests' gc.collect() costs ~0.1 s
        return {name: float(p) for name, p in p_values.items()}
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests(list(p_values.values()), method="holm")[1]
    return {name: float(p) for name, p in zip(p_values, adjusted, strict=True)}


def _nan_to_one(p: float) -> float:
    """A test on identical values has no evidence of a difference; scipy returns nan for it."""
    return 1.0 if np.isnan(p) else float(p)


def _pairwise_wilcoxon_holm(table: np.ndarray, methods: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Wilcoxon signed-rank p-values over datasets for every pair, Holm-adjusted over all pairs (Benavoli 2016)."""
    pairs = [(i, j) for i in range(len(methods)) for j in range(i + 1, len(methods))]
    raw = {}
    for i, j in pairs:
        if np.all(table[:, i] == table[:, j]):
            raw[(i, j)] = 1.0
            continue
        raw[(i, j)] = _nan_to_one(stats.wilcoxon(table[:, i], table[:, j]).pvalue)
    adjusted = holm({f"{i},{j}": p for (i, j), p in raw.items()})
    matrix = {a: {b: 1.0 for b in methods} for a in methods}
    for i, j in pairs:
        p = adjusted[f"{i},{j}"]
        matrix[methods[i]][methods[j]] = matrix[methods[j]][methods[i]] = p
    return matrix
