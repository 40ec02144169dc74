"""The command line end to end on the tiny model, and every user mistake as one line with exit code 2."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, synthetic_rows, write_csv

from benchmark.cli import main


def run(args, capsys=None):
    code = main([str(a) for a in args])
    return code, (capsys.readouterr() if capsys else None)


@pytest.fixture()
def base_args(tiny_csv, tiny_model, tmp_path):
    return ["--dataset", tiny_csv, "--model", tiny_model, "--out", tmp_path / "run", "--seeds", "2", "--shots", "4"]


def test_run_writes_records_run_info_and_leaderboards(base_args, tmp_path, capsys):
    code, out = run(base_args + ["--methods", "logreg,full", "--shots", "4,all"], capsys)
    assert code == 0, out.err
    folder = tmp_path / "run"
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 2
    required = {
        "schema_version",
        "dataset",
        "model",
        "method",
        "params",
        "shots",
        "seed",
        "status",
        "error",
        "metrics",
        "n_train",
        "n_test",
        "train_seconds",
        "predict_seconds",
        "peak_rss_mb",
        "trainable_params",
        "total_params",
    }
    for record in records:
        assert required <= set(record) and record["status"] == "ok"
        assert {"accuracy", "macro_f1", "f1_positive"} <= set(record["metrics"])
        assert len(record["predictions"]) == record["n_test"]
    full = [r for r in records if r["method"] == "full"]
    assert all(r["trainable_params"] == r["total_params"] for r in full)
    assert {r["n_train"] for r in records if r["shots"] == 4} == {8}
    assert full[0]["resolved"]["epochs"] >= 1
    info = json.loads((folder / "run.json").read_text())
    assert {"command", "packages", "project_commit", "device", "precision", "torch_threads", "cpu"} <= set(info)
    assert info["datasets"][0]["fingerprint"] == records[0]["dataset_fingerprint"]
    assert info["config"]["budgets"] == [4, "all"] and info["config"]["methods"] == ["logreg", "full"]
    assert info["cells_run"] == 8 and info["wall_seconds"] > 0 and not info["interrupted"]
    assert len(info["invocations"]) == 1 and info["invocations"][0]["wall_seconds"] == info["wall_seconds"]
    [one_off] = info["one_off"]  # logreg's frozen features, a job of their own, with the threads it ran on
    assert one_off["method"] == "logreg" and one_off["seconds"] >= 0 and one_off["threads"] >= 1
    markdown = (folder / "leaderboard.md").read_text()
    assert "4 per class" in markdown and "all labels" in markdown and "| full |" in markdown
    assert (folder / "leaderboard.csv").read_text().count("\n") == 1 + 4
    assert "✓ full · 4 per class · seed 1" in out.out


def test_every_method_sees_the_identical_sample_of_each_budget_and_seed(base_args, tmp_path):
    assert run(base_args + ["--methods", "logreg,full,freeze-head", "--shots", "4,8"])[0] == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    samples = {}
    for r in records:
        samples.setdefault((r["shots"], r["seed"]), set()).add(r["sample"])
    assert len(samples) == 4 and all(len(hashes) == 1 for hashes in samples.values())  # paired within a cell
    assert len({next(iter(h)) for h in samples.values()}) == 4  # and different across budgets and seeds


def test_report_reprints_a_finished_run(base_args, tmp_path, capsys):
    assert run(base_args + ["--methods", "logreg"])[0] == 0
    (tmp_path / "run" / "leaderboard.md").unlink()
    code, out = run(["report", tmp_path / "run", "--metric", "accuracy"], capsys)
    assert code == 0 and "logreg" in out.out
    assert "ranked by accuracy" in (tmp_path / "run" / "leaderboard.md").read_text()


def test_list_shows_methods_with_hyperparameters_and_datasets(capsys):
    code, out = run(["list"], capsys)
    assert code == 0
    assert "logreg" in out.out and "max_epochs=50" in out.out and "rt-critics" in out.out


def test_set_changes_a_hyperparameter_and_lands_in_params(base_args, tmp_path):
    assert (
        run(
            base_args
            + ["--methods", "full", "--seeds", "1"]
            + ["--set", "full.max_epochs=3", "--set", "full.min_steps=1", "--set", "full.min_epochs=2"]
        )[0]
        == 0
    )
    record = json.loads((tmp_path / "run" / "records.jsonl").read_text().splitlines()[0])
    assert record["params"]["max_epochs"] == 3 and record["resolved"]["epochs"] == 2


BAD_INPUTS = [
    (["--methods", "logerg"], "unknown method 'logerg'.*did you mean 'logreg'"),
    (["--methods", "logreg,logreg"], "listed twice"),
    (["--shots", "0"], "not a positive"),
    (["--shots", "-4"], "not a positive"),
    (["--shots", "few"], "neither a positive integer"),
    (["--shots", "4,4"], "listed twice"),
    (["--shots", "31"], "exceeds the smallest class"),
    (["--seeds", "0"], "--seeds: '0' is not a positive whole number"),
    (["--seeds", "two"], "--seeds: 'two' is not a positive whole number"),
    (["--seeds", "10000000000"], "up to 1,000"),
    (["--shots", "²"], "neither a positive integer"),
    (["--threads", "٣"], "not a positive whole number"),
    (["--jobs", "999"], "this machine has .* cores"),
    (["--methods", "full", "--set", "full.max_epochs=0"], r"--set full.max_epochs=0: must be >= 1"),
    (["--set", "logreg.C=inf"], "must be a finite number"),
    (["--methods", "full", "--set", "full.lr=-1e-3"], "must be > 0"),
    (["--methods", "freeze-99"], "freeze-99: frozen_blocks=99, but the model has 4 encoder blocks"),
    (["--set", "logreg.c=2"], "has no hyperparameter 'c'.*did you mean 'C'"),
    (["--set", "logreg.C=strong"], "not a number"),
    (["--set", "logreg.max_iter=1.5"], "not an integer"),
    (["--dataset", "nobody/not-a-dataset-xyz"], "could not be loaded from the Hub"),
    (["--dataset", "missing.csv"], "no such file"),
    (["--text-col", "review"], "text column 'review' not found"),
    (["--label-col", "stars"], "label column 'stars' not found"),
    (["--metric", "auc"], "invalid choice"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "--device"),
    (["--threads", "0"], "not a positive"),
    (["--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize("extra, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_user_mistakes_are_one_line_exit_2_and_write_nothing(base_args, tmp_path, capsys, extra, message):
    import re

    code, out = run(base_args + ["--methods", "logreg"] + extra, capsys)
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fewshot-bench: error: "), out.err
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


def test_model_folder_that_is_not_a_model(base_args, tmp_path, capsys):
    (tmp_path / "empty_model").mkdir()
    code, out = run(base_args + ["--methods", "logreg", "--model", tmp_path / "empty_model"], capsys)
    assert code == 2 and "is not a model folder (no config.json)" in out.err


def test_model_with_only_pickle_weights_is_refused(base_args, tmp_path, capsys, tiny_model):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    code, out = run(base_args + ["--methods", "logreg", "--model", folder], capsys)
    assert code == 2 and "pickle-based weights are not loaded" in out.err


def test_model_with_repository_code_needs_trust_remote_code(base_args, tmp_path, capsys, tiny_model):
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoModel": "modeling_x.XModel"}}))
    code, out = run(base_args + ["--methods", "logreg", "--model", folder], capsys)
    assert code == 2 and "--trust-remote-code" in out.err


def test_unwritable_out(base_args, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    code, out = run(base_args + ["--methods", "logreg", "--out", blocker / "run"], capsys)
    assert code == 2 and "is not a folder" in out.err


def test_single_class_and_unseen_test_labels(tmp_path, tiny_model, capsys):
    single = write_csv(tmp_path / "one.csv", [(t, "pos") for t, _ in synthetic_rows(10, 0)])
    code, out = run(
        ["--dataset", single, "--model", tiny_model, "--methods", "logreg", "--out", tmp_path / "r"], capsys
    )
    assert code == 2 and "single class" in out.err
    train = write_csv(tmp_path / "train.csv", synthetic_rows(10, 0))
    test = write_csv(tmp_path / "test.csv", [("the good film", "neutral")])
    code, out = run(
        [
            "--dataset",
            train,
            "--test",
            test,
            "--model",
            tiny_model,
            "--methods",
            "logreg",
            "--shots",
            "2",
            "--out",
            tmp_path / "r",
        ],
        capsys,
    )
    assert code == 2 and "never saw: neutral" in out.err
    assert not (tmp_path / "r").exists()


def test_a_real_process_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "--methods", "nope", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("fewshot-bench: error: unknown method 'nope'")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
