"""Methods as plugins: a dataclass of hyperparameters with `fit`/`predict`, registered by name.

Modules in the `methods` package and entry points in the group ``fewshot_bench.methods`` are imported on first
use of the registry, one by one: a module that fails to import is recorded as unavailable (and the cells that
name it fail) instead of breaking the CLI. Method modules import torch & co. inside their functions, so
discovery stays fast.

A method states the values each hyperparameter may take next to the field, with `annotated_types` markers
(``lr: Annotated[float, Gt(0)] = 5e-5``), and may add a ``check(self, model)`` for rules that span fields or
depend on the model; `check_params` applies both when the plan is built, so a value the method cannot use
is a one-line error before anything runs. Float values must always be finite. The method stays a plain
dataclass: pydantic reads its annotations here (`benchmark.schema` words the errors).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

from benchmark import schema
from benchmark.errors import UsageError
from benchmark.record import FitResult

ENTRY_POINT_GROUP = "fewshot_bench.methods"


class Method(Protocol):
    """What a registered dataclass provides. The harness owns sampling, seeding, timing, memory, metrics,
    records and the one-off cache; a method owns only how it learns."""

    def fit(self, train, ctx) -> FitResult | None:
        """Learn from the labelled sample (`benchmark.data.tasks.Split`); `ctx` is a `benchmark.context.Context`.
        May return a `benchmark.record.FitResult` (parameter counts, values derived from the budget)."""

    def predict(self, texts: list[str]):
        """Label ids (ints in ``range(ctx.num_labels)``), one per text, in input order."""

    # Optional: a class attribute ``revision: int`` (1 if absent). Raise it when a change to the code changes
    # the method's results with the same hyperparameters: the cell key carries it, so a resumed run computes the
    # new revision's cells instead of keeping the old records, and the tables leave the old records out.
    #
    # Optional: ``precompute(self, ctx) -> None`` does the configuration's one-off work (frozen features, an
    # adapted encoder: whatever `fit` would otherwise build on its first cell through ``ctx.one_off``). The
    # runner calls it once, as a task of its own, and holds the method's cells until it is done.
    #
    # Optional: ``check(self, model: ModelSpec) -> None`` raises ValueError for values that span fields or
    # depend on the model (more frozen blocks than the model has); called when the plan is built.


class RegistryError(UsageError):
    """A plugin broke the registry's rules (e.g. two methods with one name)."""


@dataclass(frozen=True)
class MethodSpec:
    name: str
    cls: type | None
    preset: dict[str, Any] = field(default_factory=dict)
    uses_unlabelled: bool = False
    requires: tuple[str, ...] = ()
    module: str = ""
    unavailable: str | None = None  # why the module could not be imported
    numbered: str | None = None  # int field set by the name suffix: NAME-<int>
    bf16_evidence: int | None = None  # the revision whose bf16 cells committed evidence showed equivalent to fp32
    default: int | None = None  # its place among the methods a run without --methods runs; None: not one of them

    @property
    def bf16_shown_equivalent(self) -> bool:
        """Whether `--precision auto` may run this method in bf16 on a CPU: evidence for this very revision."""
        return self.bf16_evidence is not None and self.bf16_evidence == self.revision

    @property
    def summary(self) -> str:
        doc = (self.cls.__doc__ or "").strip() if self.cls else ""
        return doc.splitlines()[0] if doc else ""

    @property
    def revision(self) -> int:
        return getattr(self.cls, "revision", 1)

    def defaults(self) -> dict[str, Any]:
        """Hyperparameters with the preset applied, in field order."""
        if self.cls is None:
            return {}
        values = {f.name: _field_default(f) for f in dataclasses.fields(self.cls)}
        return values | self.preset

    def build(self, overrides: dict[str, Any] | None = None):
        return self.cls(**(self.defaults() | (overrides or {})))

    def missing_requirements(self) -> list[str]:
        return [name for name in self.requires if not _importable(name)]


