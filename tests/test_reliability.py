"""Runs that never waste the user's hours: resume, failure isolation, interrupts, kills, locks, determinism."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, Majority

from benchmark import registry
from benchmark.cli import main
from benchmark.grid import execute
from benchmark.grid.store import RunFolder
from benchmark.record import FitResult
from methods.finetune import FineTune


def records_of(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]


def comparable(records):
    """What must be identical between two runs of the same cells: everything but timings and memory."""
    keep = ("cell", "method", "shots", "seed", "status", "metrics", "predictions", "params", "n_train")
    return sorted(tuple(json.dumps(r[k], sort_keys=True) for k in keep) for r in records)


@pytest.fixture()
def args(tiny_csv, tiny_model, tmp_path):
    return [
        "--dataset",
        str(tiny_csv),
        "--model",
        str(tiny_model),
        "--out",
        str(tmp_path / "run"),
        "--shots",
        "4,8",
        "--seeds",
        "2",
    ]


@dataclass
class FailsOnSeedOne:
    """Raises on seed 1, otherwise predicts the majority label."""

    def fit(self, train, ctx):
        if ctx.seed == 1:
            raise RuntimeError("deliberate failure on seed 1")
        self.label = int(np.bincount(train.labels).argmax())
        return FitResult(1, 1)

    def predict(self, texts):
        return np.full(len(texts), self.label)


@dataclass
class KillsItsWorkerOnSeedOne(Majority):
    """The process running seed 1 dies without a word, as under the kernel's out-of-memory killer."""

    def fit(self, train, ctx):
        if ctx.seed == 1:
            os._exit(1)
        return super().fit(train, ctx)


@dataclass
class KillsItsWorkerAfterSeedZero(Majority):
    """The worker that ran seed 0 dies once the driver has written that cell's record (the file named by
    $DIES_AFTER_RECORDS holds it): idle, or under its next cell, whatever the machine's load."""

    def predict(self, texts):
        import multiprocessing
        import threading

        if self.seed == 0 and multiprocessing.parent_process() is not None:
            records = Path(os.environ["DIES_AFTER_RECORDS"])
            threading.Thread(target=_exit_once_recorded, args=(records, self.n_train)).start()
        return super().predict(texts)

    def fit(self, train, ctx):
        self.seed, self.n_train = ctx.seed, len(train.labels)
        return super().fit(train, ctx)


def _exit_once_recorded(records: Path, n_train: int) -> None:
    """Exit this process once the record of this cell (seed 0, `n_train` examples) is in `records`."""

    def written() -> bool:
        lines = records.read_text().splitlines() if records.is_file() else []
        try:
            return any((r["seed"], r["n_train"]) == (0, n_train) for r in map(json.loads, filter(None, lines)))
        except ValueError:  # a line the driver is writing right now
            return False

    while not written():
        time.sleep(0.01)
    os._exit(1)


@dataclass
class KillsTheWorkerDoingItsOneOffWork(Majority):
    """Its one-off work kills the worker process doing it (it would kill the test if run in the main process)."""

    def precompute(self, ctx):
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            os._exit(1)


@dataclass
class NanLoss(FineTune):
    """Fine-tuning whose head weights are NaN: the loss is NaN at the first step."""

    def prepare(self, model, ctx):
        import torch

        with torch.no_grad():
            model.head.linear.weight.fill_(float("nan"))


@dataclass
class OutOfMemory:
    def fit(self, train, ctx):
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def predict(self, texts):
        raise AssertionError("unreachable")


def test_a_failing_cell_becomes_a_failed_record_and_the_grid_goes_on(args, tmp_path, throwaway, capsys):
    throwaway("flaky", FailsOnSeedOne)
    code = main(args + ["--methods", "flaky,logreg"])
    out = capsys.readouterr().out
    assert code == 1
    records = records_of(tmp_path / "run")
    assert len(records) == 8
    failed = [r for r in records if r["status"] == "failed"]
    assert {(r["method"], r["seed"]) for r in failed} == {("flaky", 1)}
    assert failed[0]["error"] == {"type": "RuntimeError", "message": "deliberate failure on seed 1"}
    assert failed[0]["metrics"] == {}
    assert "deliberate failure" in (tmp_path / "run" / "errors.log").read_text()
    assert "Traceback" in (tmp_path / "run" / "errors.log").read_text()
    assert "2 of 8 cells failed (RuntimeError)" in out
    assert "1 ok, 1 failed" in (tmp_path / "run" / "leaderboard.md").read_text()


