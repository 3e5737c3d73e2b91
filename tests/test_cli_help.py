"""Every `syndr ... --help` is user-facing text: no reST backticks, no developer notes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

from syndr_lightning.cli import build_parser, user_text

DEVELOPER_WORDS = ("``", "This module", "argparse", "syndr_lightning.")
#: a Python import statement on a line of its own (`syndr import` is a subcommand)
IMPORT_LINE = re.compile(r"^\s*(?:from [\w.]+ )?import [\w.]+(?:, [\w.]+)*$", re.MULTILINE)


def _parsers(
    parser: argparse.ArgumentParser, name: str = "syndr"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_help_is_user_facing() -> None:
    seen = []
    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        for word in DEVELOPER_WORDS:
            assert word not in text, (name, word)
        assert not IMPORT_LINE.search(text), (name, IMPORT_LINE.search(text))
        seen.append(name)
    for expected in ("syndr eval", "syndr predict", "syndr export", "syndr umap", "syndr data"):
        assert expected in seen


def test_user_text() -> None:
    doc = "``syndr x``: does y; see ``syndr_lightning.a.b`` for the contract.\n\nThis module imports only argparse."
    assert user_text(doc) == "syndr x: does y."