def _importable(module: str) -> bool:
    """Whether `module` (a package, or a dotted submodule such as sklearn.linear_model) can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


_methods: dict[str, MethodSpec] = {}
_unavailable: dict[str, str] = {}  # module name -> one-line import error
_discovered = False


def register(
    name: str,
    *,
    uses_unlabelled: bool = False,
    requires: Iterable[str] = (),
    numbered: str | None = None,
    bf16_evidence: int | None = None,
    default: int | None = None,
    **preset: Any,
) -> Callable[[type], type]:
    """Class decorator: register a hyperparameter dataclass as method `name`.

    Stack it to register presets of one class, e.g. ``@register("freeze-head", frozen_blocks="all")``.
    `numbered` names an int field that ``NAME-<int>`` sets, so ``freeze-3`` means ``freeze`` with that field 3.
    `requires` names the packages or modules the method imports at fit time (``"peft"``, ``"sklearn.linear_model"``):
    missing ones are reported at start-up, and each process imports them before its first cell, so that no cell's
    time includes the import.
    `bf16_evidence` is the revision of the method whose bf16 cells a committed run showed *equivalent* to its fp32
    cells (`compare`, docs/speed.md): only then does `--precision auto` pick bf16 for it on a CPU with native
    bf16; a later revision runs in fp32 under `auto` until its own evidence is committed.
    `default` puts the method among those a run without --methods runs, at that place (1 runs first).
    """

    def decorate(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"@register('{name}') expects a dataclass, got {cls!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(preset) - known)
        if unknown:
            raise TypeError(f"@register('{name}'): preset fields {unknown} are not fields of {cls.__name__}")
        if name in _methods:
            raise RegistryError(
                f"method name '{name}' is registered twice ({_methods[name].module} and {cls.__module__})"
            )
        _methods[name] = MethodSpec(
            name,
            cls,
            dict(preset),
            uses_unlabelled,
            tuple(requires),
            cls.__module__,
            numbered=numbered,
            bf16_evidence=bf16_evidence,
            default=default,
        )
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove a method (for tests that register throwaway methods)."""
    _methods.pop(name, None)


def discover() -> None:
    """Import every module of the `methods` package and every entry point, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import methods

    for info in sorted(pkgutil.iter_modules(methods.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            _import(f"methods.{info.name}", lambda n=f"methods.{info.name}": importlib.import_module(n))
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _import(entry.value.split(":")[0], entry.load)


def _import(module: str, load: Callable[[], Any]) -> None:
    try:
        load()
    except RegistryError:
        raise
    except Exception as exc:  # any import-time failure makes the module unavailable, not the CLI
        _unavailable[module] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def available() -> dict[str, MethodSpec]:
    discover()
    return dict(sorted(_methods.items()))


def default_methods() -> list[str]:
    """The methods a run without --methods runs, in the places their registrations declare."""
    discover()
    return [spec.name for spec in sorted(_methods.values(), key=lambda s: s.default or 0) if spec.default is not None]


def unavailable_modules() -> dict[str, str]:
    discover()
    return dict(_unavailable)


def resolve(names: Iterable[str]) -> list[MethodSpec]:
    """Specs for `names`. A name of a module that failed to import resolves to an unavailable spec (its cells
    fail); any other unknown name is a UsageError with close matches."""
    methods = available()
    specs = []
    for name in names:
        if name in methods:
            specs.append(methods[name])
            continue
        numbered = _numbered(name, methods)
        if numbered:
            specs.append(numbered)
            continue
        broken = next(
            (m for m in _unavailable if name == m.rsplit(".", 1)[-1] or name.startswith(m.rsplit(".", 1)[-1] + "-")),
            None,
        )
        if broken:
            specs.append(MethodSpec(name, None, module=broken, unavailable=_unavailable[broken]))
            continue
        raise UsageError(f"unknown method '{name}' (available: {', '.join(methods)}){_suggest(name, list(methods))}")
    return specs


def _numbered(name: str, methods: dict[str, MethodSpec]) -> MethodSpec | None:
    """'freeze-3' -> the 'freeze' spec with its numbered field preset to 3."""
    base, _, number = name.rpartition("-")
    spec = methods.get(base)
    if spec is None or spec.numbered is None or not number.isdigit():
        return None
    return dataclasses.replace(spec, name=name, preset=spec.preset | {spec.numbered: int(number)})


def parse_overrides(assignments: Iterable[str], specs: list[MethodSpec]) -> dict[str, dict[str, Any]]:
    """['full.lr=1e-4', ...] -> {'full': {'lr': 0.0001}}: each string parsed as its field's type ('none' is None
    where the field allows it); the bounds are `check_params`'s, with every other value."""
    by_name = {spec.name: spec for spec in specs}
    overrides: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        method, dot, field_name = target.strip().partition(".")
        if not sep or not dot or not field_name:
            raise UsageError(f"--set '{assignment}': expected METHOD.FIELD=VALUE, e.g. --set full.lr=3e-5")
        if method not in by_name:
            raise UsageError(f"--set '{assignment}': method '{method}' is not in --methods ({', '.join(by_name)})")
        spec = by_name[method]
        if spec.cls is None:
            continue  # the method's module is unavailable; its cells fail anyway
        try:
            value = _parse(_field_schema(spec, field_name, "--set").parse, raw.strip())
        except ValidationError as exc:
            raise UsageError(f"--set {method}.{field_name}: {schema.problem(exc).is_not}") from None
        overrides.setdefault(method, {})[field_name] = value
    return overrides


