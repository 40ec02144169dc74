"""Writing files so that a kill at any moment leaves either the old content or the new, never a half: one lock
mechanism (filelock) and atomic replacement, used by the run folder and by the one-off cache alike."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold `path`.lock for the block, waiting for another process that holds it (it computes what we need)."""
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        yield


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (temporary file in the same folder, fsynced, then renamed)."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}-", delete=False, encoding="utf-8"
    ) as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def atomic_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Create `folder` by letting `write` fill a scratch folder beside it, then renaming it into place. A folder
    left at that path by an interrupted older layout is replaced."""
    folder = Path(folder)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write(scratch)
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
