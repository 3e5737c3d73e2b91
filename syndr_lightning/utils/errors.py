"""Errors a user can act on. Each message says what was expected, what was found, what to do."""

from __future__ import annotations

import sys


class SyndrError(Exception):
    """Base class of every user-facing error of syndr_lightning."""


class ConfigError(SyndrError, ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class DatasetError(SyndrError, ValueError):
    """A dataset on disk is missing or malformed; the message names the file and the fix."""


class InputError(SyndrError, ValueError):
    """Arrays or files handed to an algorithm or CLI are unusable (shape, NaN, empty...)."""


class DivergenceError(SyndrError, RuntimeError):
    """Training diverged (non-finite or exploding loss, or constant predictions): a
    run-time failure with its own exit status (3), not a usage error, though the fix is
    usually a setting."""


class DiskFullError(SyndrError, OSError):
    """A write failed for lack of space; nothing half-written was left under its name."""


class PreemptedError(SyndrError):
    """The run was stopped by a signal (preemption); the message says how to resume."""


#: Exit status of a run stopped by SIGTERM (128 + SIGTERM, what a shell reports).
EXIT_PREEMPTED = 143

#: Exit status of a training that diverged (DivergenceError).
EXIT_DIVERGED = 3

#: Every exit status of the commands (docs/failures.md states the same table; a test
#: checks the two, README's summary and :func:`exit_code` against each other).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "data error",
    2: "usage or configuration error",
    EXIT_DIVERGED: "training diverged",
    EXIT_PREEMPTED: "preempted",
}


def exit_code(exc: BaseException) -> int:
    """The exit status of a command stopped by ``exc``: 2 for usage and configuration
    errors (:class:`ConfigError`), 3 for a training that diverged, 143 for a preempted
    run, 1 for data errors (everything else, a full disk included)."""
    if isinstance(exc, PreemptedError):
        return EXIT_PREEMPTED
    if isinstance(exc, DivergenceError):
        return EXIT_DIVERGED
    return 2 if isinstance(exc, ConfigError) else 1


def one_line(exc: BaseException) -> str:
    """``exc`` as one line. An error re-raised from a DataLoader worker carries the
    worker's traceback in its message; only its last line (our message) is kept."""
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") else last
    return " ".join(text.split("\n")).strip()


#: Optional packages -> the extra of syndr-lightning that installs them.
_EXTRAS = {"onnx": "export", "onnxscript": "export", "optuna": "cluster", "submitit": "cluster"}


def missing_dependency(exc: ModuleNotFoundError, what: str) -> str:
    """One line naming the missing package and how to install it (no traceback)."""
    name = (exc.name or str(exc)).split(".")[0]
    extra = _EXTRAS.get(name)
    hint = f"pip install 'syndr-lightning[{extra}]'" if extra else f"pip install {name}"
    return f"error: {what} needs the Python package {name!r}, which is not installed: {hint}"


def report_error(exc: BaseException, command: str = "") -> int:
    """The one error printer of every command: ``[<command>: ]error: <one line>`` on
    stderr (``syndr-train`` and the scripts leave the command out); returns the exit
    status of :data:`EXIT_CODES` (a missing optional package: 1)."""
    if isinstance(exc, ModuleNotFoundError):
        print(missing_dependency(exc, command or "this command"), file=sys.stderr)
        return 1
    print(f"{command + ': ' if command else ''}error: {one_line(exc)}", file=sys.stderr)
    return exit_code(exc)
