"""The Python API: one way in for scripts, notebooks and the command line (docs/api.md).

    import benchmark

    config = benchmark.RunConfig(datasets=["rt-critics"], methods=["logreg", "setfit"], budgets=[Budget(8)])
    outcome = benchmark.run(config)                 # validates, runs what is pending, writes records and reports
    outcome = benchmark.load("results/embedded-suite")   # a finished folder, read

`run` checks the whole configuration before anything is written (a mistake raises `benchmark.UsageError`, one
line), runs the grid's pending cells (a folder resumes), writes each record as its cell ends and the reports at
the end, and returns an `Outcome`; a failure inside a cell is a failed record, never an exception. What a person
sees goes through a `Display`: none by default, `benchmark.console.Console()` for the command line's.
"""

from __future__ import annotations

import dataclasses
import signal
import tempfile
import time
from pathlib import Path

from benchmark.display import Display, GridDisplay
from benchmark.errors import Terminated, UsageError
from benchmark.grid.config import RunConfig
from benchmark.outcome import INTERRUPTED, TERMINATED, WRITE_FAILED, Outcome


def run(config: RunConfig | None = None, display: Display | None = None) -> Outcome:
    """Run the grid `config` describes (the defaults: the default job) into its folder; see the module."""
    config, display = config or RunConfig(), display or Display()
    outcome = _sequential(config, display) if config.seeds_auto is not None else _grid(config, display)
    display.concluded(outcome)
    return outcome


def load(folder: str | Path, metric: str | None = None, margin: float | None = None, display: Display | None = None):
    """A run folder as it stands: its newest record of each cell and its leaderboards, in the run's metric (or
    `metric`) and margin (or `margin`); nothing is written. UsageError if `folder` holds no records."""
    from benchmark import report
    from benchmark.grid.store import RECORDS, read_records, read_run_info

    folder, display = Path(folder), display or Display()
    if not (folder / RECORDS).is_file():
        raise UsageError(f"{folder} has no {RECORDS}: not a run folder")
    stored = read_records(folder)
    for line in stored.notes(folder / RECORDS):
        display.note(line)
    metric = metric or ((read_run_info(folder) or {}).get("config") or {}).get("metric") or "macro_f1"
    latest = list(stored.latest_by_cell().values())
    return Outcome(folder, latest, report.of_folder(folder, stored.records, metric, margin), len(latest))


def write_reports(outcome: Outcome, display: Display | None = None) -> Outcome:
    """Show `outcome`'s leaderboards and write every report into its folder (the `report` command)."""
    from benchmark import report
    from benchmark.grid.store import read_run_info

    display = display or Display()
    for line in outcome.analysis.notes:  # records the tables could not use as they are (a NaN score, bad predictions)
        display.note(line)
    display.report(outcome.analysis)
    try:
        report.write(outcome.folder, outcome.analysis, read_run_info(outcome.folder))
    except OSError as exc:
        display.error(f"cannot write the reports into {outcome.folder}: {exc.strerror or exc}")
        return dataclasses.replace(outcome, reports_written=False)
    return outcome


# --- one grid ------------------------------------------------------------------------------------------------


def _grid(config: RunConfig, display: Display, blocks=None, reports: bool = True, already=frozenset()) -> Outcome:
    """The configuration's grid, or only its (dataset, budget) `blocks`, skipping the cells in `already` (run
    earlier by the same call) even with `force`."""
    from benchmark.grid import provenance
    from benchmark.grid.plan import build_plan
    from benchmark.grid.store import RunFolder, read_records

    plan, out = build_plan(config)
    if blocks is not None:
        plan.cells = [cell for cell in plan.cells if (cell.dataset, cell.budget) in blocks]
    with RunFolder(out) as folder:  # first: a refused run says so and writes nothing
        _warn_unavailable(plan, display)
        for line in folder.notes:
            display.note(line)
        existing = read_records(out)
        for line in existing.notes(out / "records.jsonl"):
            display.note(line)
        finished = {key for key, record in existing.latest_by_cell().items() if record.ok}
        todo = [c for c in plan.cells if c.key not in already and (config.force or c.key not in finished)]
        sized = plan.sized_for(len(todo))  # fewer cells than workers: fewer workers, each with more threads
        if sized is not plan:
            plan, todo = sized, [c for c in sized.cells if c.key in {cell.key for cell in todo}]
        info = provenance.run_info(plan, out, config.summary())
        folder.write_run_info(info)
        folder.write_test_labels(plan.tasks.values())
        display.plan(plan, out, len(plan.cells) - len(todo))
        started = time.perf_counter()
        stopped, one_offs = _drive(plan, todo, folder, config, display)
        # the grid's wall time, one-off work and worker start-up included
        ended = {"cells_run": len(todo), "wall_seconds": round(time.perf_counter() - started, 1), "one_off": one_offs}
        if stopped != WRITE_FAILED:
            interrupted = stopped in (INTERRUPTED, TERMINATED)
            folder.write_run_info(info | ended | {"interrupted": interrupted}, amend=True)
        latest = read_records(out).latest_by_cell()
        records = [latest[c.key] for c in plan.cells if c.key in latest]  # this grid's cells only
    outcome = Outcome(out, records, None, len(plan.cells), stopped)
    if stopped == WRITE_FAILED or not reports:
        return outcome
    return _reported(outcome, config, display)


