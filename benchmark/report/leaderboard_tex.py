"""leaderboard.tex: the tables as booktabs LaTeX, per (dataset, budget) and per budget across datasets, the best in
bold and every other method marked with its verdict, with the table's text escaped for LaTeX."""

from __future__ import annotations

import re

from benchmark.leaderboard import UNLABELLED_MARK, CrossDataset, Section
from benchmark.report.analysis import Analysis
from benchmark.report.notes import legend
from benchmark.report.tables import cross_cells, delta, mean_std, seconds
from benchmark.verdicts import BEST, EQUIVALENT, INCONCLUSIVE, WORSE


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
        score = _tex(f"{mean_std(values)} ({len(values)})")
        if row is top:
            score = rf"\textbf{{{score}}}"
        elif row.stats is not None:
            score += TEX_MARKS[row.stats.verdict]
        interval = f"[{row.stats.ci_low:.3f}, {row.stats.ci_high:.3f}]" if row.stats else "--"
        to_best = "--" if row is top else _tex(delta(row, top, metric)).replace("—", "--")
        lines.append(rf"{name} & {score} & {interval} & {to_best} & {seconds(row.mean('train_seconds'))} \\")
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
