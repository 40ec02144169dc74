"""Errors the CLI turns into one line and an exit code, never a traceback."""


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2, nothing written."""

    exit_code = 2


class LockedError(UsageError):
    """Another run holds the output folder."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the cell fails instead of reporting garbage."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled as Ctrl-C is (exit code 143 instead of 130)."""
