"""Tasks: a labelled train pool, a labelled test split and the label names, from any source.

Sources, in the order `benchmark.data.load.load_task` tries them (the embedded suite there, the rest here):
- an embedded dataset (``rt-critics``, the default, and the rest of the suite: `benchmark.data.embedded`);
- a local file (CSV, TSV, JSONL, Parquet) or folder (``datasets.save_to_disk`` output, or a folder of data
  files that ``datasets.load_dataset`` reads the way it reads a Hub repository);
- otherwise a Hub dataset name, through ``datasets.load_dataset``.

Every source ends in `task_from_frames`, which owns the rules: column detection, dropping empty texts (with a
count), label ids in a stable order, and the deterministic split when no test split exists.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from benchmark.errors import UsageError

TEST_FRACTION = 0.1
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "body", "utterance", "comment", "tweet")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment", "intent", "y")
FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # int64 label ids

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Task:
    name: str
    train: Split
    test: Split
    label_names: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())  # what loading dropped or decided, shown to the user

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of both splits and the label names: a cell's results are tied to exactly this data."""
        digest = hashlib.sha256("\x1f".join(self.label_names).encode())
        for split in (self.train, self.test):
            digest.update(b"\x1e")
            for text, label in zip(split.texts, split.labels.tolist(), strict=True):
                digest.update(f"{label}\t{text}\n".encode())
        return digest.hexdigest()[:16]

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.train.labels, minlength=self.num_labels)
        return dict(zip(self.label_names, counts.tolist(), strict=True))


@dataclass(frozen=True)
class DatasetSource:
    """How to load a task: what the user named (an embedded dataset, a local path made absolute, a Hub name) and
    the options for local files. Plain data, so that a worker process or another machine can load the task
    itself (`load_source`)."""

    name: str
    test: str | None = None
    text_col: str | None = None
    label_col: str | None = None

    @classmethod
    def of(cls, name: str, test: str | None = None, text_col: str | None = None, label_col: str | None = None):
        path = Path(name).expanduser()
        if path.exists() or _looks_like_path(name):
            name = os.path.abspath(path)  # normalised: 'data.csv' and './x/../data.csv' are one source
        return cls(name, os.path.abspath(Path(test).expanduser()) if test else None, text_col, label_col)


def read_task(dataset: str, test: str | None = None, text_col: str | None = None, label_col: str | None = None) -> Task:
    """A task from a local file or folder, or from the Hub (not the embedded suite: `benchmark.data.load`), or
    UsageError with a one-line reason."""
    path = Path(dataset).expanduser()
    if path.exists() or _looks_like_path(dataset):
        train_frame, test_frame, class_names = _read_local(path), None, None
        if isinstance(train_frame, dict):  # a folder holding several splits
            train_frame, test_frame, class_names = _pick_splits(train_frame, str(path))
        if test is not None:
            test_frame = _read_local(Path(test).expanduser())
            if isinstance(test_frame, dict):
                raise UsageError(f"--test {test}: expected one file, found a folder of splits")
        return task_from_frames(path.name, train_frame, test_frame, text_col, label_col, class_names)
    if test is not None:
        raise UsageError("--test takes a local file and goes with a local --dataset file")
    splits = _load_hub(dataset)
    train_frame, test_frame, class_names = _pick_splits(splits, dataset)
    return task_from_frames(dataset, train_frame, test_frame, text_col, label_col, class_names)


def task_from_frames(
    name: str,
    train_frame,
    test_frame,
    text_col: str | None,
    label_col: str | None,
    class_names: Sequence[str] | None = None,
) -> Task:
    """Turn pandas frames into a Task: detect columns, check and clean values, map labels, split if needed."""
    notes: list[str] = []
    text_col = _pick_column(train_frame, text_col, TEXT_COLUMNS, "text", "--text-col")
    label_col = _pick_column(train_frame, label_col, LABEL_COLUMNS, "label", "--label-col")
    if text_col == label_col:
        raise UsageError(f"the text and the label column are both '{text_col}': name two columns")
    frames = {"train": train_frame} if test_frame is None else {"train": train_frame, "test": test_frame}
    for split_name, frame in list(frames.items()):
        frames[split_name] = _usable_rows(frame, text_col, label_col, split_name, name, notes)
    label_names, to_id = _label_mapping(frames, label_col, class_names, notes)
    splits = {
        split_name: Split(frame[text_col].astype(str).tolist(), np.array([to_id[v] for v in frame[label_col]]))
        for split_name, frame in frames.items()
    }
    if "test" not in splits:
        splits["train"], splits["test"] = hash_split(splits["train"], TEST_FRACTION)
        notes.append(
            f"no test split given: held out {len(splits['test'])} examples "
            f"({TEST_FRACTION:.0%} per class, by text hash)"
        )
    unseen = sorted(set(np.unique(splits["test"].labels)) - set(np.unique(splits["train"].labels)))
    if unseen:
        raise UsageError(f"test split has labels the train pool never saw: {', '.join(label_names[i] for i in unseen)}")
    present = np.unique(splits["train"].labels)
    if len(present) < 2:
        raise UsageError(f"train pool of '{name}' has a single class ({label_names[present[0]]}): nothing to classify")
    return Task(name, splits["train"], splits["test"], tuple(label_names), tuple(notes))


