import json

import pytest

from benchmark import leaderboard
from benchmark.errors import LockedError, UsageError
from benchmark.store import RunFolder, read_records


def record(method, seed, score, shots=8, status="ok", params=None, **extra):
    return {
        "cell": f"{method}-{shots}-{seed}-{json.dumps(params or {})}",
        "dataset": "d",
        "model": "m",
        "method": method,
        "shots": shots,
        "seed": seed,
        "status": status,
        "params": params or {"lr": 1},
        "metrics": {"accuracy": score, "macro_f1": score} if status == "ok" else {},
        "error": None if status == "ok" else {"type": "ValueError", "message": "boom"},
        "train_seconds": 1.0,
        "predict_seconds": 0.5,
        **extra,
    }


def test_records_append_one_line_each_and_read_back(tmp_path):
    with RunFolder(tmp_path) as folder:
        folder.append(record("a", 0, 0.5))
        folder.append(record("a", 1, 0.7))
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["seed"] == 1
    assert [r["seed"] for r in read_records(tmp_path).records] == [0, 1]


def test_torn_last_line_is_reported_cut_and_ignored(tmp_path):
    good = json.dumps(record("a", 0, 0.5))
    (tmp_path / "records.jsonl").write_text(good + "\n" + good[:40])
    assert len(read_records(tmp_path).records) == 1 and read_records(tmp_path).torn_line == 2
    with RunFolder(tmp_path) as folder:
        assert "torn last line" in folder.torn_tail
        folder.append(record("a", 1, 0.6))
    assert [r["seed"] for r in read_records(tmp_path).records] == [0, 1]
    assert read_records(tmp_path).torn_line is None


def test_second_writer_on_the_same_folder_is_refused(tmp_path):
    with RunFolder(tmp_path), pytest.raises(LockedError, match="in use by a running benchmark"), RunFolder(tmp_path):
        pass
    with RunFolder(tmp_path):  # released after the first run ends
        pass


def test_unwritable_out_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        RunFolder.check_writable(blocker / "run")


def test_run_info_keeps_every_invocation(tmp_path):
    with RunFolder(tmp_path) as folder:
        folder.write_run_info({"command": ["first"]})
        folder.write_run_info({"command": ["second"]})
        folder.write_run_info({"command": ["second"], "wall_seconds": 5.0}, amend=True)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["command"] == ["second"] and [i["command"] for i in info["invocations"]] == [["first"], ["second"]]
    assert info["wall_seconds"] == info["invocations"][-1]["wall_seconds"] == 5.0


def test_leaderboard_ranks_by_mean_and_reports_std_and_n():
    records = [record("a", s, v) for s, v in enumerate([0.6, 0.7, 0.8])] + [record("b", s, 0.9) for s in range(2)]
    (section,) = leaderboard.build(records)
    rows = leaderboard.table_rows(section, "macro_f1")
    assert [r["method"] for r in rows] == ["b", "a"]
    assert rows[1]["macro_f1"] == "0.700±0.100 n=3"
    assert rows[1]["Δ top"] == "-0.250"  # paired over the seeds both finished (0, 1)


def test_failed_cells_are_shown_never_averaged_as_zero():
    records = [record("a", 0, 0.8), record("a", 1, 0, status="failed"), record("b", 0, 0, status="failed")]
    (section,) = leaderboard.build(records)
    rows = leaderboard.table_rows(section, "macro_f1")
    assert rows[0]["macro_f1"] == "0.800±0.000 n=1" and rows[0]["cells"] == "1 ok, 1 failed"
    assert rows[1]["method"] == "b" and rows[1]["macro_f1"] == "failed" and rows[1]["rank"] == "—"
    markdown = leaderboard.render_markdown([section], "macro_f1")
    assert "| — | b | failed |" in markdown


def test_newest_record_of_a_cell_wins():
    records = [record("a", 0, 0, status="failed"), record("a", 0, 0.75)]
    (section,) = leaderboard.build(records)
    assert leaderboard.table_rows(section, "macro_f1")[0]["cells"] == "1 ok"


def test_variants_of_one_method_are_separate_rows_labelled_by_what_differs():
    records = [record("a", 0, 0.5, params={"lr": 1, "x": 2}), record("a", 0, 0.6, params={"lr": 3, "x": 2})]
    (section,) = leaderboard.build(records)
    assert sorted(r.label for r in section.rows) == ["a [lr=1]", "a [lr=3]"]


def test_records_of_another_revision_of_a_method_are_a_row_of_their_own():
    old, new = record("a", 0, 0.5), record("a", 1, 0.7, revision=2)
    new["cell"] = "another key"  # the revision is part of the cell key
    (section,) = leaderboard.build([old, new])  # a record without a revision is revision 1
    assert sorted((r.label, len(r.ok)) for r in section.rows) == [("a [revision=1]", 1), ("a [revision=2]", 1)]


def test_budgets_sort_numerically_with_all_last_and_csv_has_numbers():
    records = [record("a", 0, 0.5, shots=s) for s in ("all", 64, 8)]
    sections = leaderboard.build(records)
    assert [s.shots for s in sections] == [8, 64, "all"]
    csv_text = leaderboard.render_csv(sections, "macro_f1")
    assert csv_text.splitlines()[1].startswith("d,m,8,1,a,False,1,0,0.5000,")


def test_unlabelled_methods_are_marked():
    (section,) = leaderboard.build([record("mlm", 0, 0.5, uses_unlabelled=True)])
    assert leaderboard.table_rows(section, "macro_f1")[0]["method"] == "mlm †"


def test_one_off_cost_shows_at_every_budget_of_the_method_and_old_records_show_their_shared_time():
    records = [
        record("logreg", 0, 0.5, shots=8, one_off_seconds=104.5, shared_seconds=104.5),
        record("logreg", 0, 0.6, shots=64, one_off_seconds=104.5, shared_seconds=None),
        record("full", 0, 0.6, shots=64, one_off_seconds=None),
        record("old", 0, 0.6, shots=8, shared_seconds=300.0),  # written before one_off_seconds existed
        record("old", 0, 0.6, shots=64, shared_seconds=0.2),
    ]
    shown = {
        (section.shots, cells["method"]): cells["one-off s"]
        for section in leaderboard.build(records)
        for cells in leaderboard.table_rows(section, "macro_f1")
    }
    assert shown == {
        (8, "logreg"): "104.5",
        (64, "logreg"): "104.5",
        (64, "full"): "—",
        (8, "old"): "300.0",
        (64, "old"): "300.0",
    }
