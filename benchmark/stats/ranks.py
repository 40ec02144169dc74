"""One budget across datasets: each method's per-dataset means, its mean over datasets (only when it has every
one), its average rank over the datasets where every method has a result, how often it is the best or equivalent
to it and how often worse, and, with enough complete datasets, Friedman's test and pairwise Wilcoxon signed-rank
tests with Holm's adjustment (`summarize_across_datasets`); and the rank diagram drawn from them."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

import numpy as np
from scipy import stats

from benchmark.stats.comparison import MethodStats
from benchmark.verdicts import BEST, EQUIVALENT, WORSE

MIN_DATASETS_FOR_TESTS = 6  # the smallest N at which an exact two-sided Wilcoxon p-value can fall below 0.05


@dataclass(frozen=True)
class BudgetSummary:
    """Methods across the datasets of one budget. Dataset and method orders are those of the input."""

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    per_dataset_means: dict[str, dict[str, float | None]]  # dataset -> method -> mean (None: no result)
    mean_over_datasets: dict[str, float | None]  # None ('incomplete') unless the method has every dataset
    average_rank: dict[str, float | None]  # over rank_datasets (1 = best, ties averaged); None if there are none
    rank_datasets: tuple[str, ...]  # datasets where every method has a result: ranks and tests use these only
    n_datasets: dict[str, int]  # datasets where the method has a result
    n_best_or_equivalent: dict[str, int]  # of those, where it is the best or equivalent to the best
    n_worse: dict[str, int]  # where it is worse than the best
    friedman_p: float | None
    pairwise_p: dict[str, dict[str, float]] | None  # Wilcoxon signed-rank over rank_datasets, Holm-adjusted
    test_note: str | None  # why a test did not run (None when every test ran)
    alpha: float


def summarize_across_datasets(per_dataset: dict[str, list[MethodStats]], alpha: float = 0.05) -> BudgetSummary:
    """One budget across datasets: means, average ranks, verdict counts and, with 6+ complete datasets, tests.

    Ranks and tests use only the datasets where every method has a result (a method missing from one dataset
    removes that dataset from the ranking rather than being ranked on fewer datasets than the others).
    """
    datasets = tuple(per_dataset)
    methods = tuple(dict.fromkeys(s.method for results in per_dataset.values() for s in results))
    by_dataset = {d: {s.method: s for s in results} for d, results in per_dataset.items()}
    means = {d: {m: (by_dataset[d][m].mean if m in by_dataset[d] else None) for m in methods} for d in datasets}
    mean_over = {
        m: fmean(means[d][m] for d in datasets) if all(means[d][m] is not None for d in datasets) else None
        for m in methods
    }
    complete = tuple(d for d in datasets if all(means[d][m] is not None for m in methods))
    rows = [[means[d][m] for m in methods] for d in complete]
    table = np.array(rows, dtype=float).reshape(len(complete), len(methods))  # (0, methods) when none is complete
    if complete:
        ranks = stats.rankdata(-table, axis=1, method="average")  # 1 = highest mean; ties share the average rank
        average_rank = {m: float(ranks[:, j].mean()) for j, m in enumerate(methods)}
    else:
        average_rank = dict.fromkeys(methods)
    n_datasets = {m: sum(m in by_dataset[d] for d in datasets) for m in methods}
    verdicts = {m: [by_dataset[d][m].verdict for d in datasets if m in by_dataset[d]] for m in methods}

    friedman_p, pairwise_p, note = None, None, None
    if len(methods) < 2:
        note = "fewer than 2 methods: nothing to test"
    elif len(complete) < MIN_DATASETS_FOR_TESTS:
        note = (
            f"too few datasets for a test: {len(complete)} with every method's result, a test needs at least "
            f"{MIN_DATASETS_FOR_TESTS} (below that a two-sided Wilcoxon p-value cannot fall below 0.05)"
        )
    else:
        pairwise_p = _pairwise_wilcoxon_holm(table, methods)
        if len(methods) >= 3:
            with np.errstate(invalid="ignore"):  # every dataset a full tie: 0/0, no evidence of a difference
                friedman_p = _nan_to_one(stats.friedmanchisquare(*table.T).pvalue)
        else:
            note = "Friedman needs at least 3 methods: only the pairwise Wilcoxon test ran"
    return BudgetSummary(
        datasets=datasets,
        methods=methods,
        per_dataset_means=means,
        mean_over_datasets=mean_over,
        average_rank=average_rank,
        rank_datasets=complete,
        n_datasets=n_datasets,
        n_best_or_equivalent={m: sum(v in (BEST, EQUIVALENT) for v in verdicts[m]) for m in methods},
        n_worse={m: verdicts[m].count(WORSE) for m in methods},
        friedman_p=friedman_p,
        pairwise_p=pairwise_p,
        test_note=note,
        alpha=alpha,
    )


def draw_rank_diagram(summary: BudgetSummary, ax) -> None:
    """A critical-difference diagram (Wilcoxon-Holm cliques) when the tests ran, else a plain average-rank plot."""
    import textwrap

    ranked = {m: r for m, r in summary.average_rank.items() if r is not None}
    if not ranked:
        ax.text(0.5, 0.5, "no dataset has every method's result: no ranks", ha="center", va="center")
        ax.set_axis_off()
        return
    if summary.pairwise_p is not None:
        import pandas as pd
        import scikit_posthocs

        scikit_posthocs.critical_difference_diagram(
            pd.Series(ranked), pd.DataFrame(summary.pairwise_p), ax=ax, alpha=summary.alpha
        )
        title = (
            f"average rank over {len(summary.rank_datasets)} datasets; a bar joins methods not distinguishable "
            f"(Wilcoxon, Holm, alpha={summary.alpha})"
        )
        ax.set_title(textwrap.fill(title, 80), fontsize="small", pad=20)
        return
    names = sorted(ranked, key=ranked.get)
    positions = np.arange(len(names))
    ax.scatter([ranked[m] for m in names], positions)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0.5, len(summary.methods) + 0.5)
    ax.set_xlabel(f"average rank over {len(summary.rank_datasets)} datasets (1 = best)")
    ax.set_title(textwrap.fill(summary.test_note or "", 80), fontsize="small")


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values, by name."""
    if len(p_values) < 2:  # Holm over one comparison is that comparison; multipletests' gc.collect() costs ~0.1 s
        return {name: float(p) for name, p in p_values.items()}
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests(list(p_values.values()), method="holm")[1]
    return {name: float(p) for name, p in zip(p_values, adjusted, strict=True)}


def _nan_to_one(p: float) -> float:
    """A test on identical values has no evidence of a difference; scipy returns nan for it."""
    return 1.0 if np.isnan(p) else float(p)


def _pairwise_wilcoxon_holm(table: np.ndarray, methods: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Wilcoxon signed-rank p-values over datasets for every pair, Holm-adjusted over all pairs (Benavoli 2016)."""
    pairs = [(i, j) for i in range(len(methods)) for j in range(i + 1, len(methods))]
    raw = {}
    for i, j in pairs:
        if np.all(table[:, i] == table[:, j]):
            raw[(i, j)] = 1.0
            continue
        raw[(i, j)] = _nan_to_one(stats.wilcoxon(table[:, i], table[:, j]).pvalue)
    adjusted = holm({f"{i},{j}": p for (i, j), p in raw.items()})
    matrix = {a: {b: 1.0 for b in methods} for a in methods}
    for i, j in pairs:
        p = adjusted[f"{i},{j}"]
        matrix[methods[i]][methods[j]] = matrix[methods[j]][methods[i]] = p
    return matrix
