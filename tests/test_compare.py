"""`compare A B`: the same cells in two run folders, paired by seed and test example; a verdict per row, exit 0
only when every row is equivalent, and every bad input a one-line error or a stated outcome."""

import json

import numpy as np
import pytest
from test_store_and_leaderboard import record_json

from benchmark.cli import main
from benchmark.grid.store import RECORDS, TEST_LABELS
from benchmark.metrics import classification_metrics

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
    (path / RECORDS).write_text("".join(json.dumps(r) + "\n" for r in records))  # NaN is written as NaN
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


def test_identical_cells_are_equivalent_and_a_real_difference_differs(fp32_and_bf16, tmp_path, capsys):
    a, b = fp32_and_bf16
    out = tmp_path / "compare.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 1  # not every row is equivalent
    printed = " ".join(capsys.readouterr().out.split())
    assert "precision: fp32 | bf16" in printed
    assert "1 of 2 (dataset, budget, method) rows equivalent within ±0.01, 1 differ, 0 inconclusive" in printed
    assert "simultaneous over the 2 rows: Bonferroni, α = 0.05" in printed and "97.5% CI" in printed
    assert "1 ok cells only in B: not compared" in printed
    data = json.loads(out.read_text())
    assert (data["alpha"], data["margin"], data["family_size"]) == (0.05, 0.01, 2)
    rows = {row["method"]: row for row in data["rows"]}
    same, better = rows["same"], rows["better"]
    assert same["verdict"] == "equivalent" and same["delta"] == 0 and same["changed"] == 0
    assert (same["ci_low"], same["ci_high"], same["p_adjusted"]) == (0.0, 0.0, 1.0)
    assert same["seeds"] == 3 and same["mean_a"] == same["mean_b"] and same["seeds_to_settle"] is None
    assert better["verdict"] == "differs" and better["p_adjusted"] < 0.05 and 0 < better["ci_low"] < better["delta"]
    assert 0.25 < better["changed"] < 0.45 and better["mean_b"] > better["mean_a"]


def copy_of(path, to, change=None):
    """Another folder with the same records; `change(record)` edits each record first (a dict; None keeps it)."""
    to.mkdir()
    lines = [json.loads(line) for line in (path / RECORDS).read_text().splitlines()]
    (to / RECORDS).write_text("".join(json.dumps(change(r) if change else r) + "\n" for r in lines))
    (to / TEST_LABELS).write_text((path / TEST_LABELS).read_text())
    return to


