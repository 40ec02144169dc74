"""``python -m benchmark compare A B``: did something that should not matter change the results?

Two run folders that ran the same cells under a change that claims to keep results (bf16 autocast against fp32,
another machine, other library versions, a code change that keeps a method's revision) are paired cell by cell:
same dataset, method, hyperparameters, budget and seed, on the identical sample (the records' `sample` hashes)
and so the same test set. For each (dataset, budget, method): the mean difference B - A over the shared seeds,
its interval over seeds and test examples (the leaderboard's paired statistics, docs/statistics.md) made
simultaneous over every row of the comparison (Bonferroni), the verdict read from that interval alone
(equivalent: inside +-margin; differs: excludes 0; inconclusive: neither, with roughly the paired seeds that
would settle it), and the share of test predictions that changed. The command exits 0 only when every row is
equivalent: "nothing moved" is then a claim the data back, not an absence of evidence.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.errors import UsageError
from benchmark.metrics import METRICS
from benchmark.record import Record
from benchmark.verdicts import (
    ALPHA,
    COMPARE_MARGIN,
    DIFFERS,
    EQUIVALENT,
    INCONCLUSIVE,
    MAX_SEEDS_TO_SETTLE,
    check_alpha,
    check_margin,
    seeds_hint,
)

if TYPE_CHECKING:  # the command line imports this module to build its parser: scipy only when comparing
    from benchmark.leaderboard import Labels

# what may differ between A and B and is shown, not matched on
SHOWN = ("precision", "revision", "device")
EXIT_EQUIVALENT, EXIT_NOT_EQUIVALENT = 0, 1


@dataclass(frozen=True)
class Row:
    dataset: str
    budget: str
    method: str
    seeds: int  # paired seeds
    mean_a: float
    mean_b: float
    delta: float  # B - A
    ci_low: float  # simultaneous over every row (level 1 - alpha / rows): the verdict is read from it
    ci_high: float
    p_raw: float  # two-sided, of B - A == 0, unadjusted
    p_adjusted: float  # Bonferroni over the rows: below alpha exactly when the interval excludes 0
    changed: float  # share of test predictions that differ, over the paired seeds
    verdict: str  # EQUIVALENT, DIFFERS or INCONCLUSIVE
    seeds_to_settle: int | None  # inconclusive only: paired seeds that would roughly settle it (None: unknown)
    interval: str  # what the interval covers: seeds and test set, or the test set only (one paired seed)


@dataclass(frozen=True)
class Comparison:
    rows: list[Row]
    only_a: int  # ok cells with no partner in B
    only_b: int
    unpaired_samples: int  # cells in both whose samples differ (another sampling rule): not compared
    alpha: float
    margin: float
    notes: tuple[str, ...] = ()  # records left out because they could not be used as they are

    @property
    def family_size(self) -> int:
        return max(1, len(self.rows))

    @property
    def all_equivalent(self) -> bool:
        return bool(self.rows) and all(row.verdict == EQUIVALENT for row in self.rows)


def compare(
    a: list[Record],
    b: list[Record],
    labels: dict[str, Labels],
    metric: str = "macro_f1",
    alpha: float = ALPHA,
    margin: float = COMPARE_MARGIN,
) -> Comparison:
    """Pair the ok records of A and B (each at most one per cell, see `_by_cell`); `labels`: each dataset
    fingerprint's test labels. A record whose score is not a number or whose predictions do not fit the test
    labels is left out, with a note."""
    from benchmark import leaderboard, stats

    a, notes_a = leaderboard.screen(a, labels)
    b, notes_b = leaderboard.screen(b, labels)
    notes = tuple(f"A: {n}" for n in notes_a) + tuple(f"B: {n}" for n in notes_b)
    cells_a, cells_b = _by_cell(a, "A"), _by_cell(b, "B")
    groups: dict[tuple, dict[int, tuple[Record, Record]]] = {}  # the cell key less its seed -> seed -> (A, B)
    unpaired = 0
    for key, first in cells_a.items():
        second = cells_b.get(key)
        if second is None:
            continue
        if not stats.same_sample(first.sample, second.sample, unhashed_pairs=False):  # an unhashed sample may differ
            unpaired += 1
            continue
        groups.setdefault(key[:-1], {})[first.seed] = (first, second)
    missing = {key[0] for key in groups} - set(labels)
    if missing:
        raise UsageError(f"no test labels for dataset fingerprint {', '.join(sorted(missing))} in A's folder")
    names = _variant_names(groups)
    measured = []  # (sort key, fields, stats.Difference)
    for key, by_seed in groups.items():
        first = next(iter(by_seed.values()))[0]
        y_true, num_labels = labels[key[0]].values, labels[key[0]].num_labels
        if metric == "f1_positive" and num_labels != 2:
            raise UsageError(f"--metric f1_positive: {first.dataset} has {num_labels} labels (binary tasks only)")
        preds_a = {seed: np.asarray(pair[0].predictions) for seed, pair in by_seed.items()}
        preds_b = {seed: np.asarray(pair[1].predictions) for seed, pair in by_seed.items()}
        difference = stats.paired_difference(y_true, preds_a, preds_b, metric, num_labels)
        mean_a, mean_b = (float(np.mean([pair[i].metrics[metric] for pair in by_seed.values()])) for i in (0, 1))
        changed = float(np.mean([np.mean(preds_a[s] != preds_b[s]) for s in by_seed]))
        fields = {"dataset": first.dataset, "budget": first.shots.label, "method": names[key],
                  "seeds": difference.n_seeds, "mean_a": mean_a, "mean_b": mean_b, "changed": changed}  # fmt: skip
        measured.append(((first.dataset, first.shots.sort_key, names[key]), fields, difference))
    rows = []
    for _, fields, difference in sorted(measured, key=lambda item: item[0]):
        judged = stats.judge(difference, alpha, margin, family=len(measured))  # Bonferroni over every row
        covers = stats.INTERVAL_TEST_ONLY if difference.n_seeds == 1 else stats.INTERVAL_SEEDS_AND_TEST
        rows.append(Row(**fields, delta=difference.estimate, ci_low=judged.low, ci_high=judged.high,
                        p_raw=judged.p_raw, p_adjusted=judged.p_adjusted, verdict=judged.verdict,
                        seeds_to_settle=judged.seeds_to_settle, interval=covers))  # fmt: skip
    paired = sum(key in cells_b for key in cells_a)
    return Comparison(rows, len(cells_a) - paired, len(cells_b) - paired, unpaired, alpha, margin, notes)


def _variant_names(groups) -> dict[tuple, str]:
    """The method's name, with the hyperparameters that differ where one method ran with several settings."""
    from benchmark.leaderboard import variant_label

    settings: dict[str, set[str]] = {}
    for key in groups:
        settings.setdefault(key[1], set()).add(key[2])
    return {key: variant_label(key[1], key[2], settings[key[1]], separator=", ") for key in groups}


