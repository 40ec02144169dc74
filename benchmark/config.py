"""What a run asks for, before it is checked: a TOML configuration file, with command-line flags on top.

A configuration file names the datasets (or the embedded suite), the methods with their overrides, the budgets,
the seeds and where the run goes; ``configs/embedded-suite.toml`` is the example and the committed suite's own.
Every key is checked: an unknown one is a mistake, not ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.budget import Budget
from benchmark.errors import UsageError
from benchmark.verdicts import LEADERBOARD_MARGIN

DEFAULT_BUDGETS = (Budget(8), Budget(64))
DEFAULT_SEEDS = 3
MAX_SEEDS = 1000


@dataclass
class RunConfig:
    datasets: list[str] = field(default_factory=lambda: ["rt-critics"])
    methods: list[str] = field(default_factory=lambda: _default_methods())  # in the registrations' places
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # typed overrides (a config file)
    overrides: list[str] = field(default_factory=list)  # METHOD.FIELD=VALUE from --set, applied after `settings`
    budgets: list[Budget] = field(default_factory=lambda: list(DEFAULT_BUDGETS))
    seeds: int = DEFAULT_SEEDS  # seeds 0..seeds-1 (with seeds_auto: the current look's)
    seeds_auto: tuple[int, int] | None = None  # (start, cap) of --seeds auto (benchmark/sequential.py)
    margin: float = LEADERBOARD_MARGIN  # of practical equivalence for the leaderboards' verdicts
    test: str | None = None
    text_col: str | None = None
    label_col: str | None = None
    model: str | None = None  # None: the embedded default
    out: Path | None = None  # None: results/<datasets>-<model>
    metric: str = "macro_f1"
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    jobs: int | None = None
    cache_dir: Path | None = None  # None: no cache on disk
    executor: str = "local"  # local: this machine's processes; ray: a Ray cluster
    ray_address: str | None = None  # None: $RAY_ADDRESS, else a local cluster started for the run
    cpus_per_cell: int = 1  # Ray resources of one cell; also its torch threads
    gpus_per_cell: float = 0.0  # fractions share a GPU between cells
    force: bool = False
    trust_remote_code: bool = False
    allow_overlap: bool = False  # run although test texts also occur in the train pool

    def summary(self) -> dict[str, Any]:
        """The resolved configuration, as run.json keeps it."""
        data = dataclasses.asdict(self)
        data["budgets"] = [b.to_json() for b in self.budgets]
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def _default_methods() -> list[str]:
    from benchmark import registry

    return registry.default_methods()


CHOICES = {
    "metric": ("macro_f1", "accuracy", "f1_positive"),
    "precision": ("auto", "fp32", "bf16"),
    "executor": ("local", "ray"),
}

# keys of a configuration file, and how each becomes a RunConfig field
FILE_KEYS = (
    "datasets", "suite", "methods", "budgets", "seeds", "model", "out", "metric", "device", "precision", "threads",
    "jobs", "cache_dir", "test", "text_col", "label_col", "executor", "ray_address", "cpus_per_cell", "gpus_per_cell",
    "margin",
)  # fmt: skip


def read_file(path: Path) -> dict[str, Any]:
    """The fields a TOML configuration file sets, checked; UsageError with one line for any mistake."""
    import tomllib

    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - set(FILE_KEYS))
    if unknown:
        raise UsageError(f"--config {path}: unknown key {unknown[0]!r} (known: {', '.join(FILE_KEYS)})")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        fields.update(_field(key, value, path))
    if "suite" in raw and "datasets" in raw:
        raise UsageError(f"--config {path}: give 'datasets' or 'suite', not both")
    return fields


def _field(key: str, value: Any, path: Path) -> dict[str, Any]:
    where = f"--config {path}: {key}"
    if key == "suite":
        return {"datasets": suite(value, where)}
    if key == "datasets":
        return {"datasets": _names(value, where)}
    if key == "methods":
        if isinstance(value, list):
            return {"methods": _names(value, where)}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise UsageError(f"{where}: expected a list of names or a table of tables ([methods.NAME] ...)")
        return {"methods": list(value), "settings": {name: dict(v) for name, v in value.items() if v}}
    if key == "budgets":
        values = value if isinstance(value, list) else [value]
        try:
            budgets = [Budget.of(v) for v in values]
        except UsageError as exc:
            raise UsageError(f"{where}: {str(exc).removeprefix('--shots: ')}") from None
        if len(set(budgets)) != len(budgets) or not budgets:
            raise UsageError(f"{where}: give each budget once, at least one")
        return {"budgets": budgets}
    if key == "gpus_per_cell":
        return {key: gpu_share(value, where)}
    if key == "seeds" and isinstance(value, str) and value.strip().lower().startswith("auto"):  # auto[:START-CAP]
        return seeds_auto(value, where)
    if key == "margin":
        return {"margin": margin(value, where)}
    if key in ("seeds", "threads", "jobs", "cpus_per_cell"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SEEDS * 100:
            raise UsageError(f"{where}: expected a positive whole number")
        if key == "seeds" and value > MAX_SEEDS:
            raise UsageError(f"{where}: at most {MAX_SEEDS} seeds")
        return {key: value}
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string")
    choices = CHOICES.get(key)
    if choices and value not in choices:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    if key in ("out", "cache_dir"):
        return {key: Path(value).expanduser()}
    return {key: value}


def gpu_share(value: Any, where: str = "--gpus-per-cell") -> float:
    """A cell's share of GPUs: a fraction in (0, 1] (cells share a GPU) or a whole number; 0 for none."""
    try:
        share = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        share = -1.0
    if not (share == 0 or 0 < share <= 1 or (share > 1 and share.is_integer())) or share > 64:
        raise UsageError(f"{where}: {value!r} is not a GPU share (a fraction up to 1, or a whole number)")
    return share


def seeds_auto(value: str, where: str = "--seeds") -> dict[str, Any]:
    """The fields of --seeds auto[:START-CAP]: the first look's seeds and the design."""
    from benchmark.sequential import parse

    design = parse(value, where, MAX_SEEDS)
    return {"seeds": design.start, "seeds_auto": (design.start, design.cap)}


def margin(value: Any, where: str = "--margin") -> float:
    """A margin of practical equivalence: a number in (0, 1), in the metric's units."""
    from benchmark.verdicts import check_margin

    try:
        return check_margin(value, where)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def suite(name: str, where: str = "--suite") -> list[str]:
    from benchmark.embedded import EMBEDDED

    if name != "embedded":
        raise UsageError(f"{where}: unknown suite {name!r} (known: embedded)")
    return list(EMBEDDED)


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise UsageError(f"{where}: expected a non-empty list of names")
    if len(set(value)) != len(value):
        raise UsageError(f"{where}: a name is listed twice")
    return [v.strip() for v in value]
