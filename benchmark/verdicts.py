"""The three verdicts a comparison can get, the margins they use, and how one interval decides between them.

A comparison is a difference between two methods (a method against its block's best in a leaderboard) or between
two runs of the same cells (B against A in ``compare``). Its verdict is read from one interval for the difference,
simultaneous over the comparisons it is judged with (``benchmark.stats``), and from nothing else:

- *differs* (in a leaderboard: *worse*): the interval excludes 0;
- *equivalent*: it lies inside (-margin, +margin), the two one-sided tests of Schuirmann (1987);
- *inconclusive*: neither; more seeds are needed (or a larger test set).

An interval that excludes 0 is a difference even when it also lies inside the margin: a real but small change is
still a change. This module imports nothing heavy, so the command line can use it to parse its flags.
"""

from __future__ import annotations

import math

BEST, EQUIVALENT, WORSE, DIFFERS, INCONCLUSIVE = "best", "equivalent", "worse", "differs", "inconclusive"

# Margins of practical equivalence, in the metric's own units (macro-F1, accuracy); docs/statistics.md says why.
# A leaderboard asks "would a user choose another method?": 0.02, the median seed-to-seed standard deviation of a
# paired difference between two methods in the committed suite (a gap one re-run of the same comparison moves by).
# `compare` asks "did a change that should not matter move anything?": 0.01, half of that.
LEADERBOARD_MARGIN = 0.02
COMPARE_MARGIN = 0.01
MAX_SEEDS_TO_SETTLE = 100  # "seeds needed" beyond this is reported as "more than 100"
ALPHA = 0.05  # the family-wise level of the verdicts of one leaderboard block, and of one `compare`

# how the tables show a verdict, and the legend that says so
MARKS = {BEST: "best", EQUIVALENT: "=", WORSE: "▼", DIFFERS: "≠", INCONCLUSIVE: "?"}


def check_margin(margin, where: str = "margin") -> float:
    """The margin as a float; ValueError unless it is a number in (0, 1)."""
    return _strictly_between_0_and_1(margin, where)


def check_alpha(alpha, where: str = "alpha") -> float:
    """The level as a float; ValueError unless it is a number in (0, 1)."""
    return _strictly_between_0_and_1(alpha, where)


def _strictly_between_0_and_1(given, where: str) -> float:
    try:
        value = float(given) if not isinstance(given, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{where}: {given!r} is not a number between 0 and 1 (exclusive)")
    return value


def verdict(low: float, high: float, margin: float) -> str:
    """DIFFERS when [low, high] excludes 0, else EQUIVALENT when it lies inside (-margin, +margin), else
    INCONCLUSIVE; an interval that is not a number (no pairing) settles nothing."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if low > 0 or high < 0:
        return DIFFERS
    if -margin < low and high < margin:
        return EQUIVALENT
    return INCONCLUSIVE


def seeds_hint(seeds: int | None, n_paired: int, most: int = MAX_SEEDS_TO_SETTLE, short: bool = False) -> str:
    """What an inconclusive verdict needs, in words: '≈N seeds', or why no count can be given (`short`: for a
    table cell)."""
    if seeds is not None:
        return f"≈{seeds} seeds"
    if n_paired < 2:
        return "more seeds" if short else "more seeds (one seed: no seed-to-seed spread to extrapolate from)"
    return f">{most} seeds" if short else f"more than {most} seeds at this spread (a larger test set would help more)"
