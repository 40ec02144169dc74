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

One module per concern, each importing only those before it: `pairing` (which records are compared: the same
seed on the identical sample), `difference` (a paired quantity's interval at any level, its p-value, the seeds
that would settle it), `bootstrap` (every cell's metric on resampled test sets), `comparison` (one block's
intervals and verdicts, and `compare`'s B minus A), `ranks` (one budget across datasets: ranks, counts, Friedman
and Wilcoxon-Holm, the rank diagram).

What it may import: numpy, scipy (statsmodels, pandas, scikit-posthocs and matplotlib's axes only inside the
functions that need them), `benchmark.verdicts` and `benchmark.metrics`' names; never the leaderboard, the
reports or the command line, which call it. `benchmark.verdicts` stays outside: the command line parses its flags
with it without numpy or scipy.
"""

from benchmark.stats.comparison import (
    INTERVAL_NONE,
    INTERVAL_SEEDS_AND_TEST,
    INTERVAL_TEST_ONLY,
    Judgement,
    MethodStats,
    compare_methods,
    judge,
    paired_difference,
)
from benchmark.stats.difference import Difference
from benchmark.stats.pairing import agreed_samples, paired_differences, same_sample
from benchmark.stats.ranks import (
    MIN_DATASETS_FOR_TESTS,
    BudgetSummary,
    draw_rank_diagram,
    holm,
    summarize_across_datasets,
)

__all__ = [
    "INTERVAL_NONE",
    "INTERVAL_SEEDS_AND_TEST",
    "INTERVAL_TEST_ONLY",
    "MIN_DATASETS_FOR_TESTS",
    "BudgetSummary",
    "Difference",
    "Judgement",
    "MethodStats",
    "agreed_samples",
    "compare_methods",
    "draw_rank_diagram",
    "holm",
    "judge",
    "paired_differences",
    "paired_difference",
    "same_sample",
    "summarize_across_datasets",
]
