"""``python -m benchmark compare A B``: did something that should not matter change the results?

Two run folders that ran the same cells under a change that claims to keep results (bf16 autocast against fp32,
another machine, other library versions, a code change that keeps a method's revision) are paired cell by cell:
same dataset, method, hyperparameters, budget and seed, on the identical sample (the records' `sample` hashes)
and so the same test set. For each (dataset, budget, method): the mean difference B - A over the shared seeds
with its 95% interval over seeds and test examples (the leaderboard's paired statistics, docs/statistics.md),
its p-value Holm-adjusted over every comparison made, and the share of test predictions that changed. The two
agree on a row when the adjusted p is at least alpha: no difference the data can tell from noise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.errors import UsageError
from benchmark.record import Record

if TYPE_CHECKING:  # the command line imports this module to build its parser: scipy only when comparing
    from benchmark.leaderboard import Labels

# what may differ between A and B and is shown, not matched on
SHOWN = ("precision", "revision", "device")


@dataclass(frozen=True)
class Row:
    dataset: str
    budget: str
    method: str
    seeds: int  # paired seeds
    mean_a: float
    mean_b: float
    delta: float  # B - A
    ci_low: float
    ci_high: float
    p_holm: float
    changed: float  # share of test predictions that differ, over the paired seeds
    agree: bool  # p_holm >= alpha


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    only_a: int  # ok cells with no partner in B
    only_b: int
    unpaired_samples: int  # cells in both whose samples differ (another sampling rule): not compared
    alpha: float


def compare(
    a: list[Record],
    b: list[Record],
    labels: dict[str, Labels],
    metric: str = "macro_f1",
    alpha: float = 0.05,
) -> Comparison:
    """Pair the ok records of A and B (each at most one per cell, see `_by_cell`); `labels`: each dataset
    fingerprint's test labels."""
    from benchmark import stats

    cells_a, cells_b = _by_cell(a, "A"), _by_cell(b, "B")
    groups: dict[tuple, dict[int, tuple[Record, Record]]] = {}  # the cell key less its seed -> seed -> (A, B)
    unpaired = 0
    for key, first in cells_a.items():
        second = cells_b.get(key)
        if second is None:
            continue
        if first.sample is None or first.sample != second.sample:  # None: a record from before sample hashes
            unpaired += 1
            continue
        groups.setdefault(key[:-1], {})[first.seed] = (first, second)
    missing = {key[0] for key in groups} - set(labels)
    if missing:
        raise UsageError(f"no test labels for dataset fingerprint {', '.join(sorted(missing))} in A's folder")
    names = _variant_names(groups)
    rows, order, p_raw = [], [], {}
    for key, by_seed in groups.items():
        first = next(iter(by_seed.values()))[0]
        y_true, num_labels = labels[key[0]].values, labels[key[0]].num_labels
        if metric == "f1_positive" and num_labels != 2:
            raise UsageError(f"--metric f1_positive: {first.dataset} has {num_labels} labels (binary tasks only)")
        preds_a = {seed: np.asarray(pair[0].predictions) for seed, pair in by_seed.items()}
        preds_b = {seed: np.asarray(pair[1].predictions) for seed, pair in by_seed.items()}
        delta, low, high, n, p_raw[len(rows)] = stats.paired_difference(
            y_true, preds_a, preds_b, metric, num_labels, alpha
        )
        mean_a, mean_b = (float(np.mean([pair[i].metrics[metric] for pair in by_seed.values()])) for i in (0, 1))
        changed = float(np.mean([np.mean(preds_a[s] != preds_b[s]) for s in by_seed]))
        rows.append(Row(first.dataset, first.shots.label, names[key], n, mean_a, mean_b, delta, low, high, 1.0,
                        changed, True))  # fmt: skip
        order.append((first.dataset, first.shots.sort_key, rows[-1].method))
    adjusted = stats.holm({str(i): p for i, p in p_raw.items()})
    rows = [replace(row, p_holm=adjusted[str(i)], agree=adjusted[str(i)] >= alpha) for i, row in enumerate(rows)]
    rows = [row for _, row in sorted(zip(order, rows, strict=True), key=lambda pair: pair[0])]
    paired = sum(key in cells_b for key in cells_a)
    return Comparison(rows, len(cells_a) - paired, len(cells_b) - paired, unpaired, alpha)


def _variant_names(groups) -> dict[tuple, str]:
    """The method's name, with the hyperparameters that differ where one method ran with several settings."""
    settings: dict[str, set[str]] = {}
    for key in groups:
        settings.setdefault(key[1], set()).add(key[2])
    names = {}
    for key in groups:
        variants = [json.loads(params) for params in settings[key[1]]]
        if len(variants) == 1:
            names[key] = key[1]
            continue
        mine = json.loads(key[2])
        differing = sorted(k for k in mine if any(v.get(k) != mine[k] for v in variants))
        names[key] = f"{key[1]} [{', '.join(f'{k}={mine[k]}' for k in differing)}]"
    return names


