"""The run folder: records.jsonl (one record per finished cell, appended and fsynced as each cell ends),
run.json (how each invocation was made, `benchmark.grid.provenance`), errors.log (tracebacks of failed cells), the
reports, and a lock held while a run writes.

Records are read as JSON only, never unpickled. A line that is not a record (torn by a kill, damaged, of an
unknown schema) is named and skipped, never fatal; a torn last line is cut off before the next append.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import LockedError, UsageError
from benchmark.grid.files import atomic_write_text
from benchmark.record import Record, RecordError

RECORDS = "records.jsonl"
RUN_INFO = "run.json"
ERROR_LOG = "errors.log"
TEST_LABELS = "test-labels.json"  # the test splits' label ids (no texts), which the statistics need
LOCK = ".lock"


@dataclass
class Records:
    records: list[Record]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, why) of unreadable lines

    def latest_by_cell(self) -> dict[str, Record]:
        """The newest record of each cell key (a re-run of a failed cell supersedes it)."""
        return {r.cell: r for r in self.records}

    def notes(self, path: Path) -> list[str]:
        return [f"skipped line {number} of {path}: {why}" for number, why in self.skipped]


def read_records(folder: Path) -> Records:
    path = Path(folder) / RECORDS
    if not path.is_file():
        return Records([])
    records, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(Record.from_json(json.loads(line)))
            except json.JSONDecodeError:
                skipped.append((number, "not valid JSON (torn by a killed run, or edited)"))
            except RecordError as exc:
                skipped.append((number, f"not a record: {exc}"))
    return Records(records, skipped)


def read_test_labels(folder: Path) -> dict[str, dict]:
    """{dataset fingerprint: {"dataset", "label_names", "labels"}}; empty if the folder has none."""
    try:
        data = json.loads((Path(folder) / TEST_LABELS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run_info(folder: Path) -> dict | None:
    try:
        info = json.loads((Path(folder) / RUN_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_run_folder(path: Path) -> bool:
    return (Path(path) / RECORDS).is_file() or (Path(path) / RUN_INFO).is_file()


class RunFolder:
    """An output folder opened for writing: checked, locked against a second concurrent run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = None
        self.notes: list[str] = []  # what opening found and repaired, for the user

    @staticmethod
    def check_writable(path: Path) -> None:
        """Raise UsageError unless `path` is, or can be made, a writable run folder. Creates nothing. A folder
        that holds other files and no run is refused: its files are the user's, not ours to overwrite."""
        path = Path(path)
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise UsageError(f"--out {path}: {probe} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"--out {path}: {probe} is not writable")
        if path.is_dir() and not is_run_folder(path) and any(not p.name.startswith(".") for p in path.iterdir()):
            raise UsageError(f"--out {path}: the folder holds other files and no run; choose an empty or new folder")
        if (path / RECORDS).exists() and not os.access(path / RECORDS, os.W_OK):
            raise UsageError(f"--out {path}: {path / RECORDS} is not writable")

    def __enter__(self) -> RunFolder:
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        previous_holder: list[str] = []
        self._lock = FileLock(self.path / LOCK, timeout=0, on_acquired=lambda fd: previous_holder.append(_claim(fd)))
        try:
            self._lock.acquire()
        except Timeout:
            holder = _read_holder(self.path / LOCK)
            raise LockedError(
                f"--out {self.path} is in use by a running benchmark ({holder}); wait for it or pick another --out"
            ) from None
        if previous_holder and previous_holder[0]:
            self.notes.append(f"a previous run ({previous_holder[0]}) ended without releasing {self.path / LOCK}")
        torn = self._cut_torn_tail()
        if torn:
            self.notes.append(torn)
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            (self.path / LOCK).write_text("")  # released cleanly: no holder to report to the next run
            self._lock.release()

    def _cut_torn_tail(self) -> str | None:
        """Every record is written as one line with its newline; bytes after the last newline are what a kill
        (or a full disk) left of a record in progress. Cut them off (they are not a record) and say so."""
        path = self.path / RECORDS
        if not path.is_file() or not path.stat().st_size:
            return None
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        with open(path, "rb+") as handle:
            handle.truncate(keep)
        return f"cut a torn last line off {path} ({len(data) - keep} bytes of a record a stopped run left)"

    def append(self, record: Record) -> None:
        """Append one record as one line, fsynced. On failure (a full disk) the partial line is cut off again,
        so the file stays readable, and the error goes to the caller."""
        line = json.dumps(record.to_json(), separators=(",", ":"), allow_nan=False) + "\n"
        path = self.path / RECORDS
        size = path.stat().st_size if path.exists() else 0
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            with open(path, "rb+") as handle:
                handle.truncate(size)
            raise

    def log_error(self, header: str, traceback_text: str) -> None:
        with open(self.path / ERROR_LOG, "a", encoding="utf-8") as handle:
            handle.write(f"=== {header}\n{traceback_text}\n")

    def write_test_labels(self, tasks) -> None:
        """Keep each task's test labels beside the records (by dataset fingerprint), so that reports need nothing
        but the folder."""
        path = self.path / TEST_LABELS
        known = read_test_labels(self.path)
        for task in tasks:
            known[task.fingerprint] = {
                "dataset": task.name,
                "label_names": list(task.label_names),
                "labels": task.test.labels.tolist(),
            }
        atomic_write_text(path, json.dumps(known, separators=(",", ":")))

    def write_run_info(self, info: dict, amend: bool = False) -> None:
        """run.json keeps one entry per invocation (a resumed run appends), newest last. `amend` replaces the
        newest entry instead (the invocation's own start, completed with how it ended)."""
        path = self.path / RUN_INFO
        history = []
        if path.is_file():
            try:
                previous = json.loads(path.read_text())
                history = previous.get("invocations", [previous]) if isinstance(previous, dict) else []
            except (json.JSONDecodeError, UnicodeDecodeError):
                history = []
        if amend:
            history = history[:-1]
        payload = dict(info) | {"invocations": history + [info]}
        atomic_write_text(path, json.dumps(payload, indent=2, default=str))


def _claim(fd: int) -> str:
    """Write who holds the lock into it; return who held it last if that holder never released it."""
    previous = os.pread(fd, 200, 0).decode(errors="replace").strip()
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return previous


def _read_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"
