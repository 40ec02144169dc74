import json

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_rows, write_csv

from benchmark.data.load import load_task
from benchmark.data.tasks import Split, hash_split
from benchmark.errors import UsageError

ROWS = synthetic_rows(20, seed=0)


def frame(rows=ROWS, text="text", label="label"):
    return pd.DataFrame(rows, columns=[text, label])


def check_task(task, n_total=40):
    assert task.label_names == ("neg", "pos")
    assert len(task.train) + len(task.test) == n_total
    assert set(task.train.labels.tolist()) == {0, 1}
    assert all(isinstance(t, str) and t for t in task.train.texts)


def test_csv(tmp_path):
    check_task(load_task(str(write_csv(tmp_path / "d.csv", ROWS))))


def test_tsv(tmp_path):
    check_task(load_task(str(write_csv(tmp_path / "d.tsv", ROWS, sep="\t"))))


def test_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in ROWS))
    check_task(load_task(str(path)))


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    frame().to_parquet(path)
    check_task(load_task(str(path)))


def test_save_to_disk_folder_keeps_class_label_names_and_splits(tmp_path):
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    to_ds = lambda rows: datasets.Dataset.from_dict(  # noqa: E731
        {"sentence": [t for t, _ in rows], "label": [0 if y == "neg" else 1 for _, y in rows]}, features=features
    )
    datasets.DatasetDict({"train": to_ds(ROWS[:30]), "validation": to_ds(ROWS[30:])}).save_to_disk(tmp_path / "saved")
    task = load_task(str(tmp_path / "saved"))
    check_task(task)
    assert len(task.test) == 10  # the validation split serves as test when there is no test split


def test_folder_of_data_files_loads_like_a_hub_repository(tmp_path):
    """A local folder stands in for a Hub dataset: datasets.load_dataset reads train/test files by name."""
    folder = tmp_path / "hub_like"
    folder.mkdir()
    write_csv(folder / "train.csv", ROWS[:30])
    write_csv(folder / "test.csv", ROWS[30:])
    task = load_task(str(folder))
    check_task(task)
    assert len(task.test) == 10


def test_explicit_test_file_and_named_columns(tmp_path):
    train = tmp_path / "train.csv"
    frame(ROWS[:30], "review_body", "stars").to_csv(train, index=False)
    test = tmp_path / "test.csv"
    frame(ROWS[30:], "review_body", "stars").to_csv(test, index=False)
    task = load_task(str(train), str(test), text_col="review_body", label_col="stars")
    assert (len(task.train), len(task.test)) == (30, 10)


def test_column_detection_is_case_insensitive_and_knows_common_names(tmp_path):
    path = tmp_path / "d.csv"
    frame(text="Sentence", label="Category").to_csv(path, index=False)
    check_task(load_task(str(path)))


def test_string_labels_map_to_ids_in_sorted_order_and_integers_numerically(tmp_path):
    rows = [(f"text {i}", ["b", "a", "c"][i % 3]) for i in range(30)]
    task = load_task(str(write_csv(tmp_path / "s.csv", rows)))
    assert task.label_names == ("a", "b", "c")
    ints = [(f"text {i}", [10, 9, 2][i % 3]) for i in range(30)]
    task = load_task(str(write_csv(tmp_path / "i.csv", ints)))
    assert task.label_names == ("2", "9", "10")


def test_split_without_test_file_is_deterministic_stratified_and_order_independent(tmp_path):
    first = load_task(str(write_csv(tmp_path / "a.csv", ROWS)))
    second = load_task(str(write_csv(tmp_path / "b.csv", list(reversed(ROWS)))))
    assert sorted(first.test.texts) == sorted(second.test.texts)
    assert np.bincount(first.test.labels).tolist() == [2, 2]
    assert not set(first.test.texts) & set(first.train.texts)
    assert any("no test split given" in note for note in first.notes)


def test_hash_split_holds_out_the_fraction_per_class():
    split = Split([f"t{i}" for i in range(100)], np.array([0] * 50 + [1] * 50))
    train, test = hash_split(split, 0.1)
    assert np.bincount(test.labels).tolist() == [5, 5] and len(train) == 90


def test_fingerprint_changes_with_content(tmp_path):
    a = load_task(str(write_csv(tmp_path / "a.csv", ROWS)))
    b = load_task(str(write_csv(tmp_path / "b.csv", ROWS[:-1] + [(ROWS[-1][0] + " x", ROWS[-1][1])])))
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == load_task(str(tmp_path / "a.csv")).fingerprint


def test_empty_texts_are_dropped_with_a_count(tmp_path):
    rows = ROWS + [("", "pos"), ("   ", "neg")]
    task = load_task(str(write_csv(tmp_path / "d.csv", rows)))
    assert len(task.train) + len(task.test) == 40
    assert any("dropped 2 of 42 rows" in note for note in task.notes)


def test_embedded_default_is_deduplicated_binary_and_fixed():
    task = load_task("rt-critics")
    assert task.label_names == ("rotten", "fresh")
    texts = task.train.texts + task.test.texts
    assert len(texts) == len(set(texts)) > 12000
    assert 0.09 < len(task.test) / len(texts) < 0.11
    assert not any(t.strip() != t or not t for t in texts)
    # the split is a function of the texts alone: pinned so that a change to it cannot go unnoticed
    assert task.fingerprint == load_task("rt-critics").fingerprint == "558599812ac3a6ed"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.csv", "no such file"),
        (lambda p: (p / "d.xlsx").write_text("x") and p / "d.xlsx", "unsupported file type '.xlsx'"),
        (lambda p: (p / "d.csv").write_bytes(b"text,label\n\xff\xfe bad,1\n") and p / "d.csv", "not valid UTF-8"),
        (lambda p: (p / "d.csv").write_text("") or p / "d.csv", "is empty"),
        (
            lambda p: write_csv(p / "d.csv", ROWS, header=("body_text", "label")),
            r"no text column found \(columns found: body_text, label\)",
        ),
        (
            lambda p: write_csv(p / "d.csv", ROWS, header=("text", "polarity")),
            r"no label column found \(columns found: text, polarity\)",
        ),
        (lambda p: write_csv(p / "d.csv", [(t, "pos") for t, _ in ROWS]), "single class"),
        (lambda p: write_csv(p / "d.csv", [("", "pos"), (" ", "neg")]), "no usable rows"),
        (lambda p: (p / "d.parquet").write_bytes(b"not parquet") and p / "d.parquet", "cannot parse"),
    ],
)
def test_bad_files_are_one_line_usage_errors(tmp_path, make, message):
    with pytest.raises(UsageError, match=message) as info:
        load_task(str(make(tmp_path)))
    assert "\n" not in str(info.value)


def test_test_labels_unseen_in_train_are_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", ROWS)
    test = write_csv(tmp_path / "test.csv", [("something new", "meh")])
    with pytest.raises(UsageError, match="labels the train pool never saw: meh"):
        load_task(str(train), str(test))


def test_named_column_that_does_not_exist_lists_columns(tmp_path):
    with pytest.raises(UsageError, match=r"text column 'review' not found \(columns found: text, label\)"):
        load_task(str(write_csv(tmp_path / "d.csv", ROWS)), text_col="review")


def test_hub_name_not_available_offline_is_a_one_line_error():
    with pytest.raises(UsageError, match=r"could not be loaded from the Hub.*local CSV") as info:
        load_task("some-user/definitely-not-cached-dataset")
    assert "\n" not in str(info.value)
