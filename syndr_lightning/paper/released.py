"""``syndr reproduce --released DIR``: the authors' released models on their cells' test sets.

The reference code trains one model per target (``--test_db``) and saves it as
``<date>_kadid-10k_cross_<target>_<desc>/kadid-10k_model_best.pth.tar``. Each file found
under DIR is matched to the SynDR-IQA (ResNet-50) cells of Tables 1-3 by its target:
the run folder's ``cross_<target>``, a target name in the file name, or the user's
mapping ``FILE=TARGET``. It is imported (:mod:`syndr_lightning.inference.released`),
evaluated on the cell's test set as the paper tests (five random 224 px crops; BID at
BID_512, PIPAL one distortion class) and recorded in ``<out>/released/released.json``;
the report then shows a "released" section beside the paper. Nothing is trained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import ConfigError, InputError

__all__ = [
    "RELEASED_FILE",
    "evaluate_released",
    "find_released",
    "released_cells",
    "released_section",
]

RELEASED_FILE = "released/released.json"
#: Test sets resized before cropping, as the experiments' configs (BID_512).
_RESIZE = {"bid": 512}


def released_cells() -> dict[str, list[tuple[str, str, str]]]:
    """Target -> the ``(table, row, dataset)`` cells its released model fills (the
    SynDR-IQA ResNet-50 rows of Tables 1-3; Table 3's intra-dataset column has no
    released model: its split is drawn per run)."""
    from syndr_lightning.paper.tables import TABLES

    out: dict[str, list[tuple[str, str, str]]] = {}
    for table_id in ("1", "2", "3"):
        for row in TABLES[table_id].rows:
            if not row.id.endswith("syndr"):
                continue
            for target in row.targets:
                if target.experiment == "intra":
                    continue
                for dataset in target.datasets:
                    key = target.name if table_id == "2" else dataset
                    out.setdefault(key, []).append((table_id, row.id, dataset))
    return out


def _target_of(path: Path, mapping: Mapping[str, str], targets: Sequence[str]) -> str | None:
    from syndr_lightning.inference.released import training_target

    for key in (str(path), path.name):
        if key in mapping:
            return mapping[key]
    found = training_target(path)
    if found is not None:
        return found
    tokens = set(re.split(r"[_\-.]+", path.name.lower()))
    named = [t for t in targets if t in tokens]
    return named[0] if len(named) == 1 else None


def find_released(folder: str | Path, mapping: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """``(file, target)`` of every ``*.pth.tar`` / ``*.pth`` under ``folder``.

    ``mapping``: ``FILE=TARGET`` items (FILE as found under ``folder`` or its name). A
    file whose target cannot be told is an error naming it (give ``FILE=TARGET``).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"--released {str(root)!r} is not a folder of released models")
    targets = sorted(released_cells())
    given: dict[str, str] = {}
    for item in mapping:
        name, sep, target = item.partition("=")
        if not sep or target not in targets:
            raise ConfigError(
                f"--released-map {item!r}: expected FILE=TARGET with TARGET one of "
                f"{', '.join(targets)}"
            )
        given[str((root / name).resolve()) if (root / name).exists() else name] = target
    files = sorted(
        p for p in root.rglob("*") if p.name.endswith((".pth.tar", ".pth")) and p.is_file()
    )
    files = [p for p in files if "_checkpoint" not in p.name]  # the last epoch, not the best
    if not files:
        raise InputError(
            f"--released {str(root)!r} holds no *.pth.tar / *.pth file; download the authors' "
            f"models there (their README, 'Pre-trained models')"
        )
    out = []
    for path in files:
        target = _target_of(path.resolve(), given, targets)
        if target is None:
            raise ConfigError(
                f"released model {str(path)!r}: its target is not in its folder or file name; "
                f"add --released-map {path.name}=TARGET (TARGET: {', '.join(targets)})"
            )
        out.append((path, target))
    return out


