"""One CLI error printer: every command reports a user error through
``utils.errors.report_error`` (one line, the exit-code table of docs/failures.md)."""

from __future__ import annotations

import ast
import re

import pytest

from syndr_lightning import cli
from syndr_lightning.config import REPO_ROOT

PKG = REPO_ROOT / "syndr_lightning"


def _printing_handlers() -> list[str]:
    """``except`` blocks that print an error themselves instead of calling report_error."""
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ExceptHandler) or node.type is None:
                continue
            calls = [n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Call)]
            names = {ast.unparse(c.func) for c in calls}
            prints = [c for c in calls if ast.unparse(c.func) == "print"]
            if prints and "error" in ast.unparse(prints[0]) and "report_error" not in names:
                found.append(f"{path.relative_to(PKG)}:{node.lineno}")
    return found


def test_no_command_prints_its_own_error_line() -> None:
    assert _printing_handlers() == []


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["data", "check", "no_such_loader", "."], 2),
        (["reshape", "down", "--help-not-a-flag"], 2),
        (["sweep", "collect", "/nonexistent/multirun"], 1),
        (["eval", "--ckpt", "/nonexistent.ckpt", "--data", "csv", "/nonexistent.csv"], 1),
    ],
)
def test_every_subcommand_error_is_one_line_with_its_exit_code(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == code
    if argv[1:2] != ["down"]:
        assert len(err) == 1 and re.match(rf"^syndr {argv[0]}( \w+)?: error: \S", err[0]), err
