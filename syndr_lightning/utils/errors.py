"""Errors a user can act on. Each message says what was expected, what was found, what to do."""

from __future__ import annotations


class SyndrError(Exception):
    """Base class of every user-facing error of syndr_lightning."""


class ConfigError(SyndrError, ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class DatasetError(SyndrError, ValueError):
    """A dataset on disk is missing or malformed; the message names the file and the fix."""


class InputError(SyndrError, ValueError):
    """Arrays or files handed to an algorithm or CLI are unusable (shape, NaN, empty...)."""


class DivergenceError(SyndrError, RuntimeError):
    """Training diverged (non-finite loss, or constant predictions): a run-time failure
    (exit status 1), not a usage error, though the fix is usually a setting."""


def exit_code(exc: BaseException) -> int:
    """The exit status of a command stopped by ``exc``: 2 for usage and configuration
    errors (:class:`ConfigError`), 1 for data errors (everything else)."""
    return 2 if isinstance(exc, ConfigError) else 1


def one_line(exc: BaseException) -> str:
    """``exc`` as one line. An error re-raised from a DataLoader worker carries the
    worker's traceback in its message; only its last line (our message) is kept."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(text.split("\n")).strip()
