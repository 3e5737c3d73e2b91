"""Benchmark: start-up time of the command line (``--help`` of every command).

Measures wall time of fresh processes: ``syndr --help``, each subcommand's ``--help``,
``syndr --version``, ``python -m syndr_lightning --help`` (Hydra's help, composes the
configs) and, as the straightforward reference measured in the same run, importing torch
alone (what every ``--help`` cost when each subcommand imported torch first). Each command
runs ``--repeat`` times; the best run is kept (start-up noise only adds time). Target:
every ``syndr ... --help`` under 0.5 s.

    .venv/bin/python experiments/bench/bench_cli.py [--quick] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 0.5


def best_time(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    """Fastest wall time of ``repeat`` fresh runs of ``cmd`` (which must succeed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    """Print one row per command: best seconds and the ratio to importing torch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs per command")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    syndr = [py, "-m", "syndr_lightning.cli"]
    commands: dict[str, list[str]] = {
        "syndr --help": [*syndr, "--help"],
        "syndr --version": [*syndr, "--version"],
    }
    for sub in ("data", "distort", "reshape", "predict", "export", "umap", "eval"):
        commands[f"syndr {sub} --help"] = [*syndr, sub, "--help"]
    commands["python -m syndr_lightning --help"] = [py, "-m", "syndr_lightning", "--help"]
    reference = best_time([py, "-c", "import torch"], repeat, env)
    print(f"best of {repeat} fresh processes; reference: `import torch` alone {reference:.3f} s")
    print(f"{'command':40s} {'seconds':>8s} {'vs torch':>9s}  target < {TARGET_S} s")
    slow = 0
    for name, cmd in commands.items():
        seconds = best_time(cmd, repeat, env)
        hydra = name.startswith("python -m")
        ok = hydra or seconds < TARGET_S
        slow += not ok
        mark = "(Hydra help, no target)" if hydra else ("ok" if ok else "SLOW")
        print(f"{name:40s} {seconds:8.3f} {seconds / reference:8.2f}x  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
