"""The Makefile: ``make help`` lists the targets; ``make clean`` keeps the runs in logs/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not (ROOT / "Makefile").is_file() or shutil.which("make") is None,
    reason="needs the repository's Makefile and make (an installed wheel has neither)",
)


def _make(*args: str) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


def test_make_help_lists_every_target() -> None:
    text = _make("help")
    phony = (ROOT / "Makefile").read_text().split(".PHONY:")[1].splitlines()[0].split()
    for target in phony:
        assert f"  {target} " in text, target
    assert _make() == text  # the default goal


def test_make_clean_keeps_logs() -> None:
    """Dry runs: ``clean`` never touches logs/ (runs and checkpoints), ``clean-logs`` does."""
    assert "logs" not in _make("-n", "clean").split()
    assert "logs" in _make("-n", "clean-logs").split()
    assert "syndr-train" in _make("-n", "train")
