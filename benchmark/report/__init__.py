"""Every report of a run folder, from its records alone (and the test labels and run.json beside them), written at
the end of every run and by ``report DIR``:

- leaderboard.md / leaderboard.csv: per (dataset, budget) the ranked methods with intervals and verdicts, and per
  budget across datasets;
- leaderboard.tex: the same in LaTeX (booktabs), best in bold, each verdict marked;
- summary.json: one entry per (dataset, budget, method) and the cross-dataset summary per budget, for scripts;
- plots, PNG and SVG: learning curves, quality against cost with the Pareto front, average ranks;
- report.html: one self-contained page (tables, plots inline, the environment, the commands, how to cite).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean

import numpy as np

from benchmark import leaderboard
from benchmark.leaderboard import UNLABELLED_MARK, CrossDataset, Labels, Row, Section
from benchmark.record import Record
from benchmark.sequential import Design
from benchmark.verdicts import (
    ALPHA,
    BEST,
    EQUIVALENT,
    INCONCLUSIVE,
    LEADERBOARD_MARGIN,
    MARKS,
    WORSE,
    seeds_hint,
)

PLOTS = ("learning-curves", "quality-vs-cost")
CITATION = Path(__file__).resolve().parents[2] / "CITATION.cff"


@dataclass
class Analysis:
    metric: str
    sections: list[Section]
    cross: list[CrossDataset]
    pool_per_class: dict[str, float]  # dataset -> train-pool examples per class (the x of 'all labels')
    threads: tuple[int, ...] = ()  # the torch threads the ok cells ran on, each once, ascending
    superseded: tuple[tuple[str, int, int], ...] = ()  # (method, revision, cells) left out: a newer revision ran
    margin: float = LEADERBOARD_MARGIN  # of practical equivalence
    alpha: float = ALPHA  # family-wise, per (dataset, budget) block
    design: Design | None = None  # the sequential design of --seeds auto, if the run had one
    notes: tuple[str, ...] = ()  # records counted as failed because the tables could not use them

    @property
    def has_statistics(self) -> bool:
        return any(row.stats is not None for section in self.sections for row in section.rows)

    @property
    def block_alpha(self) -> float:
        """The level of each block's verdicts: alpha, or its share per look of a sequential design."""
        return self.design.level(self.alpha) if self.design else self.alpha


def analyse(
    records: list[Record],
    metric: str,
    labels: dict[str, Labels],
    unsupplied: dict[str, list[str]] | None = None,
    margin: float = LEADERBOARD_MARGIN,
    design: Design | None = None,
) -> Analysis:
    records, notes = leaderboard.screen(records, labels)
    block_alpha = design.level(ALPHA) if design else ALPHA
    sections = leaderboard.build(records, metric, labels, block_alpha, margin)
    pool = {}
    for record in records:
        fingerprint_labels = labels.get(record.dataset_fingerprint)
        if record.ok and record.shots.is_all and record.n_train and fingerprint_labels:
            pool[record.dataset] = record.n_train / fingerprint_labels.num_labels
    threads = tuple(sorted({record.threads for record in records if record.ok}))
    superseded = tuple(
        (method, revision, n) for (method, revision), n in sorted(leaderboard.superseded(records).items())
    )
    cross = leaderboard.across_datasets(sections, unsupplied)
    return Analysis(metric, sections, cross, pool, threads, superseded, margin, ALPHA, design, tuple(notes))


def of_folder(folder: Path, records: list[Record], metric: str, margin: float | None = None) -> Analysis:
    """The analysis of `records` of a run folder, with the test labels and unsupplied budgets kept beside them;
    the verdicts' margin is `margin`, else the run's own (run.json), else the default, and their level that of the
    run's sequential design, if it had one."""
    from benchmark import sequential
    from benchmark.store import read_run_info, read_test_labels

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
    from benchmark.embedded import EMBEDDED
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


# --- table cells --------------------------------------------------------------------------------------------


