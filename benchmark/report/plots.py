"""The report's plots, as PNG and SVG (the SVG without dates or random ids: the same records draw the same file):
learning curves per dataset, quality against cost per budget with the Pareto front, and each budget's rank
diagram; one colour per method in all of them. matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import fmean

from benchmark.report.analysis import Analysis
from benchmark.report.tables import std


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
                    lines.setdefault(row.label, []).append((x, sum(values) / len(values), std(values) or 0.0))
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
