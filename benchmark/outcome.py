"""What a run leaves: its records, its verdict tables and why it stopped early, if it did. Returned by
`benchmark.run` and `benchmark.load`; the command line maps it to an exit code, a display shows it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.record import Record

if TYPE_CHECKING:
    from benchmark.report import Analysis

# why a run stopped early
INTERRUPTED = "interrupted"  # Ctrl-C: the running cells finished, nothing new started; re-running resumes
TERMINATED = "terminated"  # SIGTERM, handled as Ctrl-C
WRITE_FAILED = "write-failed"  # the records file could not be written (a full disk): the run had to stop


@dataclass
class Outcome:
    """A run folder after a run, or as it stands (`benchmark.load`)."""

    folder: Path
    records: list[Record]  # the newest record of each of the grid's cells (of every cell, for a loaded folder)
    analysis: Analysis | None  # the leaderboards and their verdicts; None when the run stopped before reporting
    planned: int  # the grid's cells
    stopped: str | None = None  # INTERRUPTED, TERMINATED, WRITE_FAILED, or None: it ran to the end
    reports_written: bool = True  # False: the reports could not be written into the folder

    @property
    def failed(self) -> list[Record]:
        return [record for record in self.records if not record.ok]

    @property
    def unfinished(self) -> int:
        """Planned cells without an ok record: what re-running the same configuration would run."""
        return self.planned - sum(record.ok for record in self.records)

    @property
    def complete(self) -> bool:
        return self.stopped is None and not self.unfinished and self.reports_written

    def table(self) -> list[dict]:
        """One row per (dataset, budget, method) of the leaderboards, as plain values: its mean over seeds, 95%
        interval, paired difference to the best and verdict (`pandas.DataFrame(outcome.table())`)."""
        rows = []
        for section in self.analysis.sections if self.analysis else []:
            for row in section.rows:
                stats = row.stats
                rows.append(
                    {
                        "dataset": section.dataset,
                        "model": section.model,
                        "budget": section.shots.label,
                        "method": row.label,
                        "seeds": stats.n if stats else 0,
                        "failed": len(row.failed),
                        "mean": stats.mean if stats else None,
                        "ci_low": stats.ci_low if stats else None,
                        "ci_high": stats.ci_high if stats else None,
                        "delta_to_best": stats.delta_to_best if stats else None,
                        "verdict": stats.verdict if stats else None,
                    }
                )
        return rows
