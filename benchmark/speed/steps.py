"""Every method's own steps, measured through the registry's spec of each (`measure_method`): its one-off work on
part of the pool, its training and its prediction of the test split, each as seconds and useful GFLOP/s (from the
FLOP meter, `benchmark.flops`) against the measured peak; phases that do no encoder work are left out."""

from __future__ import annotations

from benchmark import modeling
from benchmark.budget import Budget
from benchmark.context import Context
from benchmark.data import sampling
from benchmark.data.tasks import Task

UNLABELLED_FOR_SPEED = 1000  # texts of the pool a method's one-off work reads here (a whole pool takes minutes)


def measure_method(model, method_spec, task: Task, precision: str, shots: int, peak: float) -> list[dict]:
    """One method at `shots` per class, seed 0, in `precision`: its one-off work (on the first
    UNLABELLED_FOR_SPEED texts of the pool), training and prediction of the test split, as useful GFLOP/s
    (`benchmark.flops`) against the measured peak. Phases that do no encoder work are left out."""
    from benchmark import flops
    from benchmark.grid.cache import OneOffCache
    from benchmark.grid.execute import Meter

    flops.install()
    train = sampling.sample(task, Budget(shots), seed=0)
    modeling.seed_everything(0)
    method = method_spec.build()
    ctx = Context(model, task.num_labels, 0, "cpu", precision, list(task.train.texts[:UNLABELLED_FOR_SPEED]))
    ctx.cache = OneOffCache(None)
    phases = {}
    if hasattr(method, "precompute"):
        with Meter() as phases["one-off"]:
            method.precompute(ctx)
    with Meter() as phases["train"]:
        method.fit(train, ctx)
    with Meter() as phases["predict"]:
        method.predict(list(task.test.texts))
    rows = []
    for phase, meter in phases.items():
        if meter.flops > 0:
            rate = meter.flops / meter.seconds / 1e9
            rows.append({"method": method_spec.name, "phase": phase, "precision": precision,
                         "seconds": round(meter.seconds, 1), "useful GFLOP/s": float(f"{rate:.3g}"),
                         "efficiency": float(f"{rate / peak:.3g}")})  # fmt: skip
    return rows
