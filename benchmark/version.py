"""The package's version: one place, read by pyproject.toml, records and run.json."""

__version__ = "0.2.0"
