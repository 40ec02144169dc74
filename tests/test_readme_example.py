"""The README's "Adding a method" example is real code: registered from a file, it runs through the harness and
its bounds refuse a value it cannot use."""

import contextlib
import importlib.util
import re

import pytest
from conftest import ROOT, plan_of

from benchmark import registry
from benchmark.errors import UsageError
from benchmark.grid import execute


@contextlib.contextmanager
def readme_method(tmp_path):
    """The example's method, registered from a file as a user would write it, unregistered afterwards."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme.split("## Adding a method", 1)[1], re.S).group(1)
    assert 20 <= len(code.strip().splitlines()) <= 40
    module_file = tmp_path / "centroid_method.py"
    module_file.write_text(code)
    spec = importlib.util.spec_from_file_location("centroid_method", module_file)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        yield registry.resolve(["centroid"])[0]
    finally:
        registry.unregister("centroid")


def test_readme_method_example_registers_and_runs(tmp_path, tiny_csv, tiny_spec):
    with readme_method(tmp_path) as method:
        plan = plan_of(tiny_csv, tiny_spec, {"centroid": method}, {"centroid": {"shrink": 0.1}})
        record, trace = execute.run_cell(plan.cells[0])
    assert record.ok, trace
    assert record.params["shrink"] == 0.1 and len(record.predictions) == record.n_test


def test_the_readme_examples_bounds_refuse_a_value_it_cannot_use(tmp_path, tiny_spec):
    with readme_method(tmp_path) as method:
        overrides = registry.parse_overrides(["centroid.shrink=2"], [method])["centroid"]
        with pytest.raises(UsageError, match=r"--set centroid.shrink=2.0: must be <= 1"):
            registry.check_params(method, method.defaults() | overrides, tiny_spec, overrides)