def test_nan_loss_and_out_of_memory_fail_their_cells_only(args, tmp_path, throwaway):
    throwaway("nan-loss", NanLoss)
    throwaway("oom", OutOfMemory)
    assert main(args + ["--methods", "nan-loss,oom,logreg", "--shots", "4", "--seeds", "1"]) == 1
    by_method = {r["method"]: r for r in records_of(tmp_path / "run")}
    assert by_method["nan-loss"]["error"]["type"] == "NonFiniteLossError"
    assert by_method["oom"]["error"]["type"] == "OutOfMemoryError"
    assert by_method["logreg"]["status"] == "ok"


def test_resume_skips_finished_cells_and_reruns_failed_ones(args, tmp_path, throwaway, capsys):
    throwaway("flaky", FailsOnSeedOne)
    main(args + ["--methods", "flaky,logreg"])
    first = records_of(tmp_path / "run")
    capsys.readouterr()
    main(args + ["--methods", "flaky,logreg"])
    second = records_of(tmp_path / "run")
    assert second[: len(first)] == first
    rerun = second[len(first) :]
    assert {(r["method"], r["seed"]) for r in rerun} == {("flaky", 1)}  # only the failed cells ran again
    assert "8 cells, 6 already finished" in capsys.readouterr().out


def test_force_reruns_everything(args, tmp_path):
    main(args + ["--methods", "logreg"])
    main(args + ["--methods", "logreg", "--force"])
    assert len(records_of(tmp_path / "run")) == 8


def test_a_changed_hyperparameter_is_a_new_cell(args, tmp_path):
    main(args + ["--methods", "logreg"])
    main(args + ["--methods", "logreg", "--set", "logreg.C=10"])
    records = records_of(tmp_path / "run")
    assert len(records) == 8 and len({r["cell"] for r in records}) == 8
    assert sorted({r["params"]["C"] for r in records}) == [1.0, 10.0]
    assert "[C=" not in (tmp_path / "run" / "leaderboard.md").read_text()  # a run's board: its own grid only
    main(["report", str(tmp_path / "run")])  # the whole folder's
    board = (tmp_path / "run" / "leaderboard.md").read_text()
    assert "logreg [C=10.0]" in board and "logreg [C=1.0]" in board


def test_a_new_revision_of_a_methods_code_is_a_new_cell_and_supersedes_the_old(args, tmp_path, throwaway, monkeypatch):
    throwaway("majority", Majority)
    main(args + ["--methods", "majority"])
    monkeypatch.setattr(Majority, "revision", 2, raising=False)  # the method's code changed its results
    main(args + ["--methods", "majority"])
    records = records_of(tmp_path / "run")
    assert [r["revision"] for r in records] == [1] * 4 + [2] * 4  # resumed, the old records did not count
    assert len({r["cell"] for r in records}) == 8
    main(["report", str(tmp_path / "run")])  # the whole folder's: the old revision is left out, and said so
    board = (tmp_path / "run" / "leaderboard.md").read_text()
    assert "[revision=" not in board and "superseded by a newer revision" in board and "majority revision 1" in board
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["superseded"] == [{"method": "majority", "revision": 1, "cells": 4}]
    assert {c["n"] for c in summary["cells"]} == {2}  # each budget's 2 seeds, of revision 2 only


def test_revision_1_keeps_the_keys_written_before_revisions_were_counted():
    """Results folders from before still resume: this key is the first record of the default main job's
    folders from before schema 2 (full, 8 per class, seed 0 on the embedded default)."""
    from benchmark import modeling
    from benchmark.budget import Budget
    from benchmark.data.load import load_source
    from benchmark.data.tasks import DatasetSource
    from benchmark.grid.plan import Plan, Settings

    full = registry.resolve(["full"])[0]
    source = DatasetSource("rt-critics")
    settings = Settings(modeling.resolve_model(None))
    plan = Plan({source: load_source(source)}, {"full": full}, {"full": full.defaults()}, [Budget(8)], [0], settings)
    assert full.revision == 1
    assert plan.cells[0].key == "193884865502b783"


def test_same_command_twice_gives_identical_metrics_and_predictions(args, tmp_path):
    main(args + ["--methods", "logreg,full", "--set", "full.max_epochs=3"])
    again = [a if a != str(tmp_path / "run") else str(tmp_path / "again") for a in args]
    main(again + ["--methods", "logreg,full", "--set", "full.max_epochs=3"])
    assert comparable(records_of(tmp_path / "run")) == comparable(records_of(tmp_path / "again"))


def test_a_second_run_on_a_locked_folder_refuses(args, tmp_path, capsys):
    with RunFolder(tmp_path / "run"):
        code = main(args + ["--methods", "logreg"])
    assert code == 2
    assert "is in use by a running benchmark" in capsys.readouterr().err
    assert not (tmp_path / "run" / "records.jsonl").exists()


