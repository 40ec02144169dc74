"""What a run asks for, before it is checked against data and models: `RunConfig`, whose fields are the keys of
a TOML configuration file and what the command-line flags set, each declared once, here, with the values it
takes. ``configs/embedded-suite.toml`` is the example and the committed suite's own.

A file may set every field but those marked `NotInFile`, and writes three of them its own way: ``suite`` for
its datasets, ``methods`` as a table of tables (``[methods.NAME]``, each with the method's overrides), and
``seeds = "auto:START-CAP"``. Every key and value is checked: an unknown key is a mistake, not ignored, and every
mistake is one line naming the key (or flag) and the value.
"""

from __future__ import annotations

import functools
import secrets
import typing
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from benchmark import schema
from benchmark.budget import Budget
from benchmark.errors import UsageError
from benchmark.metrics import METRICS
from benchmark.schema import BudgetValue, expect, one_of
from benchmark.verdicts import LEADERBOARD_MARGIN

MAX_SEEDS = 1000


def _count(most: int) -> Any:
    return Annotated[int, Gt(0), Le(most), expect(f"a positive whole number up to {most:,}")]


def _distinct(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise ValueError("a name is listed twice")
    return names


def _once_each(budgets: list[Budget]) -> list[Budget]:
    if not budgets or len(set(budgets)) != len(budgets):
        raise ValueError("give each budget once, at least one")
    return budgets


def _gpu_share(share: float) -> float:
    if not (share == 0 or 0 < share <= 1 or (share > 1 and share.is_integer())) or share > 64:
        raise ValueError("not a GPU share")
    return share


def _path(value: Any) -> Any:
    """A string as a path with '~' expanded; anything else is left for the type to judge."""
    if not isinstance(value, str):
        return value
    try:
        return Path(value).expanduser()
    except RuntimeError:  # '~' with neither $HOME nor a password-file entry (a container's random user id)
        raise ValueError(f"{value}: '~' names no folder here (no home folder is known); give the full path") from None


Count = _count(100_000)
Seeds = _count(MAX_SEEDS)
CpusPerCell = _count(1024)
Names = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]],
    Field(min_length=1),
    expect("a non-empty list of names"),
    AfterValidator(_distinct),
]
Budgets = Annotated[list[BudgetValue], AfterValidator(_once_each)]
Folder = Annotated[Path, expect("a path"), BeforeValidator(_path)]
Margin = Annotated[float, Gt(0), Lt(1), expect("a number between 0 and 1 (exclusive)")]
GpuShare = Annotated[float, AfterValidator(_gpu_share), expect("a GPU share (a fraction up to 1, or a whole number)")]
Metric = one_of(*METRICS)
Precision = one_of("auto", "fp32", "bf16")
Executor = one_of("local", "ray")  # local: this machine's processes; ray: a Ray cluster


class NotInFile:
    """Marks a field no configuration file sets: the command line's alone, or set through another key
    (`settings` by the [methods.NAME] tables, `seeds_auto` by ``seeds = "auto..."``)."""


def _default_methods() -> list[str]:
    from benchmark import registry

    return registry.default_methods()


