"""The shared few-shot sample: every method sees the identical examples for (dataset, budget, seed).

Budgets are examples *per class*, as in the SetFit paper's benchmark; `ALL` is the whole train pool. A budget
larger than a class cannot be supplied (see `unsuppliable`): silently taking fewer examples of one class would
make cells of one budget incomparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.budget import Budget
from benchmark.data.tasks import Split, Task
from benchmark.errors import UsageError


def sample(task: Task, budget: Budget, seed: int) -> Split:
    """`budget.per_class` examples per class without replacement, drawn with a generator seeded by `seed` alone.

    Classes are visited in label-id order and the picks concatenated in that order, so the result depends on
    nothing but the task's content, the budget and the seed.
    """
    pool = task.train
    if budget.is_all:
        return pool
    rng = np.random.default_rng(seed)
    picks = []
    for label in range(task.num_labels):
        members = np.flatnonzero(pool.labels == label)
        if len(members) == 0:
            continue
        picks.append(rng.choice(members, size=budget.per_class, replace=False))
    index = np.concatenate(picks)
    return Split([pool.texts[i] for i in index], pool.labels[index])


def smallest_class(task: Task) -> tuple[str, int]:
    counts = {name: n for name, n in task.class_counts().items() if n > 0}
    name = min(counts, key=counts.get)
    return name, counts[name]


def unsuppliable(task: Task, budgets: Sequence[Budget]) -> list[Budget]:
    """The budgets that ask for more examples of a class than the task's train pool holds."""
    _, smallest = smallest_class(task)
    return [b for b in budgets if not b.is_all and b.per_class > smallest]


def check_budgets(task: Task, budgets: Sequence[Budget]) -> None:
    """UsageError naming the smallest class if any budget exceeds it."""
    too_large = unsuppliable(task, budgets)
    if too_large:
        name, count = smallest_class(task)
        raise UsageError(
            f"--shots {too_large[0]} exceeds the smallest class of '{task.name}' ('{name}': {count} examples in "
            f"the train pool); use at most {count} or 'all'"
        )
