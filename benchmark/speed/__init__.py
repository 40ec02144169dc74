"""``python -m benchmark speed``: how close the harness runs to this machine's own limit, measured in one process.

Useful FLOPs count only the work a perfect implementation could not skip (no padding):
- training:  6 × P_matmul × T  +  12 × n_layers × d × Σ L²
- inference: 2 × P_matmul × T  +   4 × n_layers × d × Σ L²
where P_matmul is the number of weights in the linear layers of the encoder blocks and the head (embeddings
are lookups, not matmuls), T the real (unpadded) tokens, L each sequence's real length and d the hidden size
(the Σ L² term is attention's QKᵀ and AV products: 2·L²·d each per layer forward, ×3 with the backward
pass). Efficiency is useful FLOP/s over the matmul peak measured in the same process for the dtype used.
Padding overhead is padded tokens over real tokens.

``--plain-recipe PATH`` also runs the plain Transformers recipe (``../shared/tools/plain_recipe_full_ft.py``:
Trainer, padding to 128) on the same cells (same data, budget, seeds, epochs, learning rate and batch size) and
compares time and accuracy with the harness's ``full``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import modeling, sampling
from benchmark.budget import Budget
from benchmark.context import Context
from benchmark.data import Task
from benchmark.errors import UsageError

# (rows, inner, outputs): a large square matmul, and MiniLM's feed-forward layers on a batch of tokens (the square
# one alone measured below what the models' own layers reached on a shared 2-core guest: no ceiling)
PEAK_SHAPES = ((2048, 2048, 2048), (2048, 384, 1536), (2048, 1536, 384))


def matmul_peak(dtype_name: str, seconds: float = 2.0, shapes=PEAK_SHAPES) -> float:
    """Best sustained GFLOP/s of a matmul in this process, over `shapes`, through `linear`, the kernel the models'
    layers use (on a CPU without native bf16 a plain bf16 `a @ b` measured 6x slower than `linear`, below what
    the models reached, which made the peak no ceiling)."""
    import torch
    from torch.nn.functional import linear

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    best = 0.0
    for rows, inner, outputs in shapes:
        a, b = torch.randn(rows, inner, dtype=dtype), torch.randn(outputs, inner, dtype=dtype)
        for _ in range(2):
            linear(a, b)
        deadline = time.perf_counter() + seconds / len(shapes)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            for _ in range(3):
                linear(a, b)
            best = max(best, 3 * 2 * rows * inner * outputs / (time.perf_counter() - started) / 1e9)
    return best


def matmul_params(model) -> int:
    """Weights applied at every token: the linear layers of the encoder blocks, plus the head (a pooler runs on
    one token per sequence, so it is left out)."""
    from torch import nn

    blocks = modeling.encoder_blocks(model.body)
    linear = [m for block in blocks for m in block.modules() if isinstance(m, nn.Linear)]
    return sum(m.weight.numel() for m in linear) + model.head.linear.weight.numel()


@dataclass
class Throughput:
    phase: str
    precision: str
    examples: int
    real_tokens: int
    padded_tokens: int
    seconds: float
    useful_gflop: float

    def row(self, peak_gflops: float) -> dict:
        rate = self.useful_gflop / self.seconds
        return {
            "phase": self.phase,
            "precision": self.precision,
            "examples/s": round(self.examples / self.seconds, 1),
            "real tokens/s": round(self.real_tokens / self.seconds),
            "useful GFLOP/s": round(rate, 1),
            "peak GFLOP/s": round(peak_gflops, 1),
            "efficiency": float(f"{rate / peak_gflops:.3g}"),
            "padding overhead": round(self.padded_tokens / self.real_tokens, 3),
        }


def _attention_flops(model, lengths: np.ndarray) -> float:
    config = model.body.config
    return config.num_hidden_layers * config.hidden_size * float((lengths.astype(np.float64) ** 2).sum())


def _padded_tokens(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    return int(sum(len(b) * lengths[b].max() for b in batches))


def measure_training(
    spec, task: Task, precision: str, batch_size: int = 16, shots: int = 128, epochs: int = 2, ready=None
) -> Throughput:
    """The harness's `full` training loop on a real few-shot sample of the task (`ready()`, if given, is called
    after the warm-up step, just before the timed loop)."""
    train = sampling.sample(task, Budget(min(shots, min(task.class_counts().values()))), seed=0)
    tokenizer = modeling.load_tokenizer(spec)
    model = modeling.build_classifier(modeling.load_body(spec), spec.pooling, task.num_labels)
    tokens = modeling.Tokens.of(tokenizer, train.texts, spec.max_length)
    placement = modeling.Placement("cpu", precision)
    schedule = modeling.Schedule(batch_size, min_steps=0, min_epochs=epochs, max_epochs=epochs)
    # warm-up step so that one-time allocation and kernel selection are not timed
    warm_up = modeling.Schedule(batch_size, 1, 1, 1)
    modeling.fine_tune(model, tokens, train.labels, warm_up, modeling.Optimization(1e-9), placement, seed=0)
    lengths = tokens.lengths
    rng = np.random.default_rng(0)  # the same batches fine_tune draws with seed 0
    batches = [b for _ in range(epochs) for b in modeling.train_batches(lengths, batch_size, rng)]
    if ready is not None:
        ready()
    started = time.perf_counter()
    modeling.fine_tune(model, tokens, train.labels, schedule, modeling.Optimization(5e-5), placement, seed=0)
    seconds = time.perf_counter() - started
    real = int(lengths.sum()) * epochs
    flops = 6 * matmul_params(model) * real + 12 * _attention_flops(model, lengths) * epochs
    phase = f"train (full, batch {batch_size})"
    padded = _padded_tokens(batches, lengths)
    return Throughput(phase, precision, len(train) * epochs, real, padded, seconds, flops / 1e9)


def measure_parallel_training(spec, task: Task, precision: str, batch_size: int, jobs: int, threads: int) -> Throughput:
    """The same loop in `jobs` worker processes at once, `threads` torch threads each, as ``--jobs`` runs cells:
    the combined rate (work summed, over the slowest worker's time). Workers start their timed loops together."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=context) as pool:
        barrier = manager.Barrier(jobs)
        args = (spec, task, precision, batch_size, threads, barrier)
        parts = [f.result() for f in [pool.submit(_training_worker, *args) for _ in range(jobs)]]
    return Throughput(
        f"train (full, batch {batch_size}, {jobs} processes x {threads} thread{'s' if threads > 1 else ''})",
        precision,
        sum(p.examples for p in parts),
        sum(p.real_tokens for p in parts),
        sum(p.padded_tokens for p in parts),
        max(p.seconds for p in parts),
        sum(p.useful_gflop for p in parts),
    )


def _training_worker(spec, task: Task, precision: str, batch_size: int, threads: int, barrier) -> Throughput:
    import torch

    torch.set_num_threads(threads)
    return measure_training(spec, task, precision, batch_size, ready=barrier.wait)


def measure_inference(spec, task: Task, precision: str, batch_size: int = 64) -> Throughput:
    """The harness's inference on the whole test split."""
    tokenizer = modeling.load_tokenizer(spec)
    model = modeling.build_classifier(modeling.load_body(spec), spec.pooling, task.num_labels)
    tokens = modeling.Tokens.of(tokenizer, task.test.texts, spec.max_length)
    placement = modeling.Placement("cpu", precision)
    modeling.predict_logits(model, modeling.Tokens(tokens.ids[:batch_size], tokens.pad_id), placement)  # warm-up
    started = time.perf_counter()
    modeling.predict_logits(model, tokens, placement, batch_size)
    seconds = time.perf_counter() - started
    lengths = tokens.lengths
    real = int(lengths.sum())
    flops = 2 * matmul_params(model) * real + 4 * _attention_flops(model, lengths)
    batches = modeling.inference_batches(lengths, batch_size)
    return Throughput("inference", precision, len(tokens), real, _padded_tokens(batches, lengths), seconds, flops / 1e9)


def compare_with_plain_recipe(
    recipe: Path, spec, task: Task, shots: int, seeds: list[int], epochs: int, lr: float, batch_size: int
) -> list[dict]:
    """Run the plain recipe and the harness's `full` on identical cells; one row per seed."""
    from benchmark.finetune import FineTune
    from benchmark.metrics import classification_metrics

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        train_csv, test_csv = Path(scratch) / "train.csv", Path(scratch) / "test.csv"
        _write_csv(train_csv, task.train)
        _write_csv(test_csv, task.test)
        for seed in seeds:
            env = dict(os.environ, HF_HUB_OFFLINE="1")
            command = [
                sys.executable,
                str(recipe),
                str(train_csv),
                str(test_csv),
                str(shots),
                str(seed),
                str(epochs),
                str(lr),
                str(batch_size),
                spec.path,
            ]
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise RuntimeError(f"plain recipe failed: {result.stderr.strip().splitlines()[-1:]}")
            plain = json.loads(result.stdout.strip().splitlines()[-1])
            # the recipe draws rng.choice per sorted label from default_rng(seed): the same sample as ours
            train = sampling.sample(task, Budget(shots), seed)
            assert len(train) == plain["n_train"]
            modeling.seed_everything(seed)
            method = FineTune(lr=lr, batch_size=batch_size, min_steps=0, min_epochs=epochs, max_epochs=epochs)
            ctx = Context(spec, task.num_labels, seed)
            started = time.perf_counter()
            method.fit(train, ctx)
            train_seconds = time.perf_counter() - started
            started = time.perf_counter()
            predictions = method.predict(task.test.texts)
            predict_seconds = time.perf_counter() - started
            accuracy = classification_metrics(task.test.labels, predictions, task.num_labels)["accuracy"]
            rows.append(
                {
                    "seed": seed,
                    "plain train s": round(plain["train_seconds"], 1),
                    "plain predict s": round(plain["predict_seconds"], 1),
                    "plain accuracy": round(plain["accuracy"], 4),
                    "harness train s": round(train_seconds, 1),
                    "harness predict s": round(predict_seconds, 1),
                    "harness accuracy": round(accuracy, 4),
                    "speed-up": round(
                        (plain["train_seconds"] + plain["predict_seconds"]) / (train_seconds + predict_seconds), 2
                    ),
                }
            )
    return rows


def _write_csv(path: Path, split) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(split.texts, split.labels.tolist(), strict=True))


