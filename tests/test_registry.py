from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
from annotated_types import Ge, Gt, Lt

from benchmark import registry
from benchmark.errors import UsageError


@pytest.fixture()
def scratch():
    """Registers throwaway methods and removes them afterwards."""
    names = []

    def add(name, **kwargs):
        names.append(name)
        return registry.register(name, **kwargs)

    yield add
    for name in names:
        registry.unregister(name)


def test_builtin_methods_are_discovered():
    assert {"logreg", "full"} <= set(registry.available())


def test_registering_a_method_makes_it_resolvable_with_presets(scratch):
    @scratch("toy-b", depth=2)
    @scratch("toy")
    @dataclass
    class Toy:
        """A toy."""

        depth: int = 1
        rate: float = 0.5

    specs = registry.resolve(["toy", "toy-b"])
    assert [s.defaults() for s in specs] == [{"depth": 1, "rate": 0.5}, {"depth": 2, "rate": 0.5}]
    assert specs[1].build({"rate": 0.1}) == Toy(depth=2, rate=0.1)
    assert specs[0].summary == "A toy."


def test_numbered_names_preset_an_int_field(scratch):
    @scratch("stack", numbered="depth")
    @dataclass
    class Stack:
        depth: int = 0

    spec = registry.resolve(["stack-3"])[0]
    assert spec.name == "stack-3" and spec.build() == Stack(depth=3)
    with pytest.raises(UsageError, match="unknown method 'stack-x'"):
        registry.resolve(["stack-x"])


def test_duplicate_names_raise(scratch):
    @scratch("dup")
    @dataclass
    class One:
        pass

    with pytest.raises(registry.RegistryError, match="registered twice"):
        registry.register("dup")(One)


def test_unknown_method_lists_available_and_suggests_close_match():
    with pytest.raises(UsageError, match="unknown method 'logre'") as info:
        registry.resolve(["logre"])
    assert "available:" in str(info.value) and "did you mean 'logreg'" in str(info.value)


def test_broken_module_is_listed_as_unavailable_and_its_names_resolve_to_failing_specs(monkeypatch):
    monkeypatch.setitem(registry._unavailable, "methods.fancy", "ModuleNotFoundError: No module named 'fancylib'")
    spec = registry.resolve(["fancy-large"])[0]
    assert spec.unavailable and spec.cls is None
    assert "methods.fancy" in registry.unavailable_modules()


def test_module_that_fails_to_import_does_not_break_discovery(monkeypatch):
    registry._import("methods.broken", lambda: __import__("no_such_package_xyz"))
    assert "methods.broken" in registry._unavailable
    registry._unavailable.pop("methods.broken")


def test_entry_point_methods_are_loaded(monkeypatch, scratch):
    class EntryPoint:
        value = "thirdparty.methods:Plugin"

        def load(self):
            @scratch("thirdparty")
            @dataclass
            class Plugin:
                pass

            return Plugin

    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: [EntryPoint()])
    registry.discover()
    assert "thirdparty" in registry.available()


@dataclass
class Typed:
    lr: float = 1e-3
    epochs: int = 3
    pooling: Literal["mean", "cls"] = "mean"
    frozen: int | Literal["all", "half"] = 0
    tag: str | None = None
    shuffle: bool = True


@pytest.fixture()
def typed(scratch):
    scratch("typed")(Typed)
    return registry.resolve(["typed"])


