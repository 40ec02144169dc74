"""Methods as plugins: a dataclass of hyperparameters with `fit`/`predict`, registered by name.

Modules in the `methods` package and entry points in the group ``fewshot_bench.methods`` are imported on first
use of the registry, one by one: a module that fails to import is recorded as unavailable (and the cells that
name it fail) instead of breaking the CLI. Method modules import torch & co. inside their functions, so
discovery stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from benchmark.errors import UsageError

ENTRY_POINT_GROUP = "fewshot_bench.methods"


class Method(Protocol):
    """What a registered dataclass provides. The harness owns sampling, seeding, timing, metrics, records."""

    def fit(self, train, ctx) -> dict | None:
        """Learn from the labelled sample (`benchmark.data.Split`); `ctx` is a `benchmark.context.Context`.

        May return facts for the record: ``trainable_params``, ``total_params``, ``resolved`` (values derived
        from the budget, e.g. epochs), ``shared_seconds`` (time this call spent on one-off work reused across cells),
        ``one_off_seconds`` (what that one-off work took when it was done, in this call or before it was cached)."""

    def predict(self, texts: list[str]):
        """Label ids (ints in ``range(ctx.num_labels)``), one per text, in input order."""

    # Optional: a class attribute ``revision: int`` (1 if absent). Raise it when a change to the code changes
    # the method's results with the same hyperparameters: the cell key carries it, so a resumed run computes the
    # new revision's cells instead of keeping the old records, and the leaderboard shows the two apart.
    #
    # Optional: ``precompute(self, ctx) -> None`` does the configuration's one-off work (frozen features, an
    # adapted encoder: whatever `fit` would otherwise compute on its first cell and cache for the others).
    # With parallel workers, the runner calls it once, as a worker task of its own, and holds the method's cells
    # until it is done (or, when every cell needs such work, in the main process with every thread first).


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
        return [name for name in self.requires if importlib.util.find_spec(name) is None]


_methods: dict[str, MethodSpec] = {}
_unavailable: dict[str, str] = {}  # module name -> one-line import error
_discovered = False


def register(
    name: str,
    *,
    uses_unlabelled: bool = False,
    requires: Iterable[str] = (),
    numbered: str | None = None,
    **preset: Any,
) -> Callable[[type], type]:
    """Class decorator: register a hyperparameter dataclass as method `name`.

    Stack it to register presets of one class, e.g. ``@register("freeze-head", frozen_blocks="all")``.
    `numbered` names an int field that ``NAME-<int>`` sets, so ``freeze-3`` means ``freeze`` with that field 3.
    `requires` names optional packages the method imports at fit time; missing ones are reported at start-up.
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
            name, cls, dict(preset), uses_unlabelled, tuple(requires), cls.__module__, numbered=numbered
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
    """['full.lr=1e-4', ...] -> {'full': {'lr': 0.0001}}, type-checked against the method's dataclass fields."""
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
        hints = typing.get_type_hints(spec.cls)
        fields = [f.name for f in dataclasses.fields(spec.cls)]
        if field_name not in fields:
            raise UsageError(
                f"--set: '{method}' has no hyperparameter '{field_name}' (has: {', '.join(fields)})"
                + _suggest(field_name, fields)
            )
        try:
            value = coerce(raw.strip(), hints[field_name])
        except ValueError as exc:
            raise UsageError(f"--set {method}.{field_name}: {exc}") from None
        overrides.setdefault(method, {})[field_name] = value
    return overrides


def _suggest(name: str, options: list[str]) -> str:
    """'; did you mean ...?' with the closest options, ignoring case, or ''."""
    by_lower = {o.lower(): o for o in options}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def coerce(raw: str, annotation: Any) -> Any:
    """Parse a command-line string as `annotation` (int, float, bool, str, Literal, unions, Optional)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == raw:
                return choice
        raise ValueError(f"'{raw}' is not one of {', '.join(map(str, typing.get_args(annotation)))}")
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if raw.lower() in ("none", "null") and type(None) in members:
            return None
        errors = []
        for member in (m for m in members if m is not type(None)):
            try:
                return coerce(raw, member)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if annotation is bool:
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"'{raw}' is not a boolean (true/false)")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not an integer") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a number") from None
    if annotation is str:
        return raw
    raise ValueError(f"hyperparameters of type {annotation} cannot be set from the command line")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"hyperparameter '{f.name}' needs a default")
