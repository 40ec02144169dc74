"""What a person sees: results on stdout; notes, warnings and progress on stderr. `ConsoleDisplay` shows a run's
events (benchmark/display.py) in a terminal or a log; it decides nothing."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from benchmark.display import Display, GridDisplay
from benchmark.outcome import INTERRUPTED, TERMINATED, WRITE_FAILED, Outcome
from benchmark.record import Record


def stdout():
    """Log lines are never cut in two (soft wrap); tables in a log file or CI are not squeezed into 80 columns.
    No markup: labels such as 'lora [lr=0.001]', paths and error messages are printed as they are."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True, markup=False)
    if not console.is_terminal:
        console.width = 160
    return console


def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def styled(head: str, style: str, rest: str = ""):
    """`head` in `style`, then `rest` as it is."""
    from rich.text import Text

    return Text.assemble((head, style), rest)


def note(message: str) -> None:
    stderr().print(styled("note:", "yellow", f" {message}"))


def warn(message: str) -> None:
    stderr().print(styled("warning:", "yellow", f" {message}"))


class ConsoleDisplay(Display):
    """The command line's display of a run: `config` is the run's (its metric, its executor)."""

    def __init__(self, config) -> None:
        self._config = config

    def note(self, text: str) -> None:
        note(text)

    def warning(self, text: str) -> None:
        warn(text)

    def error(self, text: str) -> None:
        stderr().print(styled("error:", "red", f" {text}"))

    def plan(self, plan, out, skipped: int) -> None:
        announce_plan(plan, out, skipped, self._config)

    @contextlib.contextmanager
    def grid(self, plan, cells: list):
        with _progress() as progress:
            yield _GridLines(progress, len(cells), len(plan.tasks) > 1, self._config.metric)

    def look(self, text: str) -> None:
        stdout().print(text)

    def report(self, analysis) -> None:
        from benchmark import report

        report.print_rich(analysis, stdout())

    def concluded(self, outcome: Outcome) -> None:
        conclude(outcome)


class _GridLines(GridDisplay):
    """While a grid runs: the bar of cells, a line under it for each running job (what it is, what it is doing, how
    far it has got), a result line per record."""

    def __init__(self, progress, cells: int, with_dataset: bool, metric: str) -> None:
        self._progress, self._metric, self._with_dataset = progress, metric, with_dataset
        self._bar = progress.add_task("cells", total=cells)
        self._lines: dict[int, object] = {}

    def _name(self, job) -> str:
        cell = job.cell
        if job.kind == "one-off":
            return f"one-off work for {cell.method.name} on {cell.dataset}"
        where = f"{cell.dataset} · " if self._with_dataset else ""
        return f"{where}{cell.method.name} · {cell.budget.label} · seed {cell.seed}"

    def started(self, job) -> None:
        self._lines[id(job)] = self._progress.add_task(f"  {self._name(job)}", total=None, start=True)

    def progressed(self, job, what: str, done: int, total: int) -> None:
        line = self._lines.get(id(job))
        if line is not None:
            self._progress.update(line, description=f"  {self._name(job)}: {what}", completed=done, total=total)

    def ended(self, job) -> None:
        line = self._lines.pop(id(job), None)
        if line is not None:
            self._progress.remove_task(line)

    def record(self, record: Record) -> None:
        stdout().print(cell_line(record, self._metric, self._with_dataset))
        self._progress.advance(self._bar)

    def one_off(self, job, seconds: float) -> None:
        if seconds >= 1:
            self._progress.console.print(
                f"one-off work for {job.cell.method.name} on {job.cell.dataset}: {seconds:.0f} s"
            )

    def stopping(self, by: signal.Signals) -> None:
        again = "Ctrl-C again" if by == signal.SIGINT else "SIGTERM again, or Ctrl-C,"
        self._progress.console.print(
            f"{by.name}: stopping after the running cells ({again} to abort now)", style="yellow"
        )


def conclude(outcome: Outcome) -> None:
    """The last lines of a run: where its records are, and what failed or is left to run."""
    out, console = outcome.folder, stdout()
    if (out / "records.jsonl").is_file():
        console.print(f"records: {out / 'records.jsonl'} · report: {out / 'report.html'}")
    if outcome.stopped == WRITE_FAILED:
        return
    if outcome.stopped in (INTERRUPTED, TERMINATED):
        rest = f": re-run the same command to run the {outcome.unfinished} unfinished cells"
        console.print(styled(outcome.stopped, "yellow", rest))
        return
    failed = outcome.failed
    if failed:
        kinds = ", ".join(sorted({r.error["type"] for r in failed}))
        where = f" ({kinds}); tracebacks in {out / 'errors.log'}"
        console.print(styled(f"{len(failed)} of {outcome.planned} cells failed", "red", where))


