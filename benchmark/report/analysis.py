"""What every report of a run folder is made from: the `Analysis` of its records (the leaderboard's sections, the
cross-dataset summaries, and what the tables must say about how they were made), built by `analyse`. The other
modules of the package only format it."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark import leaderboard
from benchmark.grid.sequential import Design
from benchmark.leaderboard import CrossDataset, Labels, Section
from benchmark.record import Record
from benchmark.verdicts import ALPHA, LEADERBOARD_MARGIN


@dataclass
class Analysis:
    metric: str
    sections: list[Section]
    cross: list[CrossDataset]
    pool_per_class: dict[str, float]  # dataset -> train-pool examples per class (the x of 'all labels')
    threads: tuple[int, ...] = ()  # the torch threads the ok cells ran on, each once, ascending
    superseded: tuple[tuple[str, int, int], ...] = ()  # (method, revision, cells) left out: a newer revision ran
    margin: float = LEADERBOARD_MARGIN  # of practical equivalence
    alpha: float = ALPHA  # family-wise, per (dataset, budget) block
    design: Design | None = None  # the sequential design of --seeds auto, if the run had one
    notes: tuple[str, ...] = ()  # records counted as failed because the tables could not use them

    @property
    def has_statistics(self) -> bool:
        return any(row.stats is not None for section in self.sections for row in section.rows)

    @property
    def block_alpha(self) -> float:
        """The level of each block's verdicts: alpha, or its share per look of a sequential design."""
        return self.design.level(self.alpha) if self.design else self.alpha


def analyse(
    records: list[Record],
    metric: str,
    labels: dict[str, Labels],
    unsupplied: dict[str, list[str]] | None = None,
    margin: float = LEADERBOARD_MARGIN,
    design: Design | None = None,
) -> Analysis:
    records, notes = leaderboard.screen(records, labels)
    block_alpha = design.level(ALPHA) if design else ALPHA
    sections = leaderboard.build(records, metric, labels, block_alpha, margin)
    pool = {}
    for record in records:
        fingerprint_labels = labels.get(record.dataset_fingerprint)
        if record.ok and record.shots.is_all and record.n_train and fingerprint_labels:
            pool[record.dataset] = record.n_train / fingerprint_labels.num_labels
    threads = tuple(sorted({record.threads for record in records if record.ok}))
    superseded = tuple(
        (method, revision, n) for (method, revision), n in sorted(leaderboard.superseded(records).items())
    )
    cross = leaderboard.across_datasets(sections, unsupplied)
    return Analysis(metric, sections, cross, pool, threads, superseded, margin, ALPHA, design, tuple(notes))
