"""The schema layer: pydantic checks and types every value a user or a file gives (hyperparameters, the
configuration file, the flags that set its keys, records read back), and this module says what pydantic found
in the one line the user reads, never its multi-line report.

The types shared by the schemas live here too: a budget as records and files write it, a choice among names,
and `expect`, which reports any invalid value of a type as "<value> is not <what the type is>".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, ValidationError, WithJsonSchema, WrapValidator
from pydantic_core import PydanticCustomError

from benchmark.budget import Budget
from benchmark.errors import UsageError

_NOUNS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "none_required": "none",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_OWN = ("expected", "value_error")  # errors whose words a schema of ours chose


@dataclass(frozen=True)
class Problem:
    """What is wrong with one value: what it should have been (`noun`), or the rule it breaks (`rule`)."""

    value: Any
    field: str | None  # the outermost name in the error's location (of a model or a record: its field)
    noun: str | None = None  # 'a number'
    rule: str | None = None  # 'must be >= 1', or a validator's own sentence

    @property
    def expected(self) -> str:
        """For a message that shows the value itself: 'expected a number', 'must be >= 1'."""
        return f"expected {self.noun}" if self.noun else str(self.rule)

    @property
    def is_not(self) -> str:
        """For a message that does not: "'fast' is not a number", '0 is not a positive whole number'."""
        return f"{self.value!r} is not {self.noun}" if self.noun else str(self.rule)


def problem(error: ValidationError) -> Problem:
    """The one problem to report of pydantic's errors for a value (a union's members each add one): a message a
    schema of ours chose, else a broken bound (the value had the right type), else every type it is not."""
    errors = error.errors(include_url=False)
    chosen = next((e for e in errors if e["type"] in _OWN), None) or next(
        (e for e in errors if e["type"] in _BOUNDS or e["type"] == "finite_number"), None
    )
    first = chosen or errors[0]
    value, field = first["input"], str(first["loc"][0]) if first["loc"] else None
    if first["type"] == "expected":
        return Problem(value, field, noun=first["ctx"]["what"])
    nouns = [_noun(e) for e in errors if e["type"] != "none_required"] or [_noun(first)]
    if chosen is not None or None in nouns:
        return Problem(value, field, rule=_rule(first))
    return Problem(value, field, noun=" or ".join(dict.fromkeys(nouns)))


def _noun(error) -> str | None:
    kind, given = error["type"], error["input"]
    if kind in ("int_parsing", "float_parsing") and isinstance(given, str) and not given.isascii():
        return "a number written in ASCII digits"
    if kind == "literal_error":  # pydantic's "'a', 'b' or 'c'"
        return "one of " + ", ".join(error["ctx"]["expected"].rsplit(" or ", 1))
    return _NOUNS.get(kind)


def _rule(error) -> str:
    kind, context = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(context["error"])
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {next(iter(context.values()))}"
    if kind == "finite_number":
        return "must be a finite number"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def expect(what: str) -> WrapValidator:
    """Annotated metadata after a type and its bounds: any invalid value of it (of the wrong type, out of bounds,
    refused by a validator before this one) is reported as "<value> is not <what>", in the type's own words."""

    def validate(value: Any, handler):
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("expected", "{what}", {"what": what}) from None

    return WrapValidator(validate)


def one_of(*choices: str) -> Any:
    """A choice among names, reported as "'x' is not one of a, b, c"."""
    return Annotated[Literal[choices], expect(f"one of {', '.join(choices)}")]


def _budget(value: Any) -> Budget:
    try:
        return Budget.of(value)
    except UsageError as exc:
        raise ValueError(str(exc).removeprefix("--shots: ")) from None


# A budget as records, cell keys and configuration files write it: an int per class, or "all".
BudgetValue = Annotated[
    Budget,
    BeforeValidator(_budget),
    PlainSerializer(Budget.to_json),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]}),
]
