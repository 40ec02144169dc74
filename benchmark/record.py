"""The record of one cell, as written to records.jsonl, and what a method's `fit` may tell the harness.

A record is written once, when its cell ends, and never edited. `Record` is a pydantic dataclass: its fields
are the schema, checked when a line is read back (docs/record.schema.json is generated from it by
``python scripts/export_schema.py``). Schema versions:
- 1: the first layout. `params` held the values derived from the budget under ``params["resolved"]``;
  `revision` and `one_off_seconds` were added later without a version change (absent means revision 1, and
  the run's own `shared_seconds` stands in for the one-off cost).
- 2: `resolved` is a field of its own; new are `sample` (a hash of the cell's exact train texts and labels)
  and the useful FLOPs of the cell's work (`train_flops`, `predict_flops`, `one_off_flops`); every field is
  always present.
- 3: what made the record: `invocation_id` (the `run` command, as run.json names it), `harness_version` and
  `project_commit`.
`Record.from_json` reads every version and upgrades the older ones (the fields they lack are null), so every
folder written before still reports and resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as schema_dataclass

from benchmark import schema
from benchmark.schema import BudgetValue

SCHEMA_VERSION = 3
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


@schema_dataclass(
    config=ConfigDict(strict=True, arbitrary_types_allowed=True, json_schema_serialization_defaults_required=True)
)
class Record:
    """One line of records.jsonl: a cell of the grid as it ended (docs/records.md says what each field means)."""

    cell: str  # the cell key (see `benchmark.grid.plan`)
    dataset: str
    dataset_fingerprint: str
    model: str
    model_fingerprint: str
    method: str
    revision: int  # of the method's code
    uses_unlabelled: bool
    params: dict[str, Any]  # every hyperparameter
    shots: BudgetValue
    seed: int
    n_test: int
    device: str
    precision: str
    threads: int
    sample: str | None = None  # hash of the train texts and labels the cell saw; None only in upgraded v1 records
    status: Literal["ok", "failed"] = FAILED  # until the cell proves otherwise
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
    invocation_id: str | None = None  # the `run` command that wrote it, as run.json names it; None before v3
    harness_version: str | None = None  # `benchmark.__version__`
    project_commit: str | None = None  # the git commit of the project; None outside a checkout
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
        if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
            raise RecordError(f"schema_version {version!r} is not one this version reads (1 to {SCHEMA_VERSION})")
        for upgrade in _UPGRADES[version - 1 :]:
            data = upgrade(data)
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise RecordError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        try:
            return cls(**{name: data[name] for name in _FIELDS})
        except ValidationError as exc:
            found = schema.problem(exc)
            raise RecordError(f"field {found.field} has the wrong type: {found.is_not}") from None


_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


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
    return data | {"schema_version": 2}


def _upgrade_v2(data: dict) -> dict:
    """Before records said what made them; their folder's run.json still says it of each invocation."""
    return data | {"invocation_id": None, "harness_version": None, "project_commit": None, "schema_version": 3}


_UPGRADES = (_upgrade_v1, _upgrade_v2)  # _UPGRADES[v - 1] turns a version-v record into one of version v + 1


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a line of records.jsonl (docs/record.schema.json)."""
    described = TypeAdapter(Record).json_schema(mode="serialization")
    described["properties"]["schema_version"] = {"const": SCHEMA_VERSION}  # the version this schema describes
    title = f"A record of fewshot-bench, schema version {SCHEMA_VERSION}"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **described, "title": title}


def json_schema_text() -> str:
    """docs/record.schema.json as `json_schema` makes it."""
    return json.dumps(json_schema(), indent=2) + "\n"


def sample_hash(texts: list[str], labels) -> str:
    """Content hash of a cell's labelled sample, in order: equal for every method of one (dataset, budget, seed)."""
    digest = hashlib.sha256()
    for text, label in zip(texts, [int(v) for v in labels], strict=True):
        encoded = text.encode()
        digest.update(len(encoded).to_bytes(8, "little") + encoded + label.to_bytes(8, "little", signed=True))
    return digest.hexdigest()[:16]