def evaluate_released(
    folder: str | Path,
    out: str | Path,
    data_dir: str | Path,
    *,
    mapping: Sequence[str] = (),
    tables: Sequence[str] = ("1", "2", "3"),
    device: str = "auto",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Import and evaluate every released model under ``folder`` on its cells' test sets
    (datasets under ``data_dir``, as ``paths.data_dir``); write and return the records."""
    from syndr_lightning.data.datasets import load_dataset
    from syndr_lightning.inference.api import load_model
    from syndr_lightning.inference.predict import predict_files
    from syndr_lightning.inference.released import AUTHORS_CROP, import_released
    from syndr_lightning.metrics import iqa_metrics
    from syndr_lightning.utils.io import atomic_open
    from syndr_lightning.utils.transforms import EvalTransform

    cells = released_cells()
    base = Path(out).expanduser() / "released"
    records: list[dict[str, Any]] = []
    for path, target in find_released(folder, mapping):
        wanted = [c for c in cells.get(target, []) if c[0] in tables]
        if not wanted:
            continue
        ckpt = base / f"{target}.ckpt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        protocol = import_released(path, ckpt, target=target)
        scorer = load_model(ckpt, crops=5, crop_size=AUTHORS_CROP, device=device, seed=seed)
        for table, row, dataset in wanted:
            options = {"group": target} if dataset == "pipal" else {}
            manifest = load_dataset(dataset, Path(data_dir) / dataset, **options)
            scorer.transform = EvalTransform(
                AUTHORS_CROP, 5, "random", seed, resize=_RESIZE.get(dataset)
            )
            files = [Path(p) for p in manifest["path"]]
            scores = predict_files(scorer, files, workers=0, progress=False, clamp=False)
            ok = (scores["error"] == "").to_numpy()
            metrics = iqa_metrics(
                scores.loc[ok, "score"].to_numpy(float), manifest["score"].to_numpy(float)[ok]
            )
            records.append(
                {
                    "table": table,
                    "row": row,
                    "dataset": dataset,
                    "target": target,
                    "file": str(path),
                    "sha256": protocol["sha256"],
                    "images": int(ok.sum()),
                    "metrics": {k: float(v) for k, v in metrics.items()},
                }
            )
    with atomic_open(base / "released.json", "w", encoding="utf-8") as fh:
        json.dump({"records": records}, fh, indent=1)
    return records


def released_section(root: str | Path, tables: Sequence[str]) -> str:
    """The report's "released models" section from ``<root>/released/released.json``
    ('' when none was evaluated): per cell the released model's SRCC / PLCC beside the
    paper's number."""
    from syndr_lightning.paper.tables import paper_numbers

    file = Path(root) / RELEASED_FILE
    if not file.is_file():
        return ""
    try:
        records = json.loads(file.read_text(encoding="utf-8")).get("records") or []
    except (ValueError, AttributeError, UnicodeDecodeError):
        return f"\n## Released models\n\n({file} is unreadable: run --released again)\n"
    paper = paper_numbers()
    lines = [
        "",
        "## Released models (the authors' checkpoints, evaluated here; no training)",
        "",
        "| table | row | test set | metric | released | paper | difference |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = 0
    for rec in records:
        if str(rec.get("table")) not in tables:
            continue
        for metric in ("srcc", "plcc"):
            value = (rec.get("metrics") or {}).get(metric)
            if value is None:
                continue
            ref = paper.get((rec["table"], rec["row"], rec["dataset"], metric))
            theirs = "-" if ref is None else f"{float(ref['value']):.4f}"
            diff = "-" if ref is None else f"{float(value) - float(ref['value']):+.4f}"
            name = rec["dataset"] if rec["dataset"] != "pipal" else f"pipal ({rec['target']})"
            lines.append(
                f"| {rec['table']} | {rec['row']} | {name} | {metric.upper()} | "
                f"{float(value):.4f} | {theirs} | {diff} |"
            )
            shown += 1
    if not shown:
        return ""
    lines += [
        "",
        "Five random 224 px crops per image (seed 0), BID at BID_512; one model per target.",
        "",
    ]
    return "\n".join(lines)
