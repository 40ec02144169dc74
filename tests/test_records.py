"""Records say what made them (the invocation, the harness's version, the project's commit), older records still
read and resume, and the record's JSON Schema in docs is the one the code makes."""

import json
import pickle
import shutil

import pytest
from conftest import ROOT, plan_of
from test_store_and_leaderboard import record_json

from benchmark import __version__, cli, registry
from benchmark.grid import provenance
from benchmark.grid.plan import build_plan
from benchmark.grid.store import read_records
from benchmark.record import SCHEMA_VERSION, Record, json_schema, json_schema_text


def run_records(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def test_every_record_names_its_invocation_as_run_json_does_the_harness_version_and_the_commit(
    tiny_csv, tiny_model, tmp_path
):
    args = ["--dataset", tiny_csv, "--model", tiny_model, "--methods", "logreg", "--shots", "4", "--out",
            tmp_path / "run"]  # fmt: skip
    for seeds in ("1", "2"):  # the second invocation resumes: seed 0 is done, seed 1 is its own
        assert cli.main([str(a) for a in args + ["--seeds", seeds]]) == 0
    first, second = run_records(tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [entry["invocation_id"] for entry in info["invocations"]] == [r["invocation_id"] for r in (first, second)]
    assert info["invocation_id"] == second["invocation_id"] != first["invocation_id"]
    assert first["harness_version"] == __version__ and first["project_commit"] == provenance.head_commit()
    assert first["schema_version"] == SCHEMA_VERSION == 3
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(first, json_schema())


def test_the_committed_record_schema_is_the_one_the_code_makes():
    """`python scripts/export_schema.py` writes it; re-run it after changing `benchmark.record.Record`."""
    assert (ROOT / "docs" / "record.schema.json").read_text(encoding="utf-8") == json_schema_text()
    assert set(json_schema()["required"]) == set(json_schema()["properties"])  # every field is always written


def test_records_of_every_older_schema_read_with_the_new_fields_null():
    two = record_json("full", 0, 0.5) | {"schema_version": 2}
    for name in ("invocation_id", "harness_version", "project_commit"):
        two.pop(name)
    old = Record.from_json(two)
    assert old.schema_version == SCHEMA_VERSION and (old.invocation_id, old.project_commit) == (None, None)
    committed = [r for path in ROOT.glob("results/*/records.jsonl") for r in read_records(path.parent).records]
    assert committed and all(r.harness_version is None and r.invocation_id is None for r in committed)


def test_a_record_of_the_current_schema_must_have_every_field():
    data = record_json("full", 0, 0.5)
    data.pop("invocation_id")
    with pytest.raises(ValueError, match="missing field invocation_id"):
        Record.from_json(data)


def test_a_resumed_committed_folder_skips_its_finished_cells(tmp_path):
    """results/rt-critics-grid's command, planned today: each record made with today's revision and
    hyperparameters of its method is a finished cell of the plan (the schema layer, from the flags through
    RunConfig to the registry's typed values, leaves every cell key as it was)."""
    folder = tmp_path / "rt-critics-grid"
    shutil.copytree(ROOT / "results" / "rt-critics-grid", folder)
    command = json.loads((folder / "run.json").read_text())["command"][1:]
    given = dict(zip(command[::2], command[1::2], strict=True)) | {"--out": str(folder), "--cache-dir": str(tmp_path)}
    args = [part for pair in given.items() for part in pair] + ["--device", "cpu", "--precision", "fp32"]
    plan, _ = build_plan(cli.run_config(cli.parser().parse_args(["run", *args])))
    records = read_records(folder).latest_by_cell().values()
    made_today = {name: (spec.revision, plan.params[name]) for name, spec in plan.specs.items()}
    today = {r.method for r in records if (r.revision, r.params) == made_today[r.method]}
    assert len(today) == 5  # all but lora (revision 2 since) and setfit (max_steps_per_class since)
    assert {r.cell for r in records if r.method in today} == {c.key for c in plan.cells if c.method.name in today}


def test_a_config_files_int_for_a_float_and_a_set_string_make_the_default_key(tiny_csv, tiny_spec):
    default = plan_of(tiny_csv, tiny_spec, ["logreg"]).cells[0]
    (spec,) = registry.resolve(["logreg"])
    typed = registry.typed_overrides({"logreg": {"C": 1}}, [spec])["logreg"]
    parsed = registry.parse_overrides(["logreg.C=1", "logreg.max_iter=1000"], [spec])["logreg"]
    for overrides in (typed, parsed):
        assert plan_of(tiny_csv, tiny_spec, ["logreg"], {"logreg": overrides}).cells[0].key == default.key


def test_the_invocation_id_travels_with_a_pickled_cell_and_leaves_its_key_alone(tiny_csv, tiny_spec):
    import dataclasses

    cell = plan_of(tiny_csv, tiny_spec, ["logreg"]).cells[0]
    tagged = dataclasses.replace(cell, settings=dataclasses.replace(cell.settings, invocation_id="feedc0de"))
    travelled = pickle.loads(pickle.dumps(tagged))
    assert travelled.settings.invocation_id == "feedc0de" and travelled.key == cell.key
    record = Record.from_json(record_json("full", 0, 0.5))
    assert pickle.loads(pickle.dumps(record)) == record
