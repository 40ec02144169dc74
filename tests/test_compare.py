"""`compare A B`: the same cells in two run folders, paired by seed and test example."""

import json

import numpy as np
import pytest
from test_store_and_leaderboard import record_json

from benchmark.cli import main
from benchmark.metrics import classification_metrics
from benchmark.store import RECORDS, TEST_LABELS

N_TEST = 300
Y_TRUE = np.random.default_rng(0).integers(0, 2, N_TEST)


def predictions(error_rate: float, seed: int) -> list[int]:
    """Label ids wrong on about `error_rate` of the test set, differently per seed."""
    flip = np.random.default_rng(100 + seed).random(N_TEST) < error_rate
    return np.where(flip, 1 - Y_TRUE, Y_TRUE).tolist()


def cell(method: str, seed: int, preds: list[int], precision: str) -> dict:
    scores = classification_metrics(Y_TRUE, np.asarray(preds), 2)
    data = record_json(method, seed, 0.0, precision=precision, predictions=preds, n_test=N_TEST)
    return data | {"metrics": scores, "cell": f"{data['cell']}-{precision}"}


def folder(path, records: list[dict]):
    path.mkdir()
    (path / RECORDS).write_text("".join(json.dumps(r) + "\n" for r in records))
    labels = {"f": {"dataset": "d", "label_names": ["no", "yes"], "labels": Y_TRUE.tolist()}}
    (path / TEST_LABELS).write_text(json.dumps(labels))
    return path


@pytest.fixture()
def fp32_and_bf16(tmp_path):
    """Three seeds of two methods: `same` predicts identically in both precisions, `better` makes far fewer
    errors in B."""
    a = [cell("same", s, predictions(0.3, s), "fp32") for s in range(3)]
    a += [cell("better", s, predictions(0.4, s), "fp32") for s in range(3)]
    b = [cell("same", s, predictions(0.3, s), "bf16") for s in range(3)]
    b += [cell("better", s, predictions(0.1, s), "bf16") for s in range(3)]
    b.append(cell("same", 3, predictions(0.3, 3), "bf16"))  # a fourth seed: only in B
    return folder(tmp_path / "a", a), folder(tmp_path / "b", b)


def test_identical_cells_agree_and_a_real_difference_is_found(fp32_and_bf16, tmp_path, capsys):
    a, b = fp32_and_bf16
    out = tmp_path / "compare.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "precision: fp32 | bf16" in printed
    assert "1 of 2 (dataset, budget, method) comparisons agree" in printed
    assert "1 ok cells only in B: not compared" in printed
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    same, better = rows["same"], rows["better"]
    assert same["agree"] and same["delta"] == 0 and same["changed"] == 0 and same["p_holm"] == 1.0
    assert same["seeds"] == 3 and same["mean_a"] == same["mean_b"]
    assert not better["agree"] and better["p_holm"] < 0.05 and 0 < better["ci_low"] < better["delta"]
    assert 0.25 < better["changed"] < 0.45 and better["mean_b"] > better["mean_a"]


def test_cells_on_different_samples_are_not_paired(fp32_and_bf16, tmp_path, capsys):
    a, _ = fp32_and_bf16
    b = [cell("same", s, predictions(0.3, s), "bf16") | {"sample": f"another-{s}"} for s in range(3)]
    assert main(["compare", str(a), str(folder(tmp_path / "c", b))]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "nothing to compare" in printed and "3 cells in both trained on different samples" in printed


def test_a_folder_holding_two_runs_of_one_cell_is_refused_in_one_line(fp32_and_bf16, capsys):
    a, b = fp32_and_bf16
    with open(a / RECORDS, "a") as handle:
        handle.write(json.dumps(cell("same", 0, predictions(0.3, 0), "bf16")) + "\n")
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "A holds two runs of d same 8 per class seed 0" in err
    assert "precision fp32 and bf16" in err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["nowhere", "{b}"], "nowhere has no records.jsonl: not a run folder"),
        (["{a}", "{b}", "--metric", "recall"], "--metric: choose one of"),
        (["{a}", "{b}", "--alpha", "1.5"], "--alpha: 1.5 is not between 0 and 1"),
        (["{a}", "{b}", "--json", "{a}/no/such/folder.json"], "folder.json: cannot write it (No such file"),
    ],
)
def test_mistakes_are_one_line_errors(fp32_and_bf16, arguments, message, capsys):
    a, b = fp32_and_bf16
    assert main(["compare", *(arg.format(a=a, b=b) for arg in arguments)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_variants_of_a_method_are_rows_named_by_what_differs_and_unhashed_samples_are_not_paired(tmp_path, capsys):
    def tuned(lr, seed, precision):
        data = cell("tuned", seed, predictions(0.3, seed), precision)
        return data | {"params": {"lr": lr, "wd": 0}, "cell": f"{data['cell']}-lr{lr}"}

    def unhashed(seed, precision):  # a record from before samples were hashed
        return cell("old", seed, predictions(0.3, seed), precision) | {"sample": None}

    a = [tuned(lr, s, "fp32") for lr in (1, 2) for s in range(2)] + [unhashed(0, "fp32")]
    b = [tuned(lr, s, "bf16") for lr in (1, 2) for s in range(2)] + [unhashed(0, "bf16")]
    out = tmp_path / "rows.json"
    arguments = ["compare", str(folder(tmp_path / "a", a)), str(folder(tmp_path / "b", b)), "--json", str(out)]
    assert main(arguments) == 0
    assert [row["method"] for row in json.loads(out.read_text())["rows"]] == ["tuned [lr=1]", "tuned [lr=2]"]
    assert "1 cells in both trained on different samples" in " ".join(capsys.readouterr().out.split())
