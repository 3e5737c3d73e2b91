"""The one progress bar of the package (rich), for loops over images, files or batches.

>>> with progress("DRCDown features", total=len(loader)) as bar:   # doctest: +SKIP
...     for batch in loader:
...         bar.advance(1)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["ProgressTask", "progress"]


class ProgressTask:
    """A handle to advance one step's bar (a no-op when nothing is shown)."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: float = 1) -> None:
        """Add ``n`` completed units."""
        if self._bar is not None:
            self._bar.update(self._task, advance=n)


@contextlib.contextmanager
def progress(
    description: str, total: float | None, *, enabled: bool = True, transient: bool = False
) -> Iterator[ProgressTask]:
    """Show one step's progress while the block runs (``enabled=False``: nothing shown).

    ``transient`` bars disappear when the block ends.
    """
    if not enabled:
        yield ProgressTask()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
    )
    with bar:
        yield ProgressTask(bar, bar.add_task(description, total=total))
