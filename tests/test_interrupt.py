"""Ctrl-C inside :func:`catch_interrupt`: noticed even when a library swallows it
(Lightning ignores SIGINT after its graceful shutdown), and SIGINT restored."""

from __future__ import annotations

import os
import signal
import time

from syndr_lightning.utils.interrupt import catch_interrupt


def test_ctrl_c_noticed_and_sigint_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with catch_interrupt() as interrupt:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # interrupted at once
        except KeyboardInterrupt:  # what Lightning does: shut down, ignore further Ctrl-C
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert interrupt.pressed
    assert signal.getsignal(signal.SIGINT) is before


def test_a_keyboard_interrupt_raised_inside_stops_the_block_only() -> None:
    with catch_interrupt() as interrupt:
        raise KeyboardInterrupt
    assert interrupt.pressed
    with catch_interrupt() as calm:
        pass
    assert not calm.pressed