def announce_plan(plan, out: Path, skipped: int, config) -> None:
    settings = plan.settings
    if len(plan.tasks) == 1:
        (task,) = plan.tasks.values()
        data = f"{task.name} ({len(task.train)} train / {len(task.test)} test, fingerprint {task.fingerprint})"
    else:
        data = f"{len(plan.tasks)} datasets ({', '.join(t.name for t in plan.tasks.values())})"
    where = f"{plan.jobs} job(s) × {settings.threads} threads"
    if config.executor == "ray":
        where = f"Ray tasks of {config.cpus_per_cell} CPU(s)" + (
            f" and {config.gpus_per_cell:g} GPU each" if config.gpus_per_cell else " each"
        )
    stdout().print(
        f"{data} · {settings.model.name} · {settings.device} {precision_label(plan)} · {where} · "
        f"{len(plan.cells)} cells" + (f", {skipped} already finished in {out}" if skipped else "")
    )


def precision_label(plan) -> str:
    """'fp32', or under `--precision auto` on a CPU with native bf16 which methods run in which precision."""
    by_precision: dict[str, list[str]] = {}
    for name in plan.specs:
        by_precision.setdefault(plan.settings_of(name).precision, []).append(name)
    if len(by_precision) == 1:
        return next(iter(by_precision))
    return " / ".join(f"{precision} ({', '.join(names)})" for precision, names in sorted(by_precision.items()))


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr(),
        transient=True,
    )


def cell_line(record: Record, metric: str, with_dataset: bool = False):
    where = f"{record.method} · {record.shots.label} · seed {record.seed}"
    if with_dataset:
        where = f"{record.dataset} · {where}"
    if not record.ok:
        return styled(f"✗ {where} · {record.error['type']}: {record.error['message'][:160]}", "red")
    seconds = f"train {record.train_seconds:.1f}s · predict {record.predict_seconds:.1f}s"
    return styled("✓", "green", f" {where} · {metric} {record.metrics.get(metric, float('nan')):.3f} · {seconds}")


def print_listing() -> None:
    import typing

    from rich.table import Table

    from benchmark import registry

    console = stdout()
    table = Table(title="methods", title_justify="left", show_lines=True)
    for column in ("name", "what it does", "hyperparameters (defaults, allowed values)"):
        table.add_column(column)
    for name, spec in registry.available().items():
        notes = []
        if spec.uses_unlabelled:
            notes.append("uses unlabelled train-pool texts")
        missing = spec.missing_requirements()
        if missing:
            notes.append(f"unavailable: needs {', '.join(missing)}")
        summary = spec.summary + (f" ({'; '.join(notes)})" if notes else "")
        hints = typing.get_type_hints(spec.cls, include_extras=True)
        params = "\n".join(
            f"{k}={v!r}" + (f"  ({bounds})" if (bounds := registry.describe(hints[k])) else "")
            for k, v in spec.defaults().items()
        )
        table.add_row(name, summary, params or "—")
    console.print(table)
    for module, reason in registry.unavailable_modules().items():
        console.print(styled("unavailable module", "yellow", f" {module}: {reason}"))
    console.print(styled("\nembedded datasets", "bold", " (--dataset NAME[,NAME...], or --suite embedded for all)"))
    print_datasets(console)
    console.print("Also: any Hub dataset name (train + test or validation split), through datasets.load_dataset;")
    console.print("a local .csv/.tsv/.jsonl/.parquet file (--test for a test file) or a datasets.save_to_disk folder.")


def print_datasets(console) -> None:
    """The embedded suite as its packages state it, with the sizes its loaders produce (loaded now)."""
    from benchmark.data.embedded import DEFAULT, EMBEDDED
    from benchmark.data.sampling import smallest_class
    from benchmark.errors import UsageError

    for name, dataset in EMBEDDED.items():
        console.print(styled(f"  {name}", "bold", " (default)" if name == DEFAULT else ""), end="")
        try:
            task = dataset.load()
        except UsageError as exc:
            console.print(f" · not installed: {exc}")
            continue
        classes = ", ".join(f"{k} {v:,}" for k, v in task.class_counts().items())
        console.print(
            f" · {len(task.train):,} train / {len(task.test):,} test · {task.num_labels} classes: {classes}"
            " · smallest: {} ({:,})".format(*smallest_class(task))
        )
        console.print(f"    {dataset.description}")
        package = f"{dataset.package}=={dataset.version}"
        console.print(f"    source: {dataset.source} · licence: {dataset.licence} · {package}")
