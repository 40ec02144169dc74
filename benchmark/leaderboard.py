"""Leaderboards from records alone: per (dataset, model, budget), methods ranked by the mean of one metric, with
the statistics of `benchmark.stats` (a 95% interval for each method, its paired difference to the best with an
interval simultaneous over the block, and the verdict read from it: equivalent, worse or inconclusive), and per
budget across datasets.

How cells are counted: each row aggregates the newest record of each cell. Failed cells are counted and shown
(``2 ok, 1 failed``), never averaged in as zeros; a row whose cells all failed ranks last and shows ``failed``.
Means and sample standard deviations (ddof=1) are over the seeds that finished. Paired comparisons use the
seeds both methods finished on the identical sample (the records' `sample` hashes agree). Records of one method
with other hyperparameters or another precision are rows of their own, labelled with what differs
(``full [lr=0.0001]``). Records of an older revision of a method's code than the newest in the records are
superseded: left out of the tables (`superseded` counts them; the reports say so). Across datasets, a method
missing a dataset (failed, not run, or a budget the dataset cannot supply) makes its mean "incomplete", never an
average over fewer datasets. A record the tables cannot use as it is (a score that is not a number, predictions
that do not fit the test labels) counts as a failed cell, with a note (`screen`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from benchmark.budget import Budget
from benchmark.record import FAILED, Record
from benchmark.stats import (
    BudgetSummary,
    MethodStats,
    agreed_samples,
    compare_methods,
    same_sample,
    summarize_across_datasets,
)
from benchmark.verdicts import ALPHA, LEADERBOARD_MARGIN

UNLABELLED_MARK = "†"
RESAMPLES = 10_000


@dataclass
class Row:
    method: str
    label: str
    uses_unlabelled: bool = False
    ok: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    one_off: float = 0.0  # seconds of the work every cell of this method reuses, at every budget (0: none)
    stats: MethodStats | None = None  # None: no test labels to compute them from, or no finished cell

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.ok if metric in r.metrics]

    def mean(self, field_name: str) -> float | None:
        values = [getattr(r, field_name) for r in self.ok if getattr(r, field_name) is not None]
        return statistics.fmean(values) if values else None


@dataclass
class Section:
    dataset: str
    model: str
    shots: Budget
    rows: list[Row]
    fingerprint: str = ""

    @property
    def title(self) -> str:
        return f"{self.dataset} · {self.model} · {self.shots.label}"


@dataclass
class Labels:
    """A dataset's test labels, which the statistics need beside the records' predictions."""

    values: np.ndarray
    num_labels: int


def screen(records: list[Record], labels: dict[str, Labels]) -> tuple[list[Record], list[str]]:
    """The records with every ok one the tables cannot use turned into a failed cell, and a note for each: a metric
    that is not a finite number (a NaN would make a NaN mean, silently), or predictions that do not fit the
    dataset's test labels (length, label ids). Records are never edited on disk; this is how they are read."""
    out, notes = [], []
    for record in records:
        problem = _unusable(record, labels.get(record.dataset_fingerprint)) if record.ok else None
        if problem is None:
            out.append(record)
            continue
        where = f"{record.dataset} {record.method} {record.shots.label} seed {record.seed}"
        notes.append(f"{where}: {problem}; counted as a failed cell")
        error = {"type": "UnusableRecord", "message": problem}
        out.append(dataclasses.replace(record, status=FAILED, error=error, metrics={}))
    return out, notes


def _unusable(record: Record, labels: Labels | None) -> str | None:
    for name, value in record.metrics.items():
        if not math.isfinite(value):
            return f"its {name} is {value}, not a score"
    if labels is not None and record.predictions is not None:
        predictions = record.predictions
        if len(predictions) != len(labels.values):
            return f"it holds {len(predictions)} predictions for {len(labels.values)} test examples"
        if not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < labels.num_labels for p in predictions):
            return f"its predictions are not all label ids in [0, {labels.num_labels})"
    return None


def build(
    records: list[Record],
    metric: str = "macro_f1",
    labels: dict[str, Labels] | None = None,
    alpha: float = ALPHA,
    margin: float = LEADERBOARD_MARGIN,
) -> list[Section]:
    """Sections ranked by `metric`; with the test `labels` of a dataset (by fingerprint), its statistics and
    verdicts (at family-wise level `alpha` per block, with equivalence `margin`)."""
    current, _ = _by_revision(records)
    grouped: dict[tuple, dict[tuple, Row]] = defaultdict(dict)
    variants: dict[str, set[str]] = defaultdict(set)  # per method over the whole run: one label per variant
    fingerprints: dict[tuple, str] = {}
    # the one-off work serves every budget, so every budget's row shows its cost, also where cells loaded it
    one_off: dict[tuple, float] = defaultdict(float)  # (dataset, model, method, variant) -> seconds
    for record in current:
        variant = _variant(record)
        key = (record.dataset, record.model, record.shots)
        fingerprints[key] = record.dataset_fingerprint
        variants[record.method].add(variant)
        new_row = Row(record.method, record.method, record.uses_unlabelled)
        row = grouped[key].setdefault((record.method, variant), new_row)
        (row.ok if record.ok else row.failed).append(record)
        if record.ok:
            method_key = (*key[:2], record.method, variant)
            one_off[method_key] = max(one_off[method_key], record.one_off_seconds or 0.0)
    sections = []
    for key in sorted(grouped, key=lambda k: (k[0], k[1], k[2].sort_key)):
        for (method, variant), row in grouped[key].items():
            row.one_off = one_off.get((*key[:2], method, variant), 0.0)
            row.label = variant_label(method, variant, variants[method])
        section = Section(*key, list(grouped[key].values()), fingerprints[key])
        _rank(section, metric, (labels or {}).get(section.fingerprint), alpha, margin)
        sections.append(section)
    return sections