# --- every method's steps ------------------------------------------------------------------------------------

UNLABELLED_FOR_SPEED = 1000  # texts of the pool a method's one-off work reads here (a whole pool takes minutes)


def measure_method(model, method_spec, task: Task, precision: str, shots: int, peak: float) -> list[dict]:
    """One method at `shots` per class, seed 0, in `precision`: its one-off work (on the first
    UNLABELLED_FOR_SPEED texts of the pool), training and prediction of the test split, as useful GFLOP/s
    (`benchmark.flops`) against the measured peak. Phases that do no encoder work are left out."""
    from benchmark import flops
    from benchmark.cache import OneOffCache
    from benchmark.execute import Meter

    flops.install()
    train = sampling.sample(task, Budget(shots), seed=0)
    modeling.seed_everything(0)
    method = method_spec.build()
    ctx = Context(model, task.num_labels, 0, "cpu", precision, list(task.train.texts[:UNLABELLED_FOR_SPEED]))
    ctx.cache = OneOffCache(None)
    phases = {}
    if hasattr(method, "precompute"):
        with Meter() as phases["one-off"]:
            method.precompute(ctx)
    with Meter() as phases["train"]:
        method.fit(train, ctx)
    with Meter() as phases["predict"]:
        method.predict(list(task.test.texts))
    rows = []
    for phase, meter in phases.items():
        if meter.flops > 0:
            rate = meter.flops / meter.seconds / 1e9
            rows.append({"method": method_spec.name, "phase": phase, "precision": precision,
                         "seconds": round(meter.seconds, 1), "useful GFLOP/s": float(f"{rate:.3g}"),
                         "efficiency": float(f"{rate / peak:.3g}")})  # fmt: skip
    return rows