def _stat(values: list[float]) -> str:
    if not values:
        return "—"
    std = (
        math.sqrt(sum((v - sum(values) / len(values)) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    return f"{sum(values) / len(values):.3f}±{std:.3f}"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def cells(section: Section, metric: str) -> list[dict[str, str]]:
    """One section's table as display strings, ranked (the columns of `COLUMNS`)."""
    out = []
    top = section.rows[0] if section.rows and section.rows[0].ok else None
    for rank, row in enumerate(section.rows, 1):
        values = row.values(metric)
        stats = row.stats
        row_cells = {
            "rank": str(rank) if row.ok else "—",
            "method": row.label + (f" {UNLABELLED_MARK}" if row.uses_unlabelled else ""),
            "95% CI": f"[{stats.ci_low:.3f}, {stats.ci_high:.3f}]" if stats else "—",
            "Δ best": _delta(row, top, metric),
            "verdict": _verdict(stats),
            "accuracy": _stat(row.values("accuracy")),
            "macro_f1": _stat(row.values("macro_f1")),
            "train s": _seconds(row.mean("train_seconds")),
            "predict s": _seconds(row.mean("predict_seconds")),
            "one-off s": _seconds(row.one_off) if row.one_off >= 0.05 else "—",
            "cells": f"{len(row.ok)} ok" + (f", {len(row.failed)} failed" if row.failed else ""),
        }
        row_cells[metric] = f"{_stat(values)} n={len(values)}" if values else "failed"
        out.append(row_cells)
    return out


def _verdict(stats) -> str:
    """The verdict in words; an inconclusive one with roughly the paired seeds that would settle it."""
    if stats is None:
        return ""
    if stats.verdict == INCONCLUSIVE:
        return f"inconclusive, {seeds_hint(stats.seeds_to_settle, stats.n_paired, short=True)}"
    return stats.verdict


def _delta(row: Row, top: Row | None, metric: str) -> str:
    if top is None or row is top or not row.values(metric):
        return "—"
    stats = row.stats
    if stats is not None:
        if stats.n_paired == 0:
            return "no shared seed"
        return f"{_signed(stats.delta_to_best)} [{_signed(stats.delta_ci_low)}, {_signed(stats.delta_ci_high)}]"
    diffs = _paired_differences(row, top, metric)
    return _signed(sum(diffs) / len(diffs)) if diffs else "—"


def _paired_differences(row: Row, top: Row, metric: str) -> list[float]:
    """Per seed both finished on the identical sample: this row's value minus the top row's. Records from before
    samples were hashed (None) pair by seed, as they were made."""
    theirs = {r.seed: (r.sample, r.metrics[metric]) for r in top.ok if metric in r.metrics}
    return [
        r.metrics[metric] - theirs[r.seed][1]
        for r in row.ok
        if metric in r.metrics
        and r.seed in theirs
        and (r.sample == theirs[r.seed][0] or None in (r.sample, theirs[r.seed][0]))
    ]


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


# --- markdown and CSV ----------------------------------------------------------------------------------------


def _threads_note(threads: tuple[int, ...]) -> str:
    if not threads:
        return ""
    if len(threads) == 1:
        return f", each on {threads[0]} thread{'s' if threads[0] > 1 else ''}"
    return (
        f", on {threads[0]} to {threads[-1]} threads (a cell nothing else could run beside got the free cores: "
        "compare times between rows with care)"
    )


def footnote(analysis: Analysis) -> str:
    marked = any(row.uses_unlabelled for section in analysis.sections for row in section.rows)
    text = f"{UNLABELLED_MARK} also trains on the unlabelled texts of the whole train pool. " if marked else ""
    text += f"mean±sample std over n seeds; train/predict s: mean per cell{_threads_note(analysis.threads)}; "
    text += (
        "one-off s: what the work every cell of the method reuses (frozen features, an adapted encoder) took when "
        "it was done."
    )
    if analysis.has_statistics:
        text += f" 95% CI: the method's expected score over samples and test sets. {legend(analysis)}"
    else:
        text += " Δ best: paired mean difference to the top row (no test labels beside the records: no intervals)."
    if analysis.superseded:
        left_out = ", ".join(f"{method} revision {revision} ({n} cells)" for method, revision, n in analysis.superseded)
        text += f" Left out, superseded by a newer revision of the method's code (records kept): {left_out}."
    return text


def legend(analysis: Analysis) -> str:
    """What the verdicts are, at which level, over which family, with which margin: beside every table."""
    level = f"α = {analysis.alpha:g} per (dataset, budget)."
    if analysis.design:
        design = analysis.design.describe(analysis.alpha)
        level = f"α = {analysis.block_alpha:.4g} per (dataset, budget) at each look. {design}"
    return (
        "Δ best: paired difference to the best row over the seeds both finished on the identical sample, with its "
        "interval simultaneous over every pair of the block's methods (Bonferroni over the k(k − 1)/2 pairs: the "
        "best is picked on the same data, and the pairs cover any choice of it). Verdict, read from that interval "
        f"alone: = equivalent to the best within ±{analysis.margin:g} (the interval lies inside the margin); ▼ worse "
        "(it excludes 0); ? inconclusive: not yet known (neither), with roughly the paired seeds that would settle "
        f"it at the observed spread; family-wise {level} docs/statistics.md."
    )


def section_note(section: Section, analysis: Analysis) -> str:
    """The family and level of one block's verdicts, under its table."""
    stats = next((row.stats for row in section.rows if row.stats is not None), None)
    if stats is None:
        return ""
    k = sum(row.stats is not None for row in section.rows)
    return (
        f"verdicts: margin ±{stats.margin:g}; intervals simultaneous over the {stats.family_size} pairs of {k} "
        f"methods (Bonferroni, family-wise α = {analysis.block_alpha:.4g}: each at "
        f"{100 * (1 - analysis.block_alpha / stats.family_size):.4g}%)"
    )


def markdown(analysis: Analysis) -> str:
    parts = [f"# Leaderboard (ranked by {analysis.metric})\n"]
    names = columns(analysis.metric, analysis.has_statistics)
    for section in analysis.sections:
        parts += [f"## {section.title}\n", _md_table(names, cells(section, analysis.metric)), ""]
        note = section_note(section, analysis)
        if note:
            parts += [note, ""]
    for cross in analysis.cross:
        parts.append(f"## Across datasets · {cross.budget.label}\n")
        parts += [_md_table(*cross_cells(cross)), "", _cross_note(cross), ""]
    parts.append(footnote(analysis) + "\n")
    return "\n".join(parts)


def _cross_note(cross: CrossDataset) -> str:
    summary = cross.summary
    note = f"{analysis_mean_note()} "
    if summary.friedman_p is not None:
        note += (
            f"Friedman p = {summary.friedman_p:.2g} over {len(summary.rank_datasets)} datasets; pairwise Wilcoxon "
            "tests with Holm in summary.json and the rank diagram."
        )
    else:
        note += (summary.test_note or "") + "."
    if cross.unsupplied:
        note += f" n/a: {', '.join(cross.unsupplied)} cannot supply {cross.budget.label} (a class is smaller)."
    return note


def analysis_mean_note() -> str:
    return (
        "mean: over every dataset that can supply the budget, 'incomplete' when one lacks the method's result "
        "(never a mean over fewer datasets); avg rank: over the datasets "
        "where every method has a result (1 = best). Per dataset: bold the best, = equivalent to it, ▼ worse, "
        "? inconclusive (the verdicts of that dataset's table); = best on: datasets where the method is the best or "
        "equivalent to it; ▼ on: where it is worse."
    )


def _md_table(names: list[str], rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(row[n] for n in names) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    stats_fields = ["ci_low", "ci_high", "delta_to_best", "delta_ci_low", "delta_ci_high", "p_raw", "p_adjusted",
                    "verdict", "margin", "family_size", "seeds_to_settle"]  # fmt: skip
    header = ["dataset", "model", "shots", "rank", "method", "uses_unlabelled", "n_ok", "n_failed"]
    header += [f"{name}_{part}" for name in ("accuracy", "macro_f1", "f1_positive") for part in ("mean", "std")]
    header += [f"{analysis.metric}_{name}" for name in stats_fields]
    header += ["train_seconds_mean", "predict_seconds_mean", "one_off_seconds"]
    writer.writerow(header)
    for section in analysis.sections:
        for rank, row in enumerate(section.rows, 1):
            line = [section.dataset, section.model, section.shots.to_json(), rank if row.ok else "", row.label,
                    row.uses_unlabelled, len(row.ok), len(row.failed)]  # fmt: skip
            for name in ("accuracy", "macro_f1", "f1_positive"):
                values = row.values(name)
                mean = sum(values) / len(values) if values else None
                std = _std(values)
                line += [_number(mean, 4), _number(std, 4)]
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


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _number(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.{digits}f}"


# --- LaTeX ----------------------------------------------------------------------------------------------------


def _tex(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, escaped)
    text = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)
    for char, escaped in (("†", r"$^\dagger$"), ("±", r"$\pm$"), ("≈", r"$\approx$"), ("▼", r"$\blacktriangledown$"),
                          ("Δ", r"$\Delta$")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


TEX_MARKS = {BEST: "", EQUIVALENT: "${=}$", WORSE: r"$\blacktriangledown$", INCONCLUSIVE: "?"}


def latex(analysis: Analysis) -> str:
    """booktabs tables: per (dataset, budget), and per budget across datasets. Best in bold; each other method
    marked with its verdict (= equivalent, a triangle worse, ? inconclusive)."""
    metric = _tex(analysis.metric)
    parts = [
        "% fewshot-bench leaderboards; needs \\usepackage{booktabs,amssymb}",
        f"% ranked by {analysis.metric}; mean $\\pm$ sample std over n seeds; " + _tex(legend(analysis))
        if analysis.has_statistics
        else f"% ranked by {analysis.metric}; mean $\\pm$ sample std over n seeds",
    ]
    for section in analysis.sections:
        parts.append(_tex_section(section, analysis, metric))
    for cross in analysis.cross:
        parts.append(_tex_cross(cross, analysis, metric))
    return "\n\n".join(parts) + "\n"


def _tex_legend(analysis: Analysis) -> str:
    return (
        rf"Best in bold; ${{=}}$ equivalent to it within $\pm${analysis.margin:g}, $\blacktriangledown$ worse, ? "
        r"inconclusive, read from the difference's interval, simultaneous over every pair of the block's methods "
        rf"(Bonferroni, family-wise $\alpha = {analysis.block_alpha:.4g}$)."
    )


def _tex_section(section: Section, analysis: Analysis, metric_tex: str) -> str:
    metric = analysis.metric
    lines = [
        r"\begin{table}[t]\centering\small",
        rf"\caption{{{_tex(section.title)}: {metric_tex}, mean $\pm$ std over seeds (n), 95\% interval, paired "
        rf"difference to the best with its simultaneous interval. {_tex_legend(analysis)}}}",
        r"\begin{tabular}{lcccr}",
        r"\toprule",
        rf"Method & {metric_tex} & 95\% CI & $\Delta$ best & Train s \\",
        r"\midrule",
    ]
    top = section.rows[0] if section.rows and section.rows[0].ok else None
    for row in section.rows:
        values = row.values(metric)
        name = _tex(row.label + (f" {UNLABELLED_MARK}" if row.uses_unlabelled else ""))
        if not values:
            lines.append(rf"{name} & failed & & & \\")
            continue
        score = _tex(f"{_stat(values)} ({len(values)})")
        if row is top:
            score = rf"\textbf{{{score}}}"
        elif row.stats is not None:
            score += TEX_MARKS[row.stats.verdict]
        interval = f"[{row.stats.ci_low:.3f}, {row.stats.ci_high:.3f}]" if row.stats else "--"
        delta = "--" if row is top else _tex(_delta(row, top, metric)).replace("—", "--")
        lines.append(rf"{name} & {score} & {interval} & {delta} & {_seconds(row.mean('train_seconds'))} \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _tex_cross(cross: CrossDataset, analysis: Analysis, metric_tex: str) -> str:
    names, rows = cross_cells(cross)
    lines = [
        r"\begin{table}[t]\centering\small",
        rf"\caption{{{metric_tex} across datasets, {_tex(cross.budget.label)}: per-dataset means with their "
        rf"verdicts, mean over datasets, average rank, and on how many datasets a method is the best or "
        rf"equivalent to it, and worse. {_tex_legend(analysis)}}}",
        r"\begin{tabular}{l" + "c" * (len(names) - 1) + "}",
        r"\toprule",
        " & ".join(_tex(n) for n in names) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        lines.append(" & ".join(_tex(row[name]).replace(" =", " ${=}$") for name in names) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


# --- summary.json ---------------------------------------------------------------------------------------------


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
                entry |= {"mean": sum(values) / len(values) if values else None, "std": _std(values), "n": len(values),
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


# --- plots ------------------------------------------------------------------------------------------------------


def draw_plots(analysis: Analysis, folder: Path) -> list[Path]:
    """PNG and SVG of each plot; returns the paths without suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "path"  # text as shapes: the SVG needs no font from anywhere
    plt.rcParams["svg.hashsalt"] = "fewshot-bench"  # element ids from the content: the same records, the same SVG
    drawn = []
    for name, draw in (("learning-curves", _learning_curves), ("quality-vs-cost", _quality_vs_cost)):
        figure = draw(analysis)
        if figure is not None:
            drawn.append(_save(figure, folder / name))
    for cross in analysis.cross:
        figure, ax = plt.subplots(figsize=(7, 0.45 * len(cross.summary.methods) + 1.8))
        from benchmark.stats import draw_rank_diagram

        draw_rank_diagram(cross.summary, ax)
        ax.set_title(f"{cross.budget.label}: " + ax.get_title(), fontsize="small")
        drawn.append(_save(figure, folder / f"ranks-{cross.budget}"))
    return drawn


def _save(figure, stem: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    for suffix in (".png", ".svg"):
        figure.savefig(stem.with_suffix(suffix), dpi=130, metadata={"Date": None} if suffix == ".svg" else None)
    plt.close(figure)
    return stem


def _grid(count: int, width: float = 4.2, height: float = 3.2):
    import matplotlib.pyplot as plt

    columns_ = min(count, 3)
    rows_ = math.ceil(count / columns_)
    figure, axes = plt.subplots(rows_, columns_, figsize=(width * columns_, height * rows_), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_axis_off()
    return figure, list(axes.flat[:count])


def method_colors(analysis: Analysis) -> dict[str, tuple]:
    """One colour per row label, the same in every panel and plot of the report."""
    import matplotlib

    labels = sorted({row.label for section in analysis.sections for row in section.rows})
    palette = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: palette(i % palette.N) for i, label in enumerate(labels)}


def _learning_curves(analysis: Analysis):
    """Per dataset: the metric against examples per class (log), mean over seeds with a band of ± one std."""
    datasets = sorted({s.dataset for s in analysis.sections})
    if len({s.shots for s in analysis.sections}) < 2:
        return None  # one budget (or none): no curve
    colors = method_colors(analysis)
    pooled = any(s.shots.is_all for s in analysis.sections)
    figure, axes = _grid(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        lines: dict[str, list[tuple[float, float, float]]] = {}
        ticks: dict[float, str] = {}
        for section in (s for s in analysis.sections if s.dataset == dataset):
            x = section.shots.per_class or analysis.pool_per_class.get(dataset)
            if x:
                ticks[x] = f"{x:g}" if section.shots.per_class else f"all\n(~{x:,.0f})"
            for row in section.rows:
                values = row.values(analysis.metric)
                if x and values:
                    lines.setdefault(row.label, []).append((x, sum(values) / len(values), _std(values) or 0.0))
        for label, points in sorted(lines.items()):
            points.sort()
            xs, means, stds = zip(*points, strict=True)
            ax.plot(xs, means, marker="o", label=label, color=colors[label])
            low = [m - s for m, s in zip(means, stds, strict=True)]
            high = [m + s for m, s in zip(means, stds, strict=True)]
            ax.fill_between(xs, low, high, color=colors[label], alpha=0.15)
        _log_axis(ax, {x: ticks[x] for x in sorted({x for points in lines.values() for x, _, _ in points})})
        ax.set_title(dataset, fontsize="medium")
        ax.set_xlabel("examples per class" + ("\n(all: the pool's mean per class)" if pooled else ""))
        ax.set_ylabel(analysis.metric)
    axes[0].legend(fontsize="x-small")
    return figure


def _quality_vs_cost(analysis: Analysis):
    """Per budget: each method's metric against its train + one-off seconds per cell (log), averaged over the
    datasets where every method has a result (as the average rank is: a mean over other datasets would not
    compare); the Pareto front (no method both better and cheaper) joined and starred. The methods are told apart
    by a legend, not by labels beside the points: close points' labels overlap."""
    budgets = sorted({s.shots for s in analysis.sections}, key=lambda b: b.sort_key)
    if not budgets:
        return None  # nothing finished yet
    colors = method_colors(analysis)
    figure, axes = _grid(len(budgets), width=6.4)
    for ax, budget in zip(axes, budgets, strict=True):
        points, datasets = _cost_points(analysis, budget)
        front = pareto_front(points)
        if front:
            ordered = sorted(points[label] for label in front)
            ax.step(*zip(*ordered, strict=True), where="post", color="grey", linewidth=0.8, zorder=1)
        for label, (cost, score) in sorted(points.items()):
            on_front = label in front
            ax.scatter(cost, score, color=colors[label], marker="*" if on_front else "o", s=90 if on_front else 30,
                       label=label, zorder=2)  # fmt: skip
        if points:
            # beside the panel: inside it, even matplotlib's "best" place can cover a point
            ax.legend(fontsize="x-small", title="★: on the Pareto front", title_fontsize="x-small",
                      loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
            _log_axis(ax)
            over = datasets[0] if len(datasets) == 1 else f"mean over {len(datasets)} datasets"
        else:
            over = "no dataset where every method has a result yet"
        ax.set_title(f"{budget.label} · {over}", fontsize="medium")
        ax.set_xlabel("train + one-off seconds per cell")
        ax.set_ylabel(analysis.metric)
    return figure


def _log_axis(ax, ticks: dict[float, str] | None = None) -> None:
    """A log x axis labelled in plain numbers (at 1, 2 and 5 times a power of ten when the data span less than two
    decades, else one label a decade), or at `ticks` with their labels. Call it after plotting."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    if ticks:
        ax.set_xticks(list(ticks), list(ticks.values()))
    else:
        low, high = ax.get_xlim()
        if high / low < 100:
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _cost_points(analysis: Analysis, budget) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Each method's (train + one-off seconds, metric) at `budget`, averaged over the datasets where every method
    with a result at that budget has one; and those datasets."""
    by_dataset: dict[str, dict[str, tuple[float, float]]] = {}
    for section in (s for s in analysis.sections if s.shots == budget):
        for row in section.rows:
            values = row.values(analysis.metric)
            train = row.mean("train_seconds")
            if values and train is not None:
                by_dataset.setdefault(section.dataset, {})[row.label] = (train + row.one_off, fmean(values))
    methods = set().union(*by_dataset.values())
    complete = sorted(d for d, points in by_dataset.items() if points.keys() == methods)
    averaged = {}
    for label in methods if complete else ():
        costs, scores = zip(*(by_dataset[d][label] for d in complete), strict=True)
        averaged[label] = (fmean(costs), fmean(scores))
    return averaged, complete


def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """The labels no other point beats on both: at most the cost and at least the score, one of them strictly."""
    return {
        label
        for label, (cost, score) in points.items()
        if not any(c <= cost and s >= score and (c, s) != (cost, score) for c, s in points.values())
    }


# --- report.html ----------------------------------------------------------------------------------------------

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right}th{background:#f6f6f6}
td:nth-child(2),th:nth-child(2),td.l{text-align:left}tr.best td{font-weight:600}.note{color:#555;font-size:13px}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}figure{margin:1em 0}svg{max-width:100%;height:auto}
"""


def page(analysis: Analysis, figures: list[Path], info: dict | None) -> str:
    """One self-contained page: no script, no external file, font or request."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>fewshot-bench report</title><style>{STYLE}</style></head><body>",
        "<h1>fewshot-bench report</h1>",
        f"<p class='note'>Ranked by {html.escape(analysis.metric)}. {html.escape(footnote(analysis))}</p>",
    ]
    for cross in analysis.cross:
        names, rows = cross_cells(cross)
        parts += [f"<h2>Across datasets · {html.escape(cross.budget.label)}</h2>", _html_table(names, rows)]
        parts.append(f"<p class='note'>{html.escape(_cross_note(cross))}</p>")
    for figure in figures:
        svg = figure.with_suffix(".svg").read_text(encoding="utf-8")
        svg = svg[svg.index("<svg") :]
        parts.append(f"<h2>{html.escape(figure.name.replace('-', ' '))}</h2><figure>{svg}</figure>")
    names = columns(analysis.metric, analysis.has_statistics)
    for section in analysis.sections:
        parts += [f"<h2>{html.escape(section.title)}</h2>", _html_table(names, cells(section, analysis.metric))]
        note = section_note(section, analysis)
        if note:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts += _environment(info) + _citation() + ["</body></html>"]
    return "\n".join(parts) + "\n"


def _html_table(names: list[str], rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        "<tr" + (" class='best'" if row.get("verdict") == BEST else "") + ">"
        + "".join(f"<td>{_html_cell(row[n])}</td>" for n in names) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_cell(text: str) -> str:
    """Escaped, with the cross tables' **best** in bold."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _environment(info: dict | None) -> list[str]:
    if not info:
        return ["<h2>Environment</h2><p class='note'>no run.json beside the records</p>"]
    invocations = info.get("invocations", [info])
    commands = "\n".join(
        f"{i.get('started_at', '?')}  ({i.get('wall_seconds', '?')} s)  "
        + " ".join(i.get("command") or ["(from Python)"])
        for i in invocations
    )
    last = invocations[-1]
    stamp = "cpu cpu_count gpu device precision torch_threads jobs python platform project_commit project_dirty version"
    machine = {k: last.get(k) for k in stamp.split()}
    rows = [{"what": k, "value": str(v)} for k, v in machine.items()]
    rows += [{"what": f"package {k}", "value": str(v)} for k, v in (last.get("packages") or {}).items() if v]
    for dataset in last.get("datasets", []):
        sizes = f"{dataset['n_train_pool']} train / {dataset['n_test']} test"
        rows.append({"what": f"dataset {dataset['name']}", "value": f"fingerprint {dataset['fingerprint']}, {sizes}"})
    model = last.get("model") or {}
    rows.append({"what": "model", "value": f"{model.get('name')} (fingerprint {model.get('fingerprint')})"})
    return [
        "<h2>Commands</h2><pre>" + html.escape(commands) + "</pre>",
        "<h2>Environment</h2>",
        _html_table(["what", "value"], rows).replace("<td>", "<td class='l'>"),
    ]


def _citation() -> list[str]:
    if not CITATION.is_file():
        return []
    return ["<h2>How to cite</h2><pre>" + html.escape(CITATION.read_text(encoding="utf-8")) + "</pre>"]


# --- the terminal ---------------------------------------------------------------------------------------------

# dropped first when a terminal is too narrow; the ranked metric, the method and the marks always stay whole
DROP_ORDER = ("predict s", "one-off s", "accuracy", "macro_f1", "95% CI", "cells", "train s", "Δ best")


def print_rich(analysis: Analysis, console) -> None:
    from rich.table import Table

    if not analysis.sections:
        console.print("no finished cells yet")
        return
    for section in analysis.sections:
        rows = cells(section, analysis.metric)
        names = _fitting(columns(analysis.metric, analysis.has_statistics), rows, analysis.metric, console.width)
        table = Table(title=section.title, title_justify="left", caption=section_note(section, analysis) or None,
                      caption_justify="left")  # fmt: skip
        for name in names:
            table.add_column(name, justify="left" if name in ("method", "cells", "verdict") else "right",
                             no_wrap=name in (analysis.metric, "rank"))  # fmt: skip
        for row in rows:
            table.add_row(*(row[n] for n in names), style="red" if row["rank"] == "—" else None)
        console.print(table)
    for cross in analysis.cross:
        names, rows = cross_cells(cross)
        table = Table(title=f"across datasets · {cross.budget.label}", title_justify="left")
        for name in names:
            table.add_column(name, justify="left" if name == "method" else "right")
        for row in rows:
            table.add_row(*(_rich_cell(row[n]) for n in names))
        console.print(table)
        console.print(_cross_note(cross), style="dim")
    console.print(footnote(analysis), style="dim")


def _rich_cell(text: str):
    """The cross tables' **best** in bold."""
    from rich.text import Text

    bold = text.startswith("**") and text.endswith("**")
    return Text(text[2:-2], style="bold") if bold else Text(text)


def _fitting(names: list[str], rows: list[dict[str, str]], metric: str, width: int) -> list[str]:
    """The columns that fit `width`, dropping the least needed first."""

    def needed(kept: list[str]) -> int:
        return sum(max(len(n), *(len(r[n]) for r in rows)) + 3 for n in kept) + 1

    kept = list(names)
    for name in DROP_ORDER:
        if needed(kept) <= width:
            break
        if name in kept and name != metric:
            kept.remove(name)
    return kept
