"""The tables' cells as display strings, shared by every format (terminal, Markdown, HTML, LaTeX): per (dataset,
budget) a ranked row per method with its interval, its difference to the best and its verdict, and per budget
across datasets a row per method with its per-dataset means and marks; and the mean ± std they show."""

from __future__ import annotations

import math

from benchmark.leaderboard import UNLABELLED_MARK, CrossDataset, Row, Section
from benchmark.stats import paired_differences
from benchmark.verdicts import BEST, INCONCLUSIVE, MARKS, seeds_hint


def mean_std(values: list[float]) -> str:
    """The mean ± sample std (ddof=1; 0 for one value) of a cell's values, or — when there are none."""
    if not values:
        return "—"
    std = (
        math.sqrt(sum((v - sum(values) / len(values)) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    return f"{sum(values) / len(values):.3f}±{std:.3f}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def cells(section: Section, metric: str) -> list[dict[str, str]]:
    """One section's table as display strings, ranked (the columns of `columns`)."""
    out = []
    top = section.rows[0] if section.rows and section.rows[0].ok else None
    for rank, row in enumerate(section.rows, 1):
        values = row.values(metric)
        stats = row.stats
        row_cells = {
            "rank": str(rank) if row.ok else "—",
            "method": row.label + (f" {UNLABELLED_MARK}" if row.uses_unlabelled else ""),
            "95% CI": f"[{stats.ci_low:.3f}, {stats.ci_high:.3f}]" if stats else "—",
            "Δ best": delta(row, top, metric),
            "verdict": _verdict(stats),
            "accuracy": mean_std(row.values("accuracy")),
            "macro_f1": mean_std(row.values("macro_f1")),
            "train s": seconds(row.mean("train_seconds")),
            "predict s": seconds(row.mean("predict_seconds")),
            "one-off s": seconds(row.one_off) if row.one_off >= 0.05 else "—",
            "cells": f"{len(row.ok)} ok" + (f", {len(row.failed)} failed" if row.failed else ""),
        }
        row_cells[metric] = f"{mean_std(values)} n={len(values)}" if values else "failed"
        out.append(row_cells)
    return out


def _verdict(stats) -> str:
    """The verdict in words; an inconclusive one with roughly the paired seeds that would settle it."""
    if stats is None:
        return ""
    if stats.verdict == INCONCLUSIVE:
        return f"inconclusive, {seeds_hint(stats.seeds_to_settle, stats.n_paired, short=True)}"
    return stats.verdict


def delta(row: Row, top: Row | None, metric: str) -> str:
    """The Δ best cell: the difference to the top row with its simultaneous interval; without statistics the
    paired mean difference."""
    if top is None or row is top or not row.values(metric):
        return "—"
    stats = row.stats
    if stats is not None:
        if stats.n_paired == 0:
            return "no shared seed"
        return f"{_signed(stats.delta_to_best)} [{_signed(stats.delta_ci_low)}, {_signed(stats.delta_ci_high)}]"
    diffs = paired_differences(row.ok, top.ok, metric)
    return _signed(sum(diffs) / len(diffs)) if diffs else "—"


def columns(metric: str, statistics: bool) -> list[str]:
    names = ["rank", "method", metric]
    names += ["95% CI", "Δ best", "verdict"] if statistics else ["Δ best"]
    names += ["accuracy", "macro_f1", "train s", "predict s", "one-off s", "cells"]
    return list(dict.fromkeys(names))  # metric may be accuracy or macro_f1 itself


def cross_cells(cross: CrossDataset) -> tuple[list[str], list[dict[str, str]]]:
    """The cross-dataset table of one budget: a row per method, a column per dataset (the mean and its verdict's
    mark; the best in **bold**), then the summaries."""
    summary = cross.summary
    datasets = list(summary.datasets)  # those that can supply the budget; then the n/a ones
    verdicts = {d: {s.method: s.verdict for s in cross.per_dataset.get(d, [])} for d in datasets}
    rows = []
    for method in _by_rank(summary):
        row = {"method": method + (f" {UNLABELLED_MARK}" if method in cross.uses_unlabelled else "")}
        for dataset in datasets:
            mean = summary.per_dataset_means[dataset][method]
            said = verdicts[dataset].get(method)
            if mean is None:
                row[dataset] = "—"
            elif said == BEST:
                row[dataset] = f"**{mean:.3f}**"
            else:
                row[dataset] = f"{mean:.3f} {MARKS[said]}" if said else f"{mean:.3f}"
        row |= dict.fromkeys(cross.unsupplied, "n/a")
        overall = summary.mean_over_datasets[method]
        rank = summary.average_rank[method]
        row["mean"] = "incomplete" if overall is None else f"{overall:.3f}"
        row["avg rank"] = "—" if rank is None else f"{rank:.2f}"
        row["= best on"] = f"{summary.n_best_or_equivalent[method]} of {len(datasets)}"
        row["▼ on"] = f"{summary.n_worse[method]} of {len(datasets)}"
        rows.append(row)
    return ["method", *datasets, *cross.unsupplied, "mean", "avg rank", "= best on", "▼ on"], rows


def _by_rank(summary) -> list[str]:
    """The methods by average rank, those without one last: the cross-dataset table's row order."""
    return sorted(summary.methods, key=lambda m: (summary.average_rank[m] is None, summary.average_rank[m] or 0))


def std(values: list[float]) -> float | None:
    """The sample standard deviation (ddof=1); None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