def _by_cell(records: list[Record], name: str) -> dict[tuple, Record]:
    """A folder's ok records by what a cell is apart from SHOWN; two records for one such cell (a folder that
    holds both precisions of a cell) make the pairing ambiguous: refused."""
    from benchmark.leaderboard import variant_key

    cells: dict[tuple, Record] = {}
    for record in records:
        if not record.ok or record.predictions is None:
            continue
        key = (record.dataset_fingerprint, record.method, variant_key(record.params), record.model_fingerprint,
               str(record.shots), record.seed)  # fmt: skip
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
    names = f"{', '.join(METRICS[:-1])} or {METRICS[-1]}"
    parser.add_argument("--metric", default="macro_f1", help=f"{names} (default: macro_f1)")
    parser.add_argument("--alpha", type=_level, default=ALPHA, help="family-wise level over every row of the "
                        f"comparison (default: {ALPHA})")  # fmt: skip
    parser.add_argument(
        "--margin",
        type=_margin,
        default=COMPARE_MARGIN,
        help="a row is equivalent when its "
        f"interval lies inside +-margin, in the metric's units (default: {COMPARE_MARGIN})",
    )
    parser.add_argument("--json", type=Path, help="also write every row to this JSON file")
    parser.set_defaults(command=main)


def _level(text: str) -> float:
    try:
        return check_alpha(text, "--alpha")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _margin(text: str) -> float:
    try:
        return check_margin(text, "--margin")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(args) -> int:
    """0 when every row is equivalent; 1 when any differs or is inconclusive, or nothing could be compared;
    2 (a UsageError) for a mistake in what was asked."""
    from benchmark import console
    from benchmark.grid.store import RECORDS, read_test_labels
    from benchmark.leaderboard import Labels

    if args.metric not in METRICS:
        raise UsageError(f"--metric: choose one of {', '.join(METRICS)}, not {args.metric!r}")
    a, b = (_read(folder, name) for folder, name in ((args.a, "A"), (args.b, "B")))
    if args.a.resolve() == args.b.resolve():
        console.note(f"A and B are the same folder ({args.a}): every row compares a run with itself")
    labels = {
        fingerprint: Labels(np.asarray(stored["labels"]), len(stored["label_names"]))
        for fingerprint, stored in read_test_labels(args.a).items()
    }
    result = compare(a, b, labels, args.metric, args.alpha, args.margin)
    for line in result.notes:
        console.note(line)
    if args.json:  # before anything is printed: a --json that cannot be written is a one-line error
        data = {"alpha": args.alpha, "margin": args.margin, "family_size": result.family_size,
                "metric": args.metric, "rows": [asdict(row) for row in result.rows]}  # fmt: skip
        try:
            args.json.write_text(json.dumps(_finite(data), indent=2, allow_nan=False))
        except OSError as exc:
            raise UsageError(f"--json {args.json}: cannot write it ({exc.strerror or exc})") from None
    out = console.stdout()
    for line in differences(a, b) or ["precision, revision and device: the same in both"]:
        out.print(line)
    if result.rows:
        out.print(_table(result, args.metric))
        out.print(_summary_line(result))
        if any(row.seeds == 1 for row in result.rows):
            out.print("rows with 1 paired seed: their intervals cover the test set only (no seed-to-seed spread)")
        for row in result.rows:
            if row.verdict == INCONCLUSIVE:
                hint = seeds_hint(row.seeds_to_settle, row.seeds, MAX_SEEDS_TO_SETTLE)
                out.print(f"inconclusive: {row.dataset} {row.budget} {row.method}: {hint} would settle it")
    else:
        out.print(f"no cell ran in both folders on the same sample: nothing to compare ({RECORDS} of A and B)")
    for count, what in ((result.only_a, "only in A"), (result.only_b, "only in B")):
        if count:
            out.print(f"{count} ok cells {what}: not compared")
    if result.unpaired_samples:
        out.print(
            f"{result.unpaired_samples} cells in both trained on different samples (or on samples a record from "
            "before schema 2 does not name): not compared"
        )
    return EXIT_EQUIVALENT if result.all_equivalent else EXIT_NOT_EQUIVALENT


