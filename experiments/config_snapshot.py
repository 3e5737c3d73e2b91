"""Compose the default config and every experiment config; dump the resolved values.

Usage: ``python experiments/config_snapshot.py [--out tests/data/config_snapshot.json]``.
The golden file is written at a known-good commit; ``tests/test_config.py`` composes the
same configs again and compares them with it, so a restructuring of the config code that
changes any resolved value fails. Paths are made machine-independent (``<root>``,
``<output_dir>``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GOLDEN = HERE.parent / "tests" / "data" / "config_snapshot.json"
_ENV = ("SYNDR_ROOT", "SYNDR_DATA_DIR", "SYNDR_CACHE_DIR", "SYNDR_LOG_DIR")


def experiment_names(conf: Path) -> list[str]:
    """``None`` (the default config) and every ``conf/experiment/**`` name."""
    root = conf / "experiment"
    names = sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return ["", *names]


def _plain(value: Any, out_dir: str) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v, out_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, out_dir) for v in value]
    if isinstance(value, str):
        return value.replace(out_dir, "<output_dir>")
    return value


def snapshot() -> dict[str, Any]:
    """``{experiment name ('' = default): resolved config}``, paths made portable."""
    from omegaconf import OmegaConf

    from syndr_lightning.compose import compose_config
    from syndr_lightning.config import conf_dir

    saved = {k: os.environ.pop(k, None) for k in _ENV}
    os.environ["SYNDR_ROOT"] = "/<root>"
    try:
        out: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = str(Path(tmp).resolve() / "run")
            for name in experiment_names(conf_dir()):
                overrides = [f"+experiment={name}"] if name else []
                cfg = compose_config(overrides, output_dir=out_dir)
                plain = OmegaConf.to_container(cfg, resolve=True)
                out[name or "<default>"] = _plain(plain, out_dir)
        return out
    finally:
        os.environ.pop("SYNDR_ROOT", None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def main() -> int:
    """Write the snapshot (atomically) to ``--out``."""
    from syndr_lightning.utils.io import atomic_open

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(GOLDEN))
    args = parser.parse_args()
    with atomic_open(Path(args.out)) as fh:
        json.dump(snapshot(), fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
