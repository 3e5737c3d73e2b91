"""Which package may import which (the layer table of docs/ARCHITECTURE.md), and
registries that do not depend on import order."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from syndr_lightning.config import REPO_ROOT

PKG = REPO_ROOT / "syndr_lightning"

#: Layers from the bottom. A unit (a top-level module or package of syndr_lightning;
#: ``models.backbones``, the network zoo, on its own) may import units of LOWER layers
#: only: nothing of its own layer or above, so there is no cycle. Imports inside
#: functions count. docs/ARCHITECTURE.md shows the same table.
LAYERS: list[tuple[str, ...]] = [
    ("utils", "metric_keys"),
    (
        "config",
        "metrics",
        "distort",
        "tracking",
        "logs",
        "wandb_auth",
        "run_status",
        "run_identity",
    ),
    ("models.backbones", "compose", "reporting"),
    ("reshape", "provenance", "resume"),
    ("data", "models"),
    ("fakedata", "protocol", "evaluation", "inference"),
    ("viz", "run_config", "sweep", "eval_task"),
    ("callbacks", "build"),
    ("train",),
    ("demo", "__main__"),
    ("paper", "cli", "__init__"),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """``syndr_lightning.a.b`` -> the unit of the layer table it belongs to."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if parts[:2] == ["models", "backbones"]:
        return "models.backbones"
    return parts[0]


def _file_unit(path: Path) -> str:
    """The unit of a source file of the package."""
    rel = path.relative_to(PKG)
    if rel.as_posix() == "models/backbones.py":
        return "models.backbones"
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports() -> set[tuple[str, str, str]]:
    """Every (importing unit, imported unit, file) of the package, other units only."""
    out = set()
    for path in PKG.rglob("*.py"):
        src = _file_unit(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                # a bare `import syndr_lightning` reads __version__ (no layer)
                targets = [a.name for a in node.names if a.name != "syndr_lightning"]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "syndr_lightning":  # `from syndr_lightning import x`
                    names = [a.name for a in node.names if a.name != "__version__"]
                    targets = [f"syndr_lightning.{n}" for n in names]
                else:
                    base = node.module
                    targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for target in targets:
                if not target.startswith("syndr_lightning"):
                    continue
                dst = _unit(target)
                if dst != src:
                    out.add((src, dst, path.relative_to(PKG).as_posix()))
    return out


def test_every_unit_is_in_the_layer_table() -> None:
    units = {_file_unit(p) for p in PKG.rglob("*.py")}
    assert units == set(LAYER)


def test_no_unit_imports_its_own_layer_or_above() -> None:
    found = imports()
    assert found, "the import scan found nothing"
    upward = sorted(
        f"{file}: {src} (layer {LAYER[src]}) imports {dst} (layer {LAYER[dst]})"
        for src, dst, file in found
        if LAYER[dst] >= LAYER[src]
    )
    assert upward == []


def test_the_algorithms_import_no_lightning_or_hydra() -> None:
    """reshape/ and distort/ are plain functions over arrays (docs/ARCHITECTURE.md)."""
    for folder in ("reshape", "distort"):
        for path in (PKG / folder).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in ("lightning", "hydra", "omegaconf"):
                assert f"import {name}" not in text and f"from {name}" not in text, (path, name)


def test_registries_do_not_depend_on_import_order(tmp_path: Path) -> None:
    """``load_dataset('synthetic', ...)`` and ``syndr data check synthetic DIR`` work in a
    fresh interpreter that never imported the data module (lazy registration)."""
    code = (
        "import sys\n"
        "from syndr_lightning.data.datasets import dataset_names, load_dataset\n"
        "assert 'synthetic' in dataset_names()\n"
        f"m = load_dataset('synthetic', {str(tmp_path / 'a')!r}, n_refs=2, n_types=1)\n"
        "assert len(m) > 0\n"
        "assert 'syndr_lightning.data.datamodule' not in sys.modules\n"
        "from syndr_lightning.cli import main\n"
        f"sys.exit(main(['data', 'check', 'synthetic', {str(tmp_path / 'b')!r}, '--json']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"dataset": "synthetic"' in done.stdout


#: Public names defined in more than one module on purpose: name -> why.
SHARED_NAMES = {
    **dict.fromkeys(
        ("filter1d", "gaussian_blur", "gaussian_kernel1d", "motion_kernel"),
        "one operation in its numpy and its torch backend (distort/ops_numpy.py, ops_torch.py)",
    ),
    "load_model": "the package-level shortcut to inference.api.load_model",
    "main": "the entry point of a command module",
    "register": "the hook of a command module (and the loader registry's decorator)",
    "run": "the run function of a command module",
    "train": "cli.train hands `syndr train` to the same task, train.train",
    "markdown": "a module's own table as Markdown (paper comparison, intra table)",
}


def test_no_two_public_functions_share_a_name() -> None:
    """A public function or class name means one thing (SHARED_NAMES lists the few
    conventions); renames of issue 31 are in the commit messages."""
    where: dict[str, list[str]] = {}
    for path in PKG.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(path.relative_to(PKG).as_posix())
    shared = {name: files for name, files in where.items() if len(files) > 1}
    assert sorted(set(shared) - set(SHARED_NAMES)) == [], shared


def test_hand_kept_lists_match_their_source() -> None:
    """The lists that cannot be derived without an upward or a torch import at
    ``--help`` time are checked against their source: DDCUp's encoders are the backbones
    (plus CLIP's older name), and DDCUp's cache key covers every DDCUpParams field."""
    from dataclasses import fields

    from syndr_lightning.data.upsample import UpsampleSpec
    from syndr_lightning.models.backbones import BACKBONES
    from syndr_lightning.reshape.params import ENCODERS, DDCUpParams

    assert set(ENCODERS) == set(BACKBONES) | {"clip_vit_b16"}
    flat = UpsampleSpec((1,), DDCUpParams(), 0).flat()
    renamed = {"encoder_crop": "crop_size", "select_candidates": "select"}
    assert {renamed.get(f.name, f.name) for f in fields(DDCUpParams)} <= set(flat)
