"""A paired quantity's uncertainty: `Difference` holds the seed-mean of a difference between two methods (or one
method's score) with its parts, the seed-to-seed spread (known to n_seeds - 1 degrees of freedom), the test set's
own and their interaction, and gives its two-sided interval at any level, its p-value, and its half-width and the
seeds that would settle a verdict predicted for more seeds. The interval is a generalized pivot, a mixture of
normals over the chi-square distribution of the seed variance (docs/statistics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

from benchmark.verdicts import MAX_SEEDS_TO_SETTLE

_MIXTURE_NODES = 500


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