class RunConfig(BaseModel):
    """A run's datasets, methods with their overrides, budgets, seeds, resources and folders."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)

    datasets: Names = ["rt-critics"]
    methods: Names = Field(default_factory=_default_methods)  # the registry's defaults, in their declared places
    settings: Annotated[dict[str, dict[str, Any]], NotInFile] = {}  # {method: {field: value}} of a file's tables
    overrides: Annotated[list[str], NotInFile] = []  # METHOD.FIELD=VALUE from --set, applied after `settings`
    budgets: Budgets = [Budget(8), Budget(64)]
    seeds: Seeds = 3  # seeds 0..seeds-1 (with seeds_auto: the current look's)
    seeds_auto: Annotated[tuple[int, int] | None, NotInFile] = None  # (start, cap) of --seeds auto (sequential.py)
    margin: Margin = LEADERBOARD_MARGIN  # of practical equivalence for the leaderboards' verdicts
    test: str | None = None
    text_col: str | None = None
    label_col: str | None = None
    model: str | None = None  # None: the embedded default
    out: Folder | None = None  # None: results/<datasets>-<model>
    metric: Metric = "macro_f1"
    device: str = "auto"
    precision: Precision = "auto"
    threads: Count | None = None
    jobs: Count | None = None
    cache_dir: Folder | None = None  # None: no cache on disk
    executor: Executor = "local"
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a local cluster started for the run
    cpus_per_cell: CpusPerCell = 1  # Ray resources of one cell; also its torch threads
    gpus_per_cell: GpuShare = 0.0  # fractions share a GPU between cells
    force: Annotated[bool, NotInFile] = False
    trust_remote_code: Annotated[bool, NotInFile] = False
    allow_overlap: Annotated[bool, NotInFile] = False  # run although test texts also occur in the train pool
    # made with the configuration, so one per `run` command (the looks of --seeds auto share it): every record
    # and the invocation's entry in run.json name it
    invocation_id: Annotated[str, NotInFile] = Field(default_factory=lambda: secrets.token_hex(8))

    def summary(self) -> dict[str, Any]:
        """The resolved configuration, as run.json keeps it (the invocation id stands beside it)."""
        return self.model_dump(mode="json", exclude={"invocation_id"})


FILE_KEYS = (*(name for name, f in RunConfig.model_fields.items() if NotInFile not in f.metadata), "suite")


def read_file(path: Path) -> dict[str, Any]:
    """The fields a TOML configuration file sets, checked; UsageError with one line for any mistake."""
    import tomllib

    where = f"--config {path}"
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - set(FILE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(FILE_KEYS)})")
    try:
        config = RunConfig.model_validate(_as_fields(raw, where))
    except ValidationError as exc:
        found = schema.problem(exc)
        raise UsageError(f"{where}: {found.field}: {found.is_not}") from None
    return {name: getattr(config, name) for name in RunConfig.model_fields if name in config.model_fields_set}


def _as_fields(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A file's own ways of writing keys, as RunConfig's fields."""
    fields = dict(raw)
    if "suite" in fields:
        if "datasets" in fields:
            raise UsageError(f"{where}: give 'datasets' or 'suite', not both")
        fields["datasets"] = suite(fields.pop("suite"), f"{where}: suite")
    methods = fields.get("methods")
    if isinstance(methods, dict) and all(isinstance(v, dict) for v in methods.values()):
        fields["methods"] = list(methods)
        fields["settings"] = {name: dict(values) for name, values in methods.items() if values}
    elif "methods" in fields and not isinstance(methods, list):
        raise UsageError(f"{where}: methods: expected a list of names or a table of tables ([methods.NAME] ...)")
    seeds = fields.get("seeds")
    if isinstance(seeds, str) and seeds.strip().lower().startswith("auto"):  # auto[:START-CAP]
        fields |= seeds_auto(seeds, f"{where}: seeds")
    if "budgets" in fields and not isinstance(fields["budgets"], list):
        fields["budgets"] = [fields["budgets"]]
    return fields


def parse_flag(name: str, raw: str, flag: str) -> Any:
    """A command-line string as field `name`, checked as a file's value is; UsageError naming the flag."""
    try:
        return _field_adapter(name).validate_strings(raw)
    except ValidationError as exc:
        raise UsageError(f"{flag}: {schema.problem(exc).is_not}") from None


@functools.cache
def _field_adapter(name: str) -> TypeAdapter:
    return TypeAdapter(RunConfig.model_fields[name].rebuild_annotation())


def choices(name: str) -> tuple[str, ...]:
    """The values a choice field takes, for the flag's `choices`."""
    return typing.get_args(RunConfig.model_fields[name].annotation)


def seeds_auto(value: str, where: str = "--seeds") -> dict[str, Any]:
    """The fields of --seeds auto[:START-CAP]: the first look's seeds and the design."""
    from benchmark.grid.sequential import parse

    design = parse(value, where, MAX_SEEDS)
    return {"seeds": design.start, "seeds_auto": (design.start, design.cap)}


def suite(name: str, where: str = "--suite") -> list[str]:
    from benchmark.data.embedded import EMBEDDED

    if name != "embedded":
        raise UsageError(f"{where}: unknown suite {name!r} (known: embedded)")
    return list(EMBEDDED)
