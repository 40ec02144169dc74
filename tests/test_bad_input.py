"""Inputs that pass a type check but would end in a traceback, a lost run or a wrong table: each is refused with
one line (exit code 2, nothing written), normalised with a note, or reported."""

import errno
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, synthetic_rows, write_csv

from benchmark import registry
from benchmark.cli import main
from benchmark.data.load import load_task
from benchmark.grid import execute
from benchmark.grid.store import RunFolder
from benchmark.record import FitResult


def run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def refused(code, out, message: str) -> None:
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fewshot-bench: error: "), out.err
    assert message in lines[0], lines[0]


@pytest.fixture()
def base(tiny_model, tmp_path):
    return ["--model", tiny_model, "--out", tmp_path / "run", "--methods", "logreg", "--shots", "4", "--seeds", "1"]


# --- data that would silently become another task -----------------------------------------------------------


def test_labels_differing_only_by_surrounding_spaces_are_one_label_and_a_note_says_so(tmp_path):
    rows = [(text, label if i % 2 else f" {label} ") for i, (text, label) in enumerate(synthetic_rows(20, 0))]
    task = load_task(str(write_csv(tmp_path / "d.csv", rows)))
    assert task.label_names == ("neg", "pos")
    assert any("surrounding spaces" in note for note in task.notes)


def test_numbers_and_the_same_numbers_as_text_are_one_label_and_a_note_says_so(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": t, "label": (1 if y == "pos" else 0) if i % 2 else ("1" if y == "pos" else "0")}
            for i, (t, y) in enumerate(synthetic_rows(20, 0))]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = load_task(str(path))
    assert task.label_names == ("0", "1") and any("mix numbers and text" in note for note in task.notes)


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
@pytest.mark.parametrize("column", ["text", "label"])
def test_objects_or_lists_in_a_text_or_label_column_are_refused(tmp_path, base, capsys, value, column):
    path = tmp_path / "d.jsonl"
    rows = [{"text": t, "label": y} for t, y in synthetic_rows(20, 0)]
    rows[3][column] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(*run(base + ["--dataset", path], capsys), f"the {column} column '{column}' holds a")


def test_lists_in_a_parquet_label_column_are_refused(tmp_path, base, capsys):
    frame = pd.DataFrame(synthetic_rows(20, 0), columns=["text", "label"])
    frame["label"] = [[y] for y in frame["label"]]
    frame.to_parquet(tmp_path / "d.parquet")
    refused(*run(base + ["--dataset", tmp_path / "d.parquet"], capsys), "holds a ndarray in row 1")


def test_one_column_as_both_text_and_label_is_refused(tiny_csv, base, capsys):
    args = base + ["--dataset", tiny_csv, "--text-col", "label", "--label-col", "label"]
    refused(*run(args, capsys), "the text and the label column are both 'label'")


# --- leakage ----------------------------------------------------------------------------------------------------


def test_a_test_file_that_is_the_training_file_is_refused_unless_allowed(tiny_csv, base, capsys, tmp_path):
    args = base + ["--dataset", tiny_csv, "--test", tiny_csv]
    refused(*run(args, capsys), "60 of 60 test texts (100.0%) are also in the train pool; pass --allow-overlap")
    code, out = run(args + ["--allow-overlap"], capsys)
    assert code == 0 and "are also in the train pool" in out.err


def test_a_little_overlap_is_reported_not_refused(tmp_path, base, capsys):
    rows = synthetic_rows(200, 0)
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", [(f"unseen text {i} good", "pos") for i in range(150)] + rows[:1])
    code, out = run(base + ["--dataset", train, "--test", test], capsys)
    assert code == 0 and "1 of 151 test texts (0.7%) are also in the train pool" in out.err


def test_a_duplicated_row_never_lands_on_both_sides_of_the_hash_split(tmp_path):
    rows = synthetic_rows(30, 0)
    task = load_task(str(write_csv(tmp_path / "d.csv", rows + rows[:20])))
    assert not set(task.train.texts) & set(task.test.texts)


