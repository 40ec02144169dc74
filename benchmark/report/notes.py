"""The words beside the tables, the same in every format: what the columns mean, at which level and over which
family the verdicts were read with which margin (`legend`, `footnote`, `section_note`), and how the cross-dataset
means, ranks and tests were made (`cross_note`)."""

from __future__ import annotations

from benchmark.leaderboard import UNLABELLED_MARK, CrossDataset, Section
from benchmark.report.analysis import Analysis


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


def cross_note(cross: CrossDataset) -> str:
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