def test_missing_optional_dependency_fails_only_that_methods_cells(args, tmp_path, throwaway, capsys):
    @dataclass
    class NeedsLib(FailsOnSeedOne):
        pass

    registry.register("needs-lib", requires=("no_such_library_xyz",))(NeedsLib)
    try:
        code = main(args + ["--methods", "needs-lib,logreg", "--seeds", "1"])
    finally:
        registry.unregister("needs-lib")
    err = capsys.readouterr().err
    assert code == 1 and err.count("needs no_such_library_xyz (not installed)") == 1
    statuses = {(r["method"], r["status"]) for r in records_of(tmp_path / "run")}
    assert statuses == {("needs-lib", "failed"), ("logreg", "ok")}


# --- real processes: kill -9, Ctrl-C, SIGTERM, two runs at once ---------------------------------------------
# Each acts at a point the run itself announces (records written, a cell waiting at the `gated` plugin method's
# gate), never after a sleep: on a loaded machine a sleep either fails the test or lets it pass without the
# signal arriving where it claims to.


def start(args, out, env):
    cmd = [sys.executable, "-m", "benchmark", *map(str, args), "--out", str(out)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_end(args, out, env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "benchmark", *map(str, args), "--out", str(out)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def wait_for_line(process, text: str) -> str:
    """Read the process's stderr until a line holds `text` (the run printed it); what was read comes back."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the run ended without printing {text!r}: {''.join(seen)}")


def gated_grid(tiny_csv, tiny_model, *extra):
    """6 cells of the `gated` method: 4 and 8 per class, seeds 0-2."""
    return ["--dataset", tiny_csv, "--model", tiny_model, "--methods", "gated", "--shots", "4,8", "--seeds", "3",
            *extra]  # fmt: skip


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigkill_mid_grid_then_resume_equals_an_uninterrupted_run(tiny_csv, tiny_model, tmp_path, gate, jobs):
    grid = gated_grid(tiny_csv, tiny_model, "--jobs", jobs)
    env = gate.env(passes=2)
    gate.open()
    reference = run_to_end(grid, tmp_path / "ref", env)
    assert reference.returncode == 0, reference.stderr
    env = gate.env(passes=2)  # closed again: two cells finish, the next ones wait in their fit
    killed = start(grid, tmp_path / "killed", env)
    gate.wait_until_held(killed, cells=int(jobs))
    assert len(records_of(tmp_path / "killed")) == 2  # every worker is held: no record can come before the kill
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)  # returns once no process holds its output: workers exit with their parent
    assert len(records_of(tmp_path / "killed")) == 2
    # a record torn by the kill must not poison the resume: simulate the worst case explicitly as well
    with open(tmp_path / "killed" / "records.jsonl", "a") as handle:
        handle.write('{"schema_version": 1, "cell": "tor')
    gate.open()
    resumed = run_to_end(grid, tmp_path / "killed", env)
    assert resumed.returncode == 0, resumed.stderr
    assert "cut a torn last line" in resumed.stderr and "4 already finished" not in resumed.stdout
    assert "6 cells, 2 already finished" in resumed.stdout
    assert comparable(records_of(tmp_path / "killed")) == comparable(records_of(tmp_path / "ref"))


@pytest.mark.parametrize(
    ("stop", "code", "name"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_first_ctrl_c_or_sigterm_finishes_the_running_cell_prints_the_leaderboard_and_resumes_exactly(
    tiny_csv, tiny_model, tmp_path, gate, stop, code, name
):
    grid = gated_grid(tiny_csv, tiny_model, "--jobs", "1")
    env = gate.env(passes=2)
    process = start(grid, tmp_path / "run", env)
    gate.wait_until_held(process)  # two cells done, the third in the middle of its fit
    process.send_signal(stop)
    wait_for_line(process, "stopping after the running cells")
    gate.open()  # the running cell may finish now; nothing new starts
    out, err = process.communicate(timeout=300)
    assert process.returncode == code, err
    assert "Traceback" not in err and "Leaderboard" not in err
    assert f"{name}: re-run the same command to run the 3 unfinished cells" in " ".join(out.split())
    assert "per class" in out  # the leaderboard of what finished
    records = records_of(tmp_path / "run")
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)  # the held cell finished, no other ran
    assert json.loads((tmp_path / "run" / "run.json").read_text())["interrupted"] is True
    resumed = run_to_end(grid, tmp_path / "run", env)
    assert resumed.returncode == 0 and "6 cells, 3 already finished" in resumed.stdout
    assert run_to_end(grid, tmp_path / "ref", gate.env(passes=6)).returncode == 0  # never held
    assert comparable(records_of(tmp_path / "run")) == comparable(records_of(tmp_path / "ref"))


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_ctrl_c_or_sigterm_aborts_at_once(tiny_csv, tiny_model, tmp_path, gate, second):
    grid = ["--dataset", tiny_csv, "--model", tiny_model, "--methods", "logreg,gated", "--shots", "4", "--seeds",
            "1", "--jobs", "1"]  # fmt: skip
    process = start(grid, tmp_path / "run", gate.env(passes=0))  # the gated cell waits until the test ends
    gate.wait_until_held(process)
    process.send_signal(signal.SIGINT)
    wait_for_line(process, "stopping after the running cells")
    process.send_signal(second)
    out, err = process.communicate(timeout=120)
    assert process.returncode == (130 if second == signal.SIGINT else 143), err
    assert "Traceback" not in err
    assert [(r["method"], r["status"]) for r in records_of(tmp_path / "run")] == [("logreg", "ok")]


def test_a_second_run_into_a_running_folder_refuses_and_the_first_loses_nothing(tiny_csv, tiny_model, tmp_path, gate):
    grid = gated_grid(tiny_csv, tiny_model, "--jobs", "1")
    env = gate.env(passes=1)
    first = start(grid, tmp_path / "run", env)
    gate.wait_until_held(first)  # it holds the folder's lock, one record written
    second = run_to_end(grid, tmp_path / "run", env)
    assert second.returncode == 2 and "is in use by a running benchmark" in second.stderr
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    gate.open()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    records = records_of(tmp_path / "run")
    assert len(records) == 6 and len({r["cell"] for r in records}) == 6  # each line whole, none twice


def test_jobs_2_gives_the_same_records_as_jobs_1(args, tmp_path, throwaway):
    throwaway("flaky", FailsOnSeedOne)
    # each cell on as many threads as in the parallel run: a kernel's sums may split by thread count
    same_threads = ["--threads", str(max(1, (os.cpu_count() or 1) // 2))]
    grid = ["--methods", "logreg,full,flaky", "--set", "full.max_epochs=3"]
    assert main(args + grid + ["--jobs", "1", *same_threads]) == 1
    parallel = [a if a != str(tmp_path / "run") else str(tmp_path / "parallel") for a in args]
    assert main(parallel + ["--methods", "logreg,full,flaky", "--set", "full.max_epochs=3", "--jobs", "2"]) == 1
    serial, both = records_of(tmp_path / "run"), records_of(tmp_path / "parallel")
    assert len(both) == 12 and {r["threads"] for r in both} == {max(1, (os.cpu_count() or 1) // 2)}
    assert comparable(serial) == comparable(both)


def test_one_off_cost_is_reported_at_every_budget_even_when_loaded_from_the_cache(args, tmp_path):
    grid = ["--methods", "logreg,freeze-half,mlm", "--cache-dir", str(tmp_path / "cache")]
    grid += ["--set", "mlm.max_epochs=2", "--set", "freeze-half.max_epochs=2"]
    main(args + grid)
    execute.forget()  # as in a new process
    again = [a if a != str(tmp_path / "run") else str(tmp_path / "again") for a in args]
    main(again + grid)  # a new folder, the cache warm: nothing is computed again
    costs = {}
    for folder in ("run", "again"):
        for r in records_of(tmp_path / folder):
            costs.setdefault(r["method"], set()).add(r["one_off_seconds"])
    assert costs["freeze-half"] == {None}  # no one-off work
    (features,), (encoder,) = costs["logreg"], costs["mlm"]  # one cost each, in both folders, at both budgets
    assert features > 0 and encoder > 0
    built = [json.loads(p.read_text())["build_seconds"] for p in (tmp_path / "cache").glob("*/*/cost.json")]
    assert sorted(built) == sorted([features, encoder])  # built once each, in the first run
    board = (tmp_path / "again" / "leaderboard.csv").read_text().splitlines()
    one_off = {line.split(",")[4]: line.split(",")[-1] for line in board[1:]}
    assert one_off == {"logreg": f"{features:.2f}", "mlm": f"{encoder:.2f}", "freeze-half": ""}


@pytest.mark.parametrize("methods", ["logreg,mlm", "logreg,full,mlm"])
def test_jobs_2_does_each_one_off_work_once_and_charges_it_once(args, tmp_path, methods):
    # logreg,mlm: every cell needs one-off work, which runs alone with every thread;
    # logreg,full,mlm: it runs as worker tasks while the other worker runs full's cells
    grid = ["--methods", methods, "--set", "mlm.max_epochs=2", "--cache-dir", str(tmp_path / "cache")]
    assert main(args + grid + ["--jobs", "2"]) == 0
    records = records_of(tmp_path / "run")
    mlm_records = [r for r in records if r["method"] == "mlm"]
    # the adapted encoder was trained once, before any mlm cell started: every cell found it done
    assert len(mlm_records) == 4 and len(list((tmp_path / "cache" / "mlm").glob("*/"))) == 1
    # its cost is reported once, on one record, as a run in one process reports it
    charged = sorted(r["shared_seconds"] or 0.0 for r in mlm_records)
    assert charged[-1] > sum(charged[:-1])
    # and the records are those of a run in one process
    serial = [a if a != str(tmp_path / "run") else str(tmp_path / "serial") for a in args]
    same_threads = ["--threads", str(max(1, (os.cpu_count() or 1) // 2))]  # as each worker had
    assert main(serial + grid + ["--jobs", "1", "--no-cache", *same_threads]) == 0
    assert comparable(records_of(tmp_path / "serial")) == comparable(records)


def test_auto_on_a_native_bf16_cpu_runs_each_method_in_the_precision_its_evidence_allows(
    args, tmp_path, monkeypatch, capsys
):
    import torch

    from benchmark import registry
    from benchmark.grid import runtime

    @dataclass
    class Shown(Majority):
        """A method with committed bf16 evidence for its revision."""

    registry.register("shown", bf16_evidence=1)(Shown)
    try:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
        monkeypatch.setattr(runtime, "bf16_is_faster", lambda: True)
        # full has evidence at its defaults only; logreg has none
        grid = ["--methods", "shown,full,logreg", "--set", "full.lr=0.0001", "--seeds", "1", "--precision", "auto"]
        assert main(args + grid + ["--device", "cpu"]) == 0
    finally:
        registry.unregister("shown")
    assert "cpu bf16 (shown) / fp32 (full, logreg)" in capsys.readouterr().out
    precisions = {(r["method"], r["precision"]) for r in records_of(tmp_path / "run")}
    assert precisions == {("shown", "bf16"), ("full", "fp32"), ("logreg", "fp32")}
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["method_precisions"] == {"shown": "bf16", "full": "fp32", "logreg": "fp32"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to have a spare one")
def test_fewer_cells_than_workers_give_the_spare_threads_to_the_cells_that_run(args, tmp_path, capsys):
    lone = [a if a != "4,8" else "4" for a in args]  # one cell
    assert main(lone + ["--methods", "full", "--seeds", "1", "--jobs", "2", "--threads", "2"]) == 0
    assert "1 job(s) × 2 threads · 1 cells" in capsys.readouterr().out
    (record,) = records_of(tmp_path / "run")
    assert record["threads"] == 2  # not one of two cores, beside an idle worker
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["jobs"], info["torch_threads"], len(info["invocations"])) == (1, 2, 1)


def test_a_worker_that_dies_fails_its_cell_and_the_other_cells_run_again(args, tmp_path, throwaway):
    throwaway("killer", KillsItsWorkerOnSeedOne)
    throwaway("majority", Majority)
    assert main(args + ["--methods", "killer,majority", "--jobs", "2"]) == 1
    records = records_of(tmp_path / "run")
    # each cell once: the cells running beside a dying one ran again, alone, and only the cause failed
    assert len(records) == 8
    failed = [(r["method"], r["shots"], r["seed"], r["error"]["type"]) for r in records if r["status"] == "failed"]
    assert sorted(failed) == [("killer", 4, 1, "WorkerDied"), ("killer", 8, 1, "WorkerDied")]


def test_a_worker_that_dies_while_idle_loses_no_cell(args, tmp_path, throwaway, monkeypatch):
    monkeypatch.setenv("DIES_AFTER_RECORDS", str(tmp_path / "run" / "records.jsonl"))
    throwaway("dies-after", KillsItsWorkerAfterSeedZero)
    assert main(args + ["--methods", "dies-after", "--jobs", "2"]) == 0
    records = records_of(tmp_path / "run")
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}


def test_one_off_work_whose_worker_dies_is_left_to_the_cells(args, tmp_path, throwaway):
    throwaway("one-off-killer", KillsTheWorkerDoingItsOneOffWork)
    throwaway("majority", Majority)
    assert main(args + ["--methods", "one-off-killer,majority", "--jobs", "2"]) == 0
    records = records_of(tmp_path / "run")
    assert len(records) == 8 and {r["status"] for r in records} == {"ok"}
    assert not any(r["shared_seconds"] for r in records)  # the work never finished: nothing to charge
