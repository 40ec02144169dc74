"""The Python API: docs/api.md's example runs as it stands, and `benchmark.run` leaves the same records as the
command line; `load` reads a folder back without running anything."""

import json
import re

from conftest import ROOT, synthetic_rows, write_csv

from benchmark import RunConfig, UsageError, load, run
from benchmark.cli import main

KEPT = ("cell", "method", "shots", "seed", "status", "metrics", "predictions", "params", "n_train", "sample")


def comparable(folder):
    lines = (folder / "records.jsonl").read_text().splitlines()
    return sorted(json.dumps({k: json.loads(line)[k] for k in KEPT}, sort_keys=True) for line in lines if line)


def test_the_documented_example_runs_and_gives_the_records_the_command_line_gives(tmp_path, monkeypatch, capsys):
    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "reviews.csv", synthetic_rows(30, seed=4))
    exec(compile(block, "docs/api.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all(line.startswith("4 per class ") for line in printed)  # two methods, one budget

    flags = ["--dataset", "reviews.csv", "--methods", "logreg,freeze-head", "--shots", "4", "--seeds", "2"]
    assert main([*flags, "--out", "cli-run", "--no-cache"]) == 0
    assert comparable(tmp_path / "cli-run") == comparable(tmp_path / "runs" / "reviews")


def test_load_reads_a_folder_and_refuses_one_without_records(tmp_path):
    outcome = load(ROOT / "results" / "bf16-evidence")
    assert outcome.records and outcome.analysis.sections and outcome.stopped is None
    assert {row["verdict"] for row in outcome.table()} <= {"best", "equivalent", "worse", "inconclusive"}
    try:
        load(tmp_path)
    except UsageError as exc:
        assert "not a run folder" in str(exc)
    else:
        raise AssertionError("a folder without records was read")


def test_run_raises_a_one_line_usage_error_before_writing_anything(tmp_path):
    try:
        run(RunConfig(datasets=[str(tmp_path / "missing.csv")], out=tmp_path / "out"))
    except UsageError as exc:
        assert "\n" not in str(exc)
    else:
        raise AssertionError("a missing dataset was run")
    assert not (tmp_path / "out").exists()
