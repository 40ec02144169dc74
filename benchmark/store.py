"""The run folder: records.jsonl (one JSON object per finished cell, appended and fsynced as each cell ends),
run.json (how the run was made), errors.log (tracebacks of failed cells), and a lock held while a run writes.

Records are read as JSON only, never unpickled. A torn last line (a run killed mid-write) is reported and
ignored; the next append starts on a fresh line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import LockedError, UsageError

RECORDS = "records.jsonl"
RUN_INFO = "run.json"
ERROR_LOG = "errors.log"
LOCK = ".lock"


@dataclass
class Records:
    records: list[dict]
    torn_line: int | None = None  # 1-based number of an unreadable line, if any

    def latest_by_cell(self) -> dict[str, dict]:
        """The newest record of each cell key (a re-run of a failed cell supersedes it)."""
        return {r["cell"]: r for r in self.records if "cell" in r}


def read_records(folder: Path) -> Records:
    path = Path(folder) / RECORDS
    if not path.is_file():
        return Records([])
    records, torn = [], None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                torn = number
                continue
            if isinstance(record, dict):
                records.append(record)
    return Records(records, torn)


class RunFolder:
    """An output folder opened for writing: checked writable, locked against a second concurrent run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_handle = None

    @staticmethod
    def check_writable(path: Path) -> None:
        """Raise UsageError unless `path` is, or can be made, a writable folder. Creates nothing."""
        path = Path(path)
        probe = path
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise UsageError(f"--out {path}: {probe} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"--out {path}: {probe} is not writable")
        if path.exists() and (path / RECORDS).exists() and not os.access(path / RECORDS, os.W_OK):
            raise UsageError(f"--out {path}: {path / RECORDS} is not writable")

    def __enter__(self) -> RunFolder:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_handle = open(self.path / LOCK, "a+")
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_handle.close()
            holder = (self.path / LOCK).read_text().strip() or "another process"
            raise LockedError(
                f"--out {self.path} is in use by a running benchmark ({holder}); wait for it or pick another --out"
            ) from None
        self._lock_handle.seek(0)
        self._lock_handle.truncate()
        self._lock_handle.write(f"pid {os.getpid()}\n")
        self._lock_handle.flush()
        self.torn_tail = self._cut_torn_tail()
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._lock_handle is not None:
            self._lock_handle.seek(0)
            self._lock_handle.truncate()
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()

    def _cut_torn_tail(self) -> str | None:
        """Every record is written as one line with its newline; bytes after the last newline are what a kill
        left of a record in progress. Cut them off (they are not a record) and say so."""
        path = self.path / RECORDS
        if not path.is_file() or not path.stat().st_size:
            return None
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        with open(path, "rb+") as handle:
            handle.truncate(keep)
        return f"ignored a torn last line in {path} ({len(data) - keep} bytes of a record cut off by a killed run)"

    def append(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with open(self.path / RECORDS, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def log_error(self, header: str, traceback_text: str) -> None:
        with open(self.path / ERROR_LOG, "a", encoding="utf-8") as handle:
            handle.write(f"=== {header}\n{traceback_text}\n")

    def write_run_info(self, info: dict, amend: bool = False) -> None:
        """run.json keeps one entry per invocation (a resumed run appends), newest last. `amend` replaces the
        newest entry instead (the invocation's own start, completed with how it ended)."""
        path = self.path / RUN_INFO
        history = []
        if path.is_file():
            try:
                previous = json.loads(path.read_text())
                history = previous.get("invocations", [previous]) if isinstance(previous, dict) else []
            except json.JSONDecodeError:
                history = []
        if amend:
            history = history[:-1]
        payload = dict(info) | {"invocations": history + [info]}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str))
        os.replace(tmp, path)
