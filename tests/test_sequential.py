"""`--seeds auto`: looks planned in advance, more seeds only for the blocks that still have an inconclusive row,
up to the cap; the level split over the looks, which keeps a block's verdicts at the stopping look within alpha
where reading every look at alpha ("peeking") does not. End to end on a tiny grid, and by simulation."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import synthetic_rows, write_csv
from test_calibration import NOISE, allowance, simulate

from benchmark import stats
from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.grid import sequential
from benchmark.record import FitResult
from benchmark.verdicts import INCONCLUSIVE, WORSE

POSITIVE = {"good", "great", "excellent", "lovely", "superb", "fun"}


@dataclass
class Keyword:
    """Right on every synthetic example, whatever the seed: a sentiment word decides."""

    def fit(self, train, ctx):
        return FitResult(0, 0)

    def predict(self, texts):
        return np.array([int(bool(POSITIVE & set(text.split()))) for text in texts])


@dataclass
class CoinAtEight:
    """The keyword rule at 4 per class; at 8 per class (16 training examples) a coin per seed."""

    def fit(self, train, ctx):
        self.coin = np.random.default_rng(ctx.seed) if len(train.labels) >= 16 else None
        return FitResult(0, 0)

    def predict(self, texts):
        if self.coin is None:
            return Keyword().predict(texts)
        return self.coin.integers(0, 2, len(texts))


def test_the_looks_are_planned_from_the_start_and_the_cap():
    assert sequential.looks(3, 10) == (3, 5, 8, 10)
    assert sequential.looks(2, 4) == (2, 3, 4)
    assert sequential.parse("auto") == sequential.Design(3, 10)
    assert sequential.parse(" AUTO:2-4 ").looks == (2, 3, 4)
    assert sequential.Design(3, 10).level(0.05) == pytest.approx(0.0125)


@pytest.mark.parametrize("text", ["auto:1-5", "auto:5-3", "auto:4-4", "auto:x", "auto:3-", "auto:3-2000", "autox"])
def test_a_design_that_is_not_one_is_refused(text):
    with pytest.raises(UsageError, match="--seeds"):
        sequential.parse(text)


def records_of(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]


def test_seeds_auto_adds_seeds_only_where_a_verdict_is_open_and_stops_at_the_cap(tmp_path, tiny_model, throwaway,
                                                                                capsys):  # fmt: skip
    """At 4 per class the three methods predict identically: every row equivalent at the first look, so that block
    keeps its 2 seeds. At 8 per class one method flips coins: inconclusive, so that block gets 3, then 4 seeds, where
    it is worse. The reports state the design and read every verdict at alpha / 3; `report` later reads them the
    same way; re-running resumes; with a cap of 3 the block stays inconclusive and the run says so."""
    throwaway("keyword", Keyword)
    throwaway("keyword-too", Keyword)
    throwaway("coin-at-eight", CoinAtEight)
    data = write_csv(tmp_path / "data.csv", synthetic_rows(100, seed=3))
    out = tmp_path / "run"
    command = ["--dataset", str(data), "--model", str(tiny_model), "--out", str(out), "--shots", "4,8",
               "--methods", "keyword,keyword-too,coin-at-eight", "--seeds", "auto:2-4"]  # fmt: skip
    assert main(command) == 0
    printed = " ".join(capsys.readouterr().out.split())
    seeds = {}
    for r in records_of(out):
        seeds.setdefault(r["shots"], set()).add(r["seed"])
    assert seeds == {4: {0, 1}, 8: {0, 1, 2, 3}}
    assert "look 1 of 3 (2 seeds): inconclusive rows in data.csv 8 per class: 3 seeds there next" in printed
    assert "look 2 of 3 (3 seeds): inconclusive rows in data.csv 8 per class: 4 seeds there next" in printed
    assert "look 3 of 3 (4 seeds): no block has an inconclusive row: stopping" in printed
    summary = json.loads((out / "summary.json").read_text())
    verdicts = {(c["budget"], c["method"]): c["verdict"] for c in summary["cells"]}
    assert sorted(v for (budget, _), v in verdicts.items() if budget == 4) == ["best", "equivalent", "equivalent"]
    assert verdicts[(8, "coin-at-eight")] == WORSE  # settled at the last look
    assert summary["verdicts"]["looks"] == [2, 3, 4] and summary["verdicts"]["block_alpha"] == pytest.approx(0.05 / 3)
    assert "--seeds auto:2-4" in summary["verdicts"]["design"]
    assert "looks at 2, 3, 4 seeds" in (out / "leaderboard.md").read_text()
    assert "α = 0.01667 per (dataset, budget) at each look" in (out / "leaderboard.md").read_text()
    assert json.loads((out / "run.json").read_text())["config"]["seeds_auto"] == [2, 4]

    assert main(["report", str(out)]) == 0  # later, from the records: the same design, the same level
    assert json.loads((out / "summary.json").read_text())["verdicts"]["block_alpha"] == pytest.approx(0.05 / 3)
    capsys.readouterr()
    assert main(command) == 0  # re-running resumes: every look's cells already finished
    resumed = capsys.readouterr().out  # the looks' plans: 12 cells (both blocks, 2 seeds), 9, 12 (8 per class)
    assert len(records_of(out)) == 3 * (2 + 4) and resumed.count("already finished") == 3

    capped = tmp_path / "capped"  # a cap of 3 seeds: the coin is still inconclusive there, and the run says so
    assert main([*command[:5], str(capped), *command[6:-1], "auto:2-3"]) == 0
    assert "look 2 of 2 (3 seeds): the cap; still inconclusive: data.csv 8 per class" in capsys.readouterr().out
    assert {r["seed"] for r in records_of(capped) if r["shots"] == 8} == {0, 1, 2}


@pytest.mark.parametrize("value", ["auto:1-3", "auto:3", "auto:9-2"])
def test_an_odd_seeds_auto_is_a_one_line_error(tmp_path, tiny_csv, tiny_model, capsys, value):
    code = main(["--dataset", str(tiny_csv), "--model", str(tiny_model), "--out", str(tmp_path / "run"),
                 "--seeds", value])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--seeds" in err and not (tmp_path / "run").exists()


def first_wrong_look(y, predictions, design: sequential.Design, alpha: float) -> bool:
    """Run the looks on prefixes of the seeds drawn up front, reading every look at `alpha`: stop at the first
    look without an inconclusive row; True when a verdict there (or at the cap) is worse. Every method is equally
    good, so any worse verdict is wrong."""
    for n_seeds in design.looks:
        prefix = {m: {s: p[s] for s in range(n_seeds)} for m, p in predictions.items()}
        results = stats.compare_methods(y, prefix, "accuracy", 2, alpha=alpha, resamples=200, seed=n_seeds)
        if any(r.verdict == WORSE for r in results):
            return True
        if not any(r.verdict == INCONCLUSIVE for r in results):
            return False
    return False


def sequential_null(design: sequential.Design, methods: int, experiments: int) -> dict[str, float]:
    rng = np.random.default_rng(900 + design.cap + methods)
    wrong = {"split over the looks": 0, "alpha at every look": 0}
    for _ in range(experiments):
        y, predictions = simulate(rng, {f"m{i}": 0.0 for i in range(methods)}, design.cap, 500, **NOISE["persistent"])
        wrong["split over the looks"] += first_wrong_look(y, predictions, design, design.level(0.05))
        wrong["alpha at every look"] += first_wrong_look(y, predictions, design, 0.05)
    return {rule: count / experiments for rule, count in wrong.items()}


def test_the_default_design_keeps_a_blocks_false_verdicts_within_alpha():
    assert sequential_null(sequential.Design(3, 10), methods=3, experiments=250)["split over the looks"] <= allowance(
        250
    )


def test_peeking_at_alpha_exceeds_it_where_splitting_the_level_over_the_looks_does_not():
    """Seven looks (3 to 30 seeds), two equally good methods: reading each look at alpha marks one of them worse
    in well over alpha of the experiments; the design's alpha / 7 per look stays under it."""
    rates = sequential_null(sequential.Design(3, 30), methods=2, experiments=300)
    assert rates["split over the looks"] <= allowance(300) < rates["alpha at every look"]


def test_force_with_seeds_auto_reruns_each_cell_once(tmp_path, tiny_model, throwaway):
    """A later look's plan holds the earlier looks' seeds too: --force re-runs them at the first look only."""
    throwaway("keyword", Keyword)
    throwaway("coin-at-eight", CoinAtEight)
    data = write_csv(tmp_path / "data.csv", synthetic_rows(100, seed=3))
    command = ["--dataset", str(data), "--model", str(tiny_model), "--out", str(tmp_path / "run"), "--shots", "4,8",
               "--methods", "keyword,coin-at-eight", "--seeds", "auto:2-3"]  # fmt: skip
    assert main(command) == 0
    cells = {r["cell"] for r in records_of(tmp_path / "run")}
    assert main([*command, "--force"]) == 0
    assert len(records_of(tmp_path / "run")) == 2 * len(cells)
