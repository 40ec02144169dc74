"""The grid on a real local Ray cluster (two CPUs, started once for the module): the records of the local executor,
resume, a failing cell, a worker killed under its cell, Ctrl-C. Skipped where Ray is not installed."""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import plan_of
from test_reliability import Majority, comparable, records_of

from benchmark.cli import main
from benchmark.grid.execute import CELL, Job

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'fewshot-bench[ray]'")

from benchmark.grid.ray_executor import MAX_RETRIES, RayCluster, cells_at_once, connect  # noqa: E402  (needs ray)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local cluster for the module, started as a run starts one; every RayCluster below uses it."""
    connect(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture()
def grid(tiny_csv, tiny_model, tmp_path):
    def args(out: str, *more: str) -> list[str]:
        data = ["--dataset", str(tiny_csv), "--model", str(tiny_model), "--out", str(tmp_path / out)]
        return data + ["--shots", "4,8", "--seeds", "2", "--cache-dir", str(tmp_path / f"cache-{out}"), *more]

    return args


@pytest.fixture()
def submitted(monkeypatch):
    """Every job a RayCluster is given, in order (the cluster still runs them)."""
    jobs = []
    submit = RayCluster.submit

    def spy(self, job):
        jobs.append(job)
        submit(self, job)

    monkeypatch.setattr(RayCluster, "submit", spy)
    return jobs


@dataclass
class FailsOnSeedOne(Majority):
    def fit(self, train, ctx):
        if ctx.seed == 1:
            raise RuntimeError("deliberate failure on seed 1")
        return super().fit(train, ctx)


@dataclass
class KillsItsWorkerOnSeedOne(Majority):
    """The worker running seed 1 dies without a word, as under the kernel's out-of-memory killer; each attempt
    leaves a line in `attempts`."""

    attempts: str = ""

    def fit(self, train, ctx):
        if ctx.seed == 1:
            with open(self.attempts, "a") as handle:
                handle.write(f"{os.getpid()}\n")
            os._exit(1)
        return super().fit(train, ctx)


@dataclass
class Sleeps(Majority):
    """Writes its process id to `started`, then trains for `seconds`."""

    started: str = ""
    seconds: float = 60.0

    def fit(self, train, ctx):
        Path(self.started).write_text(str(os.getpid()))
        time.sleep(self.seconds)
        return super().fit(train, ctx)


@dataclass
class InterruptsTheDriver(Majority):
    """Its seed-0 cell presses Ctrl-C in the driver (process `driver`) as it starts. The driver submits a cell to
    each of its two slots before it waits for any, so both are running by then, whatever the machine's load."""

    driver: int = 0

    def fit(self, train, ctx):
        if ctx.seed == 0:
            os.kill(self.driver, signal.SIGINT)
        return super().fit(train, ctx)


TINY_GRID = ["--methods", "logreg,full", "--set", "full.max_epochs=3"]


def test_a_grid_on_ray_gives_the_records_of_the_local_executor_and_resumes_without_submitting(
    grid, submitted, tmp_path
):
    assert main(grid("local", *TINY_GRID)) == 0
    assert main(grid("ray", *TINY_GRID, "--executor", "ray")) == 0
    local, on_ray = records_of(tmp_path / "local"), records_of(tmp_path / "ray")
    assert len(on_ray) == 8 and comparable(on_ray) == comparable(local)
    assert {r["threads"] for r in on_ray} == {1}  # --cpus-per-cell 1: one torch thread per cell
    cells = [job for job in submitted if job.kind == CELL]
    assert len(cells) == 8 and len(submitted) == 9  # each cell once, and logreg's frozen features once
    submitted.clear()
    assert main(grid("ray", *TINY_GRID, "--executor", "ray")) == 0
    assert submitted == []  # every cell had finished: the cluster was given nothing
    assert len(records_of(tmp_path / "ray")) == 8


def test_a_cell_that_raises_fails_alone(grid, throwaway, tmp_path):
    throwaway("flaky", FailsOnSeedOne)
    throwaway("majority", Majority)
    assert main(grid("run", "--methods", "flaky,majority", "--executor", "ray")) == 1
    records = records_of(tmp_path / "run")
    assert len(records) == 8
    failed = {(r["method"], r["shots"], r["seed"], r["error"]["type"]) for r in records if r["status"] == "failed"}
    assert failed == {("flaky", 4, 1, "RuntimeError"), ("flaky", 8, 1, "RuntimeError")}
    assert "deliberate failure on seed 1" in (tmp_path / "run" / "errors.log").read_text()


def test_first_ctrl_c_lets_the_running_cells_finish_and_starts_no_other(grid, throwaway, tmp_path, capsys):
    throwaway("interrupts", InterruptsTheDriver)
    run = grid("run", "--methods", "interrupts", "--executor", "ray", "--set", f"interrupts.driver={os.getpid()}")
    assert main(run) == 130
    records = records_of(tmp_path / "run")
    # both cells were running when the Ctrl-C came (two slots): both finished and were recorded, no other began
    assert sorted((r["shots"], r["seed"], r["status"]) for r in records) == [(4, 0, "ok"), (4, 1, "ok")]
    assert "stopping after the running cells" in capsys.readouterr().err


def test_cancel_stops_a_running_task_and_reports_nothing(tiny_csv, tiny_spec, throwaway, tmp_path):
    throwaway("sleeps", Sleeps)
    started = tmp_path / "started"
    plan = plan_of(tiny_csv, tiny_spec, ["sleeps"], {"sleeps": {"started": str(started)}})
    executor = RayCluster(None, 1, 0.0)
    executor.submit(Job(CELL, plan.cells[0], 1))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        assert executor.wait(timeout=0.2) == []
    worker = int(started.read_text())
    executor.cancel()
    assert executor.wait(timeout=1) == []
    deadline = time.monotonic() + 120  # a generous bound on a loaded machine: the loop ends when the worker does
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)  # the worker process running it was killed, not left to finish
    executor.close()
    assert ray.is_initialized()  # a connection it did not make is left open


