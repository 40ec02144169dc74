"""``python -m benchmark speed``: its flags, and what it prints (and writes with ``--json``). By default the matmul
peak, the shared training loop and inference against it, and every method's steps, a table each as measured;
with ``--plain-recipe`` also the plain Transformers recipe against the harness's fine-tuning; with ``--floor DIR``
instead the useful work a finished grid did against the floor it needs at the peak, and where its wall time went.
torch, rich and the data are imported only when the command runs, so ``--help`` stays quick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from benchmark.data.tasks import Task
from benchmark.errors import UsageError
from benchmark.speed.floor import Floor, Part, floor_of
from benchmark.speed.plain_recipe import compare_with_plain_recipe
from benchmark.speed.steps import measure_method
from benchmark.speed.throughput import (
    FULL_FINE_TUNING,
    matmul_peak,
    measure_inference,
    measure_parallel_training,
    measure_training,
)


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", default="rt-critics")
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--precisions",
        help="comma-separated: fp32, bf16 (default: both where the CPU does bf16 natively, else fp32: emulated bf16 "
        "runs many times slower and takes most of an hour)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument(
        "--jobs", type=int, help="also train in this many processes at once (default: the grid's default --jobs)"
    )
    parser.add_argument(
        "--plain-recipe", type=Path, help=f"path to plain_recipe_full_ft.py: compare with `{FULL_FINE_TUNING}`"
    )
    parser.add_argument("--shots", type=int, default=64, help="budget of the plain-recipe comparison")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the plain-recipe comparison")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument(
        "--batch-size", type=int, default=16, help="training batch (measured beside 32), also the plain recipe's"
    )
    parser.add_argument(
        "--methods", default="all", help="methods whose steps to measure ('all', 'none', or names; default: all)"
    )
    parser.add_argument("--method-shots", type=int, default=8, help="budget of the per-method measurement")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--floor", type=Path, metavar="DIR", help="instead: the floor under a finished run folder's grid (below)"
    )
    parser.add_argument("--peak", type=float, help="with --floor: GFLOP/s of the whole machine (default: measured)")
    parser.set_defaults(command=main)


def main(args) -> int:
    import json
    import os

    import torch

    from benchmark import console
    from benchmark.grid import runtime

    if args.precisions is None:
        args.precisions = "fp32,bf16" if runtime.cpu_has_native_bf16() else "fp32"
    if args.floor is not None:
        return print_floor(args.floor, args.peak, args.precisions.split(",")[0])
    from benchmark.data.load import load_task
    from benchmark.modeling import resolve_model

    precisions = _checked_precisions(args)
    task = load_task(args.dataset)
    spec = resolve_model(args.model)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    jobs = runtime.default_jobs(args.jobs, "cpu", threads, runtime.available_gib())
    out = console.stdout()
    cpu = runtime.cpu_name()
    out.print(f"{cpu} · {threads} threads · torch {torch.__version__} · {spec.name} · {task.name}")
    report: dict = {"cpu": cpu, "threads": threads, "model": spec.name, "dataset": task.name}
    report["peak_gflops"] = {p: round(matmul_peak(p), 1) for p in precisions}
    rows = [
        row
        for precision in precisions
        for row in _loop_rows(spec, task, precision, args.batch_size, jobs, threads, report["peak_gflops"][precision])
    ]
    report["throughput"] = rows
    out.print(_table("matmul peak (GFLOP/s)", [report["peak_gflops"]]))
    out.print(_table("throughput vs the measured peak of the dtype used", rows))
    _print_methods(args, spec, task, precisions, report, out)
    if args.plain_recipe:
        _print_plain_recipe(args, spec, task, report, out)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _checked_precisions(args) -> list[str]:
    """The precisions to measure; a UsageError for any flag that would fail only after minutes of measuring."""
    for flag in ("threads", "jobs", "seeds", "epochs", "batch_size", "method_shots"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')}: {value} is not a positive number")
    precisions = [p.strip() for p in args.precisions.split(",")]
    if not set(precisions) <= {"fp32", "bf16"}:
        raise UsageError(f"--precisions: expected fp32 and/or bf16, got {args.precisions}")
    if args.json is not None and not args.json.parent.is_dir():  # found out before the measuring, not after
        raise UsageError(f"--json {args.json}: no such folder {args.json.parent}")
    if args.plain_recipe is not None and not args.plain_recipe.is_file():
        raise UsageError(f"--plain-recipe: no such file: {args.plain_recipe}")
    return precisions


def _loop_rows(spec, task: Task, precision: str, batch_size: int, jobs: int, threads: int, peak: float) -> list:
    """The harness's training loop at its batch and at 32 (the larger one common recipes use), side by side in
    `jobs` processes as the grid runs cells, and inference."""
    rows = [measure_training(spec, task, precision, size).row(peak) for size in dict.fromkeys([batch_size, 32])]
    if jobs > 1:
        rows.append(
            measure_parallel_training(spec, task, precision, batch_size, jobs, max(1, threads // jobs)).row(peak)
        )
    rows.append(measure_inference(spec, task, precision).row(peak))
    return rows


def _print_methods(args, spec, task: Task, precisions: list[str], report: dict, out) -> None:
    """A table per method as it is measured: a stopped run keeps them."""
    for method_spec in _methods(args.methods):
        rows = [
            row
            for precision in precisions
            for row in measure_method(
                spec, method_spec, task, precision, args.method_shots, report["peak_gflops"][precision]
            )
        ]
        report.setdefault("methods", []).extend(rows)
        out.print(_table(f"{method_spec.name}'s steps ({args.method_shots} per class, seed 0)", rows))


def _methods(value: str) -> list:
    from benchmark import registry

    if value == "none":
        return []
    names = list(registry.available()) if value == "all" else [n.strip() for n in value.split(",") if n.strip()]
    return [spec for spec in registry.resolve(names) if spec.cls is not None and not spec.missing_requirements()]


def _print_plain_recipe(args, spec, task: Task, report: dict, out) -> None:
    seeds = list(range(args.seeds))
    comparison = compare_with_plain_recipe(
        args.plain_recipe, spec, task, args.shots, seeds, args.epochs, args.lr, args.batch_size
    )
    report["plain_recipe"] = comparison
    title = f"{FULL_FINE_TUNING} vs the plain recipe ({args.shots} per class, {args.epochs} epochs)"
    out.print(_table(title, comparison))


# --- --floor DIR --------------------------------------------------------------------------------------------


def print_floor(folder: Path, peak: float | None, precision: str) -> int:
    """Useful TFLOP per method, the minutes they need at this machine's matmul peak with every core against the
    minutes they took; and, when the folder holds one invocation that ran every cell, the grid's wall time
    against that floor, with the time outside any cell's measured work (worker start-up, loading, idle cores)."""
    import os

    import torch

    from benchmark import console
    from benchmark.grid import runtime

    info, records, floor = _read_floor(folder)
    if peak is None:
        torch.set_num_threads(os.cpu_count() or 1)
        peak = matmul_peak(precision)
    out = console.stdout()
    out.print(f"{runtime.cpu_name()} · {precision} matmul peak {peak:.1f} GFLOP/s (all cores)")
    title = (
        "useful work by method: the minutes it needs at the peak, and the minutes it took (cells: machine-minutes, "
        "seconds × threads / cores; one-off work: its wall time when it was built)"
    )
    out.print(_table(title, _floor_rows(floor, peak)))
    if floor.uncounted:
        out.print(f"{floor.uncounted} ok records predate FLOP counting and are not in the floor")
    invocations = info.get("invocations", [])
    if len(invocations) != 1 or info.get("cells_run") != len(records) or info.get("interrupted"):
        out.print("the folder holds several invocations or unrun cells: no single wall time to compare")
        return 0
    for line in _wall_time(info, floor, peak):
        out.print(line)
    return 0


