"""Ctrl-C around a long command (``syndr reproduce``): noticed wherever it lands, told in
one line by the caller, and SIGINT restored afterwards.

Lightning catches a KeyboardInterrupt inside ``fit``/``test``, logs "Detected
KeyboardInterrupt, attempting graceful shutdown", ignores SIGINT from then on and exits
with status 1, which Hydra's multirun passes on like any failed job: without this guard
the command could not tell a Ctrl-C from a failure (and went on to print its whole
report). Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

__all__ = ["Interrupt", "catch_interrupt"]

#: The logger Lightning's rank-zero messages use.
_LIGHTNING_RANK_ZERO = "lightning.pytorch.utilities.rank_zero"


@dataclass
class Interrupt:
    """Whether Ctrl-C was pressed inside :func:`catch_interrupt`."""

    pressed: bool = False


class _DropShutdownNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Detected KeyboardInterrupt" not in record.getMessage()


@contextlib.contextmanager
def catch_interrupt() -> Iterator[Interrupt]:
    """Run the block; a Ctrl-C stops it (as usual) and sets ``Interrupt.pressed`` instead
    of raising. Lightning's own shutdown note is left out (the caller says it in its
    words) and the SIGINT handler in place before the block is put back."""
    state = Interrupt()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    note = _DropShutdownNote()
    lightning = logging.getLogger(_LIGHTNING_RANK_ZERO)

    def pressed(signum: int, frame: FrameType | None) -> None:
        state.pressed = True
        raise KeyboardInterrupt

    if main:
        signal.signal(signal.SIGINT, pressed)
    lightning.addFilter(note)
    try:
        yield state
    except KeyboardInterrupt:
        state.pressed = True
    finally:
        lightning.removeFilter(note)
        if main and previous is not None:
            signal.signal(signal.SIGINT, previous)
