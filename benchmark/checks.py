"""`check_method`: the contract every method must honour, as a function a method's author runs (and the test
suite runs on every registered method), like scikit-learn's `check_estimator`.

One cell, exactly as a grid runs it (sampling, seeding, the one-off work, fit, predict, metrics, the record), on
a synthetic two-class task (`benchmark.testing`) and, unless another encoder is named, a tiny random BERT built
on the spot: offline, seconds for most methods. The rules, each a `MethodContractError` naming what broke:

- the method's module imports and its packages are installed; its hyperparameters pass their own declared bounds;
- the cell does not fail: `fit` and `predict` run without raising, and `predict` gives one label id in
  ``range(num_labels)`` per test text (a failed cell's error and traceback are in the message);
- `fit`'s parameter counts, if it returns them, satisfy ``0 <= trainable_params <= total_params``;
- the same seed gives the same predictions and scores (run twice);
- under ``precision="bf16"``, every linear layer the method runs computes in bf16: the record's precision is true.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmark.errors import UsageError
from benchmark.record import Record

BUDGET = 4  # examples per class: 8 labelled texts, the rest of the synthetic pool unlabelled


class MethodContractError(AssertionError):
    """A method broke a rule of the contract (the message names the method and the rule)."""


def check_method(
    name: str,
    model: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    precision: str = "fp32",
) -> Record:
    """Run method `name` (registered: a file in methods/, an entry point, or `benchmark.register`) through one
    cell and check the contract (module docstring). `model`: an encoder folder or name (default: a tiny random
    BERT); `overrides`: hyperparameters for this check (e.g. fewer epochs). Returns the first run's record."""
    from benchmark import registry
    from benchmark.budget import Budget
    from benchmark.data.load import load_source
    from benchmark.data.tasks import DatasetSource
    from benchmark.grid import execute
    from benchmark.grid.plan import Plan, Settings
    from benchmark.modeling import resolve_model
    from benchmark.testing import build_tiny_model, synthetic_rows, write_csv

    registry.discover()
    (spec,) = registry.resolve([name])
    unavailable = registry.unavailable_modules().get(spec.module)
    if spec.cls is None or unavailable:
        raise MethodContractError(f"{name}: its module {spec.module} cannot be imported ({unavailable})")
    missing = spec.missing_requirements()
    if missing:
        raise MethodContractError(f"{name}: needs {', '.join(missing)}, which is not installed")
    with tempfile.TemporaryDirectory(prefix="fewshot-check-") as scratch:
        folder = Path(scratch)
        encoder = resolve_model(str(model) if model else str(build_tiny_model(folder / "tiny-bert")))
        params = spec.defaults() | dict(overrides or {})
        try:
            registry.check_params(spec, params, encoder, list(overrides or {}))
        except UsageError as exc:  # a value outside its declared bounds, a combination its `check` refuses
            raise MethodContractError(f"{name}: its hyperparameters are refused: {exc}") from None
        train, test = (
            write_csv(folder / f"{part}.csv", synthetic_rows(12, seed)) for part, seed in (("train", 2), ("test", 3))
        )
        source = DatasetSource.of(str(train), str(test))
        task = load_source(source)
        settings = Settings(encoder, precision=precision, threads=1, cache_dir=folder / "cache")
        plan = Plan({source: task}, {name: spec}, {name: params}, [Budget(BUDGET)], [0], settings)
        (cell,) = plan.cells
        with _linear_dtypes() as dtypes:
            execute.run_one_off(cell)  # one-off work (frozen features, an adapted encoder), as a grid does first
            first = _run(cell, name)
        second = _run(cell, name)
    _check_record(first, second, name)
    if precision == "bf16" and dtypes - {_bf16()}:
        raise MethodContractError(f"{name}: under bf16 some linear layers computed in {sorted(map(str, dtypes))}")
    return first


def _run(cell, name: str) -> Record:
    from benchmark.grid import execute

    execute.forget()  # as a fresh worker process: nothing kept from an earlier cell
    record, trace = execute.run_cell(cell)
    if not record.ok:
        raise MethodContractError(
            f"{name}: the cell failed: {record.error['type']}: {record.error['message']}\n{trace}"
        )
    return record


def _check_record(first: Record, second: Record, name: str) -> None:
    """The rules a grid does not enforce itself (it fails a cell whose predictions are not label ids, one per text)."""
    counted = first.trainable_params is not None and first.total_params is not None
    if counted and not 0 <= first.trainable_params <= first.total_params:
        raise MethodContractError(
            f"{name}: trainable_params {first.trainable_params} is not within 0..total_params ({first.total_params})"
        )
    if second.predictions != first.predictions or second.metrics != first.metrics:
        raise MethodContractError(f"{name}: the same seed gave other predictions on a second run")


class _linear_dtypes:
    """The dtypes every torch.nn.Linear computes in while the block runs (empty for a method without torch)."""

    def __enter__(self) -> set:
        import torch

        self.seen: set = set()
        self._hook = torch.nn.modules.module.register_module_forward_hook(self._record)
        return self.seen

    def _record(self, module, args, output) -> None:
        import torch

        if isinstance(module, torch.nn.Linear):
            self.seen.add(output.dtype)

    def __exit__(self, *exc) -> None:
        self._hook.remove()


def _bf16():
    import torch

    return torch.bfloat16
