"""The shared progress helper: a bar on stderr, nothing when disabled, and a row of
Lightning's live rich bar (never a second live display) while training."""

from __future__ import annotations

import io

import pytest
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console
from rich.progress import Progress

from syndr_lightning.utils.progress import lightning_progress, progress


def test_bar_on_stderr_and_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("step A", 3) as bar:
        for _ in range(3):
            bar.advance()
    out, err = capsys.readouterr()
    assert out == "" and "step A" in err and "3/3" in err
    with progress("step B", 3, enabled=False) as bar:
        bar.advance(3)
    assert capsys.readouterr() == ("", "")


class _Trainer:
    def __init__(self, callback: object) -> None:
        self.progress_bar_callback = callback


def test_rows_join_lightnings_live_rich_bar(capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.StringIO()
    host = Progress(console=Console(file=buffer, force_terminal=True, width=100))
    callback = RichProgressBar()
    trainer = _Trainer(callback)
    assert lightning_progress(trainer) is None  # no live bar yet: the helper draws its own
    callback.progress = host
    host.start()
    try:
        assert lightning_progress(trainer) is host
        with progress("DRCDown features (8 images)", 4, trainer=trainer) as bar:
            bar.advance(4)
            (task,) = [t for t in host.tasks if t.description.startswith("DRCDown")]
            assert task.completed == 4 and task.total == 4
        assert not host.tasks  # the row is removed when the step ends
    finally:
        host.stop()
    assert capsys.readouterr().err == ""  # nothing drawn beside Lightning's bar
    assert "DRCDown features" in buffer.getvalue()
    assert lightning_progress(trainer) is None  # stopped: not live any more
