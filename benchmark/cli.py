"""Command line: ``run`` (the default), ``list``, ``report``, ``speed``.

Every user mistake is caught before anything is written and printed as one line on stderr with exit code 2.
Results go to stdout, notes and warnings to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from benchmark.errors import Terminated, UsageError
from benchmark.version import __version__

PROG = "fewshot-bench"
COMMANDS = ("run", "list", "report", "compare", "speed")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
EPILOG = f"""'run' is the default command: '{PROG} --methods ...' is '{PROG} run --methods ...'.

exit codes:
  0    every cell finished ok
  1    some cell failed (its record and the reports are still written), or the run had to stop (disk full)
  2    a mistake in what was asked (one line on stderr; nothing written)
  130  interrupted (Ctrl-C); re-running the same command resumes
  143  stopped by SIGTERM (kill, a cluster scheduler), handled as Ctrl-C; re-running resumes"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and exits; we want one line through UsageError
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv = ["run", *argv]
    _tolerant_output()
    stdout, sys.stdout = sys.stdout, _QuietWhenReaderLeaves(sys.stdout)
    previous = _terminate_as_interrupt()
    try:
        args = parser().parse_args(argv)
        return args.command(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # a Ctrl-C or SIGTERM outside the grid (or a second one): records stay valid
        print(f"{PROG}: aborted", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt():
    """SIGTERM unwinds like Ctrl-C (locks released, nothing half-written) instead of killing the process where it
    stands; the grid itself treats it as a first Ctrl-C (runner.StopRequest). Only the main thread may set it."""

    def handle(signum, frame):
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handle)


class _QuietWhenReaderLeaves:
    """Standard output that goes quiet when the reader of its pipe has gone (`... | head`, or a `| tee` that the
    same Ctrl-C stopped), instead of raising from the next print: a grid then still finishes its running cells and
    writes its records, run.json and reports."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def _silence(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _tolerant_output() -> None:
    """A terminal or pipe that cannot encode a character gets a replacement, never a crash."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def parser() -> argparse.ArgumentParser:
    from benchmark import compare, speed

    top = _Parser(
        prog=PROG,
        description="Which way of adapting a pretrained encoder wins at your label budget, and what it costs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = top.add_subparsers(title="commands", metavar="{run,list,report,compare,speed}")
    run = commands.add_parser(
        "run", help="run a grid of methods x budgets x seeds (the default)", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _run_arguments(run)
    listing = commands.add_parser("list", help="registered methods with their hyperparameters, and the datasets")
    listing.set_defaults(command=cmd_list)
    report = commands.add_parser("report", help="re-write a run folder's leaderboards and reports from its records")
    report.add_argument("folder", type=_path)
    report.add_argument("--metric", default="macro_f1", choices=_metrics())
    report.add_argument("--margin", type=_margin, help="margin of practical equivalence for the verdicts (default: "
                        "the run's, else 0.02; docs/statistics.md)")  # fmt: skip
    report.set_defaults(command=cmd_report)
    compare.add_arguments(
        commands.add_parser("compare", help="the same cells in two run folders: did the results change?")
    )
    speed.add_arguments(commands.add_parser("speed", help="measure throughput against this machine's matmul peak"))
    return top


def _metrics() -> tuple[str, ...]:
    from benchmark.metrics import METRICS

    return METRICS


def _run_arguments(run: argparse.ArgumentParser) -> None:
    from benchmark import registry
    from benchmark.grid import config

    run.set_defaults(command=cmd_run)
    methods = ",".join(registry.default_methods())
    run.add_argument("--config", type=_path, help="a TOML file: datasets, methods with overrides, budgets, seeds, "
                     "out (see configs/); the flags below override it")  # fmt: skip
    run.add_argument("--methods", help=f"comma-separated method names (default: {methods})")
    run.add_argument("--shots", help="examples per class, comma-separated, or 'all' (default: 8,64)")
    run.add_argument("--seeds", help="number of seeds S: runs seeds 0..S-1 (default: 3); or 'auto' (auto:3-10): "
                     "more seeds only where a verdict is inconclusive, up to the cap (docs/statistics.md)")  # fmt: skip
    run.add_argument("--margin", type=_margin, help="margin of practical equivalence for the leaderboards' "
                     "verdicts, in the metric's units (default: 0.02; docs/statistics.md)")  # fmt: skip
    run.add_argument(
        "--dataset",
        help="embedded dataset name(s) (see 'list'), a Hub name, or a CSV/TSV/JSONL/Parquet file or dataset "
        "folder; comma-separated for several (default: rt-critics)",
    )
    run.add_argument("--suite", help="'embedded': every embedded dataset (instead of --dataset)")
    run.add_argument("--test", help="test file for a local --dataset (default: a fixed 10%% per-class split)")
    run.add_argument("--text-col", help="text column (default: auto-detected: text, sentence, ...)")
    run.add_argument("--label-col", help="label column (default: auto-detected: label, class, ...)")
    run.add_argument("--model", help="Hub id or local folder (default: all-MiniLM-L6-v2 from its package)")
    run.add_argument("--out", type=_path, help="run folder (default: results/<dataset>-<model>; re-running resumes)")
    run.add_argument("--metric", choices=_metrics(), help="ranking metric (default: macro_f1)")
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="METHOD.FIELD=VALUE", help="override a "
        "hyperparameter, checked against the method's fields (repeatable)"
    )  # fmt: skip
    run.add_argument("--device", help="auto (CUDA, then MPS, then CPU; the default), cpu, cuda, cuda:N, mps")
    run.add_argument(
        "--precision", choices=config.choices("precision"), help="auto (the default): bf16 autocast on CUDA with "
        "bf16 support, fp32 elsewhere"
    )  # fmt: skip
    run.add_argument("--threads", type=_flag("threads"), help="torch threads in all (default: all cores)")
    run.add_argument("--jobs", type=_flag("jobs"), help="cells at once (default: one per core on CPU, 1 on GPU)")
    run.add_argument(
        "--cache-dir", type=_path, help="one-off work shared across runs: frozen features, adapted encoders "
        "(default: ~/.cache/fewshot-bench, or $FEWSHOT_BENCH_CACHE)"
    )  # fmt: skip
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the cache folder")
    run.add_argument("--executor", choices=config.choices("executor"), help="local (the default): this "
                     "machine's processes; ray: one Ray task per cell on a cluster (pip install "
                     "'fewshot-bench[ray]')")  # fmt: skip
    run.add_argument("--ray-address", help="with --executor ray: the cluster (default: $RAY_ADDRESS, else a local "
                     "cluster started for the run)")  # fmt: skip
    run.add_argument("--cpus-per-cell", type=_flag("cpus_per_cell"), help="with --executor ray: CPUs a cell "
                     "declares, also its torch threads (default: 1)")  # fmt: skip
    run.add_argument("--gpus-per-cell", type=_flag("gpus_per_cell"), help="with --executor ray: GPUs a cell "
                     "declares; fractions let cells share one (default: 0)")  # fmt: skip
    run.add_argument("--force", action="store_true", help="re-run cells that already finished in --out")
    run.add_argument("--trust-remote-code", action="store_true", help="allow a model repository's own code to run")
    run.add_argument("--allow-overlap", action="store_true", help="run even where more than 1%% of the test texts "
                     "are also in the train pool (refused otherwise)")  # fmt: skip


def _path(value: str) -> Path:
    try:
        return Path(value).expanduser()
    except RuntimeError:  # '~' with neither $HOME nor a password-file entry (a container's random user id)
        raise UsageError(f"{value}: '~' names no folder here (no home folder is known); give the full path") from None


def _margin(value: str) -> float:
    from benchmark.grid.config import parse_flag

    return parse_flag("margin", value, "--margin")


def _flag(name: str):
    """The argparse type of a flag that sets RunConfig field `name`: its string checked as the field declares."""
    from benchmark.grid.config import parse_flag

    return lambda value: parse_flag(name, value, f"--{name.replace('_', '-')}")


def default_cache() -> Path | None:
    """Read when a command runs, not at import, so FEWSHOT_BENCH_CACHE set later still counts. None (no cache on
    disk, with a note) where no home folder is known and the variable is not set."""
    if os.environ.get("FEWSHOT_BENCH_CACHE"):
        return _path(os.environ["FEWSHOT_BENCH_CACHE"])
    try:
        return Path.home() / ".cache" / "fewshot-bench"
    except RuntimeError:
        from benchmark import console

        console.note("no home folder is known: one-off work is not cached on disk (give --cache-dir to keep it)")
        return None


def run_config(args: argparse.Namespace):
    """The run's configuration: the defaults, then the --config file, then the flags given."""
    from pydantic import ValidationError

    from benchmark import schema
    from benchmark.budget import parse_budgets
    from benchmark.grid import config

    fields = config.read_file(args.config) if args.config else {}
    seeds = (args.seeds or "").strip()
    sequential = seeds.lower().startswith("auto")
    # `is not None` throughout: an empty value ('--methods ""', a shell variable left unset) is a mistake to
    # name, not a flag left out (which would run every default method)
    if args.dataset is not None and args.suite is not None:
        raise UsageError("give --dataset or --suite, not both")
    flags = {
        "datasets": _names(args.dataset, "--dataset") if args.dataset is not None else None,
        "methods": _names(args.methods, "--methods") if args.methods is not None else None,
        "budgets": parse_budgets(args.shots) if args.shots is not None else None,
        "seeds": config.parse_flag("seeds", seeds, "--seeds") if args.seeds is not None and not sequential else None,
        "margin": args.margin,
    }
    if args.suite is not None:
        flags["datasets"] = config.suite(args.suite)
    for name in ("test", "text_col", "label_col", "model", "out", "metric", "device", "precision"):
        flags[name] = getattr(args, name)
    flags |= {"threads": args.threads, "jobs": args.jobs, "cache_dir": args.cache_dir}
    flags |= {"executor": args.executor, "ray_address": args.ray_address, "cpus_per_cell": args.cpus_per_cell}
    flags["gpus_per_cell"] = args.gpus_per_cell
    fields |= {name: value for name, value in flags.items() if value is not None}
    if sequential:
        fields |= config.seeds_auto(seeds)
    elif seeds:
        fields["seeds_auto"] = None  # a number of seeds replaces a config file's auto
    if args.no_cache:
        fields["cache_dir"] = None
    elif "cache_dir" not in fields:
        fields["cache_dir"] = default_cache()
    if flags["methods"] is not None:  # --methods replaces the file's methods, and their settings with them
        fields["settings"] = {k: v for k, v in fields.get("settings", {}).items() if k in flags["methods"]}
    try:
        return config.RunConfig(
            **fields,
            overrides=list(args.overrides),
            force=args.force,
            trust_remote_code=args.trust_remote_code,
            allow_overlap=args.allow_overlap,
        )
    except ValidationError as exc:  # a safety net: each flag was checked as its field (config.parse_flag) already
        found = schema.problem(exc)
        raise UsageError(f"--{str(found.field).replace('_', '-')}: {found.is_not}") from None


def _names(value: str, flag: str) -> list[str]:
    names = [n.strip() for n in value.split(",")]
    if not any(names):
        raise UsageError(f"{flag}: give at least one name")
    if "" in names:  # 'a,,b' or 'a,': a name lost in editing, not one to skip
        raise UsageError(f"{flag}: '{value}' has an empty name between commas")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"{flag}: {', '.join(repeated)} listed twice")
    return names


# --- run ------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark import api
    from benchmark.console import ConsoleDisplay

    config = run_config(args)
    return exit_code(api.run(config, ConsoleDisplay(config)))


def exit_code(outcome) -> int:
    """0: every cell ok and the reports written; 1: a cell failed, the reports or records could not be written;
    130 / 143: stopped by Ctrl-C / SIGTERM (re-running resumes)."""
    from benchmark.outcome import INTERRUPTED, TERMINATED

    if outcome.stopped == INTERRUPTED:
        return EXIT_INTERRUPTED
    if outcome.stopped == TERMINATED:
        return EXIT_TERMINATED
    return EXIT_OK if outcome.complete and not outcome.failed else EXIT_FAILED


# --- list and report --------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark import console

    console.print_listing()
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from benchmark import api
    from benchmark.console import ConsoleDisplay

    display = ConsoleDisplay(None)
    outcome = api.write_reports(api.load(args.folder, args.metric, args.margin, display), display)
    return EXIT_OK if outcome.reports_written else EXIT_FAILED
