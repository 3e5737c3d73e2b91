"""Run every benchmark script in this folder (``bench_*.py``) and report each outcome.

Usage: ``python experiments/bench/run_all.py [--quick] [--only NAME ...]``. Each script
prints its own table with ratios against a straightforward reference implementation
measured in the same run; this runner collects their output into
``experiments/bench/results/<script>.txt`` (written atomically) and prints a summary.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from syndr_lightning.utils.io import atomic_open  # noqa: E402


def main() -> int:
    """Run the benchmarks; exit non-zero when any of them failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--only", nargs="*", default=None, help="bench names, e.g. reshape")
    args = parser.parse_args()

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {f"bench_{name.removeprefix('bench_')}.py" for name in args.only}
        scripts = [s for s in scripts if s.name in wanted]
    if not scripts:
        print("no benchmark scripts found", file=sys.stderr)
        return 2
    results_dir = HERE / "results"
    summary: list[tuple[str, int, float]] = []
    for script in scripts:
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"\n=== {script.name} {'(quick)' if args.quick else ''} ===", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            sys.stdout.write(proc.stderr[-4000:])
        with atomic_open(results_dir / f"{script.stem}.txt") as fh:
            fh.write(proc.stdout)
        summary.append((script.name, proc.returncode, seconds))
    print("\n=== summary ===")
    for name, code, seconds in summary:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name:32s} {status:18s} {seconds:8.1f} s")
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
