"""leaderboard.md: per (dataset, budget) the ranked table with its verdicts' family under it, per budget the
cross-dataset table with how it was made, and the legend at the end."""

from __future__ import annotations

from benchmark.report.analysis import Analysis
from benchmark.report.notes import cross_note, footnote, section_note
from benchmark.report.tables import cells, columns, cross_cells


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
        parts += [_md_table(*cross_cells(cross)), "", cross_note(cross), ""]
    parts.append(footnote(analysis) + "\n")
    return "\n".join(parts)


def _md_table(names: list[str], rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(row[n] for n in names) + " |" for row in rows]
    return "\n".join(lines)
