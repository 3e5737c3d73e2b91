"""Score a checkpoint on a labelled dataset: SRCC, PLCC, KRCC, logistic PLCC + protocol.

The evaluation of ``syndr eval`` (and a notebook): the crops of training's validation and
test (``crops`` random crops of the checkpoint's crop size placed by the one test-time
crop rule, ``utils.transforms.crop_seed``, or one centre crop), raw (unclamped) scores, the dataset's labels on
0..10, one checkpoint chosen by the user (nothing is selected here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from syndr_lightning.utils.errors import DatasetError

__all__ = ["evaluate_checkpoint", "format_report"]


def evaluate_checkpoint(
    ckpt: str | os.PathLike[str],
    name: str,
    root: str | os.PathLike[str],
    *,
    options: Mapping[str, Any] | None = None,
    crops: int = 5,
    crop_size: int | None = None,
    center: bool = False,
    device: str = "cpu",
    batch_size: int = 16,
    workers: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """``{"metrics": {srcc, plcc, krcc, plcc_logistic}, "protocol": {...}}`` of ``ckpt``."""
    from syndr_lightning.data.datasets import load_dataset
    from syndr_lightning.inference.api import load_model, read_checkpoint_meta
    from syndr_lightning.inference.predict import predict_files
    from syndr_lightning.metrics import iqa_metrics

    manifest = load_dataset(name, root, **dict(options or {}))
    manifest = manifest[np.isfinite(manifest["score"].to_numpy(dtype=np.float64))]
    if len(manifest) < 2:
        raise DatasetError(
            f"dataset {name!r} at {str(root)!r} has {len(manifest)} labelled image(s); "
            f"evaluation needs at least 2 (check the folder with `syndr data check`)"
        )
    scorer = load_model(
        ckpt,
        crops=1 if center else crops,
        crop_size=crop_size,
        crop_mode="center" if center else "random",
        device=device,
        batch_size=batch_size,
        seed=seed,
    )
    files = [Path(p) for p in manifest["path"]]
    # Unclamped, like training's test: the same checkpoint gives the same numbers.
    table = predict_files(scorer, files, workers=workers, progress=progress, clamp=False)
    ok = (table["error"] == "").to_numpy()
    if ok.sum() < 2:
        first = table.loc[~ok, "error"].iloc[0] if (~ok).any() else "no images"
        raise DatasetError(f"fewer than 2 images of {name!r} could be scored; first error: {first}")
    skipped = [
        {"path": str(p), "error": str(e)}
        for p, e in zip(table.loc[~ok, "path"], table.loc[~ok, "error"], strict=True)
    ]
    if skipped:  # named, never dropped silently
        print(
            f"syndr eval: skipped {len(skipped)} unreadable image(s); first: "
            f"{skipped[0]['path']}: {skipped[0]['error']}",
            file=sys.stderr,
        )
    preds = table.loc[ok, "score"].to_numpy(dtype=np.float64)
    labels = manifest["score"].to_numpy(dtype=np.float64)[ok]
    metrics = {k: float(v) for k, v in iqa_metrics(preds, labels).items()}
    meta = read_checkpoint_meta(ckpt)
    from syndr_lightning.data.facts import count

    crops_text = (
        f"one centre crop of {scorer.crop_size} px"
        if center
        else f"{count(scorer.crops, 'random crop')} of {scorer.crop_size} px (seed {seed})"
    )
    protocol = {
        "checkpoint": str(Path(ckpt).expanduser().resolve()),
        "checkpoint_epoch": meta.get("epoch"),
        "backbone": meta.get("backbone"),
        "selection": "the given checkpoint (no selection on this dataset)",
        "dataset": name,
        "root": str(Path(root).expanduser().resolve()),
        "options": dict(options or {}),
        "images": len(manifest),
        "scored": int(ok.sum()),
        "unreadable": int((~ok).sum()),
        "skipped": skipped,
        "eval": crops_text,
        "labels": "dataset scores normalised to 0..10, higher is better",
    }
    if meta.get("protocol"):  # an imported released model: its training protocol
        protocol["trained"] = meta["protocol"]
    return {"metrics": metrics, "protocol": protocol}


def format_report(result: Mapping[str, Any]) -> str:
    """A plain-text table of the four metrics and the protocol line."""
    m, p = result["metrics"], result["protocol"]
    head = f"{'dataset':<14}{'SRCC':>9}{'PLCC':>9}{'KRCC':>9}{'PLCC-log':>10}"
    row = (
        f"{p['dataset']:<14}{m['srcc']:>9.4f}{m['plcc']:>9.4f}{m['krcc']:>9.4f}"
        f"{m['plcc_logistic']:>10.4f}"
    )
    epoch = "" if p.get("checkpoint_epoch") is None else f" (epoch {p['checkpoint_epoch']})"
    proto = (
        f"checkpoint: {p['checkpoint']}{epoch}; selection: {p['selection']}; eval: {p['eval']}; "
        f"{p['scored']} of {p['images']} images scored"
        + (f" ({p['unreadable']} unreadable)" if p["unreadable"] else "")
    )
    return f"{head}\n{row}\n{proto}\n"
