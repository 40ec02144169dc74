"""The machine's floor under a finished grid: the useful FLOPs its cells and one-off work did, the time those
need at this machine's measured fp32 matmul peak on every core, and the grid's wall time against it.

Useful FLOPs count as in `benchmark.speed`: encoding a text of L real tokens costs
F(L) = 2 × P × L + 4 × layers × d × L² (P: the weights of the encoder blocks' linear layers; the L² term is
attention), training on it 3 × F(L) when every block trains. Per method, from each record:
- full, mlm (its fine-tune): epochs × the sample's texts × 3F; freeze-k: F + 2F × (layers - k) / layers (no
  gradients below the lowest trained block); lora: 2F (activation gradients through every block; the adapters'
  own weights are negligible); logreg, freeze-head: only a head, on the shared features (~0).
- setfit: steps × 16 pairs × 2 texts × 3F, at the sample's mean F; then its head's features of the sample (F).
- prediction: the test split, F per text, for every method but logreg and freeze-head (shared features).
- one-off work: the frozen features of the train pool and test split (F each), once if logreg or freeze-head
  ran; the MLM epochs over the pool (3F, plus the vocabulary head at the masked 15%: 6 × d × vocabulary per
  masked token), once per MLM configuration.
Padding, dropout, optimizer steps, tokenisation and model loading are overhead, not counted.

    python scripts/grid_floor.py results/rt-critics-8-64-paired [--peak GFLOPS]

The folder must hold one invocation of the grid, on the embedded default (its wall time is compared).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

FEATURE_METHODS = ("logreg", "freeze-head")  # they read the shared frozen features instead of encoding
SETFIT_PAIRS_PER_STEP = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--peak", type=float, help="fp32 GFLOP/s of the whole machine (default: measured now)")
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig

    from benchmark import data, modeling, sampling, speed

    run = json.loads((args.folder / "run.json").read_text())
    records = [json.loads(line) for line in (args.folder / "records.jsonl").read_text().splitlines() if line]
    records = [r for r in records if r["status"] == "ok"]
    task, spec = data.load_rt_critics(), modeling.resolve_model(None)
    if {r["dataset_fingerprint"] for r in records} != {task.fingerprint}:
        raise SystemExit("the records are not of the embedded default dataset")
    config = AutoConfig.from_pretrained(spec.path)
    layers, d = config.num_hidden_layers, config.hidden_size
    weights = layers * (4 * d * d + 2 * d * config.intermediate_size)
    tokenizer = modeling.load_tokenizer(spec)

    def lengths(texts) -> np.ndarray:
        return modeling.Tokens.of(tokenizer, list(texts), spec.max_length).lengths.astype(np.float64)

    def forward(lengths: np.ndarray) -> np.ndarray:
        """F(L) of each text."""
        return 2 * weights * lengths + 4 * layers * d * lengths**2

    pool_lengths = lengths(task.train.texts)
    test, pool = forward(lengths(task.test.texts)).sum(), forward(pool_lengths)
    flops: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        method, resolved = r["method"], r["params"]["resolved"]
        sample = forward(lengths(sampling.sample(task, r["shots"], r["seed"]).texts))
        if method.startswith("setfit"):
            texts = resolved["steps"] * SETFIT_PAIRS_PER_STEP * 2
            flops[method]["train"] += texts * 3 * sample.mean() + sample.sum()
        elif method not in FEATURE_METHODS:
            if method.startswith("lora"):
                per_text = 2.0
            elif "frozen_blocks" in resolved:
                per_text = 1 + 2 * (layers - resolved["frozen_blocks"]) / layers
            else:
                per_text = 3.0
            flops[method]["train"] += resolved["epochs"] * per_text * sample.sum()
        if method not in FEATURE_METHODS:
            flops[method]["predict"] += test
        if method.startswith("mlm") and not flops[method]["one-off"]:
            vocabulary_head = 6 * d * config.vocab_size * 0.15 * pool_lengths.sum()
            flops[method]["one-off"] += resolved["mlm_epochs"] * (3 * pool.sum() + vocabulary_head)
    if any(r["method"] in FEATURE_METHODS for r in records):
        flops["features"]["one-off"] += pool.sum() + test

    if args.peak:
        peak = args.peak
        print(f"fp32 matmul peak (given): {peak:.1f} GFLOP/s")
    else:
        torch.set_num_threads(os.cpu_count() or 1)
        peak = speed.matmul_peak("fp32")
        print(f"fp32 matmul peak, measured with {torch.get_num_threads()} threads: {peak:.1f} GFLOP/s")
    total = sum(sum(parts.values()) for parts in flops.values())
    print(f"{'':<12} {'train TFLOP':>12} {'predict TFLOP':>14} {'one-off TFLOP':>14} {'floor min':>10}")
    for method, parts in sorted(flops.items(), key=lambda item: -sum(item[1].values())):
        minutes = sum(parts.values()) / peak / 1e9 / 60
        print(
            f"{method:<12} {parts['train'] / 1e12:>12.1f} {parts['predict'] / 1e12:>14.1f} "
            f"{parts['one-off'] / 1e12:>14.1f} {minutes:>10.1f}"
        )
    floor = total / peak / 1e9
    print(f"{'all':<12} {total / 1e12:>43.1f} {floor / 60:>10.1f}")
    if len(run.get("invocations", [])) == 1 and run["cells_run"] == len(records):
        wall = run["wall_seconds"]
        print(f"wall time of the grid: {wall / 60:.1f} min, {floor / wall:.0%} of the machine's floor pace")
    else:
        print("the folder holds several invocations or failed cells: no wall time to compare")


if __name__ == "__main__":
    main()
