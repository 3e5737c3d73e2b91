"""One progress display for every long step (rich, on stderr), aware of Lightning's bar.

>>> with progress("DDCUp encoder", total=len(files)) as bar:   # doctest: +SKIP
...     for batch in loader:
...         bar.advance(len(batch))

While a Lightning ``RichProgressBar`` is live (``trainer=`` given), the step is shown as
one more row of that bar instead of a second live display (rich allows one, and two
would interleave). Otherwise a bar is drawn on stderr, so a command's results on stdout
(``--out -``, ``--json``) stay clean. ``enabled=False`` shows nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["ProgressTask", "lightning_progress", "progress"]


class ProgressTask:
    """A handle to advance one step's bar (a no-op when nothing is shown)."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: float = 1) -> None:
        """Add ``n`` completed units."""
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def update(self, *, completed: float | None = None, total: float | None = None) -> None:
        """Set the completed count and/or the total."""
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=total)


def lightning_progress(trainer: Any) -> Any:
    """The live rich ``Progress`` of ``trainer``'s RichProgressBar, else None."""
    bar = getattr(trainer, "progress_bar_callback", None)
    live = getattr(bar, "progress", None)
    if (
        live is None
        or type(bar).__name__ != "RichProgressBar"
        or getattr(bar, "is_disabled", False)
    ):
        return None
    return live if getattr(live, "live", None) is not None and live.live.is_started else None


def _columns() -> list[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]


@contextlib.contextmanager
def progress(
    description: str,
    total: float | None,
    *,
    enabled: bool = True,
    trainer: Any = None,
    transient: bool = False,
) -> Iterator[ProgressTask]:
    """Show one step's progress (``total=None``: unknown length) while the block runs."""
    if not enabled:
        yield ProgressTask()
        return
    host = lightning_progress(trainer) if trainer is not None else None
    if host is not None:
        task = host.add_task(description, total=total)
        try:
            yield ProgressTask(host, task)
        finally:
            host.remove_task(task)
        return
    from rich.console import Console
    from rich.errors import LiveError
    from rich.progress import Progress

    bar = Progress(*_columns(), console=Console(stderr=True), transient=transient)
    try:
        bar.start()
    except LiveError:  # another live display owns the terminal: stay silent
        yield ProgressTask()
        return
    try:
        task = bar.add_task(description, total=total)
        yield ProgressTask(bar, task)
    finally:
        bar.stop()


def progress_bar_setting(trainer_cfg: Any, callbacks: Sequence[Any]) -> dict[str, Any]:
    """No progress bar callback configured (``callbacks.rich_progress_bar=null``) means no
    bar, not Lightning's default TQDM bar; ``trainer.enable_progress_bar`` still wins."""
    from lightning.pytorch.callbacks import ProgressBar

    if "enable_progress_bar" in trainer_cfg or any(isinstance(c, ProgressBar) for c in callbacks):
        return {}
    return {"enable_progress_bar": False}
