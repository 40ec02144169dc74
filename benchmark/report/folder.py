"""A run folder in, its report files out: `of_folder` analyses a folder's records with the test labels, the
unsupplied budgets, the margin and the sequential design kept beside them (run.json, test_labels.json, or an
embedded dataset's own labels for an older run.json), and `write` writes every report of an analysis into it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark.leaderboard import Labels
from benchmark.record import Record
from benchmark.report.analysis import Analysis, analyse
from benchmark.report.leaderboard_csv import csv_text
from benchmark.report.leaderboard_md import markdown
from benchmark.report.leaderboard_tex import latex
from benchmark.report.plots import draw_plots
from benchmark.report.report_html import page
from benchmark.report.summary_json import summary
from benchmark.verdicts import LEADERBOARD_MARGIN


def of_folder(folder: Path, records: list[Record], metric: str, margin: float | None = None) -> Analysis:
    """The analysis of `records` of a run folder, with the test labels and unsupplied budgets kept beside them;
    the verdicts' margin is `margin`, else the run's own (run.json), else the default, and their level that of the
    run's sequential design, if it had one."""
    from benchmark.grid import sequential
    from benchmark.grid.store import read_run_info, read_test_labels

    info = read_run_info(folder) or {}
    stored = read_test_labels(folder)
    labels = {fp: Labels(np.asarray(v["labels"]), len(v["label_names"])) for fp, v in stored.items()}
    for dataset in _datasets_of(info):
        if dataset.get("fingerprint") not in labels:
            known = _embedded_labels(dataset)
            if known is not None:
                labels[dataset["fingerprint"]] = known
    unsupplied = {}
    for invocation in info.get("invocations", [info]):
        for dataset in _datasets_of(invocation):
            unsupplied[dataset["name"]] = dataset.get("unsupplied_budgets", [])
    return analyse(records, metric, labels, unsupplied, margin or _run_margin(info), sequential.of_run_info(info))


def _run_margin(info: dict) -> float:
    """The margin the newest invocation ran with (run.json's config); the default for runs from before margins."""
    from benchmark.verdicts import check_margin

    value = (info.get("config") or {}).get("margin")
    try:
        return check_margin(value) if value is not None else LEADERBOARD_MARGIN
    except ValueError:
        return LEADERBOARD_MARGIN


def _datasets_of(info: dict) -> list[dict]:
    """The datasets of a run.json entry (schema 1 had one, under 'dataset')."""
    datasets = info.get("datasets") or ([info["dataset"]] if isinstance(info.get("dataset"), dict) else [])
    return [d for d in datasets if isinstance(d, dict) and "name" in d and "fingerprint" in d]


def _embedded_labels(dataset: dict) -> Labels | None:
    """The test labels of an embedded dataset named in an older run.json, if it loads with that fingerprint."""
    from benchmark.data.embedded import EMBEDDED
    from benchmark.errors import UsageError

    if dataset["name"] not in EMBEDDED:
        return None
    try:
        task = EMBEDDED[dataset["name"]].load()
    except UsageError:
        return None
    return Labels(task.test.labels, task.num_labels) if task.fingerprint == dataset["fingerprint"] else None


def write(folder: Path, analysis: Analysis, info: dict | None) -> list[Path]:
    """Every report file into `folder`; returns their paths."""
    folder = Path(folder)
    files = {
        "leaderboard.md": markdown(analysis),
        "leaderboard.csv": csv_text(analysis),
        "leaderboard.tex": latex(analysis),
        "summary.json": json.dumps(summary(analysis), indent=1, allow_nan=False),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    figures = draw_plots(analysis, folder)
    (folder / "report.html").write_text(page(analysis, figures, info), encoding="utf-8")
    plots = [figure.with_suffix(suffix) for figure in figures for suffix in (".png", ".svg")]
    return [folder / name for name in files] + plots + [folder / "report.html"]