# --- the floor under a grid -----------------------------------------------------------------------------


@dataclass
class Part:
    """Useful TFLOP of one kind of work and the machine-seconds it took (seconds × threads / cores: a cell on
    one thread of two took half the machine)."""

    tflop: float = 0.0
    seconds: float = 0.0

    def add(self, flop: float, seconds: float) -> None:
        self.tflop += flop / 1e12
        self.seconds += seconds


@dataclass
class Floor:
    """The useful work a finished grid did, the time it took, and the time it needs at a given peak."""

    parts: dict[str, dict[str, Part]]  # method -> {"train", "predict", "one-off"}
    cells: int  # ok records with FLOPs counted
    uncounted: int  # ok records from before FLOPs were counted

    @property
    def tflop(self) -> float:
        return sum(part.tflop for parts in self.parts.values() for part in parts.values())

    @property
    def seconds(self) -> float:
        return sum(part.seconds for parts in self.parts.values() for part in parts.values())

    @property
    def cell_seconds(self) -> float:
        """The cells' machine-seconds: train and predict, without the one-off work."""
        return sum(part.seconds for parts in self.parts.values() for work, part in parts.items() if work != "one-off")

    def minutes(self, peak_gflops: float) -> float:
        return self.tflop * 1e3 / peak_gflops / 60


def floor_of(records, cores: int) -> Floor:
    """Train and predict work of every ok record, and one-off work once per artifact (a dataset's frozen
    features serve two methods: counted once, for the first). One-off work counts the time it took when it was
    built, with every core (the harness builds it before the cells start): in a run with cold caches, this run."""
    parts: dict[str, dict[str, Part]] = {}
    artifacts: set[tuple[str, float]] = set()
    counted = uncounted = 0
    for record in records:
        if not record.ok:
            continue
        if record.train_flops is None:
            uncounted += 1
            continue
        counted += 1
        share = min(record.threads, cores) / cores
        method = parts.setdefault(record.method, {"train": Part(), "predict": Part(), "one-off": Part()})
        method["train"].add(record.train_flops, record.train_seconds * share)
        method["predict"].add(record.predict_flops, record.predict_seconds * share)
        artifact = (record.dataset_fingerprint, record.one_off_flops or 0.0)
        if record.one_off_flops and artifact not in artifacts:
            artifacts.add(artifact)
            method["one-off"].add(record.one_off_flops, record.one_off_seconds or 0.0)
    return Floor(parts, counted, uncounted)


