"""The evidence behind `--precision auto` on a CPU: a bundled method declares `bf16_evidence=REVISION` exactly when
the committed comparison of its bf16 cells (results/bf16-evidence) with its fp32 cells (results/embedded-suite)
calls every one of its rows *equivalent*, on at least three datasets at 8 and 64 per class, for that revision.
A new revision, a re-run that moves a verdict, or a declaration made by hand fails here (docs/speed.md)."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from benchmark import registry
from benchmark.budget import Budget
from benchmark.compare import EQUIVALENT, compare
from benchmark.grid.store import read_records, read_test_labels
from benchmark.leaderboard import Labels

ROOT = Path(__file__).resolve().parent.parent
FP32, BF16 = ROOT / "results" / "embedded-suite", ROOT / "results" / "bf16-evidence"
BUDGETS = {Budget(8).label, Budget(64).label}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[tuple[str, str], str]]:
    """method -> (dataset, budget) -> verdict, from `compare FP32 BF16` at its defaults."""
    fp32, bf16 = (list(read_records(folder).latest_by_cell().values()) for folder in (FP32, BF16))
    labels = {
        fingerprint: Labels(np.asarray(stored["labels"]), len(stored["label_names"]))
        for fingerprint, stored in read_test_labels(FP32).items()
    }
    by_method: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
    for row in compare(fp32, bf16, labels).rows:
        by_method[row.method][(row.dataset, row.budget)] = row.verdict
    return by_method


def bf16_revisions(method: str) -> set[int]:
    return {r.revision for r in read_records(BF16).latest_by_cell().values() if r.method == method and r.ok}


def bundled() -> list[registry.MethodSpec]:
    registry.discover()
    return [spec for spec in registry.available().values() if spec.module.startswith("methods.")]


@pytest.mark.parametrize("spec", bundled(), ids=lambda spec: spec.name)
def test_a_method_declares_bf16_evidence_exactly_where_the_committed_comparison_shows_it(spec, verdicts):
    rows = verdicts.get(spec.name, {})
    covered = {dataset for dataset, budget in rows if budget in BUDGETS}
    complete = len(covered) >= 3 and all((dataset, budget) in rows for dataset in covered for budget in BUDGETS)
    shown = complete and all(verdict == EQUIVALENT for verdict in rows.values())
    if spec.bf16_evidence is not None:
        assert shown, f"{spec.name} declares bf16 evidence, but its rows read {rows}"
        assert bf16_revisions(spec.name) == {spec.bf16_evidence}, "the evidence is of another revision"
    elif shown and bf16_revisions(spec.name) == {spec.revision}:
        pytest.fail(f"{spec.name}: every row is equivalent ({len(rows)} rows): declare bf16_evidence={spec.revision}")
