"""Leaderboards from records alone: per (dataset, model, budget), methods ranked by the mean of one metric.

How cells are counted: each row aggregates the newest record of each cell. Failed cells are counted and shown
(``2 ok, 1 failed``), never averaged in as zeros; a row whose cells all failed ranks last and shows ``failed``.
Means and sample standard deviations (ddof=1) are over the seeds that finished. ``Δ top`` is the paired
difference to the top row: the mean over the seeds both rows finished on the identical sample (the records'
`sample` hashes agree) of (this row - top row). Records of one method with other hyperparameters or another
revision of its code are rows of their own, labelled with what differs (``full [lr=0.0001]``,
``setfit [revision=2]``).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.budget import Budget
from benchmark.record import Record

UNLABELLED_MARK = "†"


@dataclass
class Row:
    method: str
    label: str
    uses_unlabelled: bool = False
    ok: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    one_off: float = 0.0  # seconds of the work every cell of this method reuses, at every budget (0: none)

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.ok if metric in r.metrics]

    def by_seed(self, metric: str) -> dict[int, tuple[str | None, float]]:
        """seed -> (the sample's hash, the metric)."""
        return {r.seed: (r.sample, r.metrics[metric]) for r in self.ok if metric in r.metrics}

    def mean(self, field_name: str) -> float | None:
        values = [getattr(r, field_name) for r in self.ok if getattr(r, field_name) is not None]
        return statistics.fmean(values) if values else None


@dataclass
class Section:
    dataset: str
    model: str
    shots: Budget
    rows: list[Row]


def build(records: list[Record], metric: str = "macro_f1") -> list[Section]:
    latest = {r.cell: r for r in records}
    grouped: dict[tuple, dict[tuple, Row]] = defaultdict(dict)
    variants: dict[tuple, set[str]] = defaultdict(set)
    # the one-off work serves every budget, so every budget's row shows its cost, also where cells loaded it
    one_off: dict[tuple, float] = defaultdict(float)  # (dataset, model, method, variant) -> seconds
    for record in latest.values():
        variant = _variant(record)
        section_key = (record.dataset, record.model, record.shots)
        variants[(section_key, record.method)].add(variant)
        row = grouped[section_key].setdefault(
            (record.method, variant), Row(record.method, record.method, record.uses_unlabelled)
        )
        (row.ok if record.ok else row.failed).append(record)
        if record.ok:
            method_key = (*section_key[:2], record.method, variant)
            one_off[method_key] = max(one_off[method_key], record.one_off_seconds or 0.0)
    sections = []
    for section_key in sorted(grouped, key=lambda k: (k[0], k[1], k[2].sort_key)):
        rows = list(grouped[section_key].values())
        for (method, variant), row in grouped[section_key].items():
            row.one_off = one_off.get((*section_key[:2], method, variant), 0.0)
            if len(variants[(section_key, method)]) > 1:
                row.label = f"{method} {_variant_label(variant, variants[(section_key, method)])}"
        rows.sort(key=lambda r: (not r.ok, -(statistics.fmean(r.values(metric)) if r.values(metric) else 0), r.label))
        sections.append(Section(*section_key, rows))
    return sections


def _variant(record: Record) -> str:
    """The method's configuration: its hyperparameters and the revision of its code (and the precision, so that
    tables from different precisions never mix). Records of an older revision are another variant."""
    return json.dumps(record.params | {"revision": record.revision, "precision": record.precision}, sort_keys=True)


def _variant_label(variant: str, all_variants: set[str]) -> str:
    """The hyperparameters that differ between the variants of one method, e.g. [lr=0.0001]."""
    params = json.loads(variant)
    others = [json.loads(v) for v in all_variants]
    differing = [k for k in params if any(o.get(k) != params[k] for o in others)]
    return "[" + ",".join(f"{k}={params[k]}" for k in differing) + "]"


def _fmt_stat(values: list[float]) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f}±{std:.3f}"


def _fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table_rows(section: Section, metric: str) -> list[dict[str, str]]:
    """The cells of one section's table as display strings, ranked."""
    top = section.rows[0] if section.rows and section.rows[0].ok else None
    out = []
    for rank, row in enumerate(section.rows, 1):
        values = row.values(metric)
        delta = "—"
        if top is not None and row is not top and values:
            diffs = paired_differences(row.by_seed(metric), top.by_seed(metric))
            if diffs:
                delta = f"{statistics.fmean(diffs):+.3f}"
        status = f"{len(row.ok)} ok" + (f", {len(row.failed)} failed" if row.failed else "")
        cells = {
            "rank": str(rank) if row.ok else "—",
            "method": row.label + (f" {UNLABELLED_MARK}" if row.uses_unlabelled else ""),
            "Δ top": delta,
            "accuracy": _fmt_stat(row.values("accuracy")),
            "macro_f1": _fmt_stat(row.values("macro_f1")),
            "train s": _fmt_seconds(row.mean("train_seconds")),
            "predict s": _fmt_seconds(row.mean("predict_seconds")),
            "one-off s": _fmt_seconds(row.one_off) if row.one_off >= 0.05 else "—",
            "cells": status,
        }
        cells[metric] = (_fmt_stat(values) + f" n={len(values)}") if values else "failed"
        out.append(cells)
    return out


