"""The reports of a run folder: statistics and verdicts in the tables, summary.json's fields, LaTeX, plots, a
self-contained HTML page, the cross-dataset summary with n/a and incomplete means, a terminal that keeps the ranked
number whole, records the tables cannot use, and committed summaries whose verdicts agree with their intervals."""

import io
import json
import re

import numpy as np
import pytest
from conftest import ROOT
from test_store_and_leaderboard import record, v1

from benchmark import report
from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.grid.store import RECORDS, TEST_LABELS
from benchmark.leaderboard import Labels
from benchmark.report import plots

SUMMARY_FIELDS = {
    "mean", "std", "n", "ci_low", "ci_high", "delta_to_best", "delta_ci_low", "delta_ci_high", "p_raw", "p_adjusted",
    "verdict", "margin", "family_size", "seeds_to_settle", "n_paired", "interval",
}  # fmt: skip


def predicted(labels: np.ndarray, accuracy: float, seed: int) -> list[int]:
    """Predictions right on a given share of the test set (which share: by seed)."""
    rng = np.random.default_rng(seed)
    right = rng.random(len(labels)) < accuracy
    return np.where(right, labels, 1 - labels).tolist()


def suite_records(labels: np.ndarray, datasets=("d1", "d2"), seeds=3) -> list:
    quality = {"strong": 0.9, "close": 0.88, "weak": 0.6}
    records = []
    for d in datasets:
        for method, accuracy in quality.items():
            for seed in range(seeds):
                predictions = predicted(labels, accuracy, seed + 10 * len(method))
                score = float(np.mean(np.array(predictions) == labels))
                r = record(method, seed, score, dataset=d, dataset_fingerprint=f"fp-{d}", predictions=predictions,
                           n_test=len(labels))  # fmt: skip
                r.cell = f"{d}-{method}-{seed}"
                records.append(r)
    return records


@pytest.fixture(scope="module")
def analysis():
    labels = np.random.default_rng(0).integers(0, 2, 400)
    known = {f"fp-{d}": Labels(labels, 2) for d in ("d1", "d2")}
    return report.analyse(suite_records(labels), "accuracy", known, {"d3": ["8"]})


def test_sections_carry_intervals_and_the_verdict_read_from_them(analysis):
    section = analysis.sections[0]
    assert [row.label for row in section.rows] == ["strong", "close", "weak"]
    strong, close, weak = section.rows
    assert strong.stats.ci_low < strong.stats.mean < strong.stats.ci_high <= 1
    assert (strong.stats.verdict, close.stats.verdict, weak.stats.verdict) == ("best", "inconclusive", "worse")
    cells = report.cells(section, "accuracy")
    assert [c["verdict"] for c in cells] == ["best", f"inconclusive, ≈{close.stats.seeds_to_settle} seeds", "worse"]
    assert re.fullmatch(r"-0\.\d{3} \[-0\.\d{3}, -0\.\d{3}\]", cells[2]["Δ best"])  # excludes 0: worse
    assert cells[1]["Δ best"] == f"{close.stats.delta_to_best:+.3f} [{close.stats.delta_ci_low:+.3f}, " \
        f"{close.stats.delta_ci_high:+.3f}]"  # fmt: skip
    assert close.stats.family_size == 3 and close.stats.margin == 0.02


def test_summary_json_has_every_field_scripts_read(analysis):
    data = json.loads(json.dumps(report.summary(analysis)))
    assert len(data["cells"]) == 2 * 3 and all(set(entry) >= SUMMARY_FIELDS for entry in data["cells"])
    assert (data["alpha"], data["margin"], data["verdicts"]["block_alpha"], data["verdicts"]["design"]) == (
        0.05, 0.02, 0.05, None
    )  # fmt: skip
    (cross,) = data["across_datasets"]
    assert cross["unsupplied"] == ["d3"] and cross["test_note"].startswith("too few datasets for a test")
    assert cross["datasets"] == ["d1", "d2"]  # d3 cannot supply the budget: n/a for every method, not counted
    strong = cross["methods"]["strong"]
    assert strong["mean_over_datasets"] == pytest.approx(sum(strong["per_dataset_means"].values()) / 2)
    assert cross["methods"]["strong"]["average_rank"] == 1.0