def superseded(records: list[Record]) -> Counter[tuple[str, int]]:
    """(method, revision) -> cells the tables leave out because the records hold a newer revision of the method's
    code: raising a revision declares the old code's results outdated (docs/protocol.md); they stay on disk."""
    return Counter((r.method, r.revision) for r in _by_revision(records)[1])


def _by_revision(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """The newest record of each cell, split into those of their method's newest revision and the superseded."""
    latest = {r.cell: r for r in records}.values()
    newest: dict[str, int] = {}
    for record in latest:
        newest[record.method] = max(newest.get(record.method, record.revision), record.revision)
    current = [r for r in latest if r.revision == newest[r.method]]
    return current, [r for r in latest if r.revision < newest[r.method]]


def _rank(section: Section, metric: str, labels: Labels | None, alpha: float, margin: float) -> None:
    """Order the rows best first and attach their statistics when the test labels are known."""
    section.rows.sort(
        key=lambda r: (not r.values(metric), -(statistics.fmean(r.values(metric)) if r.values(metric) else 0), r.label)
    )
    if labels is None or not any(r.values(metric) for r in section.rows):
        return
    samples = agreed_samples(r for row in section.rows for r in row.ok)
    predictions = {
        row.label: {
            r.seed: np.asarray(r.predictions)
            for r in row.ok
            if r.predictions is not None and same_sample(r.sample, samples.get(r.seed)) and metric in r.metrics
        }
        for row in section.rows
    }
    results = compare_methods(
        labels.values, predictions, metric, labels.num_labels, alpha=alpha, margin=margin, resamples=RESAMPLES
    )
    by_label = {s.method: s for s in results}
    for row in section.rows:
        row.stats = by_label.get(row.label)
    order = {s.method: i for i, s in enumerate(results)}
    section.rows.sort(key=lambda r: (order.get(r.label, len(order)), r.label))


def _variant(record: Record) -> str:
    """The method's configuration: its hyperparameters and the revision of its code (and the precision, so that
    tables from different precisions never mix)."""
    return variant_key(record.params | {"revision": record.revision, "precision": record.precision})


def variant_key(settings: dict) -> str:
    """One configuration of a method as a key: its settings as canonical JSON (keys sorted)."""
    return json.dumps(settings, sort_keys=True)


def variant_label(method: str, variant: str, variants: set[str], separator: str = ",") -> str:
    """The row label of one configuration (`variant_key`) of a method that ran with `variants`: the method's name,
    with the settings that differ between its variants where there are several, e.g. ``full [lr=0.0001]`` (the
    leaderboard joins them with ",", `compare` with ", ")."""
    if len(variants) == 1:
        return method
    settings = json.loads(variant)
    others = [json.loads(v) for v in variants]
    differing = sorted(k for k in settings if any(o.get(k) != settings[k] for o in others))
    return f"{method} [" + separator.join(f"{k}={settings[k]}" for k in differing) + "]"


# --- across datasets --------------------------------------------------------------------------------------


@dataclass
class CrossDataset:
    """One budget across the datasets of a run: the statistics' summary, and what was not run."""

    budget: Budget
    summary: BudgetSummary
    unsupplied: list[str]  # datasets that cannot supply this budget (n/a)
    per_dataset: dict[str, list[MethodStats]]  # the statistics the summary was made from
    uses_unlabelled: frozenset[str] = frozenset()  # labels of the methods that read the unlabelled pool


def across_datasets(
    sections: list[Section], unsupplied: dict[str, list[str]] | None = None, alpha: float = ALPHA
) -> list[CrossDataset]:
    """Per budget with two or more datasets (counting those that cannot supply it), the cross-dataset summary
    over the datasets that can supply it: one that cannot is n/a for every method alike, so it is listed, not
    counted (a mean over the others compares). A dataset without statistics (test labels unknown) is left out."""
    unsupplied = unsupplied or {}
    by_budget: dict[Budget, dict[str, list[MethodStats]]] = defaultdict(dict)
    unlabelled: dict[Budget, set[str]] = defaultdict(set)  # rows that read the unlabelled pool
    datasets = sorted({s.dataset for s in sections} | set(unsupplied))
    for section in sections:
        results = [row.stats for row in section.rows if row.stats is not None]
        if results:
            by_budget[section.shots][section.dataset] = results
        unlabelled[section.shots] |= {row.label for row in section.rows if row.uses_unlabelled}
    out = []
    for budget in sorted(by_budget, key=lambda b: b.sort_key):
        missing = [d for d in datasets if str(budget) in unsupplied.get(d, [])]
        if len(by_budget[budget]) + len(missing) < 2:
            continue
        per_dataset = dict(by_budget[budget])
        summary = summarize_across_datasets(per_dataset, alpha)
        out.append(CrossDataset(budget, summary, missing, per_dataset, frozenset(unlabelled[budget])))
    return out