def _read(folder: Path, name: str) -> list[Record]:
    """A folder's newest record of each cell, its unreadable lines named on stderr (as `report` does); a folder
    without records.jsonl, or one that cannot be read, is a one-line error."""
    from benchmark import console
    from benchmark.grid.store import RECORDS, read_records

    path = folder / RECORDS
    if not path.is_file():
        raise UsageError(f"{folder} has no {RECORDS}: not a run folder")
    try:
        records = read_records(folder)
    except OSError as exc:
        raise UsageError(f"{name} {path}: cannot read it ({exc.strerror or exc})") from None
    for line in records.notes(path):
        console.note(line)
    return list(records.latest_by_cell().values())


def _summary_line(result: Comparison) -> str:
    counts = {said: sum(row.verdict == said for row in result.rows) for said in (EQUIVALENT, DIFFERS, INCONCLUSIVE)}
    rows = len(result.rows)
    return (
        f"{counts[EQUIVALENT]} of {rows} (dataset, budget, method) rows equivalent within ±{result.margin:g}, "
        f"{counts[DIFFERS]} differ, {counts[INCONCLUSIVE]} inconclusive (intervals simultaneous over the {rows} "
        f"rows: Bonferroni, α = {result.alpha:g}); largest |B - A| {max(abs(row.delta) for row in result.rows):.4f}; "
        f"{np.mean([row.changed for row in result.rows]):.2%} of test predictions changed on average"
    )


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _table(result: Comparison, metric: str):
    from rich.table import Table

    level = 100 * (1 - result.alpha / result.family_size)
    title = f"{metric}: B - A, paired by seed and test example; verdicts within ±{result.margin:g}"
    table = Table(title=title, title_justify="left")
    for column in ("dataset", "budget", "method", "seeds", "A", "B", "B - A", f"{level:.4g}% CI", "changed",
                   "verdict"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("dataset", "budget", "method", "verdict") else "right")
    for row in result.rows:
        table.add_row(row.dataset, row.budget, row.method, str(row.seeds), f"{row.mean_a:.3f}", f"{row.mean_b:.3f}",
                      f"{row.delta:+.4f}", f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]", f"{row.changed:.2%}",
                      row.verdict)  # fmt: skip
    return table
