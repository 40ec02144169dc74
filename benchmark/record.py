"""The record of one cell, as written to records.jsonl, and what a method's `fit` may tell the harness.

A record is written once, when its cell ends, and never edited. Schema versions:
- 1: the first layout. `params` held the values derived from the budget under ``params["resolved"]``;
  `revision` and `one_off_seconds` were added later without a version change (absent means revision 1, and
  the run's own `shared_seconds` stands in for the one-off cost).
- 2: `resolved` is a field of its own; new are `sample` (a hash of the cell's exact train texts and labels)
  and the useful FLOPs of the cell's work (`train_flops`, `predict_flops`, `one_off_flops`); every field is
  always present.
`Record.from_json` reads both and upgrades version 1, so every folder written before still reports.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from benchmark.budget import Budget
from benchmark.errors import UsageError

SCHEMA_VERSION = 2
OK, FAILED = "ok", "failed"


class RecordError(ValueError):
    """A line of records.jsonl that is not a record this version can read."""


@dataclass
class FitResult:
    """What `fit` may report; every field is optional. `resolved`: values the method derived from the budget
    (epochs, steps, ...), kept in the record beside the hyperparameters."""

    trainable_params: int | None = None
    total_params: int | None = None
    resolved: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    cell: str  # the cell key (see `benchmark.plan`)
    dataset: str
    dataset_fingerprint: str
    model: str
    model_fingerprint: str
    method: str
    revision: int  # of the method's code
    uses_unlabelled: bool
    params: dict[str, Any]  # every hyperparameter
    shots: Budget
    seed: int
    n_test: int
    device: str
    precision: str
    threads: int
    sample: str | None = None  # hash of the train texts and labels the cell saw; None only in upgraded v1 records
    status: str = FAILED  # until the cell proves otherwise
    error: dict[str, str] | None = None  # {"type", "message"} of a failed cell
    resolved: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    n_train: int | None = None
    train_seconds: float | None = None
    predict_seconds: float | None = None
    shared_seconds: float | None = None  # time this run spent on one-off work, charged to this cell
    one_off_seconds: float | None = None  # what the one-off work this cell used took when it was done
    train_flops: float | None = None  # useful FLOPs of the encoder work in fit (`benchmark.flops`)
    predict_flops: float | None = None
    one_off_flops: float | None = None  # of the one-off work this cell used, when it was done
    peak_rss_mb: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    predictions: list[int] | None = None  # test-set label ids, in test order
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.status == OK

    def fail(self, error: BaseException) -> Record:
        """A failed cell: the error, and none of what the method said (a failed cell has no scores)."""
        self.status = FAILED
        self.error = {"type": type(error).__name__, "message": str(error).strip()[:2000]}
        self.metrics, self.resolved = {}, {}
        return self

    def finish(self) -> Record:
        self.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["shots"] = self.shots.to_json()
        return {"schema_version": data.pop("schema_version"), **data}

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """A record of any known schema version, upgraded to this one; RecordError if it is not one."""
        if not isinstance(data, dict):
            raise RecordError("not a JSON object")
        version = data.get("schema_version")
        if version == 1:
            data = _upgrade_v1(data)
        elif version != SCHEMA_VERSION:
            raise RecordError(f"schema_version {version!r} is not one this version reads (1 or {SCHEMA_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data)
        if missing:
            raise RecordError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        values = {k: v for k, v in data.items() if k in names}
        try:
            values["shots"] = Budget.of(values["shots"])
        except UsageError as exc:
            raise RecordError(f"shots {values['shots']!r}: not a budget") from exc
        record = cls(**values)
        _check_types(record)
        return record


def _upgrade_v1(data: dict) -> dict:
    data = dict(data)
    params = dict(data.get("params") or {})
    data["resolved"] = params.pop("resolved", {}) or {}
    data["params"] = params
    data.setdefault("revision", 1)
    data.setdefault("sample", None)
    if "one_off_seconds" not in data:  # written before the cost survived the cache: the run's own time
        data["one_off_seconds"] = data.get("shared_seconds")
    for name in ("train_flops", "predict_flops", "one_off_flops"):
        data.setdefault(name, None)
    data["schema_version"] = SCHEMA_VERSION
    return data


def _check_types(record: Record) -> None:
    """Enough to keep a damaged line out of a table: the fields a leaderboard reads have their types."""
    checks = {
        "cell": isinstance(record.cell, str),
        "method": isinstance(record.method, str),
        "dataset": isinstance(record.dataset, str),
        "seed": isinstance(record.seed, int) and not isinstance(record.seed, bool),
        "status": record.status in (OK, FAILED),
        "params": isinstance(record.params, dict),
        "metrics": isinstance(record.metrics, dict)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record.metrics.values()),
        "predictions": record.predictions is None or isinstance(record.predictions, list),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise RecordError(f"field {bad[0]} has the wrong type")


def sample_hash(texts: list[str], labels) -> str:
    """Content hash of a cell's labelled sample, in order: equal for every method of one (dataset, budget, seed)."""
    digest = hashlib.sha256()
    for text, label in zip(texts, [int(v) for v in labels], strict=True):
        encoded = text.encode()
        digest.update(len(encoded).to_bytes(8, "little") + encoded + label.to_bytes(8, "little", signed=True))
    return digest.hexdigest()[:16]
