"""How far the work of this process has got, for the person watching: the harness's loops report (what, done,
total) here, and whoever runs the job (an executor) decides where it goes. Reports are throttled; a process that
nobody watches pays almost nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

Sink = Callable[[str, int, int], None]

_sink: Sink | None = None
_last = 0.0
EVERY_SECONDS = 0.5


def watch(sink: Sink | None) -> None:
    """Send this process's reports to `sink` (None: to nobody)."""
    global _sink
    _sink = sink


def report(what: str, done: int, total: int) -> None:
    """`done` of `total` units of `what` (training steps, texts encoded)."""
    global _last
    if _sink is None:
        return
    now = time.monotonic()
    if done < total and now - _last < EVERY_SECONDS:
        return
    _last = now
    _sink(what, done, total)
