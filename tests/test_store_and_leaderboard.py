import json

import pytest
from conftest import ROOT

from benchmark import leaderboard, report
from benchmark.errors import LockedError, UsageError
from benchmark.grid.store import RunFolder, read_records
from benchmark.record import SCHEMA_VERSION, Record, RecordError


def record_json(method, seed, score, shots=8, status="ok", params=None, **extra):
    return {
        "schema_version": SCHEMA_VERSION,
        "cell": f"{method}-{shots}-{seed}-{json.dumps(params or {})}-{extra.get('revision', 1)}",
        "dataset": "d",
        "dataset_fingerprint": "f",
        "model": "m",
        "model_fingerprint": "g",
        "method": method,
        "revision": 1,
        "uses_unlabelled": False,
        "params": params or {"lr": 1},
        "resolved": {},
        "shots": shots,
        "seed": seed,
        "sample": f"sample-{shots}-{seed}",
        "status": status,
        "error": None if status == "ok" else {"type": "ValueError", "message": "boom"},
        "metrics": {"accuracy": score, "macro_f1": score} if status == "ok" else {},
        "n_train": 16,
        "n_test": 10,
        "train_seconds": 1.0,
        "predict_seconds": 0.5,
        "shared_seconds": None,
        "one_off_seconds": None,
        "train_flops": 1e9,
        "predict_flops": 1e8,
        "one_off_flops": None,
        "peak_rss_mb": 100.0,
        "trainable_params": 1,
        "total_params": 2,
        "device": "cpu",
        "precision": "fp32",
        "threads": 1,
        "predictions": [0] * 10,
        "finished_at": "2026-11-30T00:00:00+00:00",
        "invocation_id": "0123456789abcdef",
        "harness_version": "0.2.0",
        "project_commit": None,
        **extra,
    }


def record(*args, **kwargs) -> Record:
    return Record.from_json(record_json(*args, **kwargs))


def test_records_append_one_line_each_and_read_back(tmp_path):
    with RunFolder(tmp_path) as folder:
        folder.append(record("a", 0, 0.5))
        folder.append(record("a", 1, 0.7))
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["seed"] == 1
    assert [r.seed for r in read_records(tmp_path).records] == [0, 1]


def test_torn_last_line_is_reported_cut_and_ignored(tmp_path):
    good = json.dumps(record_json("a", 0, 0.5))
    (tmp_path / "records.jsonl").write_text(good + "\n" + good[:40])
    assert len(read_records(tmp_path).records) == 1 and read_records(tmp_path).skipped[0][0] == 2
    with RunFolder(tmp_path) as folder:
        assert any("torn last line" in note for note in folder.notes)
        folder.append(record("a", 1, 0.6))
    assert [r.seed for r in read_records(tmp_path).records] == [0, 1]
    assert read_records(tmp_path).skipped == []


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
    rows = report.cells(section, "macro_f1")
    assert [r["method"] for r in rows] == ["b", "a"]
    assert rows[1]["macro_f1"] == "0.700±0.100 n=3"
    assert rows[1]["Δ best"] == "-0.250"  # paired over the seeds both finished (0, 1)


def test_failed_cells_are_shown_never_averaged_as_zero():
    records = [record("a", 0, 0.8), record("a", 1, 0, status="failed"), record("b", 0, 0, status="failed")]
    (section,) = leaderboard.build(records)
    rows = report.cells(section, "macro_f1")
    assert rows[0]["macro_f1"] == "0.800±0.000 n=1" and rows[0]["cells"] == "1 ok, 1 failed"
    assert rows[1]["method"] == "b" and rows[1]["macro_f1"] == "failed" and rows[1]["rank"] == "—"
    markdown = report.markdown(report.analyse(records, "macro_f1", {}))
    assert "| — | b | failed |" in markdown


def test_newest_record_of_a_cell_wins():
    records = [record("a", 0, 0, status="failed"), record("a", 0, 0.75)]
    (section,) = leaderboard.build(records)
    assert report.cells(section, "macro_f1")[0]["cells"] == "1 ok"


def test_variants_of_one_method_are_separate_rows_labelled_by_what_differs():
    records = [record("a", 0, 0.5, params={"lr": 1, "x": 2}), record("a", 0, 0.6, params={"lr": 3, "x": 2})]
    (section,) = leaderboard.build(records)
    assert sorted(r.label for r in section.rows) == ["a [lr=1]", "a [lr=3]"]


