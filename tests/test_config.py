"""Runs from a TOML file, flags on top; several datasets in one grid; budgets a dataset cannot supply."""

import json

import pytest
from conftest import ROOT, synthetic_rows, write_csv

from benchmark.cli import main
from benchmark.grid.config import read_file


def test_the_example_config_names_the_suite_every_method_both_budgets_and_five_seeds():
    fields = read_file(ROOT / "configs" / "embedded-suite.toml")
    assert fields["datasets"] == ["rt-critics", "bbc-news", "tweets", "debates", "drug-reviews"]
    assert [b.to_json() for b in fields["budgets"]] == [8, 64] and fields["seeds"] == 5
    assert fields["methods"] == ["logreg", "full", "freeze-head", "freeze-half", "setfit", "lora", "mlm"]


@pytest.fixture()
def config(tmp_path, tiny_csv, tiny_model):
    def write(text: str):
        path = tmp_path / "run.toml"
        path.write_text(f'datasets = ["{tiny_csv}"]\nout = "{tmp_path / "run"}"\n' + text)
        return path

    return write


@pytest.mark.parametrize(
    "text, message",
    [
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("seeds = 'five'\n", "seeds: 'five' is not a positive whole number up to 1,000"),
        ("seeds = 5000\n", "seeds: 5000 is not a positive whole number up to 1,000"),
        ("budgets = [8, 8]\n", "each budget once"),
        ("budgets = [0]\n", "not a positive number"),
        ("metric = 'auc'\n", "'auc' is not one of"),
        ("[methods.full]\nlr = 'fast'\n", "full.lr='fast': expected a number"),
        ("[methods.full]\nlrr = 1e-4\n", "'full' has no hyperparameter 'lrr'"),
        ("[methods.full]\nmax_epochs = 0\n", "full.max_epochs=0: must be >= 1"),
        ("seeds = [\n", "not valid TOML"),
    ],
)
def test_mistakes_in_a_config_file_are_one_line(config, tiny_model, capsys, text, message):
    code = main(["--config", str(config(text)), "--model", str(tiny_model)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_flags_override_the_file_and_run_json_keeps_the_resolved_configuration(config, tiny_model, tmp_path):
    path = config("budgets = [4, 8]\nseeds = 2\n[methods.logreg]\nC = 10\n[methods.full]\nmax_epochs = 2\n")
    assert main(["--config", str(path), "--model", str(tiny_model), "--seeds", "1", "--methods", "logreg"]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert {(r["method"], r["shots"], r["seed"]) for r in records} == {("logreg", 4, 0), ("logreg", 8, 0)}
    assert {r["params"]["C"] for r in records} == {10.0}  # 10 in the file is the float 10.0, as --set gives it
    config_kept = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (
        config_kept["seeds"] == 1
        and config_kept["budgets"] == [4, 8]
        and config_kept["settings"] == {"logreg": {"C": 10}}
    )


def test_several_datasets_run_as_one_grid_and_a_budget_one_cannot_supply_is_n_a(tmp_path, tiny_model, capsys):
    small = write_csv(tmp_path / "small.csv", synthetic_rows(6, seed=3))  # 6 per class: 5 in the train pool
    large = write_csv(tmp_path / "large.csv", synthetic_rows(30, seed=4))
    args = ["--dataset", f"{small},{large}", "--model", str(tiny_model), "--methods", "logreg", "--shots", "4,8",
            "--seeds", "2", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    assert "small.csv cannot supply 8 per class" in out.err
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert (
        sorted((r["dataset"], r["shots"]) for r in records)
        == [("large.csv", 4)] * 2 + [("large.csv", 8)] * 2 + [("small.csv", 4)] * 2
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (eight,) = [c for c in summary["across_datasets"] if c["budget"] == 8]
    logreg = eight["methods"]["logreg"]  # small.csv is n/a for every method: the mean is over large.csv only
    assert eight["unsupplied"] == ["small.csv"] and eight["datasets"] == ["large.csv"]
    assert logreg["mean_over_datasets"] == logreg["per_dataset_means"]["large.csv"]
    assert "| small.csv | n/a" not in (tmp_path / "run" / "leaderboard.md").read_text()  # no section for it
    assert "n/a" in (tmp_path / "run" / "leaderboard.md").read_text()


def test_a_single_dataset_run_still_refuses_a_budget_it_cannot_supply(tmp_path, tiny_model, capsys):
    small = write_csv(tmp_path / "small.csv", synthetic_rows(6, seed=3))
    code = main(["--dataset", str(small), "--model", str(tiny_model), "--shots", "8", "--out", str(tmp_path / "r")])
    assert code == 2 and "exceeds the smallest class" in capsys.readouterr().err


def test_the_embedded_suite_is_one_flag(tmp_path, tiny_model, capsys):
    code = main(["--suite", "embedded", "--dataset", "rt-critics", "--out", str(tmp_path / "r")])
    assert code == 2 and "give --dataset or --suite" in capsys.readouterr().err
    code = main(["--suite", "everything", "--out", str(tmp_path / "r")])
    assert code == 2 and "unknown suite 'everything'" in capsys.readouterr().err