def test_cross_dataset_table_marks_verdicts_and_counts_equivalents_not_ties(analysis):
    """A dataset that cannot supply the budget is n/a for every method alike: shown, but the mean and the counts
    count the datasets that can supply it (else every mean at that budget read "incomplete"). An inconclusive
    method is not counted as 'equivalent to the best'."""
    names, rows = report.cross_cells(analysis.cross[0])
    assert names == ["method", "d1", "d2", "d3", "mean", "avg rank", "= best on", "▼ on"]
    assert rows[0]["d3"] == "n/a" and rows[0]["mean"] == f"{analysis.cross[0].summary.mean_over_datasets['strong']:.3f}"
    assert [row["d1"][-1] for row in rows] == ["*", "?", "▼"] and rows[0]["d1"].startswith("**0.")  # best: bold
    assert [row["= best on"] for row in rows] == ["2 of 2", "0 of 2", "0 of 2"]
    assert [row["▼ on"] for row in rows] == ["0 of 2", "0 of 2", "2 of 2"]


def test_latex_uses_booktabs_bold_for_the_best_and_marks_each_verdict(analysis):
    tex = report.latex(analysis)
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 3  # two datasets and the cross table
    assert r"\textbf{" in tex and re.search(r"close & 0\.\d{3}\$\\pm\$0\.\d{3} \(3\)\?", tex)
    assert re.search(r"weak & 0\.\d{3}\$\\pm\$0\.\d{3} \(3\)\$\\blacktriangledown\$", tex)
    assert "amssymb" in tex and "**" not in tex and r"equivalent to it within $\pm$0.02" in tex


def test_every_file_is_written_and_the_page_is_self_contained(analysis, tmp_path):
    written = report.write(tmp_path, analysis, {"invocations": [{"command": ["fewshot-bench", "--seeds", "3"]}]})
    names = {p.name for p in written}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.tex", "summary.json", "report.html"} <= names
    assert {"quality-vs-cost.png", "quality-vs-cost.svg", "ranks-8.png", "ranks-8.svg"} <= names
    assert "learning-curves.png" not in names  # one budget: no curve to draw
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page and "fewshot-bench --seeds 3" in page
    assert "<b>0." in page and "**" not in page and "= equivalent to the best within ±0.02" in page
    assert "intervals simultaneous over the 3 pairs of 3 methods" in page
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "= equivalent to the best within ±0.02" in markdown and "| **0." in markdown
    # nothing to fetch, nothing to run: the only references are the inline plots' own (#id)
    assert not re.search(r"""(src|href)\s*=\s*(?!["']?#)|url\((?!#)|@import|<script""", page, re.I)


def test_the_pareto_front_keeps_what_nothing_beats_on_both_cost_and_score():
    points = {"cheap": (1.0, 0.6), "dear-good": (100.0, 0.9), "dominated": (50.0, 0.5), "mid": (10.0, 0.8)}
    assert report.pareto_front(points) == {"cheap", "mid", "dear-good"}


def test_a_narrow_terminal_drops_columns_before_it_cuts_the_ranked_number(analysis):
    from rich.console import Console

    console = Console(width=80, record=True, file=io.StringIO())
    report.print_rich(analysis, console)
    text = console.export_text()
    assert re.search(r"0\.\d{3}±0\.\d{3} n=3", text) and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_variant_keeps_one_label_across_datasets_and_the_terminal_prints_it_whole(capsys):
    """A variant run on some datasets only: its label is the same everywhere, and the default is labelled on the
    dataset where it is the only variant too (else the cross-dataset table splits one method into two rows). The
    label's brackets are text, not terminal markup."""
    from benchmark.console import stdout

    labels = np.random.default_rng(1).integers(0, 2, 100)
    records = []
    for d in ("d1", "d2"):
        for seed in range(2):
            variants = [{"lr": 1}] + ([{"lr": 2}] if d == "d1" else [])
            for params in variants:
                r = record("lora", seed, 0.7, dataset=d, dataset_fingerprint=f"fp-{d}", params=params,
                           predictions=predicted(labels, 0.7, seed), n_test=100)  # fmt: skip
                r.cell = f"{d}-{seed}-{params}"
                records.append(r)
    analysis = report.analyse(records, "accuracy", {f"fp-{d}": Labels(labels, 2) for d in ("d1", "d2")}, {})
    assert [sorted(row.label for row in s.rows) for s in analysis.sections] == [
        ["lora [lr=1]", "lora [lr=2]"],
        ["lora [lr=1]"],
    ]
    (cross,) = analysis.cross
    assert set(cross.summary.methods) == {"lora [lr=1]", "lora [lr=2]"}
    report.print_rich(analysis, stdout())
    assert "lora [lr=2]" in capsys.readouterr().out