def test_two_copies_of_one_run_are_equivalent_and_exit_0(fp32_and_bf16, tmp_path, capsys):
    a, _ = fp32_and_bf16
    assert main(["compare", str(a), str(copy_of(a, tmp_path / "copy"))]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "2 of 2 (dataset, budget, method) rows equivalent within ±0.01, 0 differ, 0 inconclusive" in printed


def test_predictions_changed_on_a_third_of_the_test_set_are_not_equivalent_and_exit_1(fp32_and_bf16, tmp_path):
    """One method's predictions redrawn on a third of the examples (its accuracy in expectation unchanged)."""
    a, _ = fp32_and_bf16
    third = np.random.default_rng(7).random(N_TEST) < 1 / 3

    def redrawn(record):
        if record["method"] != "same":
            return record
        flipped = np.where(third, 1 - np.asarray(record["predictions"]), record["predictions"]).tolist()
        return record | {"predictions": flipped, "metrics": classification_metrics(Y_TRUE, np.asarray(flipped), 2)}

    out = tmp_path / "rows.json"
    assert main(["compare", str(a), str(copy_of(a, tmp_path / "changed", redrawn)), "--json", str(out)]) == 1
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["same"]["verdict"] in ("differs", "inconclusive") and rows["same"]["changed"] > 0.3
    assert rows["better"]["verdict"] == "equivalent"


def test_an_inconclusive_row_says_roughly_how_many_paired_seeds_would_settle_it(fp32_and_bf16, tmp_path, capsys):
    """5% of the predictions redrawn per seed: too small a change for three seeds to call a difference, too uncertain
    to call equivalence within a point."""
    a, _ = fp32_and_bf16

    def nudged(record):
        rng = np.random.default_rng(record["seed"] + 50)
        flipped = np.where(rng.random(N_TEST) < 0.05, 1 - np.asarray(record["predictions"]), record["predictions"])
        return record | {"predictions": flipped.tolist(), "metrics": classification_metrics(Y_TRUE, flipped, 2)}

    out = tmp_path / "rows.json"
    assert main(["compare", str(a), str(copy_of(a, tmp_path / "nudged", nudged)), "--json", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert {row["verdict"] for row in rows} == {"inconclusive"}
    printed = " ".join(capsys.readouterr().out.split())
    for row in rows:
        hint = f"≈{row['seeds_to_settle']} seeds" if row["seeds_to_settle"] else "more than 100 seeds"
        assert f"inconclusive: d 8 per class {row['method']}: {hint}" in printed
    assert any(row["seeds_to_settle"] and row["seeds_to_settle"] > 3 for row in rows)


def test_the_same_folder_twice_is_accepted_every_row_equivalent(fp32_and_bf16, capsys):
    a, _ = fp32_and_bf16
    assert main(["compare", str(a), str(a)]) == 0
    captured = capsys.readouterr()
    assert "A and B are the same folder" in captured.err and "2 of 2 (dataset" in " ".join(captured.out.split())


def test_folders_with_nothing_in_common_exit_1_with_nothing_to_compare(fp32_and_bf16, tmp_path, capsys):
    a, _ = fp32_and_bf16
    other = folder(tmp_path / "other", [cell("another", s, predictions(0.3, s), "fp32") for s in range(2)])
    assert main(["compare", str(a), str(other)]) == 1
    assert "nothing to compare" in capsys.readouterr().out


def test_damaged_lines_are_skipped_with_a_note_and_a_nan_score_is_left_out(fp32_and_bf16, tmp_path, capsys):
    a, _ = fp32_and_bf16

    def nan_seed_0(record):
        if record["method"] == "same" and record["seed"] == 0:
            return record | {"metrics": record["metrics"] | {"macro_f1": float("nan")}}
        return record

    b = copy_of(a, tmp_path / "damaged", nan_seed_0)
    with open(b / RECORDS, "a") as handle:
        handle.write('{"schema_version": 2, "cell": "torn\n')
    out = tmp_path / "rows.json"
    assert main(["compare", str(a), str(b), "--json", str(out)]) == 0  # the rest is still every row equivalent
    err = " ".join(capsys.readouterr().err.split())
    assert f"skipped line 7 of {b / RECORDS}: not valid JSON" in err
    assert "B: d same 8 per class seed 0: its macro_f1 is nan, not a score" in err
    rows = {row["method"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["same"]["seeds"] == 2 and "NaN" not in out.read_text()


def test_cells_on_different_samples_are_not_paired(fp32_and_bf16, tmp_path, capsys):
    a, _ = fp32_and_bf16
    b = [cell("same", s, predictions(0.3, s), "bf16") | {"sample": f"another-{s}"} for s in range(3)]
    assert main(["compare", str(a), str(folder(tmp_path / "c", b))]) == 1
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
        (["{a}", "{b}", "--alpha", "1.5"], "--alpha: '1.5' is not a number between 0 and 1"),
        (["{a}", "{b}", "--alpha", "0"], "--alpha: '0' is not a number between 0 and 1"),
        (["{a}", "{b}", "--alpha", "1"], "--alpha: '1' is not a number between 0 and 1"),
        (["{a}", "{b}", "--alpha", "nan"], "--alpha: 'nan' is not a number between 0 and 1"),
        (["{a}", "{b}", "--alpha=-0.1"], "--alpha: '-0.1' is not a number between 0 and 1"),
        (["{a}", "{b}", "--alpha", "five"], "--alpha: 'five' is not a number between 0 and 1"),
        (["{a}", "{b}", "--margin", "0"], "--margin: '0' is not a number between 0 and 1"),
        (["{a}", "{b}", "--margin=-0.01"], "--margin: '-0.01' is not a number between 0 and 1"),
        (["{a}", "{b}", "--margin", "nan"], "--margin: 'nan' is not a number between 0 and 1"),
        (["{a}", "{b}", "--margin", "1.5"], "--margin: '1.5' is not a number between 0 and 1"),
        (["{a}", "{b}", "--margin", "inf"], "--margin: 'inf' is not a number between 0 and 1"),
        (["{a}/records.jsonl", "{b}"], "records.jsonl has no records.jsonl: not a run folder"),
        (["{a}", "{b}", "--json", "{a}/no/such/folder.json"], "folder.json: cannot write it (No such file"),
    ],
)
def test_mistakes_are_one_line_errors(fp32_and_bf16, arguments, message, tmp_path, capsys):
    a, b = fp32_and_bf16
    assert main(["compare", *(arg.format(a=a, b=b) for arg in arguments)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err and captured.out == ""
    assert not (a / "no").exists()


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
    assert main(arguments) == 0  # identical predictions: every row equivalent
    assert [row["method"] for row in json.loads(out.read_text())["rows"]] == ["tuned [lr=1]", "tuned [lr=2]"]
    assert "1 cells in both trained on different samples" in " ".join(capsys.readouterr().out.split())
