"""What runs next, decided without processes or clocks: one-off work first and one at a time, a method's cells
held back until its one-off work is done, longest cells first, a dead worker's cell again alone, and free
threads for a job that nothing can run beside."""

from dataclasses import dataclass

from benchmark.budget import Budget
from benchmark.data.tasks import DatasetSource
from benchmark.grid.execute import CELL, ONE_OFF
from benchmark.grid.plan import Cell, Settings
from benchmark.grid.scheduler import GridState, next_cell
from benchmark.modeling import ModelSpec
from benchmark.record import Record
from benchmark.registry import MethodSpec

SETTINGS = Settings(ModelSpec("m", "/nowhere", "mean", False, 32, "model-fp"))


@dataclass
class Plain:
    def fit(self, train, ctx): ...


@dataclass
class WithOneOff(Plain):
    def precompute(self, ctx): ...


def cell(method: str, shots: int, seed: int = 0, dataset: str = "d") -> Cell:
    cls = WithOneOff if method in ("logreg", "mlm") else Plain
    spec = MethodSpec(method, cls)
    return Cell(DatasetSource(dataset), dataset, f"{dataset}-fp", spec, {}, Budget(shots), seed, SETTINGS)


def state(cells, threads=1, total=2) -> GridState:
    return GridState.of(cells, lambda c: c.method.name in ("logreg", "mlm"), threads, total)


def ok(c: Cell, seconds: float = 1.0) -> Record:
    record = Record(c.key, "d", "d-fp", "m", "model-fp", c.method.name, 1, False, {}, c.budget, c.seed, 5, "cpu",
                    "fp32", 1, status="ok", train_seconds=seconds, predict_seconds=0.0)  # fmt: skip
    return record


def start(grid: GridState):
    job = grid.next_job()
    if job is not None:
        grid.started(job)
    return job


def test_one_off_work_goes_first_one_task_at_a_time_and_holds_back_its_method():
    logreg8, full8, mlm8, logreg64, full64, mlm64 = cells = [
        cell(m, shots) for shots in (8, 64) for m in ("logreg", "full", "mlm")
    ]
    grid = state(cells)
    first = start(grid)
    assert (first.kind, first.cell.method.name) == (ONE_OFF, "logreg")
    # features in progress: the next worker does not start the MLM too, but a cell that needs neither
    second = start(grid)
    assert (second.kind, second.cell) == (CELL, full8)
    grid.finished_one_off(first.cell, 3.0)
    third = start(grid)  # once the features are done the MLM starts ...
    assert (third.kind, third.cell.method.name) == (ONE_OFF, "mlm")
    grid.finished_cell(ok(full8))
    assert start(grid).cell == logreg8  # ... and logreg's cells are free to run
    assert grid.finished_cell(ok(logreg8)) == 3.0  # the one-off seconds are owed to the method's first ok record
    assert start(grid).cell == logreg64  # a held-back method does not stop the grid moving on
    grid.finished_cell(ok(logreg64))
    assert start(grid).cell == full64
    assert grid.next_job() is None  # only mlm's cells are left, and they wait for its one-off work
    grid.finished_one_off(third.cell, None)  # its worker died: the cells try the work themselves
    assert start(grid).cell == mlm8


def test_one_off_work_is_per_dataset():
    grid = state([cell("logreg", 8, dataset="a"), cell("logreg", 8, dataset="b")], total=4)
    jobs = [start(grid)]
    grid.finished_one_off(jobs[0].cell, 1.0)
    jobs.append(start(grid))
    assert [(j.kind, j.cell.dataset) for j in jobs] == [(ONE_OFF, "a"), (ONE_OFF, "b")]


def test_a_cell_whose_worker_died_runs_again_alone_and_fails_if_it_dies_alone():
    a, b, c = cells = [cell("full", 8, seed) for seed in range(3)]
    grid = state(cells)
    start(grid), start(grid)
    assert grid.lost_cell(a) is False  # b is still running: a waits for it, then runs alone
    assert grid.next_job() is None
    grid.finished_cell(ok(b))
    assert start(grid).cell == a and grid.next_job() is None  # nothing beside it
    assert grid.lost_cell(a) is True  # died alone: it failed
    assert start(grid).cell == c


def test_a_free_worker_takes_the_longest_cell_of_the_earliest_pending_budget_and_seed():
    cells = [cell(m, shots, seed) for shots in (8, 64) for seed in (0, 1) for m in "abc"]
    assert next_cell(cells, {}) == cells[0]  # nothing timed yet: plan order
    timed = {("a", "8"): [1.0], ("b", "8"): [30.0], ("c", "8"): [5.0]}
    assert next_cell(cells[3:], timed) == cells[4]  # b, seed 1: the slowest method at this budget
    # seed 0 still has a's cell: it runs before b's seed-1 cell, so every method has seed 0 first
    assert next_cell([cells[0], *cells[3:]], timed) == cells[0]
    later = cells[6:]  # only budget 64 left: same-budget timings win over other budgets'
    assert next_cell(later, timed) == cells[7]
    assert next_cell(later, timed | {("c", "64"): [100.0], ("b", "64"): [40.0]}) == cells[8]
    untimed = {k: v for k, v in timed.items() if k[0] != "c"}
    assert next_cell(later, untimed) == cells[8]  # a method never timed goes first: it may be the longest


def test_a_job_nothing_can_run_beside_gets_the_free_threads():
    lone = state([cell("full", 64)], threads=1, total=2)
    assert start(lone).threads == 2  # a one-cell grid uses every core
    pair = state([cell("full", 8, 0), cell("full", 8, 1)], threads=1, total=2)
    assert [start(pair).threads, start(pair).threads] == [1, 1]  # side by side: one each
    blocked = state([cell("mlm", 8, 0), cell("mlm", 8, 1)], threads=1, total=2)
    job = start(blocked)
    assert job.kind == ONE_OFF and job.threads == 2  # every pending cell waits for it
    beside = state([cell("mlm", 8), cell("full", 8)], threads=1, total=2)
    assert start(beside).threads == 1  # full's cell can run beside the one-off work