def _parse(adapter: TypeAdapter, raw: str) -> Any:
    """A --set string as its field's type; 'none' (or 'null') is None where the type allows None."""
    if raw.lower() in ("none", "null"):
        with contextlib.suppress(ValidationError):
            return adapter.validate_python(None)
    return adapter.validate_strings(raw)


def typed_overrides(settings: dict[str, dict[str, Any]], specs: list[MethodSpec]) -> dict[str, dict[str, Any]]:
    """A configuration file's {method: {field: value}}, the values already typed (TOML), each checked against
    its field: an int given for a float field becomes that float (10 and 10.0 must make the same cell key)."""
    by_name = {spec.name: spec for spec in specs}
    typed: dict[str, dict[str, Any]] = {}
    for method, values in settings.items():
        spec = by_name.get(method)
        if spec is None:
            raise UsageError(f"--config: settings for '{method}', which is not among the methods")
        if spec.cls is not None:
            values = {name: _checked(spec, name, value, "--config: ") for name, value in values.items()}
        typed[method] = dict(values)
    return typed


def check_params(spec: MethodSpec, params: dict[str, Any], model, overridden: Iterable[str] = ()) -> None:
    """UsageError (one line) unless every value is one the method can use: each field's type and declared bounds,
    finite floats, then the method's own ``check(model)``. `overridden` names the fields the user set with --set."""
    if spec.cls is None:
        return
    overridden = set(overridden)
    for name, value in params.items():
        _checked(spec, name, value, "--set " if name in overridden else "")
    check = getattr(spec.cls, "check", None)
    if check is not None:
        try:
            check(spec.cls(**params), model)
        except ValueError as exc:
            raise UsageError(f"{spec.name}: {exc}") from None


def _checked(spec: MethodSpec, name: str, value: Any, where: str) -> Any:
    """`value` as field `name` declares it; UsageError naming the field and the value otherwise."""
    try:
        return _field_schema(spec, name, where.rstrip(": ")).check.validate_python(value)
    except ValidationError as exc:
        raise UsageError(f"{where}{spec.name}.{name}={value!r}: {schema.problem(exc).expected}") from None


@dataclass(frozen=True)
class _FieldSchema:
    parse: TypeAdapter  # a --set string as the field's type, bounds left out (checked with every other value)
    check: TypeAdapter  # a typed value: its type exactly (an int stands for a float), bounds, finite floats


_PARSE = ConfigDict(arbitrary_types_allowed=True)
_CHECK = ConfigDict(strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)


def _field_schema(spec: MethodSpec, name: str, where: str) -> _FieldSchema:
    fields = _schemas(spec.cls)
    if name not in fields:
        raise UsageError(
            f"{where}: '{spec.name}' has no hyperparameter '{name}' (has: {', '.join(fields)})"
            + _suggest(name, list(fields))
        )
    return fields[name]


@functools.cache
def _schemas(cls: type) -> dict[str, _FieldSchema]:
    """Each field of a method's dataclass, in order, as pydantic reads its annotation (annotated_types bounds
    included): the method itself stays a plain dataclass."""
    plain, full = typing.get_type_hints(cls), typing.get_type_hints(cls, include_extras=True)
    return {
        f.name: _FieldSchema(TypeAdapter(plain[f.name], config=_PARSE), TypeAdapter(full[f.name], config=_CHECK))
        for f in dataclasses.fields(cls)
    }


def _suggest(name: str, options: list[str]) -> str:
    """'; did you mean ...?' with the closest options, ignoring case, or ''."""
    by_lower = {o.lower(): o for o in options}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


_SYMBOLS = {"exclusiveMinimum": ">", "minimum": ">=", "exclusiveMaximum": "<", "maximum": "<="}


def describe(annotation: Any) -> str:
    """The bounds of a field for `list`, as its JSON schema states them: '>0', '>=0,<1', or ''."""
    try:
        described = TypeAdapter(annotation, config=_PARSE).json_schema()
    except PydanticUserError:  # a type JSON has no schema for (a plugin's own class): no bounds to state
        return ""
    return " or ".join(
        filter(None, (",".join(f"{symbol}{part[key]}" for key, symbol in _SYMBOLS.items() if key in part)
                      for part in described.get("anyOf", [described])))
    )  # fmt: skip


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"hyperparameter '{f.name}' needs a default")