def _usable_rows(frame, text_col: str, label_col: str, split_name: str, name: str, notes: list[str]):
    """The split's rows a task can use: both columns present and scalar, none empty, labels without surrounding
    spaces. What was dropped or changed goes into `notes`."""
    for column, what in ((text_col, "text"), (label_col, "label")):
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise UsageError(f"{split_name} split has no column '{column}' (columns found: {found})")
        _check_scalars(frame[column], column, what, split_name)
    frame, note = _drop_empty(frame, text_col, label_col, split_name)
    if note:
        notes.append(note)
    if frame.empty:
        raise UsageError(f"{split_name} split of '{name}' has no usable rows (every text or label is empty)")
    labels = frame[label_col]
    stripped = labels.map(lambda v: v.strip() if isinstance(v, str) else v)
    changed = sorted({repr(v) for v, s in zip(labels, stripped, strict=True) if v != s})
    if changed:
        notes.append(f"{split_name}: read labels without their surrounding spaces ({', '.join(changed[:3])} ...)")
        frame = frame.assign(**{label_col: stripped})
    return frame


def _check_scalars(values, column: str, what: str, split_name: str) -> None:
    """A list, object or array where a text or label belongs is a mistake in the file, not a value to stringify."""
    for row, value in enumerate(values):
        if isinstance(value, (list, tuple, dict, set, np.ndarray)):
            raise UsageError(
                f"{split_name} split: the {what} column '{column}' holds a {type(value).__name__} in row {row + 1}, "
                f"not a single {what}"
            )


def overlap(task: Task) -> int:
    """How many test texts also occur in the train pool (leakage: a method may have seen them labelled)."""
    pool = set(task.train.texts)
    return sum(text in pool for text in task.test.texts)


def check_overlap(task: Task, allowed: bool, limit: float = 0.01) -> str | None:
    """A note on test texts that are also in the train pool; UsageError when more than `limit` of the test split
    is, unless `allowed`."""
    shared = overlap(task)
    if not shared:
        return None
    share = shared / len(task.test)
    message = f"{task.name}: {shared} of {len(task.test)} test texts ({share:.1%}) are also in the train pool"
    if share > limit and not allowed:
        raise UsageError(f"{message}; pass --allow-overlap to run anyway (scores would overstate what generalises)")
    return message


def hash_split(split: Split, fraction: float) -> tuple[Split, Split]:
    """Stratified split that depends only on the texts: per class, the `fraction` with the smallest SHA-256. Copies
    of one text go to the same side, so a duplicated row never lands in both splits."""
    keys = np.array([hashlib.sha256(text.encode()).hexdigest() for text in split.texts])
    test_mask = np.zeros(len(split), dtype=bool)
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        n_test = int(round(fraction * len(members)))
        if len(members) - n_test < 1:
            n_test = 0
        chosen = set(np.unique(keys[members])[:n_test])  # sorted: the smallest hashes
        test_mask[members[np.isin(keys[members], list(chosen))]] = True
    pick = lambda mask: Split([split.texts[i] for i in np.flatnonzero(mask)], split.labels[mask])  # noqa: E731
    return pick(~test_mask), pick(test_mask)


def _looks_like_path(name: str) -> bool:
    return Path(name).suffix.lower() in FILE_FORMATS or name.startswith((".", "/", "~")) or "\\" in name


def _read_local(path: Path):
    """A pandas frame for a file, or {split: frame} for a folder; UsageError for anything unreadable."""
    import pandas as pd

    if not path.exists():
        raise UsageError(f"no such file or folder: {path}")
    if path.is_dir():
        return _read_folder(path)
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            f"unsupported file type '{path.suffix or path.name}' for {path}: use one of {', '.join(FILE_FORMATS)}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not raw.strip():
        raise UsageError(f"{path} is empty")
    try:
        if fmt == "parquet":
            import io

            return pd.read_parquet(io.BytesIO(raw))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path} is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
        import io

        if fmt == "jsonl":
            return pd.read_json(io.StringIO(text), lines=True, dtype=False)  # values as written: "1" stays text
        # keep_default_na=False: a text "NA" or "null" is a text; truly empty cells become "" and are dropped later
        return pd.read_csv(io.StringIO(text), sep="\t" if fmt == "tsv" else ",", keep_default_na=False)
    except UsageError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        raise UsageError(f"cannot parse {path} as {fmt}: {_one_line(exc)}") from None


