"""``--seeds auto``: seeds where a verdict is still open, with the error control of a design planned in advance.

A run starts every (dataset, budget) block with `start` seeds, then looks at the blocks' verdicts: a block with an
inconclusive row gets the next look's seeds, a block without one stops. The looks are fixed before anything runs
(`looks`: the start, then about 1.5 times the previous count, and the cap) and the level is split evenly over them
(Bonferroni across looks): every verdict is read at alpha / L for L planned looks. The chance that some verdict of
a block is wrong at the look where the block stopped is then at most the sum over the looks of the chance that one
is wrong at that look, L * alpha / L = alpha, whatever the dependence between the looks and whatever made a
block stop. Reading every look at alpha instead ("peeking") is not controlled; tests/test_sequential.py measures
both. The price: every look's intervals are those of level alpha / L, wider than a fixed design's at the cap.

The design travels in run.json (the configuration's ``seeds_auto``), so ``report`` reads the verdicts at the same
level later; a block's verdicts at the end are those of the look where it stopped, because a block that stopped
gets no more seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmark.errors import UsageError

if TYPE_CHECKING:
    from benchmark.budget import Budget

AUTO = "auto"
DEFAULT_START, DEFAULT_CAP = 3, 10
GROWTH = 1.5  # each look's seed count is about this many times the previous one


@dataclass(frozen=True)
class Design:
    """Looks at fixed seed counts from `start` to `cap`; verdicts at alpha / len(looks) at every look."""

    start: int
    cap: int

    @property
    def looks(self) -> tuple[int, ...]:
        return looks(self.start, self.cap)

    def level(self, alpha: float) -> float:
        return alpha / len(self.looks)

    def describe(self, alpha: float) -> str:
        """The design in a sentence, for the reports."""
        counts = ", ".join(str(n) for n in self.looks)
        return (
            f"Seeds chosen sequentially (--seeds auto:{self.start}-{self.cap}): looks at {counts} seeds, a block "
            f"getting the next look's seeds while one of its rows was inconclusive; α = {alpha:g} split evenly over "
            f"the {len(self.looks)} looks ({self.level(alpha):.4g} each, Bonferroni across looks), so the chance of "
            f"any wrong verdict in a block stays at most {alpha:g} whichever look it stopped at."
        )


def looks(start: int, cap: int) -> tuple[int, ...]:
    """The seed counts at which the verdicts are read: start, then ceil(1.5 x the previous) (at least one more),
    and the cap: 3-10 gives 3, 5, 8, 10."""
    counts = [start]
    while counts[-1] < cap:
        counts.append(min(cap, max(counts[-1] + 1, math.ceil(counts[-1] * GROWTH))))
    return tuple(counts)


def parse(text: str, where: str = "--seeds", most: int = 1000) -> Design:
    """'auto' (3 seeds, then up to 10) or 'auto:START-CAP'; UsageError for anything else."""
    text = text.strip().lower()
    if text == AUTO:
        return Design(DEFAULT_START, DEFAULT_CAP)
    head, _, spec = text.partition(":")
    start, _, cap = spec.partition("-")
    if head != AUTO or not (start.isascii() and start.isdigit() and cap.isascii() and cap.isdigit()):
        raise UsageError(f"{where}: '{text}' is neither a number of seeds nor 'auto' or 'auto:START-CAP' (auto:3-10)")
    design = Design(int(start), int(cap))
    if not 2 <= design.start < design.cap <= most:
        raise UsageError(
            f"{where}: {text}: give 2 <= START < CAP <= {most} (one seed has no seed-to-seed spread to judge by)"
        )
    return design


def of_run_info(info: dict[str, Any] | None) -> Design | None:
    """The sequential design a run folder's run.json records, if an invocation had one; of several, the one with
    the most looks (the smallest level per look: the verdicts stay valid for every invocation's design)."""
    designs = []
    for invocation in (info or {}).get("invocations", [info or {}]):
        spec = ((invocation or {}).get("config") or {}).get("seeds_auto")
        if isinstance(spec, list | tuple) and len(spec) == 2 and all(type(v) is int for v in spec) and spec[0] >= 2:
            designs.append(Design(*spec))
    return max((d for d in designs if d.start < d.cap), key=lambda d: len(d.looks), default=None)


def unsettled(sections) -> set[tuple[str, Budget]]:
    """The (dataset, budget) blocks with an inconclusive row: those the next look gives more seeds."""
    from benchmark.verdicts import INCONCLUSIVE

    return {
        (section.dataset, section.shots)
        for section in sections
        if any(row.stats is not None and row.stats.verdict == INCONCLUSIVE for row in section.rows)
    }


def look_line(design: Design, number: int, seeds: int, blocks: set[tuple[str, Budget]]) -> str:
    """What a look decided, in a line: stop, or which blocks get the next look's seeds."""
    where = f"look {number} of {len(design.looks)} ({seeds} seeds)"
    if not blocks:
        return f"{where}: no block has an inconclusive row: stopping"
    shown = ", ".join(f"{dataset} {budget.label}" for dataset, budget in sorted(blocks, key=_block_order))
    if number == len(design.looks):
        return f"{where}: the cap; still inconclusive: {shown}"
    return f"{where}: inconclusive rows in {shown}: {design.looks[number]} seeds there next"


def _block_order(block: tuple[str, Budget]) -> tuple:
    return block[0], block[1].sort_key
