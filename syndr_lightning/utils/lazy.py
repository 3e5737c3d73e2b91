"""Lazy package exports: ``from pkg import name`` imports the defining module on first use.

Keeps ``syndr --help`` and every subcommand's ``--help`` free of torch, scipy and
matplotlib: a package ``__init__`` calls :func:`lazy_exports` instead of importing its
submodules.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any


class _LazyPackage(types.ModuleType):
    """A package whose exported names win over same-named submodules.

    Importing submodule ``pkg.f`` sets attribute ``pkg.f`` to the module; when ``f`` is
    also an exported function (``reshape.drcdown``), the function must stay.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        exports = self.__dict__.get("_LAZY_EXPORTS", {})
        if name in exports and isinstance(value, types.ModuleType):
            value = getattr(value, name, value) if exports[name] == value.__name__ else value
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, str]) -> None:
    """Make ``package`` export each ``name -> module`` of ``exports`` lazily."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(module, name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(exports))

    module.__dict__["_LAZY_EXPORTS"] = dict(exports)
    module.__dict__["__getattr__"] = __getattr__
    module.__dict__["__dir__"] = __dir__
    module.__class__ = _LazyPackage