def print_floor(folder: Path, peak: float | None, precision: str) -> int:
    """Useful TFLOP per method, the minutes they need at this machine's matmul peak with every core against the
    minutes they took; and, when the folder holds one invocation that ran every cell, the grid's wall time
    against that floor, with the time outside any cell's measured work (worker start-up, loading, idle cores)."""
    import json
    import os

    import torch

    from benchmark import console, runtime
    from benchmark.store import RUN_INFO, read_records

    if not (folder / RUN_INFO).is_file():
        raise UsageError(f"--floor {folder}: not a run folder (no {RUN_INFO})")
    info = json.loads((folder / RUN_INFO).read_text())
    records = list(read_records(folder).latest_by_cell().values())
    floor = floor_of(records, info.get("cpu_count") or os.cpu_count() or 1)
    if not floor.cells:
        raise UsageError(f"--floor {folder}: no record with counted FLOPs (records from before schema 2)")
    if peak is None:
        torch.set_num_threads(os.cpu_count() or 1)
        peak = matmul_peak(precision)
    out = console.stdout()
    out.print(f"{runtime.cpu_name()} · {precision} matmul peak {peak:.1f} GFLOP/s (all cores)")

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
    title = (
        "useful work by method: the minutes it needs at the peak, and the minutes it took (cells: machine-minutes, "
        "seconds × threads / cores; one-off work: its wall time when it was built)"
    )
    out.print(_table(title, rows))
    if floor.uncounted:
        out.print(f"{floor.uncounted} ok records predate FLOP counting and are not in the floor")
    invocations = info.get("invocations", [])
    if len(invocations) != 1 or info.get("cells_run") != len(records) or info.get("interrupted"):
        out.print("the folder holds several invocations or unrun cells: no single wall time to compare")
        return 0
    wall = info["wall_seconds"] / 60
    out.print(f"wall time {wall:.1f} min: {wall / floor.minutes(peak):.2f}x the floor")
    if "one_off" in info:  # the cells' machine time, and the one-off work this run did as jobs of their own
        cores = info.get("cpu_count") or os.cpu_count() or 1
        one_off = sum(job["seconds"] * min(job["threads"], cores) / cores for job in info["one_off"]) / 60
        cells = floor.cell_seconds / 60
        outside = wall - cells - one_off
        out.print(
            f"of the machine's {wall:.1f} min: cells {cells:.1f}, one-off work {one_off:.1f}, "
            f"no job's measured work {outside:.1f} ({outside / wall:.0%}: start-up, loading, idle cores)"
        )
    return 0


# --- the command ------------------------------------------------------------------------------------------


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
    parser.add_argument("--plain-recipe", type=Path, help="path to plain_recipe_full_ft.py: compare with `full`")
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

    from benchmark import console, runtime

    if args.precisions is None:
        args.precisions = "fp32,bf16" if runtime.cpu_has_native_bf16() else "fp32"
    if args.floor is not None:
        return print_floor(args.floor, args.peak, args.precisions.split(",")[0])
    from benchmark.data import load_task
    from benchmark.modeling import resolve_model

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
    for method_spec in _methods(args.methods):  # a table per method as it is measured: a stopped run keeps them
        rows = [
            row
            for precision in precisions
            for row in measure_method(
                spec, method_spec, task, precision, args.method_shots, report["peak_gflops"][precision]
            )
        ]
        report.setdefault("methods", []).extend(rows)
        out.print(_table(f"{method_spec.name}'s steps ({args.method_shots} per class, seed 0)", rows))
    if args.plain_recipe:
        seeds = list(range(args.seeds))
        comparison = compare_with_plain_recipe(
            args.plain_recipe, spec, task, args.shots, seeds, args.epochs, args.lr, args.batch_size
        )
        report["plain_recipe"] = comparison
        out.print(_table(f"full vs the plain recipe ({args.shots} per class, {args.epochs} epochs)", comparison))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


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


def _methods(value: str) -> list:
    from benchmark import registry

    if value == "none":
        return []
    names = list(registry.available()) if value == "all" else [n.strip() for n in value.split(",") if n.strip()]
    return [spec for spec in registry.resolve(names) if spec.cls is not None and not spec.missing_requirements()]


def _table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table
