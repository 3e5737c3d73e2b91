"""A small mutation tester: operator swaps in chosen functions, the targeted tests per mutant.

Usage::

    python experiments/mutate.py MODULE[:FUNC,FUNC...] --tests TEST [TEST ...] [--workers 2]
        [--limit N] [--out results.json]

Mutations (one per mutant, on the AST of each function of MODULE, or of the FUNCs named):
comparison swaps (``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``in``/``not in``,
``is``/``is not``), arithmetic swaps (``+``/``-``, ``*``/``/``, ``//`` -> ``/``,
``**`` -> ``*``), ``and``/``or``, ``not x`` -> ``x``, integer constants ``n`` -> ``n + 1``,
``True``/``False``, ``min``/``max``. Strings, docstrings and default argument values are
never mutated.

Mechanics: the parent imports MODULE (and with it torch, numpy, ...) once; each mutant
runs in a forked child that swaps the ``__code__`` of the original function object (so
every reference to it, re-exports included, runs the mutant) and calls ``pytest.main`` on
the targeted tests with ``-x``. A mutant is *killed* when the tests fail (or time out),
*survived* when they pass. Prints one line per survivor (function, line, the change).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import inspect
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BIN = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
}


@dataclass
class Mutant:
    """One mutation: where, what, and (after running) the outcome."""

    func: str
    line: int
    change: str
    index: int  # the n-th mutable node of the function (walk order)
    outcome: str = ""
    seconds: float = 0.0


def _candidates(tree: ast.AST) -> Iterator[tuple[ast.AST, int, str]]:
    """``(node, k, change)`` for every mutable spot in walk order (``k``: which comparison
    operator of a chained comparison). Default argument values are skipped: they live in
    ``__defaults__``, not in the code object this tool swaps."""
    skip = {id(n) for n in ast.walk(tree.args)} if isinstance(tree, ast.FunctionDef) else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _CMP:
                    yield node, k, f"{type(op).__name__} -> {_CMP[type(op)].__name__}"
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BIN:
            yield node, 0, f"{type(node.op).__name__} -> {_BIN[type(node.op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, 0, "And -> Or" if isinstance(node.op, ast.And) else "Or -> And"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, 0, "not x -> x"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, 0, f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, 0, f"{node.value} -> {node.value + 1}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
        ):
            yield node, 0, f"{node.func.id} -> {'max' if node.func.id == 'min' else 'min'}"


def _apply(tree: ast.AST, index: int) -> ast.AST:
    """A copy of ``tree`` with its ``index``-th candidate mutated."""
    tree = copy.deepcopy(tree)
    node, k, _ = list(_candidates(tree))[index]
    if isinstance(node, ast.Compare):
        node.ops[k] = _CMP[type(node.ops[k])]()
    elif isinstance(node, ast.BinOp | ast.AugAssign):
        node.op = _BIN[type(node.op)]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.UnaryOp):
        tree = _Unnot(node).visit(tree)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        node.value = not node.value
    elif isinstance(node, ast.Constant):
        node.value = node.value + 1
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        node.func.id = "max" if node.func.id == "min" else "min"
    return tree


class _Unnot(ast.NodeTransformer):
    """Replaces one ``not x`` by ``x``."""

    def __init__(self, target: ast.AST) -> None:
        self.target = target

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        return node.operand if node is self.target else node


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body[0] = ast.Pass()


def _functions(module: object, names: list[str] | None) -> dict[str, object]:
    """Functions (and methods, as ``Class.method``) defined in ``module``."""
    out: dict[str, object] = {}
    for name, obj in vars(module).items():
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            out[name] = obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for m, f in vars(obj).items():
                if inspect.isfunction(f):
                    out[f"{name}.{m}"] = f
    if names:
        missing = sorted(set(names) - set(out))
        if missing:
            raise SystemExit(f"no such functions in {module.__name__}: {missing}")
        out = {n: out[n] for n in names}
    return out


def _function_tree(func: object) -> ast.FunctionDef:
    src = textwrap.dedent(inspect.getsource(func))  # type: ignore[arg-type]
    tree = ast.parse(src)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    fn.decorator_list = []
    _strip_docstrings(fn)
    ast.increment_lineno(tree, func.__code__.co_firstlineno - 1)  # type: ignore[attr-defined]
    return fn


def _mutant_code(func: object, fn: ast.FunctionDef, index: int) -> object:
    mutated = _apply(fn, index)
    assert isinstance(mutated, ast.FunctionDef)
    code = func.__code__  # type: ignore[attr-defined]
    # Rebuild the function inside a factory taking its free variables, so the new code
    # object has the same closure layout as the original.
    freevars = list(code.co_freevars)
    factory = ast.FunctionDef(
        name="_factory",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=v) for v in freevars],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[mutated, ast.Return(value=ast.Name(id=mutated.name, ctx=ast.Load()))],
        decorator_list=[],
        returns=None,
    )
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    compiled = compile(module, code.co_filename, "exec", dont_inherit=True)
    factory_code = next(c for c in compiled.co_consts if hasattr(c, "co_name"))
    inner = next(
        c for c in factory_code.co_consts if hasattr(c, "co_name") and c.co_name == fn.name
    )
    return inner


def _run_one(func: object, new_code: object, tests: list[str], timeout: int) -> str:
    pid = os.fork()
    if pid == 0:  # child
        try:
            func.__code__ = new_code  # type: ignore[attr-defined]
            import pytest

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = pytest.main(
                [*tests, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--no-header"]
            )
            os._exit(0 if code == 0 else 1)
        except BaseException:
            os._exit(3)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            return "survived" if rc == 0 else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "killed (timeout)"
        time.sleep(0.05)


def main() -> int:
    """Generate and run the mutants; print the survivors and a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", help="module[:func,Class.method,...]")
    ap.add_argument("--tests", nargs="+", required=True)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per mutant")
    ap.add_argument("--limit", type=int, default=None, help="run the first N mutants only")
    ap.add_argument("--out", default=None, help="write every mutant's outcome as JSON")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    mod_name, _, funcs = args.target.partition(":")
    module = importlib.import_module(mod_name)
    import pytest  # noqa: F401  (imported once in the parent)

    mutants: list[tuple[Mutant, object, object]] = []
    for name, func in _functions(module, funcs.split(",") if funcs else None).items():
        try:
            fn = _function_tree(func)
        except (OSError, TypeError):
            continue
        for index, (node, _, change) in enumerate(_candidates(fn)):
            line = getattr(node, "lineno", 0)
            try:
                code = _mutant_code(func, fn, index)
            except (SyntaxError, ValueError, TypeError, StopIteration):
                continue
            mutants.append((Mutant(name, line, change, index), func, code))
    if args.limit is not None:
        print(f"{mod_name}: {len(mutants)} mutants generated, running {args.limit}")
        mutants = mutants[: args.limit]
    print(f"{mod_name}: {len(mutants)} mutants; tests: {' '.join(args.tests)}", flush=True)
    if mutants:  # the unmutated code must pass, or every mutant would count as killed
        _, func, _ = mutants[0]
        baseline = _run_one(func, func.__code__, args.tests, args.timeout)  # type: ignore[attr-defined]
        if baseline != "survived":
            print(f"the targeted tests fail without any mutation ({baseline}); stopping")
            return 2
    for m, func, code in mutants:
        t0 = time.perf_counter()
        m.outcome = _run_one(func, code, args.tests, args.timeout)
        m.seconds = time.perf_counter() - t0
        if m.outcome == "survived":
            print(f"  SURVIVED {m.func} line {m.line}: {m.change}", flush=True)
    killed = sum(m.outcome.startswith("killed") for m, _, _ in mutants)
    print(
        f"{mod_name}: generated {len(mutants)}, killed {killed}, survived {len(mutants) - killed}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps([asdict(m) for m, _, _ in mutants], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
