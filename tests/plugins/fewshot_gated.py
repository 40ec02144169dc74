"""A method that real-process tests install as a third-party plugin (entry point `fewshot_bench.methods`): it
predicts the majority label, but only the first $FEWSHOT_GATE_PASSES cells to start may finish at once; the
others announce themselves (a file `waiting-<pid>-<n>` in the folder $FEWSHOT_GATE) and wait until a file `open`
appears there. A test that kills or interrupts a run thus acts at a known point: the passed cells' records
written, a held cell in the middle of `fit`, whatever the machine's load."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.record import FitResult
from benchmark.registry import register

PATIENCE = 600  # seconds a held cell waits for its gate before it fails (a broken test must not hang CI)


@register("gated")
@dataclass
class Gated:
    """Majority label, behind a gate that the test opens."""

    def fit(self, train, ctx) -> FitResult:
        gate = Path(os.environ["FEWSHOT_GATE"])
        if not _take_a_pass(gate, int(os.environ.get("FEWSHOT_GATE_PASSES", "0"))):
            (gate / f"waiting-{os.getpid()}-{time.monotonic_ns()}").touch()
            deadline = time.monotonic() + PATIENCE
            while not (gate / "open").exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gate {gate} was never opened")
                time.sleep(0.01)
        self.label = int(np.bincount(train.labels).argmax())
        return FitResult(trainable_params=1, total_params=1)

    def predict(self, texts: list[str]) -> np.ndarray:
        return np.full(len(texts), self.label)


def _take_a_pass(gate: Path, passes: int) -> bool:
    """One of `passes` tickets, taken atomically across processes (O_EXCL)."""
    for number in range(passes):
        try:
            os.close(os.open(gate / f"pass-{number}", os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            continue
    return False