def _read_floor(folder: Path) -> tuple[dict, list, Floor]:
    """run.json, the newest record of each cell and the floor under them; a UsageError if there is none."""
    import json
    import os

    from benchmark.grid.store import RUN_INFO, read_records

    if not (folder / RUN_INFO).is_file():
        raise UsageError(f"--floor {folder}: not a run folder (no {RUN_INFO})")
    info = json.loads((folder / RUN_INFO).read_text())
    records = list(read_records(folder).latest_by_cell().values())
    floor = floor_of(records, info.get("cpu_count") or os.cpu_count() or 1)
    if not floor.cells:
        raise UsageError(f"--floor {folder}: no record with counted FLOPs (records from before schema 2)")
    return info, records, floor


def _floor_rows(floor: Floor, peak: float) -> list[dict]:
    """A row per method and kind of work, the heaviest method first, then all of them together."""

    def row(name: str, part: Part) -> dict:
        at_peak = part.tflop * 1e3 / peak / 60
        took = part.seconds / 60
        ratio = f"{took / at_peak:.2f}" if at_peak > 0.005 else "—"
        return {"method": name, "work": "", "TFLOP": round(part.tflop, 1), "floor min": round(at_peak, 1),
                "took min": round(took, 1), "× floor": ratio}  # fmt: skip

    rows = []
    for method, parts in sorted(floor.parts.items(), key=lambda item: -sum(p.tflop for p in item[1].values())):
        for work, part in parts.items():
            if part.tflop or part.seconds:
                rows.append(row(method, part) | {"work": work})
    rows.append(row("all", Part(floor.tflop, floor.seconds)))
    return rows


def _wall_time(info: dict, floor: Floor, peak: float) -> Iterator[str]:
    """The grid's wall time against the floor, and (with run.json's one-off log) what of it the cells and the
    one-off work took and what no job's measured work did."""
    import os

    wall = info["wall_seconds"] / 60
    yield f"wall time {wall:.1f} min: {wall / floor.minutes(peak):.2f}x the floor"
    if "one_off" in info:  # the cells' machine time, and the one-off work this run did as jobs of their own
        cores = info.get("cpu_count") or os.cpu_count() or 1
        one_off = sum(job["seconds"] * min(job["threads"], cores) / cores for job in info["one_off"]) / 60
        cells = floor.cell_seconds / 60
        outside = wall - cells - one_off
        yield (
            f"of the machine's {wall:.1f} min: cells {cells:.1f}, one-off work {one_off:.1f}, "
            f"no job's measured work {outside:.1f} ({outside / wall:.0%}: start-up, loading, idle cores)"
        )


def _table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table