# --- folders ----------------------------------------------------------------------------------------------------


def test_an_out_folder_holding_other_files_is_refused(tiny_csv, base, capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "leaderboard.md").write_text("my own notes")
    refused(*run(base + ["--dataset", tiny_csv, "--out", tmp_path / "mine"], capsys), "holds other files and no run")
    assert (tmp_path / "mine" / "leaderboard.md").read_text() == "my own notes"


def test_a_cache_dir_that_cannot_be_a_folder_is_refused_up_front(tiny_csv, base, capsys, tmp_path):
    (tmp_path / "a-file").write_text("")
    args = base + ["--dataset", tiny_csv, "--cache-dir", tmp_path / "a-file" / "cache"]
    refused(*run(args, capsys), "is not a writable folder")
    assert not (tmp_path / "run").exists()


def test_an_unwritable_cache_dir_is_refused_up_front(tiny_csv, base, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("runs as a user who may write anywhere (root): the folder above covers the same check")
    refused(*run(base + ["--dataset", tiny_csv, "--cache-dir", locked / "c"], capsys), "is not a writable folder")


def test_a_quoted_tilde_means_home_for_every_path(tiny_csv, tiny_model, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = ["--dataset", tiny_csv, "--model", tiny_model, "--methods", "logreg", "--shots", "4", "--seeds", "1"]
    code, _ = run(args + ["--out", "~/run", "--cache-dir", "~/cache"], capsys)
    assert code == 0 and (tmp_path / "run" / "records.jsonl").is_file() and (tmp_path / "cache").is_dir()
    assert not list(tmp_path.glob("**/~"))


def test_a_killed_run_leaves_no_lock_in_the_way_and_the_next_run_says_what_it_found(tmp_path):
    code = "import os, sys; from benchmark.grid.store import RunFolder; RunFolder(sys.argv[1]).__enter__(); os._exit(9)"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=ROOT, check=False)
    with RunFolder(tmp_path / "run") as folder:
        assert any("ended without releasing" in note for note in folder.notes)
    with RunFolder(tmp_path / "run") as folder:  # released cleanly this time: nothing to report
        assert folder.notes == []


# --- damaged folders, interruptions, a full disk ------------------------------------------------------------------


def test_report_and_resume_name_a_damaged_line_and_skip_it(tiny_csv, base, capsys, tmp_path):
    assert run(base + ["--dataset", tiny_csv], capsys)[0] == 0
    records = tmp_path / "run" / "records.jsonl"
    good = records.read_text()
    damaged = json.loads(good) | {"schema_version": 99}
    records.write_text(good + json.dumps(damaged) + "\n" + '{"cell": "x"}\n')
    code, out = run(["report", tmp_path / "run"], capsys)
    assert code == 0 and "skipped line 2" in out.err and "schema_version 99" in out.err and "skipped line 3" in out.err
    code, out = run(base + ["--dataset", tiny_csv], capsys)
    assert code == 0 and "skipped line 2" in out.err and "1 cells, 1 already finished" in out.out


def test_a_full_disk_stops_the_run_with_one_line_keeps_the_file_readable_and_the_next_run_resumes(
    tiny_csv, base, capsys, tmp_path, monkeypatch
):
    real = RunFolder.append
    written = []

    def append(self, record):
        if len(written) == 1:  # the second record meets a full disk halfway through its line
            with open(self.path / "records.jsonl", "a") as handle:
                handle.write('{"schema_version": 2, "cell": "half')
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(record)
        real(self, record)

    monkeypatch.setattr(RunFolder, "append", append)
    grid = base + ["--dataset", tiny_csv, "--seeds", "3"]
    code, out = run(grid, capsys)
    assert code == 1 and "stopped: cannot write" in out.err and "No space left on device" in out.err
    assert "Traceback" not in out.err + out.out
    monkeypatch.setattr(RunFolder, "append", real)
    code, out = run(grid, capsys)
    assert code == 0 and "3 cells, 1 already finished" in out.out
    assert len((tmp_path / "run" / "records.jsonl").read_text().splitlines()) == 3


@dataclass
class NotANumber:
    """Reports a non-finite value the harness must not write into a table."""

    def fit(self, train, ctx):
        return FitResult(1, 1, {"loss": float("nan")})

    def predict(self, texts):
        return np.zeros(len(texts), dtype=int)


def test_a_non_finite_value_fails_its_cell_not_the_run(tiny_csv, base, capsys, tmp_path):
    registry.register("nan-value")(NotANumber)
    try:
        code, out = run(base + ["--dataset", tiny_csv, "--methods", "nan-value,logreg"], capsys)
    finally:
        registry.unregister("nan-value")
    assert code == 1 and "holds a number that is not finite (in resolved)" in out.out
    statuses = [json.loads(line)["status"] for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert sorted(statuses) == ["failed", "ok"]


# --- the terminal -------------------------------------------------------------------------------------------------


def test_notes_go_to_stderr_and_results_to_stdout(tiny_csv, base, capsys):
    code, out = run(base + ["--dataset", tiny_csv], capsys)
    assert code == 0 and "no test split given" in out.err and "no test split given" not in out.out
    assert "logreg · 4 per class" in out.out and "macro_f1" in out.out


def test_an_ascii_terminal_and_a_closed_pipe_do_not_crash():
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    listing = subprocess.run([sys.executable, "-m", "benchmark", "list"], cwd=ROOT, env=env, capture_output=True)
    assert listing.returncode == 0 and b"Traceback" not in listing.stderr and b"logreg" in listing.stdout
    piped = subprocess.run(
        f"{sys.executable} -m benchmark list | head -1", shell=True, cwd=ROOT, capture_output=True, text=True
    )
    assert piped.stdout.strip() and "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


def test_a_grid_whose_output_reader_leaves_still_finishes_and_writes_its_folder(tiny_csv, tiny_model, tmp_path):
    """`... | tee log` and a Ctrl-C: the shell stops tee too, and the next print would meet a closed pipe."""
    out = tmp_path / "run"
    args = ["--dataset", tiny_csv, "--model", tiny_model, "--methods", "logreg", "--shots", "4", "--seeds", "2"]
    grid = subprocess.Popen(
        [sys.executable, "-m", "benchmark", *map(str, args), "--out", str(out), "--jobs", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )  # fmt: skip
    grid.stdout.close()  # the reader is gone before the first line
    err = grid.stderr.read().decode()
    assert grid.wait(timeout=300) == 0 and "Traceback" not in err, err
    info = json.loads((out / "run.json").read_text())
    assert info["cells_run"] == 2 and "wall_seconds" in info
    assert len((out / "records.jsonl").read_text().splitlines()) == 2 and (out / "leaderboard.md").is_file()


def test_long_work_reports_what_is_running_and_how_far_it_got(tiny_csv, tiny_spec, tmp_path):
    from conftest import plan_of

    from benchmark.grid.execute import ONE_OFF, Job
    from benchmark.grid.executors import InProcess

    plan = plan_of(tiny_csv, tiny_spec, ["logreg"], cache_dir=tmp_path / "cache")
    seen = []
    executor = InProcess()
    executor.on_progress = lambda job, what, done, total: seen.append((job.kind, what, done, total))
    executor.submit(Job(ONE_OFF, plan.cells[0], threads=1))
    executor.wait(0)
    assert seen and seen[-1] == ("one-off", "texts encoded", 60, 60)  # the frozen features of every text
    execute.forget()


def test_the_ray_executor_without_ray_names_the_install_command(tiny_csv, base, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    refused(*run(base + ["--dataset", tiny_csv, "--executor", "ray"], capsys), "pip install 'fewshot-bench[ray]'")