def _by_cell(records: list[Record], name: str) -> dict[tuple, Record]:
    """A folder's ok records by what a cell is apart from SHOWN; two records for one such cell (a folder that
    holds both precisions of a cell) make the pairing ambiguous: refused."""
    cells: dict[tuple, Record] = {}
    for record in records:
        if not record.ok or record.predictions is None:
            continue
        key = (record.dataset_fingerprint, record.method, json.dumps(record.params, sort_keys=True),
               record.model_fingerprint, str(record.shots), record.seed)  # fmt: skip
        if key in cells:
            shown = ", ".join(f"{f} {getattr(cells[key], f)} and {getattr(record, f)}" for f in SHOWN)
            raise UsageError(
                f"{name} holds two runs of {record.dataset} {record.method} {record.shots.label} seed {record.seed} "
                f"({shown}): compare folders that hold one each"
            )
        cells[key] = record
    return cells


def differences(a: list[Record], b: list[Record]) -> list[str]:
    """What the records of A and B say they ran with, where it differs: e.g. 'precision: fp32 | bf16'."""
    lines = []
    for field in SHOWN:
        values = [sorted({str(getattr(r, field)) for r in records if r.ok}) for records in (a, b)]
        if values[0] != values[1]:
            lines.append(f"{field}: {', '.join(values[0]) or '—'} | {', '.join(values[1]) or '—'}")
    return lines


# --- the command ------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("a", type=Path, metavar="A", help="a run folder (the reference)")
    parser.add_argument("b", type=Path, metavar="B", help="a run folder of the same cells, run another way")
    parser.add_argument("--metric", default="macro_f1", help="accuracy, macro_f1 or f1_positive (default: macro_f1)")
    parser.add_argument("--alpha", type=float, default=0.05, help="level of the Holm-adjusted test (default: 0.05)")
    parser.add_argument("--json", type=Path, help="also write every row to this JSON file")
    parser.set_defaults(command=main)


def main(args) -> int:
    from benchmark import console
    from benchmark.leaderboard import Labels
    from benchmark.stats import SUPPORTED_METRICS
    from benchmark.store import RECORDS, read_records, read_test_labels

    if args.metric not in SUPPORTED_METRICS:
        raise UsageError(f"--metric: choose one of {', '.join(SUPPORTED_METRICS)}, not {args.metric!r}")
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha: {args.alpha} is not between 0 and 1")
    for folder in (args.a, args.b):
        if not (folder / RECORDS).is_file():
            raise UsageError(f"{folder} has no {RECORDS}: not a run folder")
    a = list(read_records(args.a).latest_by_cell().values())
    b = list(read_records(args.b).latest_by_cell().values())
    labels = {
        fingerprint: Labels(np.asarray(stored["labels"]), len(stored["label_names"]))
        for fingerprint, stored in read_test_labels(args.a).items()
    }
    result = compare(a, b, labels, args.metric, args.alpha)
    out = console.stdout()
    for line in differences(a, b) or ["precision, revision and device: the same in both"]:
        out.print(line)
    if args.json:
        rows = [asdict(row) for row in result.rows]
        try:
            args.json.write_text(json.dumps({"alpha": args.alpha, "metric": args.metric, "rows": rows}, indent=2))
        except OSError as exc:
            raise UsageError(f"--json {args.json}: cannot write it ({exc.strerror or exc})") from None
    if result.rows:
        out.print(_table(result, args.metric))
        differ = [row for row in result.rows if not row.agree]
        out.print(
            f"{len(result.rows) - len(differ)} of {len(result.rows)} (dataset, budget, method) comparisons agree "
            f"(Holm-adjusted p ≥ {args.alpha}); largest |B - A| {max(abs(row.delta) for row in result.rows):.4f}; "
            f"{np.mean([row.changed for row in result.rows]):.2%} of test predictions changed on average"
        )
    else:
        out.print("no cell ran in both folders on the same sample: nothing to compare")
    for count, what in ((result.only_a, "only in A"), (result.only_b, "only in B")):
        if count:
            out.print(f"{count} ok cells {what}: not compared")
    if result.unpaired_samples:
        out.print(
            f"{result.unpaired_samples} cells in both trained on different samples (or on samples a record from "
            "before schema 2 does not name): not compared"
        )
    return 0


def _table(result: Comparison, metric: str):
    from rich.table import Table

    table = Table(title=f"{metric}: B - A, paired by seed and test example", title_justify="left")
    for column in ("dataset", "budget", "method", "seeds", "A", "B", "B - A", "95% CI", "p (Holm)", "changed", ""):
        table.add_column(column, justify="left" if column in ("dataset", "budget", "method", "") else "right")
    for row in result.rows:
        table.add_row(row.dataset, row.budget, row.method, str(row.seeds), f"{row.mean_a:.3f}", f"{row.mean_b:.3f}",
                      f"{row.delta:+.4f}", f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]", f"{row.p_holm:.3g}",
                      f"{row.changed:.2%}", "agree" if row.agree else "DIFFER")  # fmt: skip
    return table
