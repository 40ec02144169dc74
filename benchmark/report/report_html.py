"""report.html: one self-contained page (no script, no external file, font or request) with the cross-dataset
tables, the plots' SVG inline, every (dataset, budget) table, the commands and the environment they ran in, and
how to cite the benchmark."""

from __future__ import annotations

import html
import re
from pathlib import Path

from benchmark.report.analysis import Analysis
from benchmark.report.notes import cross_note, footnote, section_note
from benchmark.report.tables import cells, columns, cross_cells
from benchmark.verdicts import BEST

CITATION = Path(__file__).resolve().parents[2] / "CITATION.cff"
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
        parts.append(f"<p class='note'>{html.escape(cross_note(cross))}</p>")
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
