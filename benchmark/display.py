"""What a run tells whoever watches it, as events: `benchmark.run` reports to a `Display`, which shows what it
likes. This base class shows nothing (a script that wants only the `Outcome`); `benchmark.console.Console` is the
command line's (a terminal or a log). Nothing here imports the rest of the run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class GridDisplay:
    """The events of one grid while its cells run (also the runner's `Watcher`: started/ended)."""

    def started(self, job) -> None:
        """A job (a cell, or a method's one-off work) started."""

    def progressed(self, job, what: str, done: int, total: int) -> None:
        """A running job's own progress (training steps, texts encoded)."""

    def ended(self, job) -> None:
        """A job ended (its record, if a cell, follows through `record`)."""

    def record(self, record) -> None:
        """A cell's record was written."""

    def one_off(self, job, seconds: float) -> None:
        """A method's one-off work (frozen features, an adapted encoder) was done as a job of its own."""

    def stopping(self, by) -> None:
        """A first Ctrl-C or SIGTERM (`by`, a signal): the running cells finish, nothing new starts."""


class Display:
    """The events of a run; every method does nothing here."""

    def note(self, text: str) -> None:
        """Something worth knowing that changes nothing (a resumed folder, a dataset cleaned on load)."""

    def warning(self, text: str) -> None:
        """Something that will make cells fail (a method whose package is missing)."""

    def error(self, text: str) -> None:
        """Something that stopped part of the run (the records or reports could not be written)."""

    def plan(self, plan, out, skipped: int) -> None:
        """The grid about to run: `skipped` of its cells finished in `out` before."""

    @contextlib.contextmanager
    def grid(self, plan, cells: list) -> Iterator[GridDisplay]:
        """While `cells` of `plan` run."""
        yield GridDisplay()

    def look(self, text: str) -> None:
        """A look of `--seeds auto` ended: which blocks get more seeds."""

    def report(self, analysis) -> None:
        """The leaderboards of the run, with their verdicts."""

    def concluded(self, outcome) -> None:
        """The run ended (an `Outcome`): where its records are, what failed, how to resume."""
