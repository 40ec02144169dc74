"""The leaderboards in a terminal (rich): every table with its note, the columns that fit the terminal's width (the
least needed dropped first; the ranked metric, the method and the marks always whole), failed rows in red."""

from __future__ import annotations

from benchmark.report.analysis import Analysis
from benchmark.report.notes import cross_note, footnote, section_note
from benchmark.report.tables import cells, columns, cross_cells

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
        console.print(cross_note(cross), style="dim")
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
