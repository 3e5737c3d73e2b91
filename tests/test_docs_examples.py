"""Code in docs/*.md and README.md cannot go stale: every ```python block compiles, its
imports resolve, and every call of a syndr_lightning function binds to the function's
real signature; the signature tables of docs/reshaping.md name the real parameters."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syndr_lightning.config import REPO_ROOT

DOCS = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> Iterator[tuple[str, str]]:
    for path in DOCS:
        for i, match in enumerate(BLOCK.finditer(path.read_text(encoding="utf-8"))):
            yield f"{path.name}#{i}", match.group(1)


BLOCKS = dict(_blocks())


def _imported(tree: ast.Module) -> dict[str, Any]:
    """Names the block imports from syndr_lightning, resolved (ImportError fails)."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("syndr_lightning"):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("syndr_lightning"):
                    names[alias.asname or alias.name] = importlib.import_module(alias.name)
    return names


def _target(func: ast.expr, names: dict[str, Any]) -> Callable[..., Any] | None:
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = names.get(func.value.id)
        if owner is not None and (inspect.ismodule(owner) or inspect.isclass(owner)):
            return getattr(owner, func.attr)  # AttributeError: a name that does not exist
    return None


def test_the_docs_have_python_examples() -> None:
    assert len(BLOCKS) >= 5 and any("reshaping.md" in k for k in BLOCKS)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_doc_example_imports_and_calls_match_the_code(name: str) -> None:
    tree = ast.parse(BLOCKS[name])  # SyntaxError: the example does not even parse
    names = _imported(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        func = _target(node.func, names)
        if func is None or not callable(func):
            continue
        signature = inspect.signature(func)
        kwargs = {k.arg: None for k in node.keywords if k.arg is not None}
        try:
            signature.bind(*[None] * len(node.args), **kwargs)
        except TypeError as exc:
            message = f"{name}: `{ast.unparse(node)}` does not fit {signature}: {exc}"
            raise AssertionError(message) from None


#: ``| `name(a, b=1, ...)` |`` in a signature table.
ROW = re.compile(r"^\| `(\w+)\(([^`]*)\)` \|", re.M)


def _documented(path: Path, module: str) -> list[tuple[Callable[..., Any], list[str]]]:
    exported = importlib.import_module(module)
    rows = []
    for match in ROW.finditer(path.read_text(encoding="utf-8")):
        func = getattr(exported, match.group(1), None)
        if func is None:
            continue
        depth, parts, part = 0, [], ""
        for ch in match.group(2):  # split on commas outside [...] shapes
            depth += {"[": 1, "]": -1, "(": 1, ")": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                parts.append(part)
                part = ""
            else:
                part += ch
        names = [re.match(r"\s*(\w*)", p).group(1) for p in [*parts, part]]  # type: ignore[union-attr]
        rows.append((func, [n for n in names if n]))
    return rows


def test_reshaping_signature_tables_name_the_real_parameters() -> None:
    rows = _documented(REPO_ROOT / "docs" / "reshaping.md", "syndr_lightning.reshape")
    assert len(rows) >= 6
    for func, params in rows:
        real = list(inspect.signature(func).parameters)
        assert params == real[: len(params)], f"{func.__name__}: docs {params}, code {real}"


#: A hop of the walks in docs/ARCHITECTURE.md: `` `file`: `code` ``.
HOP = re.compile(r"`((?:syndr_lightning|conf)/[\w/]+\.(?:py|yaml))`: `([^`]+)`")


def test_architecture_walks_quote_code_that_is_in_the_file_named() -> None:
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    hops = HOP.findall(" ".join(text.split()))
    assert len(hops) >= 12
    for path, code in hops:
        source = " ".join((REPO_ROOT / path).read_text(encoding="utf-8").split())
        assert code in source, f"docs/ARCHITECTURE.md quotes `{code}` from {path}: not there"
