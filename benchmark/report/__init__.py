"""Every report of a run folder, from its records alone (and the test labels and run.json beside them), written at
the end of every run and by ``report DIR``:

- leaderboard.md / leaderboard.csv: per (dataset, budget) the ranked methods with intervals and verdicts, and per
  budget across datasets;
- leaderboard.tex: the same in LaTeX (booktabs), best in bold, each verdict marked;
- summary.json: one entry per (dataset, budget, method) and the cross-dataset summary per budget, for scripts;
- plots, PNG and SVG: learning curves, quality against cost with the Pareto front, average ranks;
- report.html: one self-contained page (tables, plots inline, the environment, the commands, how to cite);
- the same tables in a terminal.

One module per concern: `analysis` (what every report is made from), `folder` (a run folder in, the files out),
`tables` and `notes` (the cells and the words every format shares), then one module per output: `terminal`,
`leaderboard_md`, `leaderboard_csv`, `leaderboard_tex`, `summary_json`, `plots`, `report_html`.

What it may import: the layers below it (`benchmark.leaderboard`, `benchmark.stats`, `benchmark.verdicts`,
`benchmark.record`, `benchmark.grid.store`, `benchmark.grid.sequential`'s design, an embedded dataset's
labels); never the command line, the console or the runner, which call it. matplotlib and rich are imported
only where a plot is drawn or a table printed.
"""

from benchmark.report.analysis import Analysis, analyse
from benchmark.report.folder import of_folder, write
from benchmark.report.leaderboard_csv import csv_text
from benchmark.report.leaderboard_md import markdown
from benchmark.report.leaderboard_tex import latex
from benchmark.report.notes import footnote, legend, section_note
from benchmark.report.plots import draw_plots, method_colors, pareto_front
from benchmark.report.report_html import page
from benchmark.report.summary_json import summary
from benchmark.report.tables import cells, columns, cross_cells
from benchmark.report.terminal import print_rich

__all__ = [
    "Analysis",
    "analyse",
    "cells",
    "columns",
    "cross_cells",
    "csv_text",
    "draw_plots",
    "footnote",
    "latex",
    "legend",
    "markdown",
    "method_colors",
    "of_folder",
    "page",
    "pareto_front",
    "print_rich",
    "section_note",
    "summary",
    "write",
]