def test_records_of_an_older_revision_of_a_method_are_superseded_and_left_out():
    old = [record("a", seed, 0.5, params={"lr": 1}) for seed in (0, 1)]  # revision 1, another default too
    new = record("a", 0, 0.7, params={"lr": 2}, revision=2)
    other = record("b", 0, 0.6)  # another method's revision 1 is its newest: kept
    (section,) = leaderboard.build([*old, new, other])
    assert sorted((r.label, len(r.ok)) for r in section.rows) == [("a", 1), ("b", 1)]  # no label: one variant
    assert leaderboard.superseded([*old, new, other]) == {("a", 1): 2}
    assert leaderboard.superseded([*old, other]) == {}  # nothing newer: revision 1 is the table


def test_budgets_sort_numerically_with_all_last_and_csv_has_numbers():
    records = [record("a", 0, 0.5, shots=s) for s in ("all", 64, 8)]
    sections = leaderboard.build(records)
    assert [s.shots.to_json() for s in sections] == [8, 64, "all"]
    csv_text = report.csv_text(report.analyse(records, "macro_f1", {}))
    assert csv_text.splitlines()[1].startswith("d,m,8,1,a,False,1,0,0.5000,")


def test_unlabelled_methods_are_marked():
    (section,) = leaderboard.build([record("mlm", 0, 0.5, uses_unlabelled=True)])
    assert report.cells(section, "macro_f1")[0]["method"] == "mlm †"


def v1(method, seed, score, shots, **extra) -> Record:
    """A record as schema 1 wrote it: `resolved` inside `params`, no sample, no one_off_seconds."""
    data = record_json(method, seed, score, shots, **extra) | {"schema_version": 1}
    data["params"] = data["params"] | {"resolved": data.pop("resolved")}
    for added in ("sample", "one_off_seconds", "revision", "train_flops", "predict_flops", "one_off_flops"):
        data.pop(added)
    return Record.from_json(data)


def test_one_off_cost_shows_at_every_budget_of_the_method_and_old_records_show_their_shared_time():
    records = [
        record("logreg", 0, 0.5, shots=8, one_off_seconds=104.5, shared_seconds=104.5),
        record("logreg", 0, 0.6, shots=64, one_off_seconds=104.5, shared_seconds=None),
        record("full", 0, 0.6, shots=64, one_off_seconds=None),
        v1("old", 0, 0.6, 8, shared_seconds=300.0),  # written before one_off_seconds existed
        v1("old", 0, 0.6, 64, shared_seconds=0.2),
    ]
    shown = {
        (section.shots.to_json(), cells["method"]): cells["one-off s"]
        for section in leaderboard.build(records)
        for cells in report.cells(section, "macro_f1")
    }
    assert shown == {
        (8, "logreg"): "104.5",
        (64, "logreg"): "104.5",
        (64, "full"): "—",
        (8, "old"): "300.0",
        (64, "old"): "300.0",
    }


def test_schema_1_records_are_upgraded_on_reading():
    old = v1("full", 2, 0.7, 8, shared_seconds=3.0)
    assert old.schema_version == SCHEMA_VERSION and old.revision == 1 and old.sample is None
    assert old.resolved == {} and "resolved" not in old.params and old.one_off_seconds == 3.0


def test_every_committed_results_folder_reads_without_a_skipped_line():
    for records_file in (ROOT / "results").glob("*/records.jsonl"):
        records = read_records(records_file.parent)
        assert records.records and records.skipped == [], records_file


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop("metrics"), "missing field metrics"),
        (lambda r: r.update(schema_version=7), "schema_version 7"),
        (lambda r: r.update(seed="zero"), "field seed has the wrong type"),
        (lambda r: r.update(shots=-3), "shots"),
    ],
)
def test_a_damaged_record_is_named_and_skipped_never_fatal(tmp_path, change, message):
    damaged = record_json("a", 1, 0.6)
    change(damaged)
    lines = [json.dumps(record_json("a", 0, 0.5)), json.dumps(damaged), "[1, 2]"]
    (tmp_path / "records.jsonl").write_text("\n".join(lines) + "\n")
    records = read_records(tmp_path)
    assert [r.seed for r in records.records] == [0]
    assert records.skipped[0][0] == 2 and message in records.skipped[0][1]
    assert records.skipped[1] == (3, "not a record: not a JSON object")
    with pytest.raises(RecordError):
        Record.from_json(damaged)


def test_the_leaderboard_pairs_only_cells_that_saw_the_identical_sample():
    top = [record("a", s, 0.8) for s in range(3)]
    other = [record("b", 0, 0.5), record("b", 1, 0.6), record("b", 2, 0.1, sample="another sample")]
    (section,) = leaderboard.build(top + other)
    rows = report.cells(section, "macro_f1")
    assert rows[1]["method"] == "b" and rows[1]["Δ best"] == "-0.250"  # seeds 0 and 1 only: (-0.3 - 0.2) / 2
