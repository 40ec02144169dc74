"""One-off work: what every cell of a method reuses (frozen features of a task, an adapted encoder), built once
and kept in memory for the process and on disk under the cache folder, with what building it took.

The harness times the building here, once, and keeps that cost beside the artifact: a run that loads the
artifact still reports what it cost (the record's `one_off_seconds`), and the time a cell spent building or
loading it (`shared_seconds`) is kept apart from the cell's own training time. Methods never time anything.

On disk an artifact is a folder ``<root>/<kind>/<key>/`` holding what `save` wrote and ``cost.json`` (its cost
and the SHA-256 of every file); the folder appears in one rename when complete, under a file lock, so parallel
workers asking for the same key wait for the first one and load its result. An entry whose files no longer match
their checksums, or that does not load, is reported and built again, never used.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmark.grid.files import atomic_folder, exclusive

T = TypeVar("T")
COST = "cost.json"

# (root, kind, key) -> (artifact, what building it took). Per root: a process running a second grid with
# another cache folder must still leave the artifact there for that grid's workers.
_memory: dict[tuple[str | None, str, str], tuple[Any, Cost]] = {}


@dataclass(frozen=True)
class Cost:
    """What building an artifact took, kept beside it."""

    seconds: float
    flops: float  # useful FLOPs (`benchmark.flops`)


@dataclass(frozen=True)
class Use:
    """One artifact a cell used."""

    kind: str
    key: str
    cost: Cost  # of building it, in this call or in the run that cached it
    seconds_here: float  # what this call spent on it: building, or loading from disk (0 from memory)
    built_here: bool = False


def clear_memory() -> None:
    """Forget every artifact held in memory (as a new process would)."""
    _memory.clear()


class OneOffCache:
    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    def get(
        self,
        kind: str,
        key: str,
        build: Callable[[], T],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> tuple[T, Use]:
        """The artifact `kind`/`key`: from memory, else from disk, else built (and saved)."""
        slot = (str(self.root) if self.root else None, kind, key)
        if slot in _memory:
            value, cost = _memory[slot]
            return value, Use(kind, key, cost, 0.0)
        started = time.perf_counter()
        if self.root is None:
            value, cost = _build(build)
            built = True
        else:
            value, cost, built = self._from_disk(kind, key, build, save, load)
        _memory[slot] = (value, cost)
        return value, Use(kind, key, cost, time.perf_counter() - started, built)

    def _from_disk(self, kind: str, key: str, build, save, load) -> tuple[Any, Cost, bool]:
        folder = self.root / kind / key
        folder.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(folder):
            if folder.exists():
                found = _verified(folder, load)
                if isinstance(found, tuple):
                    return (*found, False)
                print(f"warning: cache entry {folder} is damaged ({found}): computing it again", file=sys.stderr)
            value, cost = _build(build)

            def write(scratch: Path) -> None:
                save(value, scratch)
                facts = {"build_seconds": cost.seconds, "build_flops": cost.flops, "kind": kind, "key": key}
                (scratch / COST).write_text(json.dumps(facts | {"sha256": _checksums(scratch)}))

            atomic_folder(folder, write)
            return value, cost, True


def _verified(folder: Path, load: Callable[[Path], T]) -> tuple[T, Cost] | str:
    """The artifact in `folder` and its cost if every file is the one written there (SHA-256 kept in cost.json),
    else what is wrong with it: a disk error, a copy cut short, an edit, a layout from before checksums."""
    try:
        facts = json.loads((folder / COST).read_text())
        expected, cost = facts["sha256"], Cost(float(facts["build_seconds"]), float(facts.get("build_flops", 0.0)))
        if not isinstance(expected, dict):
            raise TypeError("sha256 is not a table of files")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{COST} unreadable or without checksums: {type(exc).__name__}"
    found = _checksums(folder)
    if found != expected:
        changed = sorted(set(found) ^ set(expected) | {n for n in found if expected.get(n) != found[n]})
        return f"{changed[0]} differs from what was written" if changed else "its files differ"
    try:
        return load(folder), cost
    except Exception as exc:  # checksums match but the loader refuses it (a library's format moved on)
        return f"it does not load: {type(exc).__name__}"


def _checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` but cost.json, by path relative to it."""
    sums = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COST):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        sums[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return sums


def _build(build: Callable[[], T]) -> tuple[T, Cost]:
    from benchmark import flops

    started, counted = time.perf_counter(), flops.total()
    value = build()
    return value, Cost(time.perf_counter() - started, flops.total() - counted)
