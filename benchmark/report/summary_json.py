"""summary.json, for scripts: one entry per (dataset, budget, method) with its statistics and verdict, and per
budget the cross-dataset summary; NaN and infinities are written as null, so the file is strict JSON."""

from __future__ import annotations

import math
from dataclasses import asdict

from benchmark import leaderboard
from benchmark.leaderboard import CrossDataset
from benchmark.report.analysis import Analysis
from benchmark.report.tables import std


def summary(analysis: Analysis) -> dict:
    """For scripts: one entry per (dataset, budget, method) and the cross-dataset summary per budget. NaN and
    infinities are written as null."""
    entries = []
    for section in analysis.sections:
        for row in section.rows:
            values = row.values(analysis.metric)
            entry = {
                "dataset": section.dataset,
                "model": section.model,
                "budget": section.shots.to_json(),
                "method": row.label,
                "metric": analysis.metric,
                "n_failed": len(row.failed),
                "train_seconds": row.mean("train_seconds"),
                "predict_seconds": row.mean("predict_seconds"),
                "one_off_seconds": row.one_off or None,
            }
            if row.stats is not None:
                entry |= {k: v for k, v in asdict(row.stats).items() if k != "method"}
            else:
                entry |= {"mean": sum(values) / len(values) if values else None, "std": std(values), "n": len(values),
                          "verdict": None}  # fmt: skip
            entries.append(_finite(entry))
    return {
        "metric": analysis.metric,
        "alpha": analysis.alpha,
        "margin": analysis.margin,
        "verdicts": {
            "family": "every pair of a (dataset, budget) block's methods; Bonferroni",
            "block_alpha": analysis.block_alpha,
            "design": analysis.design.describe(analysis.alpha) if analysis.design else None,
            "looks": list(analysis.design.looks) if analysis.design else None,
        },
        "resamples": leaderboard.RESAMPLES,
        "cells": entries,
        "across_datasets": [_finite(_cross_json(cross)) for cross in analysis.cross],
        "superseded": [{"method": m, "revision": r, "cells": n} for m, r, n in analysis.superseded],
    }


def _cross_json(cross: CrossDataset) -> dict:
    summary = cross.summary
    return {
        "budget": cross.budget.to_json(),
        "datasets": list(summary.datasets),
        "unsupplied": cross.unsupplied,
        "methods": {
            m: {
                "mean_over_datasets": summary.mean_over_datasets[m],
                "average_rank": summary.average_rank[m],
                "n_best_or_equivalent": summary.n_best_or_equivalent[m],
                "n_worse": summary.n_worse[m],
                "n_datasets": summary.n_datasets[m],
                "per_dataset_means": {d: summary.per_dataset_means[d][m] for d in summary.datasets},
            }
            for m in summary.methods
        },
        "rank_datasets": list(summary.rank_datasets),
        "friedman_p": summary.friedman_p,
        "pairwise_wilcoxon_holm_p": summary.pairwise_p,
        "test_note": summary.test_note,
    }


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
