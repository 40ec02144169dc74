"""fewshot-bench: which way of adapting a pretrained encoder wins at your label budget, and what it costs.

The Python API (docs/api.md): `run` a grid from a `RunConfig` and get its `Outcome`; `load` a run folder;
`check_method` a method of your own against the contract every method honours; `register` it."""

from benchmark.api import load, run, write_reports
from benchmark.budget import Budget
from benchmark.checks import check_method
from benchmark.errors import UsageError
from benchmark.grid.config import RunConfig
from benchmark.outcome import Outcome
from benchmark.record import FitResult, Record
from benchmark.registry import register
from benchmark.version import __version__

__all__ = [
    "Budget", "FitResult", "Outcome", "Record", "RunConfig", "UsageError", "__version__", "check_method", "load",
    "register", "run", "write_reports",
]  # fmt: skip