def test_learning_curves_put_all_labels_at_the_pool_and_name_it():
    from benchmark.budget import Budget

    labels = np.random.default_rng(2).integers(0, 2, 50)
    records = []
    for shots, n_train in ((8, 16), ("all", 1001)):
        for seed in range(2):
            r = record("full", seed, 0.7, shots=shots, n_train=n_train, predictions=predicted(labels, 0.7, seed),
                       n_test=50)  # fmt: skip
            records.append(r)
    analysis = report.analyse(records, "accuracy", {"f": Labels(labels, 2)})
    assert {s.shots for s in analysis.sections} == {Budget.parse("8"), Budget.parse("all")}
    figure = plots._learning_curves(analysis)
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks == ["8", "all\n(~500)"]  # 1,001 pool examples over 2 classes


def test_quality_against_cost_names_every_method_in_a_legend_in_its_curve_colour_with_readable_ticks():
    """Close points' labels overlapped when written beside them: a legend names the methods, in the colours the
    learning curves use; a cost axis spanning less than a decade (40-300 s) is labelled more than once."""
    labels = np.random.default_rng(3).integers(0, 2, 60)
    records = []
    for method, seconds in (("a", 40.0), ("b", 90.0), ("c", 92.0), ("d", 300.0)):
        for shots in (8, 64):
            for seed in range(2):
                r = record(method, seed, 0.7, shots=shots, predictions=predicted(labels, 0.7, seed), n_test=60,
                           train_seconds=seconds)  # fmt: skip
                records.append(r)
    analysis = report.analyse(records, "accuracy", {"f": Labels(labels, 2)})
    colours = report.method_colors(analysis)
    assert len(set(colours.values())) == 4
    cost_axes = plots._quality_vs_cost(analysis).axes
    curves = plots._learning_curves(analysis).axes[0]
    assert {line.get_label(): line.get_color() for line in curves.get_lines()} == colours
    for ax in cost_axes:
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "c", "d"] and not ax.texts
        assert [tuple(h.get_facecolor()[0]) for h in legend.legend_handles] == [colours[m] for m in "abcd"]
        low, high = ax.get_xlim()
        shown = [t for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
        assert len(shown) >= 2


def test_quality_against_cost_averages_only_over_datasets_where_every_method_has_a_result():
    """A suite still running (or a failed cell) leaves a method without a dataset: a mean over other datasets than
    the rest would not compare, so that dataset is left out of every point, and the panel says what it averages."""
    labels = np.random.default_rng(4).integers(0, 2, 60)
    records = []
    for d, methods in (("d1", {"a": 10.0, "b": 20.0}), ("d2", {"a": 30.0}), ("d3", {"a": 50.0, "b": 60.0})):
        for method, seconds in methods.items():
            r = record(method, 0, 0.7, dataset=d, dataset_fingerprint=f"fp-{d}", n_test=60, train_seconds=seconds,
                       predictions=predicted(labels, 0.7, 0))  # fmt: skip
            r.cell = f"{d}-{method}"
            records.append(r)
    known = {f"fp-{d}": Labels(labels, 2) for d in ("d1", "d2", "d3")}
    analysis = report.analyse(records, "accuracy", known)
    (budget,) = {s.shots for s in analysis.sections}
    points, datasets = plots._cost_points(analysis, budget)
    assert datasets == ["d1", "d3"] and points["a"][0] == 30.0 and points["b"][0] == 40.0
    assert plots._quality_vs_cost(analysis).axes[0].get_title() == "8 per class · mean over 2 datasets"
    only_d2 = report.analyse([r for r in records if r.dataset == "d2"] + [records[1]], "accuracy", known)
    (title,) = [ax.get_title() for ax in plots._quality_vs_cost(only_d2).axes]
    assert title == "8 per class · no dataset where every method has a result yet"


def test_the_cross_dataset_tables_mark_a_method_that_reads_the_unlabelled_pool():
    labels = np.random.default_rng(0).integers(0, 2, 100)
    records = []
    for d in ("d1", "d2"):
        for method, accuracy, unlabelled in (("tapt", 0.9, True), ("plain", 0.6, False)):
            for seed in range(2):
                r = record(method, seed, accuracy, dataset=d, dataset_fingerprint=f"fp-{d}", uses_unlabelled=unlabelled,
                           predictions=predicted(labels, accuracy, seed), n_test=100)  # fmt: skip
                r.cell = f"{d}-{method}-{seed}"
                records.append(r)
    analysis = report.analyse(records, "accuracy", {f"fp-{d}": Labels(labels, 2) for d in ("d1", "d2")})
    _, rows = report.cross_cells(analysis.cross[0])
    assert [row["method"] for row in rows] == ["tapt †", "plain"]
    assert r"tapt $^\dagger$ & \textbf{" in report.latex(analysis)  # still bold as each dataset's best


def test_the_footnote_says_how_many_threads_the_timed_cells_ran_on():
    one = [record("a", seed, 0.5) for seed in range(2)]
    assert "train/predict s: mean per cell, each on 1 thread;" in report.footnote(report.analyse(one, "macro_f1", {}))
    one[1].threads = 2  # the last cell of a grid, given the free core
    note = report.footnote(report.analyse(one, "macro_f1", {}))
    assert "mean per cell, on 1 to 2 threads (a cell nothing else could run beside got the free cores" in note


def run_folder(path, records, labels: np.ndarray) -> str:
    """A run folder on disk holding `records` (Records or dicts) and the test labels of fingerprint 'f'."""
    path.mkdir()
    lines = [r if isinstance(r, dict) else r.to_json() for r in records]
    (path / RECORDS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    stored = {"f": {"dataset": "d", "label_names": ["no", "yes"], "labels": labels.tolist()}}
    (path / TEST_LABELS).write_text(json.dumps(stored))
    return str(path)


def test_report_reads_a_folder_mixing_schema_versions_and_pairs_old_records_by_seed(tmp_path, capsys):
    """Schema-1 records (no sample hash) are upgraded on reading and pair by seed with schema-2 ones, as they were
    made: both methods get statistics and a verdict."""
    labels = np.random.default_rng(5).integers(0, 2, 200)
    old = [v1("old", s, 0.0, 8, predictions=predicted(labels, 0.6, s), n_test=200) for s in range(3)]
    new = [record("new", s, 0.0, predictions=predicted(labels, 0.9, s + 7), n_test=200) for s in range(3)]
    for r in old + new:
        r.metrics = {"accuracy": float(np.mean(np.array(r.predictions) == labels)), "macro_f1": 0.5}
    folder = run_folder(tmp_path / "mixed", old + new, labels)
    assert main(["report", folder, "--metric", "accuracy"]) == 0
    assert capsys.readouterr().err == ""
    cells = {c["method"]: c for c in json.loads((tmp_path / "mixed" / "summary.json").read_text())["cells"]}
    assert cells["new"]["verdict"] == "best" and cells["old"]["verdict"] == "worse"
    assert cells["old"]["n_paired"] == 3


def test_a_record_with_a_nan_score_or_unfit_predictions_is_a_failed_cell_with_a_note(tmp_path, capsys):
    labels = np.random.default_rng(6).integers(0, 2, 100)
    good = [record("a", s, 0.7, predictions=predicted(labels, 0.7, s), n_test=100) for s in range(3)]
    nan = record("b", 0, 0.7, predictions=predicted(labels, 0.7, 9), n_test=100)
    nan.metrics = {"accuracy": float("nan"), "macro_f1": 0.7}
    short = record("b", 1, 0.7, predictions=predicted(labels, 0.7, 10)[:50], n_test=100)
    alien = record("b", 2, 0.7, predictions=[5] * 100, n_test=100)
    folder = run_folder(tmp_path / "bad", [*good, nan, short, alien], labels)
    assert main(["report", folder]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "d b 8 per class seed 0: its accuracy is nan, not a score; counted as a failed cell" in err
    assert "seed 1: it holds 50 predictions for 100 test examples" in err
    assert "seed 2: its predictions are not all label ids in [0, 2)" in err
    board = (tmp_path / "bad" / "leaderboard.md").read_text()
    assert "nan" not in board.lower() and "| — | b | failed |" in board and "0 ok, 3 failed" in board


@pytest.mark.parametrize("value", ["0", "-0.1", "nan", "1.5", "x"])
def test_report_refuses_an_odd_margin_in_one_line_and_writes_nothing(tmp_path, capsys, value):
    labels = np.random.default_rng(7).integers(0, 2, 50)
    folder = run_folder(tmp_path / "run", [record("a", 0, 0.5, predictions=predicted(labels, 0.5, 0), n_test=50)],
                        labels)  # fmt: skip
    assert main(["report", folder, f"--margin={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--margin: '{value}' is not a number between 0 and 1" in err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_the_margin_given_to_report_is_the_one_every_table_states(tmp_path, capsys):
    labels = np.random.default_rng(8).integers(0, 2, 300)
    records = [record(m, s, 0.0, predictions=predicted(labels, 0.8, s + 20 * i), n_test=300)
               for i, m in enumerate("ab") for s in range(3)]  # fmt: skip
    folder = run_folder(tmp_path / "run", records, labels)
    assert main(["report", folder, "--margin", "0.05"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["margin"] == 0.05 and {c["margin"] for c in summary["cells"]} == {0.05}
    assert "within ±0.05" in (tmp_path / "run" / "leaderboard.md").read_text()
    assert "within ±0.05" in capsys.readouterr().out


@pytest.mark.parametrize("summary_file", sorted((ROOT / "results").glob("*/summary.json")), ids=lambda p: p.parent.name)
def test_no_committed_verdict_contradicts_the_interval_beside_it(summary_file):
    """The committed suites' summary.json as `report` wrote it: every verdict is the one its interval gives."""
    cells = json.loads(summary_file.read_text())["cells"]
    assert cells and all(c["verdict"] is not None for c in cells)
    for c in cells:
        low, high, margin = c["delta_ci_low"], c["delta_ci_high"], c["margin"]
        if c["verdict"] == "best":
            assert c["delta_to_best"] == 0
        elif c["verdict"] == "worse":
            assert high < 0
        elif c["verdict"] == "equivalent":
            assert -margin < low <= 0 <= high < margin
        else:
            assert c["verdict"] == "inconclusive" and (low is None or (low <= 0 <= high and max(-low, high) >= margin))


def test_the_margin_is_a_config_key_and_report_reads_the_runs_own_from_run_json(tmp_path):
    from benchmark.grid import config

    path = tmp_path / "run.toml"
    path.write_text("margin = 0.05\n")
    assert config.read_file(path) == {"margin": 0.05}
    path.write_text("margin = 'wide'\n")
    with pytest.raises(UsageError, match="margin: 'wide' is not a number between 0 and 1"):
        config.read_file(path)
    labels = np.random.default_rng(9).integers(0, 2, 100)
    records = [record("a", s, 0.5, predictions=predicted(labels, 0.7, s), n_test=100) for s in range(2)]
    folder = tmp_path / "run"
    run_folder(folder, records, labels)
    (folder / "run.json").write_text(json.dumps({"config": {"margin": 0.05}, "invocations": [{}]}))
    assert report.of_folder(folder, records, "macro_f1").margin == 0.05
    assert report.of_folder(folder, records, "macro_f1", margin=0.01).margin == 0.01  # report --margin wins
