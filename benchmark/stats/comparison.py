"""One (dataset, budget) block, or one `compare` row: every method's mean over seeds with its interval, its paired
difference to the best with an interval simultaneous over the block's family (Bonferroni over every pair of its
methods), and the verdict read from that interval alone (`compare_methods`, `judge`); and B minus A over shared
seeds for `compare` (`paired_difference`). The intervals combine both sources of noise, the sample a seed drew
and the finite test set: `benchmark.stats.bootstrap` and `benchmark.stats.difference` do the arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from benchmark.metrics import METRICS
from benchmark.stats.bootstrap import Scores
from benchmark.stats.difference import Difference
from benchmark.verdicts import (
    ALPHA,
    BEST,
    DIFFERS,
    INCONCLUSIVE,
    LEADERBOARD_MARGIN,
    WORSE,
    check_margin,
    verdict,
)

INTERVAL_SEEDS_AND_TEST = "seeds and test set"
INTERVAL_TEST_ONLY = "test set only (1 seed): the seed-to-seed spread is not in this interval"
INTERVAL_NONE = "no seed shared with the best method: no paired comparison"


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
    scores = Scores.of(y_true, runs, metric, num_labels, resamples, np.random.default_rng(seed))
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
    scores = Scores.of(y_true, runs, metric, num_labels, resamples, np.random.default_rng(seed))
    return scores.difference("b", "a", seeds)


def _interval_kind(n: int, n_paired: int) -> str:
    if n_paired == 0:
        return INTERVAL_NONE
    return INTERVAL_TEST_ONLY if min(n, n_paired) == 1 else INTERVAL_SEEDS_AND_TEST


def _check_inputs(y_true, predictions, metric, num_labels, alpha, resamples) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
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
