"""Bad input, round three: configuration files, lists given to flags, options this machine cannot honour, odd
labels and texts, unusable folders, a damaged cache and an odd environment. Each case ends in a refusal (exit
code 2, one line on stderr, no traceback, nothing written) or in an accepted run whose outcome is stated here and
in docs/reliability.md. Signals, kills and two runs into one folder are in test_reliability.py."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, synthetic_rows, write_csv

from benchmark.cli import main
from benchmark.grid import execute


def run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def refused(result, message: str, out_folder=None) -> None:
    code, out = result
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("fewshot-bench: error: "), out.err
    assert message in lines[0], lines[0]
    assert "Traceback" not in out.err + out.out
    if out_folder is not None:
        assert not out_folder.exists()


@pytest.fixture()
def base(tiny_model, tiny_csv, tmp_path):
    return ["--dataset", tiny_csv, "--model", tiny_model, "--out", tmp_path / "run", "--methods", "logreg",
            "--shots", "4", "--seeds", "1"]  # fmt: skip


def records(folder):
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


# --- configuration files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('methods = "logreg,full"\n', "methods: expected a list of names or a table of tables"),
        ('datasets = "rt-critics"\n', "datasets: 'rt-critics' is not a non-empty list of names"),
        ("datasets = []\n", "datasets: [] is not a non-empty list of names"),
        ('datasets = ["rt-critics", "rt-critics"]\n', "datasets: a name is listed twice"),
        ('datasets = ["rt-critics", ""]\n', "datasets: ['rt-critics', ''] is not a non-empty list of names"),
        ("seeds = 2.5\n", "seeds: 2.5 is not a positive whole number"),
        ("seeds = true\n", "seeds: True is not a positive whole number"),
        ("jobs = -1\n", "jobs: -1 is not a positive whole number"),
        ("precision = 16\n", "precision: 16 is not one of auto, fp32, bf16"),
        ("cache_dir = 5\n", "cache_dir: 5 is not a path"),
        ("gpus_per_cell = 1.5\n", "gpus_per_cell: 1.5 is not a GPU share"),
        ("force = true\n", "unknown key 'force'"),
        ("precision = 'fp16'\n", "'fp16' is not one of auto, fp32, bf16"),
        ('budgets = "8,64"\n', "budgets:"),
        ("budgets = []\n", "give each budget once, at least one"),
        ("[methods.logreg]\nC = 'strong'\n", "logreg.C='strong': expected a number"),
        ("[methods.logregg]\n", "unknown method 'logregg'"),
        ('suite = "embedded"\ndatasets = ["rt-critics"]\n', "give 'datasets' or 'suite', not both"),
        ('suite = "all"\n', "unknown suite 'all'"),
        ("seeds = 3\nseeds = 4\n", "not valid TOML"),
        ("[methods]\nlogreg = 1\n", "expected a list of names or a table of tables"),
    ],
)
def test_a_config_file_mistake_is_one_line_and_writes_nothing(tmp_path, tiny_model, capsys, text, message):
    path = tmp_path / "run.toml"
    path.write_text(f'out = "{tmp_path / "run"}"\n' + text)
    refused(run(["--config", path, "--model", tiny_model], capsys), message, tmp_path / "run")


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: path.mkdir(), "cannot read it"),
        (lambda path: path.write_bytes(b"\xff\xfe\x00seeds = 3"), "cannot read it"),
        (lambda path: None, "no such file"),
    ],
)
def test_a_config_file_that_is_not_a_readable_text_file_is_one_line(tmp_path, tiny_model, capsys, write, message):
    write(tmp_path / "run.toml")
    refused(run(["--config", tmp_path / "run.toml", "--model", tiny_model], capsys), message)


def test_flags_win_over_the_file_and_run_json_keeps_what_ran(tmp_path, tiny_model, tiny_csv, capsys):
    path = tmp_path / "run.toml"
    path.write_text(f'suite = "embedded"\nseeds = 4\nbudgets = [8, 64]\nout = "{tmp_path / "run"}"\n')
    code, _ = run(["--config", path, "--model", tiny_model, "--dataset", tiny_csv, "--seeds", "1", "--shots", "4",
                   "--methods", "logreg"], capsys)  # fmt: skip
    assert code == 0
    assert {(r["dataset"], r["shots"], r["seed"]) for r in records(tmp_path / "run")} == {("train.csv", 4, 0)}
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert config["datasets"] == [str(tiny_csv)] and config["seeds"] == 1


# --- lists given to flags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--methods", "logreg,"], "--methods: 'logreg,' has an empty name between commas"),
        (["--methods", "logreg,,full"], "has an empty name between commas"),
        (["--methods", ""], "--methods: give at least one name"),
        (["--methods", " , "], "--methods: give at least one name"),
        (["--methods", "logreg,logreg"], "--methods: logreg listed twice"),
        (["--methods", "logreg,setfitt"], "unknown method 'setfitt'"),
        (["--dataset", ""], "--dataset: give at least one name"),
        (["--dataset", "{csv},{csv}"], "--dataset: {csv} listed twice"),
        (["--dataset", "{csv},{dotted}"], "names the same dataset as an earlier entry"),
        (["--dataset", "{csv},"], "has an empty name between commas"),
        (["--dataset", "{csv},no/such.csv"], "no such file or folder"),
        (["--suite", "embedded"], "give --dataset or --suite, not both"),
        (["--shots", "4,,8"], "--shots: '' is neither a positive integer nor 'all'"),
        (["--shots", "4,4"], "--shots: 4 is listed twice"),
        (["--shots", "all,all"], "is listed twice"),
        (["--shots", ""], "--shots:"),
        (["--seeds", ""], "--seeds: '' is not a positive whole number"),
        (["--seeds", "2,3"], "--seeds: '2,3' is not a positive whole number"),
    ],
)
def test_a_malformed_list_is_one_line(base, tiny_csv, tmp_path, capsys, flags, message):
    dotted = os.path.relpath(tiny_csv, ROOT)  # the same file, spelled from the working folder
    flags = [f.format(csv=tiny_csv, dotted=f"./{dotted}") for f in flags]
    message = message.format(csv=tiny_csv)
    refused(run(base + flags, capsys), message, tmp_path / "run")


@pytest.mark.parametrize(("suite", "message"), [("", "--suite: unknown suite ''"), ("embedded,x", "unknown suite")])
def test_an_unknown_or_empty_suite_is_one_line(tiny_model, tmp_path, capsys, suite, message):
    out = tmp_path / "run"
    refused(run(["--suite", suite, "--model", tiny_model, "--out", out], capsys), message, out)


def test_an_embedded_name_and_a_file_run_as_one_grid(base, tiny_csv, tmp_path, capsys):
    code, _ = run(base + ["--dataset", f"rt-critics,{tiny_csv}"], capsys)
    assert code == 0 and {r["dataset"] for r in records(tmp_path / "run")} == {"rt-critics", "train.csv"}


# --- what this machine cannot do ----------------------------------------------------------------------------------


def _cores() -> int:
    return os.cpu_count() or 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--jobs", "0"], "--jobs: '0' is not a positive whole number"),
        (["--jobs", "-2"], "--jobs: '-2' is not a positive whole number"),
        (["--jobs", str(_cores() + 1)], f"this machine has {_cores()} cores"),
        (["--threads", str(_cores() + 1)], f"this machine has {_cores()} cores"),
        (["--threads", "1.5"], "--threads: '1.5' is not a positive whole number"),
        (["--precision", "fp16"], "invalid choice: 'fp16'"),
        (["--executor", "dask"], "invalid choice: 'dask'"),
        (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda, cuda:N or mps"),
        (["--device", "cuda:x"], "--device cuda:x"),
        (["--cpus-per-cell", "2"], "--cpus-per-cell goes with --executor ray"),
        (["--gpus-per-cell", "0.5"], "--gpus-per-cell goes with --executor ray"),
        (["--ray-address", "127.0.0.1:6379"], "--ray-address goes with --executor ray"),
    ],
)
def test_resources_this_machine_cannot_honour_are_one_line(base, tmp_path, capsys, flags, message):
    refused(run(base + flags, capsys), message, tmp_path / "run")


def test_a_gpu_this_machine_lacks_is_one_line(base, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the refusal is for machines without one")
    refused(run(base + ["--device", "cuda"], capsys), "no CUDA device is available", tmp_path / "run")
    if not torch.backends.mps.is_available():
        refused(run(base + ["--device", "mps"], capsys), "no MPS device is available", tmp_path / "run")


# --- labels and texts ---------------------------------------------------------------------------------------------


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    return path


def test_missing_labels_however_spelled_are_dropped_with_a_count_never_a_class(base, tmp_path, capsys):
    missing = ["NaN", "nan", "NA", "null", "N/A", "", " "]
    rows = synthetic_rows(20, 0) + [(f"text {i} good", label) for i, label in enumerate(missing)]
    path = write_csv(tmp_path / "d.csv", rows)
    code, out = run(base + ["--dataset", path], capsys)
    assert code == 0 and "dropped 7 of 47 rows with an empty text or a missing label" in out.err
    assert json.loads((tmp_path / "run" / "test-labels.json").read_text()).popitem()[1]["label_names"] == [
        "neg",
        "pos",
    ]


def test_null_and_nan_labels_in_jsonl_are_dropped(base, tmp_path, capsys):
    rows = [{"text": t, "label": y} for t, y in synthetic_rows(20, 0)]
    rows += [{"text": "one more good text", "label": None}, {"text": "and a bad one", "label": float("nan")}]
    code, out = run(base + ["--dataset", _jsonl(tmp_path / "d.jsonl", rows)], capsys)
    assert code == 0 and "dropped 2 of 42 rows" in out.err


def test_a_class_with_one_example_cannot_supply_a_budget_but_runs_at_all(base, tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", synthetic_rows(20, 0) + [("a lonely neutral text", "neu")])
    refused(run(base + ["--dataset", path], capsys), "('neu': 1 examples in the train pool); use at most 1 or 'all'")
    code, _ = run(base + ["--dataset", path, "--shots", "all"], capsys)
    assert code == 0 and records(tmp_path / "run")[0]["status"] == "ok"


def test_a_test_class_the_train_pool_never_has_is_refused(base, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", synthetic_rows(20, 0))
    test = write_csv(tmp_path / "test.csv", synthetic_rows(5, 1) + [("an unseen kind of text", "other")])
    refused(run(base + ["--dataset", train, "--test", test], capsys), "labels the train pool never saw: other")


def test_a_bom_and_crlf_line_ends_read_as_the_same_task(base, tiny_csv, tmp_path, capsys):
    plain = tiny_csv.read_bytes().replace(b"\r\n", b"\n")
    windows = tmp_path / "windows.csv"
    windows.write_bytes(b"\xef\xbb\xbf" + plain.replace(b"\n", b"\r\n"))
    fingerprints = []
    for path, out in ((tiny_csv, "a"), (windows, "b")):
        assert run(base + ["--dataset", path, "--out", tmp_path / out], capsys)[0] == 0
        fingerprints.append(records(tmp_path / out)[0]["dataset_fingerprint"])
    assert fingerprints[0] == fingerprints[1]


def test_bytes_that_are_not_utf8_are_one_line_with_the_offset(base, tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\ncaf\xe9 good,pos\n" + b"a bad film,neg\n" * 10)
    refused(run(base + ["--dataset", path], capsys), "is not valid UTF-8 (byte 0xe9 at offset 14)")


def test_empty_texts_are_dropped_and_a_1_mb_text_is_truncated_by_the_encoder(base, tmp_path, capsys):
    rows = synthetic_rows(20, 0) + [("", "pos"), ("   ", "neg"), ("good " * 200_000, "pos")]
    code, out = run(base + ["--dataset", write_csv(tmp_path / "d.csv", rows), "--shots", "all"], capsys)
    assert code == 0 and "dropped 2 of 43 rows" in out.err
    (record,) = records(tmp_path / "run")
    assert record["status"] == "ok" and record["n_train"] + record["n_test"] == 41


# --- folders ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "make", "message"),
    [
        ("--out", lambda tmp: (tmp / "a-file").write_text("") or tmp / "a-file", "is not a folder"),
        ("--out", lambda tmp: (tmp / "a-file").write_text("") or tmp / "a-file" / "run", "a-file is not a folder"),
        ("--cache-dir", lambda tmp: (tmp / "a-file").write_text("") or tmp / "a-file", "is not a writable folder"),
    ],
)
def test_an_out_or_cache_folder_that_is_a_file_is_one_line(base, tmp_path, capsys, flag, make, message):
    refused(run(base + [flag, make(tmp_path)], capsys), message, tmp_path / "run")


def test_a_read_only_out_folder_is_one_line(base, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("runs as a user who may write anywhere (root): the file cases above cover the same check")
    refused(run(base + ["--out", locked / "run"], capsys), "--out")


# --- a damaged cache ----------------------------------------------------------------------------------------------


def _damage_truncate(entry):
    data = next(p for p in sorted(entry.rglob("*")) if p.is_file() and p.name != "cost.json")
    data.write_bytes(data.read_bytes()[: max(1, data.stat().st_size // 2)])


def _damage_flip(entry):
    data = next(p for p in sorted(entry.rglob("*")) if p.is_file() and p.name != "cost.json")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))


def _damage_cost(entry):
    (entry / "cost.json").write_text('{"build_seconds": 1')


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_flip, _damage_cost])
def test_a_damaged_cache_entry_is_detected_reported_and_computed_again(base, tmp_path, capsys, damage):
    cache = tmp_path / "cache"
    assert run(base + ["--cache-dir", cache], capsys)[0] == 0
    (entry,) = [p for p in (cache / "features").iterdir() if p.is_dir()]
    damage(entry)
    execute.forget()  # as a new process: nothing in memory
    code, out = run(base + ["--cache-dir", cache, "--out", tmp_path / "again"], capsys)
    assert code == 0 and f"cache entry {entry} is damaged" in out.err and "computing it again" in out.err
    first, again = records(tmp_path / "run")[0], records(tmp_path / "again")[0]
    assert again["predictions"] == first["predictions"] and again["metrics"] == first["metrics"]
    execute.forget()
    code, out = run(base + ["--cache-dir", cache, "--out", tmp_path / "third"], capsys)
    assert code == 0 and "damaged" not in out.err  # the entry was replaced by a sound one


# --- the environment ----------------------------------------------------------------------------------------------


def test_without_a_home_folder_the_run_works_without_a_disk_cache(base, tmp_path, capsys, monkeypatch):
    from pathlib import Path

    def no_home(*args):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("FEWSHOT_BENCH_CACHE")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(no_home))
    monkeypatch.setattr(Path, "expanduser", lambda self: no_home() if str(self).startswith("~") else self)
    code, out = run(base, capsys)
    assert code == 0 and "no home folder is known: one-off work is not cached on disk" in out.err
    refused(run(base + ["--out", "~/elsewhere"], capsys), "'~' names no folder here")


def test_a_dumb_terminal_of_five_columns_runs_and_prints_no_traceback(base, tmp_path):
    import pty

    leader, follower = pty.openpty()
    env = dict(os.environ, TERM="dumb", COLUMNS="5", LINES="3")
    env.pop("HOME", None)
    process = subprocess.Popen([sys.executable, "-m", "benchmark", *map(str, base)], cwd=ROOT, env=env,
                               stdin=follower, stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every holder of the terminal has closed it
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=300) == 0, shown.decode(errors="replace")
    assert b"Traceback" not in shown and records(tmp_path / "run")[0]["status"] == "ok"
