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
from benchmark.context import Context
from benchmark.data import Task


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 2.0) -> float:
    """Best sustained GFLOP/s of a square matmul in this process."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(3):
            a @ b
        best = max(best, 3 * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def matmul_params(model) -> int:
    """Weights applied at every token: the linear layers of the encoder blocks, plus the head (a pooler runs on
    one token per sequence, so it is left out)."""
    from torch import nn

    blocks = modeling.encoder_blocks(model.body)
    linear = [m for block in blocks for m in block.modules() if isinstance(m, nn.Linear)]
    return sum(m.weight.numel() for m in linear) + model.head.weight.numel()


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
    train = sampling.sample(task, min(shots, min(task.class_counts().values())), seed=0)
    tokenizer = modeling.load_tokenizer(spec)
    model = modeling.build_classifier(modeling.load_body(spec), spec.pooling, task.num_labels)
    tokens = modeling.Tokens.of(tokenizer, train.texts, spec.max_length)
    ctx = Context(spec, task.num_labels, seed=0, precision=precision)
    schedule = modeling.Schedule(batch_size, min_steps=0, min_epochs=epochs, max_epochs=epochs)
    # warm-up step so that one-time allocation and kernel selection are not timed
    modeling.fine_tune(model, tokens, train.labels, ctx, modeling.Schedule(batch_size, 1, 1, 1), lr=1e-9)
    lengths = tokens.lengths
    rng = np.random.default_rng(0)  # the same batches fine_tune draws with seed 0
    batches = [b for _ in range(epochs) for b in modeling.train_batches(lengths, batch_size, rng)]
    if ready is not None:
        ready()
    started = time.perf_counter()
    modeling.fine_tune(model, tokens, train.labels, ctx, schedule, lr=5e-5)
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
    ctx = Context(spec, task.num_labels, seed=0, precision=precision)
    modeling.predict_logits(model, modeling.Tokens(tokens.ids[:batch_size], tokens.pad_id), ctx)  # warm-up
    started = time.perf_counter()
    modeling.predict_logits(model, tokens, ctx, batch_size)
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
            train = sampling.sample(task, shots, seed)
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


def measure_logreg_grid(spec, task: Task, budgets: list, seeds: list[int], threads: int) -> dict:
    """Seconds for one encoding pass of train pool + test split, for `logreg` over budgets x seeds with a cold
    cache (which includes that pass, once), and again with the cache warm (a re-run)."""
    from benchmark import registry
    from benchmark.runner import Plan, StopRequest, run_cells

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        Plan(task, spec, {}, {}, [], [], threads=threads).feature_store()._encode(
            list(task.train.texts) + list(task.test.texts)
        )
        encode = time.perf_counter() - started
        specs = {"logreg": registry.resolve(["logreg"])[0]}
        timings = []
        for _ in ("cold", "warm"):  # a fresh Plan (fresh in-memory store) each time, like a new process
            plan = Plan(task, spec, specs, {}, budgets, seeds, threads=threads, cache_dir=Path(scratch))
            started = time.perf_counter()
            records = [r for _, r, _ in run_cells(plan, plan.cells, StopRequest(lambda: None))]
            timings.append(time.perf_counter() - started)
            assert all(r["status"] == "ok" for r in records)
    return {
        "cells": len(budgets) * len(seeds),
        "one encoding pass s": round(encode, 1),
        "logreg grid, cold cache s": round(timings[0], 1),
        "logreg grid, warm cache s": round(timings[1], 1),
        "cold / encoding pass": round(timings[0] / encode, 2),
        "warm / cold": round(timings[1] / timings[0], 3),
    }
