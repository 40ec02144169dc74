"""The README's "Adding a method" example is real code: registered from a file, it runs through the harness."""

import importlib.util
import re

from conftest import ROOT, plan_of

from benchmark import execute, registry


def test_readme_method_example_registers_and_runs(tmp_path, tiny_csv, tiny_spec):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Adding a method", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 20 <= len(code.strip().splitlines()) <= 40
    module_file = tmp_path / "centroid_method.py"
    module_file.write_text(code)
    spec = importlib.util.spec_from_file_location("centroid_method", module_file)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        method = registry.resolve(["centroid"])[0]
        plan = plan_of(tiny_csv, tiny_spec, {"centroid": method}, {"centroid": {"shrink": 0.1}})
        record, trace = execute.run_cell(plan.cells[0])
    finally:
        registry.unregister("centroid")
    assert record.ok, trace
    assert record.params["shrink"] == 0.1 and len(record.predictions) == record.n_test
