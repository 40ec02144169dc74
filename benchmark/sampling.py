"""The shared few-shot sample: every method sees the identical examples for (dataset, budget, seed).

Budgets are examples *per class*, as in the SetFit paper's benchmark; ``"all"`` is the whole train pool.
A budget larger than a class is refused before anything runs (see `check_budgets`): silently taking fewer
examples of one class would make cells of one budget incomparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.data import Split, Task
from benchmark.errors import UsageError

Shots = int | str  # a positive int, or "all"


def sample(task: Task, shots: Shots, seed: int) -> Split:
    """`shots` examples per class without replacement, drawn with a generator seeded by `seed` alone.

    Classes are visited in label-id order and the picks concatenated in that order, so the result depends on
    nothing but the task's content, the budget and the seed.
    """
    pool = task.train
    if shots == "all":
        return pool
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(task.num_labels):
        members = np.flatnonzero(pool.labels == label)
        if len(members) == 0:
            continue
        picks.append(rng.choice(members, size=shots, replace=False))
    index = np.concatenate(picks)
    return Split([pool.texts[i] for i in index], pool.labels[index])


def check_budgets(task: Task, budgets: Sequence[Shots]) -> None:
    counts = {name: n for name, n in task.class_counts().items() if n > 0}
    smallest_name = min(counts, key=counts.get)
    for shots in budgets:
        if shots != "all" and shots > counts[smallest_name]:
            raise UsageError(
                f"--shots {shots} exceeds the smallest class of '{task.name}' "
                f"('{smallest_name}': {counts[smallest_name]} examples in the train pool); "
                f"use at most {counts[smallest_name]} or 'all'"
            )


def parse_shots(value: str) -> list[Shots]:
    """'8,64,all' -> [8, 64, 'all']; UsageError for 0, negatives, non-numbers and duplicates."""
    budgets: list[Shots] = []
    for part in (p.strip() for p in value.split(",")):
        if part.lower() == "all":
            budget: Shots = "all"
        elif part.lstrip("-").isdigit():
            budget = int(part)
            if budget <= 0:
                raise UsageError(f"--shots: {budget} is not a positive number of examples per class")
        else:
            raise UsageError(f"--shots: '{part}' is neither a positive integer nor 'all' (e.g. --shots 8,64,all)")
        if budget in budgets:
            raise UsageError(f"--shots: {budget} is listed twice")
        budgets.append(budget)
    return budgets
