"""Label budgets: N examples per class, or every label of the train pool.

One type for the whole harness, so that "all labels" is tested in one place. In records and cell keys a
budget is written as it always was (the int N, or the string "all"), so keys made before this type existed
stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.errors import UsageError

MAX_PER_CLASS = 10**7  # beyond any labelled dataset; a larger value is a typo, not a budget


@dataclass(frozen=True)
class Budget:
    per_class: int | None  # None: the whole train pool

    @classmethod
    def parse(cls, text: str) -> Budget:
        """'8' or 'all'; UsageError for anything else (0, negatives, Unicode digits, absurd sizes)."""
        text = text.strip()
        if text.lower() == "all":
            return ALL
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise UsageError(f"--shots: '{text}' is neither a positive integer nor 'all' (e.g. --shots 8,64,all)")
        number = int(text)
        if number <= 0:
            raise UsageError(f"--shots: {number} is not a positive number of examples per class")
        if number > MAX_PER_CLASS:
            raise UsageError(f"--shots: {number} examples per class is more than any dataset holds")
        return cls(number)

    @classmethod
    def of(cls, value: int | str | Budget) -> Budget:
        """From a record's or a config file's value: an int, 'all', or a Budget."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"budget {value!r}: expected a positive integer or 'all'")
        return cls.parse(str(value))

    @property
    def is_all(self) -> bool:
        return self.per_class is None

    def to_json(self) -> int | str:
        """The form used in records, cell keys and CSV files."""
        return "all" if self.per_class is None else self.per_class

    def __str__(self) -> str:
        return str(self.to_json())

    @property
    def label(self) -> str:
        return "all labels" if self.per_class is None else f"{self.per_class} per class"

    @property
    def sort_key(self) -> tuple[int, int]:
        """Small budgets first, all labels last."""
        return (1, 0) if self.per_class is None else (0, self.per_class)


ALL = Budget(None)


def parse_budgets(value: str) -> list[Budget]:
    """'8,64,all' -> budgets in the order given; UsageError for a malformed or repeated budget."""
    budgets: list[Budget] = []
    for part in value.split(","):
        budget = Budget.parse(part)
        if budget in budgets:
            raise UsageError(f"--shots: {budget} is listed twice")
        budgets.append(budget)
    return budgets
