"""What splitting a few-shot batch by length would buy: the 8-per-class sample of a 2-class task is one batch of
16 texts padded to its longest; the same batch as 2 or 4 length-sorted micro-batches (gradient accumulation: the
same gradient in exact arithmetic, but other dropout draws, so other results) pads less. Prints padded/real
tokens and the forward+backward time per step of full fine-tuning for each way, on rt-critics seeds 0-2.

    python scripts/padding_split.py [THREADS]      # docs/speed.md, "Padding"
"""

import sys
import time

import numpy as np
import torch

from benchmark import modeling
from benchmark.budget import Budget
from benchmark.data import sampling
from benchmark.data.load import load_source
from benchmark.data.tasks import DatasetSource


def main(threads: int, seconds: float = 6.0) -> None:
    torch.set_num_threads(threads)
    task = load_source(DatasetSource.of("rt-critics"))
    spec = modeling.resolve_model(None)
    tokenizer = modeling.load_tokenizer(spec)
    model = modeling.build_classifier(modeling.load_body(spec), spec.pooling, task.num_labels).train()

    def step(tokens: modeling.Tokens, parts: list[np.ndarray], size: int) -> None:
        for index in parts:
            logits = model(*tokens.batch(index, "cpu"))
            (logits.float().square().sum() / size).backward()
        model.zero_grad(set_to_none=True)

    for seed in range(3):
        split = sampling.sample(task, Budget(8), seed)
        tokens = modeling.Tokens.of(tokenizer, split.texts, spec.max_length)
        lengths, order = tokens.lengths, np.argsort(tokens.lengths, kind="stable")
        size = len(lengths)
        for parts_count in (1, 2, 4):
            parts = np.array_split(order, parts_count) if parts_count > 1 else [np.arange(size)]
            padded = sum(len(p) * lengths[p].max() for p in parts)
            step(tokens, parts, size)  # warm-up
            started, steps = time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                step(tokens, parts, size)
                steps += 1
            per_step = (time.perf_counter() - started) / steps
            print(
                f"seed {seed} · {parts_count} batch(es) · padded/real {padded / lengths.sum():.2f} · "
                f"{1000 * per_step:.0f} ms per step",
                flush=True,
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
