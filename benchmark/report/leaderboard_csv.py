"""leaderboard.csv: one line per (dataset, budget, method) with every metric's mean and std, the ranked metric's
statistics and verdict, and the seconds; numbers in fixed digits, an empty field for none."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict

from benchmark.metrics import METRICS
from benchmark.report.analysis import Analysis
from benchmark.report.tables import std


def csv_text(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    stats_fields = ["ci_low", "ci_high", "delta_to_best", "delta_ci_low", "delta_ci_high", "p_raw", "p_adjusted",
                    "verdict", "margin", "family_size", "seeds_to_settle"]  # fmt: skip
    header = ["dataset", "model", "shots", "rank", "method", "uses_unlabelled", "n_ok", "n_failed"]
    header += [f"{name}_{part}" for name in METRICS for part in ("mean", "std")]
    header += [f"{analysis.metric}_{name}" for name in stats_fields]
    header += ["train_seconds_mean", "predict_seconds_mean", "one_off_seconds"]
    writer.writerow(header)
    for section in analysis.sections:
        for rank, row in enumerate(section.rows, 1):
            line = [section.dataset, section.model, section.shots.to_json(), rank if row.ok else "", row.label,
                    row.uses_unlabelled, len(row.ok), len(row.failed)]  # fmt: skip
            for name in METRICS:
                values = row.values(name)
                mean = sum(values) / len(values) if values else None
                line += [_number(mean, 4), _number(std(values), 4)]
            stats = asdict(row.stats) if row.stats else {}
            line += [_csv_value(stats.get(name)) for name in stats_fields]
            line += [
                _number(row.mean("train_seconds"), 2),
                _number(row.mean("predict_seconds"), 2),
                _number(row.one_off or None, 2),
            ]
            writer.writerow(line)
    return buffer.getvalue()


def _csv_value(value) -> str:
    if isinstance(value, float):
        return _number(value, 4)
    return "" if value is None else str(value)


def _number(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}"