def paired_differences(mine: dict[int, tuple], theirs: dict[int, tuple]) -> list[float]:
    """Per seed both finished on the identical sample: this value minus theirs. Records from before samples were
    hashed (None) pair by seed, as they were made."""
    return [
        value - theirs[seed][1]
        for seed, (sample, value) in sorted(mine.items())
        if seed in theirs and (sample == theirs[seed][0] or None in (sample, theirs[seed][0]))
    ]


def _columns(metric: str) -> list[str]:
    columns = ["rank", "method", metric, "Δ top", "accuracy", "macro_f1", "train s", "predict s", "one-off s", "cells"]
    return list(dict.fromkeys(columns))  # metric may be accuracy or macro_f1 itself


def _title(section: Section) -> str:
    return f"{section.dataset} · {section.model} · {section.shots.label}"


UNLABELLED_NOTE = f"{UNLABELLED_MARK} also trains on the unlabelled texts of the whole train pool. "
FOOTNOTE = (
    "mean±sample std over n seeds; Δ top: paired mean difference to the top row over the seeds both finished; "
    "train/predict s: mean per cell; one-off s: what the work that every cell of the method reuses (frozen "
    "features, an adapted encoder) took when it was done, in this run or in the one that cached it."
)


def _footnote(sections: list[Section]) -> str:
    marked = any(row.uses_unlabelled for section in sections for row in section.rows)
    return (UNLABELLED_NOTE if marked else "") + FOOTNOTE


def render_markdown(sections: list[Section], metric: str) -> str:
    parts = [f"# Leaderboard (ranked by {metric})\n"]
    for section in sections:
        columns = _columns(metric)
        parts.append(f"## {_title(section)}\n")
        parts.append("| " + " | ".join(columns) + " |")
        parts.append("|" + "|".join("---" for _ in columns) + "|")
        for cells in table_rows(section, metric):
            parts.append("| " + " | ".join(cells[c] for c in columns) + " |")
        parts.append("")
    parts.append(_footnote(sections) + "\n")
    return "\n".join(parts)


def render_csv(sections: list[Section], metric: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    stats = ("accuracy", "macro_f1", "f1_positive")
    header = ["dataset", "model", "shots", "rank", "method", "uses_unlabelled", "n_ok", "n_failed"]
    for name in stats:
        header += [f"{name}_mean", f"{name}_std"]
    header += ["train_seconds_mean", "predict_seconds_mean", "one_off_seconds"]
    writer.writerow(header)
    for section in sections:
        for rank, row in enumerate(section.rows, 1):
            line = [
                section.dataset,
                section.model,
                section.shots.to_json(),
                rank if row.ok else "",
                row.label,
                row.uses_unlabelled,
                len(row.ok),
                len(row.failed),
            ]
            for name in stats:
                values = row.values(name)
                line += [
                    f"{statistics.fmean(values):.4f}" if values else "",
                    f"{statistics.stdev(values):.4f}" if len(values) > 1 else "",
                ]
            line += [
                _round(row.mean("train_seconds")),
                _round(row.mean("predict_seconds")),
                _round(row.one_off or None),
            ]
            writer.writerow(line)
    return buffer.getvalue()


def _round(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def print_rich(sections: list[Section], metric: str, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not sections:
        console.print("no finished cells yet")
        return
    for section in sections:
        table = Table(title=_title(section), title_justify="left")
        for column in _columns(metric):
            table.add_column(column, justify="left" if column in ("method", "cells") else "right")
        for cells in table_rows(section, metric):
            style = "red" if cells["rank"] == "—" else None
            table.add_row(*(cells[c] for c in _columns(metric)), style=style)
        console.print(table)
    console.print(_footnote(sections), style="dim")


def write(folder: Path, sections: list[Section], metric: str) -> None:
    (Path(folder) / "leaderboard.md").write_text(render_markdown(sections, metric), encoding="utf-8")
    (Path(folder) / "leaderboard.csv").write_text(render_csv(sections, metric), encoding="utf-8")
