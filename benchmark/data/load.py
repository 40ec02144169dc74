"""Any dataset name to its task: the embedded suite by name, else a local file or folder, else the Hub; once per
process for a `DatasetSource` (what workers are given)."""

from __future__ import annotations

import functools

from benchmark.data.embedded import EMBEDDED
from benchmark.data.tasks import DatasetSource, Task, read_task
from benchmark.errors import UsageError


@functools.lru_cache(maxsize=16)
def load_source(source: DatasetSource) -> Task:
    """The task of `source`, loaded once per process."""
    return load_task(source.name, source.test, source.text_col, source.label_col)


def load_task(dataset: str, test: str | None = None, text_col: str | None = None, label_col: str | None = None) -> Task:
    """Resolve NAME|PATH to a Task, or raise UsageError with a one-line reason."""
    if dataset in EMBEDDED:
        if test is not None:
            raise UsageError(f"--test does not apply to the embedded dataset '{dataset}' (its split is fixed)")
        return EMBEDDED[dataset].load()
    return read_task(dataset, test, text_col, label_col)