def _read_folder(path: Path) -> dict:
    import datasets

    datasets.logging.set_verbosity_error()
    try:
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(path))
    except Exception as exc:
        raise UsageError(f"cannot read the dataset folder {path}: {_one_line(exc)}") from None
    return _as_split_dict(loaded)


def _load_hub(name: str) -> dict:
    import datasets

    datasets.logging.set_verbosity_error()
    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:
        offline = (
            " (offline: only datasets already in the local cache can load)" if datasets.config.HF_HUB_OFFLINE else ""
        )
        raise UsageError(
            f"dataset '{name}' could not be loaded from the Hub{offline}: {_one_line(exc)}; "
            "pass a local CSV/TSV/JSONL/Parquet file instead"
        ) from None
    return _as_split_dict(loaded)


def _as_split_dict(loaded) -> dict:
    """{split name: (pandas frame, ClassLabel names or None)} from a Dataset or DatasetDict."""
    import datasets

    if isinstance(loaded, datasets.Dataset):
        loaded = {"train": loaded}
    out = {}
    for split_name, split in loaded.items():
        names = {
            column: feature.names
            for column, feature in split.features.items()
            if isinstance(feature, datasets.ClassLabel)
        }
        out[split_name] = (split.to_pandas(), names)
    return out


def _pick_splits(splits: dict, source: str):
    """train, test (test, else validation, else None) and the ClassLabel names of the label column if any."""
    if "train" not in splits:
        raise UsageError(f"'{source}' has no train split (splits found: {', '.join(splits)})")
    train_frame, names = splits["train"]
    test_name = next((s for s in ("test", "validation") if s in splits and _has_labels(splits[s][0])), None)
    test_frame = splits[test_name][0] if test_name else None
    class_names = next(iter(names.values())) if len(names) == 1 else None
    return train_frame, test_frame, class_names


def _has_labels(frame) -> bool:
    """GLUE-style test splits carry label -1 everywhere: unusable as a test split."""
    for column in LABEL_COLUMNS:
        if column in frame.columns:
            values = frame[column]
            return not (values.dtype.kind in "iu" and (values < 0).all())
    return True


def _pick_column(frame, requested: str | None, candidates: Sequence[str], what: str, flag: str) -> str:
    columns = [str(c) for c in frame.columns]
    if requested is not None:
        if requested not in columns:
            raise UsageError(f"{what} column '{requested}' not found (columns found: {', '.join(columns)})")
        return requested
    lowered = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise UsageError(f"no {what} column found (columns found: {', '.join(columns)}); name it with {flag}")


MISSING_LABELS = ("nan", "na", "n/a", "null")  # how files spell a missing label (any case): not a class name


def _drop_empty(frame, text_col: str, label_col: str, split_name: str):
    """Rows with an empty/null text or a missing label cannot be used: drop them and say how many. A label
    written as NaN, NA, N/A or null is missing (pandas and R write a missing value so), never a class of its
    own; a text reading 'NA' stays a text."""
    texts = frame[text_col]
    empty_text = texts.isna() | (texts.astype(str).str.strip() == "")
    labels = frame[label_col]
    spelled = labels.astype(str).str.strip().str.lower()
    empty_label = labels.isna() | (spelled == "") | spelled.isin(MISSING_LABELS)
    bad = empty_text | empty_label
    if not bad.any():
        return frame, None
    note = f"{split_name}: dropped {int(bad.sum())} of {len(frame)} rows with an empty text or a missing label"
    if (spelled.isin(MISSING_LABELS) & ~labels.isna()).any():
        note += f" (labels read as missing: {', '.join(MISSING_LABELS)}, any case)"
    return frame[~bad], note


def _label_mapping(frames: dict, label_col: str, class_names: Sequence[str] | None, notes: list[str]):
    """Label names and value -> id. Given names keep their order; otherwise sorted values (numbers numerically).
    A column that mixes numbers and the same numbers written as text (1 and "1") reads them as one label, and
    says so in `notes`."""
    if class_names is not None:  # ClassLabel ids, or values given by name in a fixed order
        ids = range(len(class_names))
        return list(class_names), {i: i for i in ids} | {str(i): i for i in ids} | {
            n: i for i, n in enumerate(class_names)
        }
    values = set()
    for frame in frames.values():
        values.update(frame[label_col].tolist())
    as_numbers = {_as_int(v) for v in values}
    if None not in as_numbers:
        ordered = sorted(as_numbers)
        kinds = {type(v) is str for v in values}
        if len(kinds) == 2 and len(ordered) < len(values):
            notes.append(f"labels mix numbers and text ({', '.join(sorted(map(repr, values))[:4])}): read as numbers")
        to_id = {v: ordered.index(_as_int(v)) for v in values}
        return [str(v) for v in ordered], to_id
    ordered = sorted({str(v) for v in values})
    return ordered, {v: ordered.index(str(v)) for v in values}


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ")