def _reported(outcome: Outcome, config: RunConfig, display: Display) -> Outcome:
    from benchmark import report

    analysis = report.of_folder(outcome.folder, outcome.records, config.metric, config.margin)
    return write_reports(dataclasses.replace(outcome, analysis=analysis), display)


def _warn_unavailable(plan, display: Display) -> None:
    from benchmark import registry

    for module, reason in registry.unavailable_modules().items():
        display.warning(f"method module {module} is unavailable ({reason}); its cells will fail")
    for spec in plan.specs.values():
        missing = spec.missing_requirements() if spec.cls else []
        if missing:
            display.warning(f"'{spec.name}' needs {', '.join(missing)} (not installed); its cells will fail")
    for task in plan.tasks.values():
        for line in task.notes:
            display.note(f"{task.name}: {line}")
    for dataset, budgets in plan.unsupplied.items():
        shown = ", ".join(b.label for b in budgets)
        display.note(f"{dataset} cannot supply {shown} (a class is smaller): those cells are n/a for it")


class _CannotWrite(Exception):
    pass


def _drive(plan, cells: list, folder, config: RunConfig, display: Display) -> tuple[str | None, list[dict]]:
    """Run the pending cells, appending each record as it finishes. Returns why the grid stopped early, if it did,
    and the one-off work done as jobs of their own: {"method", "dataset", "seconds", "threads"} each, for run.json."""
    from benchmark.grid.runner import StopRequest, run_grid

    if not cells:  # nothing to run: no workers to start (they take seconds to import torch)
        return None, []
    one_offs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as scratch:
        if plan.settings.cache_dir is None and plan.jobs > 1:  # --no-cache: workers still share one-off work
            plan = dataclasses.replace(plan, settings=dataclasses.replace(plan.settings, cache_dir=Path(scratch)))
            cells = [c for c in plan.cells if c.key in {cell.key for cell in cells}]
        executor = make_executor(plan, config)
        try:
            with display.grid(plan, cells) as shown, StopRequest(shown.stopping) as stop:
                executor.on_progress = shown.progressed
                on_record = _recorder(folder, shown)
                on_one_off = _one_off_log(one_offs, shown)
                run_grid(plan, cells, executor, stop, on_record, on_one_off, shown)
                if not stop.requested:
                    return None, one_offs
                return (TERMINATED if stop.by == signal.SIGTERM else INTERRUPTED), one_offs
        except Terminated:
            return TERMINATED, one_offs
        except KeyboardInterrupt:
            return INTERRUPTED, one_offs
        except _CannotWrite as exc:
            executor.cancel()
            display.error(f"stopped: {exc}")
            return WRITE_FAILED, one_offs
        finally:
            executor.close()


def _recorder(folder, shown: GridDisplay):
    def on_record(record, trace: str | None) -> None:
        try:
            folder.append(record)
            if trace:
                folder.log_error(f"{record.dataset} {record.method} shots={record.shots} seed={record.seed}", trace)
        except OSError as exc:
            raise _CannotWrite(f"cannot write {folder.path / 'records.jsonl'}: {exc.strerror or exc}") from exc
        shown.record(record)

    return on_record


def _one_off_log(one_offs: list[dict], shown: GridDisplay):
    def on_one_off(job, seconds: float) -> None:
        cell = job.cell
        one_offs.append({"method": cell.method.name, "dataset": cell.dataset, "seconds": round(seconds, 1),
                         "threads": job.threads})  # fmt: skip
        shown.one_off(job, seconds)

    return on_one_off


def make_executor(plan, config: RunConfig):
    """Where the cells run: this process, worker processes, or a Ray cluster."""
    from benchmark.grid.executors import InProcess, LocalProcesses

    if config.executor == "ray":
        from benchmark.grid.ray_executor import RayCluster

        return RayCluster(config.ray_address, config.cpus_per_cell, config.gpus_per_cell)
    return InProcess() if plan.jobs == 1 else LocalProcesses(plan.jobs)


# --- --seeds auto ----------------------------------------------------------------------------------------------


def _sequential(config: RunConfig, display: Display) -> Outcome:
    """The looks of ``config.seeds_auto`` (benchmark/grid/sequential.py): each look runs the blocks still open at its
    seed count, resuming what finished and never re-running a cell an earlier look ran (--force re-runs each cell
    once); the reports are written once, at the end, over every look's cells."""
    from benchmark import report
    from benchmark.grid import sequential

    design = sequential.Design(*config.seeds_auto)
    blocks, records, look = None, {}, None
    for number, seeds in enumerate(design.looks, 1):
        look = _grid(config.model_copy(update={"seeds": seeds}), display, blocks, False, frozenset(records))
        never_ran = look.planned - len(look.records)  # cells of this look without a record (it was stopped)
        records.update({record.cell: record for record in look.records})
        look = dataclasses.replace(look, records=list(records.values()), planned=len(records) + never_ran)
        if look.stopped is not None:  # interrupted: the reports over what finished, then stop (re-run resumes)
            return look if look.stopped == WRITE_FAILED else _reported(look, config, display)
        analysis = report.of_folder(look.folder, look.records, config.metric, config.margin)
        blocks = sequential.unsettled(analysis.sections)
        display.look(sequential.look_line(design, number, seeds, blocks))
        if not blocks:
            break
    return _reported(look, config, display)
