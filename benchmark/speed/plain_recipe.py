"""``--plain-recipe PATH``: the plain Transformers recipe (``../shared/tools/plain_recipe_full_ft.py``: Trainer,
padding to 128, every weight training) against its counterpart in the registry, full fine-tuning, on identical
cells (same data, budget, seeds, epochs, learning rate and batch size): time and accuracy of each, one row per
seed. The recipe runs in a process of its own, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark import modeling
from benchmark.budget import Budget
from benchmark.context import Context
from benchmark.data import sampling
from benchmark.data.tasks import Task
from benchmark.speed.throughput import FULL_FINE_TUNING

COUNTERPART = FULL_FINE_TUNING  # the registered method that runs what the plain recipe runs: every weight trains


def compare_with_plain_recipe(
    recipe: Path, spec, task: Task, shots: int, seeds: list[int], epochs: int, lr: float, batch_size: int
) -> list[dict]:
    """Run the plain recipe and the harness's fine-tuning on identical cells; one row per seed."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        train_csv, test_csv = Path(scratch) / "train.csv", Path(scratch) / "test.csv"
        _write_csv(train_csv, task.train)
        _write_csv(test_csv, task.test)
        for seed in seeds:
            settings = [str(shots), str(seed), str(epochs), str(lr), str(batch_size)]
            plain = _run_plain(recipe, [str(train_csv), str(test_csv), *settings, spec.path])
            # the recipe draws rng.choice per sorted label from default_rng(seed): the same sample as ours
            train = sampling.sample(task, Budget(shots), seed)
            assert len(train) == plain["n_train"]
            train_seconds, predict_seconds, accuracy = _run_harness(spec, task, train, seed, epochs, lr, batch_size)
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


def _run_plain(recipe: Path, arguments: list[str]) -> dict:
    """The recipe's one JSON line: train_seconds, predict_seconds, accuracy, n_train."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, str(recipe), *arguments], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"plain recipe failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _run_harness(
    spec, task: Task, train, seed: int, epochs: int, lr: float, batch_size: int
) -> tuple[float, float, float]:
    """(train seconds, predict seconds, accuracy) of the shared fine-tuning recipe on `train`, for exactly
    `epochs` epochs."""
    from benchmark import registry
    from benchmark.metrics import classification_metrics

    modeling.seed_everything(seed)
    (spec,) = registry.resolve([COUNTERPART])
    recipe = spec.build(
        {"lr": lr, "batch_size": batch_size, "min_steps": 0, "min_epochs": epochs, "max_epochs": epochs}
    )
    ctx = Context(spec, task.num_labels, seed)
    started = time.perf_counter()
    recipe.fit(train, ctx)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predictions = recipe.predict(task.test.texts)
    predict_seconds = time.perf_counter() - started
    accuracy = classification_metrics(task.test.labels, predictions, task.num_labels)["accuracy"]
    return train_seconds, predict_seconds, accuracy


def _write_csv(path: Path, split) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(split.texts, split.labels.tolist(), strict=True))
