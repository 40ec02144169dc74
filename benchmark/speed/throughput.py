"""This machine's ceiling and the harness's shared loops against it: the matmul peak measured in this process
(`matmul_peak`), and the useful FLOP/s, examples and tokens per second and padding overhead of the training loop
every gradient method shares (`modeling.fine_tune` with every weight training: full fine-tuning, which the rows
call `FULL_FINE_TUNING`; no method is built or named), in one process or in several at once as ``--jobs`` runs
cells, and of inference on a test split.

Useful FLOPs count only the work a perfect implementation could not skip (no padding):
- training:  6 × P_matmul × T  +  12 × n_layers × d × Σ L²
- inference: 2 × P_matmul × T  +   4 × n_layers × d × Σ L²
where P_matmul is the number of weights in the linear layers of the encoder blocks and the head (embeddings
are lookups, not matmuls), T the real (unpadded) tokens, L each sequence's real length and d the hidden size
(the Σ L² term is attention's QKᵀ and AV products: 2·L²·d each per layer forward, ×3 with the backward
pass). Efficiency is useful FLOP/s over the matmul peak measured in the same process for the dtype used.
Padding overhead is padded tokens over real tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmark import modeling
from benchmark.budget import Budget
from benchmark.data import sampling
from benchmark.data.tasks import Task

# (rows, inner, outputs): a large square matmul, and MiniLM's feed-forward layers on a batch of tokens (the square
# one alone measured below what the models' own layers reached on a shared 2-core guest: no ceiling)
PEAK_SHAPES = ((2048, 2048, 2048), (2048, 384, 1536), (2048, 1536, 384))
FULL_FINE_TUNING = "full"  # the rows' name for the shared loop with every weight training (not a method looked up)


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
    """The shared training loop, every weight training, on a real few-shot sample of the task (`ready()`, if
    given, is called after the warm-up step, just before the timed loop)."""
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
    phase = f"train ({FULL_FINE_TUNING}, batch {batch_size})"
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
        f"train ({FULL_FINE_TUNING}, batch {batch_size}, {jobs} processes x {threads} "
        f"thread{'s' if threads > 1 else ''})",
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