def node(cpus: float, gpus: float = 0, alive: bool = True) -> dict:
    return {"Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus} if gpus else {"CPU": cpus}}


def test_a_killed_worker_is_retried_a_bounded_number_of_times_then_its_cell_fails(grid, throwaway, tmp_path):
    throwaway("killer", KillsItsWorkerOnSeedOne)
    throwaway("majority", Majority)
    attempts = tmp_path / "attempts"
    run = grid("run", "--methods", "killer,majority", "--shots", "4", "--executor", "ray")
    assert main(run + ["--set", f"killer.attempts={attempts}"]) == 1
    records = records_of(tmp_path / "run")
    assert len(records) == 4  # each cell once: the cells beside a dying one were not lost
    failed = [r for r in records if r["status"] == "failed"]
    assert [(r["method"], r["seed"], r["error"]["type"]) for r in failed] == [("killer", 1, "WorkerDied")]
    assert "each time it was retried" in failed[0]["error"]["message"]
    pids = attempts.read_text().split()
    assert len(pids) == 1 + MAX_RETRIES and len(set(pids)) == len(pids)  # a new worker process each time


def test_slots_are_the_cells_each_live_node_holds():
    assert cells_at_once([node(2)], 1, 0) == 2
    assert cells_at_once([node(3), node(3)], 2, 0) == 2  # not 6 // 2: a cell runs on one node
    assert cells_at_once([node(16, 1)], 1, 0.25) == 4  # four cells share the GPU
    assert cells_at_once([node(16, 1), node(8, 2)], 1, 0.1) == 10 + 8  # 1 / 0.1 is 10 cells; CPUs bound the second
    assert cells_at_once([node(2), node(64, alive=False)], 1, 0) == 2


def test_cells_no_node_can_run_are_refused_at_once(grid, tmp_path, capsys):
    assert main(grid("run", "--methods", "logreg", "--executor", "ray", "--gpus-per-cell", "0.25")) == 2
    assert "no node of the Ray cluster can run a cell" in capsys.readouterr().err
    assert not (tmp_path / "run" / "records.jsonl").exists()


def _alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--no-cache"], "needs a cache folder every node sees"),
        (["--device", "cuda"], "--device cuda with --executor ray needs --gpus-per-cell"),
        (["--device", "cuda:1"], "use auto, cpu or cuda"),
        (["--device", "cpu", "--gpus-per-cell", "0.5"], "the cells would hold GPUs they do not use"),
        (["--gpus-per-cell", "1.5"], "is not a GPU share"),
    ],
)
def test_ray_settings_that_cannot_work_are_one_line(grid, capsys, flags, message):
    code = main(grid("run", "--methods", "logreg", "--executor", "ray", *flags))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
