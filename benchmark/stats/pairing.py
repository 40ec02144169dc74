"""Which records are paired, the one rule the leaderboard, its tables and `compare` share: two records of one seed
are compared only when they trained on the identical sample (their `sample` hashes agree), and within a block the
sample of a seed is the one most of its records saw (`agreed_samples`). A record from before samples were hashed
(schema 1: None) pairs by seed, as it was made, where the caller allows it: the leaderboard does
(docs/records.md); `compare`, which claims two runs made the same thing, does not."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.record import Record


def same_sample(a: str | None, b: str | None, unhashed_pairs: bool = True) -> bool:
    """Whether records with sample hashes `a` and `b` (of one seed) trained on the identical sample; an unhashed
    one (None) pairs when `unhashed_pairs`."""
    if a is None or b is None:
        return unhashed_pairs
    return a == b


def agreed_samples(records: Iterable[Record]) -> dict[int, str | None]:
    """Per seed, the sample most of `records` saw (the first seen among equals): a record of a block on another
    sample is not paired."""
    seen = defaultdict(Counter)
    for record in records:
        if record.sample is not None:
            seen[record.seed][record.sample] += 1
    return {seed: counts.most_common(1)[0][0] for seed, counts in seen.items()}


def paired_differences(mine: Iterable[Record], theirs: Iterable[Record], metric: str) -> list[float]:
    """Per seed where both have `metric`, on the identical sample: my value minus theirs."""
    by_seed = {r.seed: (r.sample, r.metrics[metric]) for r in theirs if metric in r.metrics}
    return [
        r.metrics[metric] - by_seed[r.seed][1]
        for r in mine
        if metric in r.metrics and r.seed in by_seed and same_sample(r.sample, by_seed[r.seed][0])
    ]
