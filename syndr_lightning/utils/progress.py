"""The one progress bar of the package (rich), for loops over images, files or batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress(
    label: str, total: int, *, enabled: bool = True, transient: bool = True
) -> Iterator[Callable[[int], None]]:
    """A progress bar of ``total`` steps named ``label``; yields ``advance(steps=1)``.

    Disabled (``enabled=False``), nothing is drawn and ``advance`` does nothing, so
    callers need no branch. ``transient`` bars disappear when the loop ends.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        disable=not enabled,
    )
    with bar:
        task = bar.add_task(label, total=total)

        def advance(steps: int = 1) -> None:
            bar.advance(task, steps)

        yield advance
