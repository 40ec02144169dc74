"""One honest end-to-end run with the real embedded model (all-MiniLM-L6-v2 from its PyPI package) on a small
slice of the embedded Rotten Tomatoes data, through the real command line."""

import json

import pytest
from conftest import write_csv

from benchmark.cli import main
from benchmark.data.load import load_task

pytestmark = pytest.mark.slow


def test_logreg_and_full_on_the_real_model(tmp_path, capsys):
    task = load_task("rt-critics")

    # a class-balanced slice: 40 per class to sample from, 200 test texts
    def rows(split, n):
        return [
            (text, task.label_names[label])
            for label in (0, 1)
            for text in [t for t, y in zip(split.texts, split.labels, strict=True) if y == label][:n]
        ]

    train = write_csv(tmp_path / "train.csv", rows(task.train, 40))
    test = write_csv(tmp_path / "test.csv", rows(task.test, 100))
    out = tmp_path / "run"
    code = main(
        [
            "--dataset",
            str(train),
            "--test",
            str(test),
            "--methods",
            "logreg,full",
            "--shots",
            "16",
            "--seeds",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    records = {r["method"]: r for r in map(json.loads, (out / "records.jsonl").read_text().splitlines())}
    assert records["logreg"]["total_params"] > 22_000_000  # the real 22M-parameter encoder was used
    assert records["full"]["trainable_params"] > 22_000_000
    for record in records.values():
        assert record["status"] == "ok" and record["n_test"] == 200
        # sentiment of critic snippets from 16 examples per class: clearly better than chance with a real encoder
        assert record["metrics"]["accuracy"] > 0.55, record["metrics"]
    assert "rank" in (out / "leaderboard.md").read_text()
