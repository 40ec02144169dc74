"""What a person sees: results on stdout, notes, warnings and progress on stderr, and the run's exit code."""

from __future__ import annotations

import dataclasses
import signal
import tempfile
from pathlib import Path

from benchmark.errors import Terminated
from benchmark.record import Record

INTERRUPTED, TERMINATED, WRITE_FAILED = "interrupted", "terminated", "write-failed"


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


def warn_unavailable(plan) -> None:
    from benchmark import registry

    for module, reason in registry.unavailable_modules().items():
        warn(f"method module {module} is unavailable ({reason}); its cells will fail")
    for spec in plan.specs.values():
        missing = spec.missing_requirements() if spec.cls else []
        if missing:
            warn(f"'{spec.name}' needs {', '.join(missing)} (not installed); its cells will fail")
    for task in plan.tasks.values():
        for line in task.notes:
            note(line if len(plan.tasks) == 1 else f"{task.name}: {line}")
    for dataset, budgets in plan.unsupplied.items():
        shown = ", ".join(b.label for b in budgets)
        note(f"{dataset} cannot supply {shown} (a class is smaller): those cells are n/a for it")


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


class _CannotWrite(Exception):
    pass


def run_grid(plan, cells: list, folder, config) -> tuple[str | None, list[dict]]:
    """Run the pending cells, appending each record as it finishes. Returns why the grid stopped early, if it
    did (INTERRUPTED: Ctrl-C; TERMINATED: SIGTERM; WRITE_FAILED: the records file could not be written), and the
    one-off work done as jobs of their own: {"method", "dataset", "seconds", "threads"} each, for run.json."""
    from benchmark.runner import StopRequest
    from benchmark.runner import run_grid as drive

    if not cells:  # nothing to run: no workers to start (they take seconds to import torch)
        return None, []

    out, metric = stdout(), config.metric

    def on_record(record: Record, trace: str | None) -> None:
        try:
            folder.append(record)
            if trace:
                folder.log_error(f"{record.dataset} {record.method} shots={record.shots} seed={record.seed}", trace)
        except OSError as exc:
            raise _CannotWrite(f"cannot write {folder.path / 'records.jsonl'}: {exc.strerror or exc}") from exc
        out.print(cell_line(record, metric, with_dataset=len(plan.tasks) > 1))
        progress.advance(bar)

    one_offs: list[dict] = []

    def on_one_off(job, seconds: float) -> None:
        cell = job.cell
        one_offs.append({"method": cell.method.name, "dataset": cell.dataset, "seconds": round(seconds, 1),
                         "threads": job.threads})  # fmt: skip
        if seconds >= 1:
            progress.console.print(f"one-off work for {cell.method.name} on {cell.dataset}: {seconds:.0f} s")

    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as scratch:
        if plan.settings.cache_dir is None and plan.jobs > 1:  # --no-cache: workers still share one-off work
            plan = dataclasses.replace(plan, settings=dataclasses.replace(plan.settings, cache_dir=Path(scratch)))
            cells = [c for c in plan.cells if c.key in {cell.key for cell in cells}]
        executor = make_executor(plan, config)
        try:
            with _progress() as progress, StopRequest(lambda by: _stopping(progress, by)) as stop:
                bar = progress.add_task("cells", total=len(cells))
                jobs = JobLines(progress, with_dataset=len(plan.tasks) > 1)
                executor.on_progress = jobs.progressed
                drive(plan, cells, executor, stop, on_record, on_one_off, jobs)
                if not stop.requested:
                    return None, one_offs
                return (TERMINATED if stop.by == signal.SIGTERM else INTERRUPTED), one_offs
        except Terminated:
            return TERMINATED, one_offs
        except KeyboardInterrupt:
            return INTERRUPTED, one_offs
        except _CannotWrite as exc:
            executor.cancel()
            stderr().print(styled("stopped:", "red", f" {exc}"))
            return WRITE_FAILED, one_offs
        finally:
            executor.close()


def make_executor(plan, config):
    """Where the cells run: this process, worker processes, or a Ray cluster."""
    from benchmark.executors import InProcess, LocalProcesses

    if config.executor == "ray":
        from benchmark.ray_executor import RayCluster

        return RayCluster(config.ray_address, config.cpus_per_cell, config.gpus_per_cell)
    return InProcess() if plan.jobs == 1 else LocalProcesses(plan.jobs)


class JobLines:
    """A line under the bar for each running job: what it is, what it is doing, how far it has got."""

    def __init__(self, progress, with_dataset: bool) -> None:
        self._progress, self._with_dataset, self._lines = progress, with_dataset, {}

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


def _stopping(progress, by: signal.Signals) -> None:
    again = "Ctrl-C again" if by == signal.SIGINT else "SIGTERM again, or Ctrl-C,"
    progress.console.print(f"{by.name}: stopping after the running cells ({again} to abort now)", style="yellow")


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


def report(folder: Path, records: list[Record], metric: str, margin: float | None = None) -> bool:
    """Print the leaderboards and write every report into `folder`; False (and one line) if writing failed.
    `margin`: of the verdicts (None: the run's, from run.json, else the default)."""
    from benchmark import report as reports
    from benchmark.store import read_run_info

    analysis = reports.of_folder(folder, records, metric, margin)
    for line in analysis.notes:  # records the tables could not use as they are (a NaN score, bad predictions)
        note(line)
    reports.print_rich(analysis, stdout())
    try:
        reports.write(folder, analysis, read_run_info(folder))
    except OSError as exc:
        stderr().print(styled("error:", "red", f" cannot write the reports into {folder}: {exc.strerror or exc}"))
        return False
    return True


def conclude(plan, records: list[Record], out: Path, stop_reason: str | None) -> int:
    """The last lines of a run and its exit code."""
    from benchmark.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED

    console = stdout()
    if (out / "records.jsonl").is_file():
        console.print(f"records: {out / 'records.jsonl'} · report: {out / 'report.html'}")
    if stop_reason == WRITE_FAILED:
        return EXIT_FAILED
    if stop_reason in (INTERRUPTED, TERMINATED):
        unfinished = len(plan.cells) - sum(r.ok for r in records)
        console.print(
            styled(stop_reason, "yellow", f": re-run the same command to run the {unfinished} unfinished cells")
        )
        return EXIT_INTERRUPTED if stop_reason == INTERRUPTED else EXIT_TERMINATED
    failed = [r for r in records if not r.ok]
    if failed:
        kinds = ", ".join(sorted({r.error["type"] for r in failed}))
        console.print(
            styled(
                f"{len(failed)} of {len(plan.cells)} cells failed",
                "red",
                f" ({kinds}); tracebacks in {out / 'errors.log'}",
            )
        )
        return EXIT_FAILED
    return EXIT_OK


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
    from benchmark.embedded import DEFAULT, EMBEDDED
    from benchmark.errors import UsageError
    from benchmark.sampling import smallest_class

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