def test_overrides_are_typed_against_the_dataclass(typed):
    parsed = registry.parse_overrides(
        [
            "typed.lr=3e-5",
            "typed.epochs=10",
            "typed.pooling=cls",
            "typed.frozen=half",
            "typed.frozen=4",
            "typed.tag=none",
            "typed.shuffle=false",
        ],
        typed,
    )
    assert parsed == {"typed": {"lr": 3e-5, "epochs": 10, "pooling": "cls", "frozen": 4, "tag": None, "shuffle": False}}


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("typed.epochs=2.5", "not an integer"),
        ("typed.lr=fast", "not a number"),
        ("typed.pooling=max", "not one of"),
        ("typed.epoch=3", "has no hyperparameter 'epoch'.*did you mean 'epochs'"),
        ("typed.shuffle=maybe", "not a boolean"),
        ("other.lr=1", "not in --methods"),
        ("typed.lr", "expected METHOD.FIELD=VALUE"),
        ("lr=1", "expected METHOD.FIELD=VALUE"),
    ],
)
def test_bad_overrides_are_usage_errors(typed, assignment, message):
    with pytest.raises(UsageError, match=message):
        registry.parse_overrides([assignment], typed)


def test_presets_must_name_real_fields():
    with pytest.raises(TypeError, match="not fields"):
        registry.register("nope", colour="red")(Typed)


@dataclass
class Bounded:
    """A method whose fields state the values they accept."""

    lr: Annotated[float, Gt(0)] = 1e-3
    epochs: Annotated[int, Ge(1)] = 3
    dropout: Annotated[float, Ge(0), Lt(1)] = 0.1
    cap: Annotated[int, Ge(1)] | None = None
    blocks: Annotated[int, Ge(0)] | Literal["all"] = "all"
    scale: float = 1.0  # no bounds: finite all the same

    def check(self, model) -> None:
        if self.blocks != "all" and self.blocks > model.num_blocks:
            raise ValueError(f"blocks={self.blocks}, but the model has {model.num_blocks}")


@pytest.fixture()
def bounded(scratch):
    scratch("bounded")(Bounded)
    (spec,) = registry.resolve(["bounded"])
    return spec


class SixBlocks:
    num_blocks = 6


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("lr=0", r"--set bounded.lr=0.0: must be > 0"),
        ("lr=-1e-3", "must be > 0"),
        ("lr=inf", "must be a finite number"),
        ("scale=nan", "must be a finite number"),
        ("epochs=0", r"bounded.epochs=0: must be >= 1"),
        ("dropout=1", "must be < 1"),
        ("cap=0", "must be >= 1"),
        ("blocks=-1", "must be >= 0"),
        ("blocks=7", "bounded: blocks=7, but the model has 6"),
    ],
)
def test_values_a_method_cannot_use_are_refused_when_the_plan_is_built(bounded, assignment, message):
    overrides = registry.parse_overrides([f"bounded.{assignment}"], [bounded])["bounded"]
    with pytest.raises(UsageError, match=message):
        registry.check_params(bounded, bounded.defaults() | overrides, SixBlocks(), overrides)


def test_values_within_bounds_pass_and_list_shows_the_bounds(bounded):
    overrides = registry.parse_overrides(["bounded.cap=none", "bounded.blocks=6", "bounded.lr=1"], [bounded])
    registry.check_params(bounded, bounded.defaults() | overrides["bounded"], SixBlocks())
    hints = __import__("typing").get_type_hints(Bounded, include_extras=True)
    assert registry.describe(hints["dropout"]) == ">=0,<1" and registry.describe(hints["cap"]) == ">=1"


def test_every_registered_methods_defaults_pass_their_own_checks(tiny_spec):
    for spec in registry.available().values():
        registry.check_params(spec, spec.defaults(), tiny_spec)


def test_numbers_must_be_written_in_ascii_digits(bounded):
    with pytest.raises(UsageError, match="ASCII digits"):
        registry.parse_overrides(["bounded.epochs=٣"], [bounded])


def test_run_json_names_the_versions_of_what_registered_methods_require(scratch):
    from benchmark.grid import provenance

    @scratch("needs-yaml", requires=("yaml",))  # a module whose distribution has another name: PyYAML
    @dataclass
    class NeedsYaml:
        pass

    versions = provenance.package_versions()
    assert {"torch", "setfit", "peft", "PyYAML"} <= set(versions) and versions["PyYAML"]
