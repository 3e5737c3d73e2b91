"""Feature maps of a trained model and DRCDown cluster sizes, from manifests and images.

These functions glue the model (features of images) to the plain plotting functions of
:mod:`syndr_lightning.viz.figures`. They are used by ``syndr umap``, the
:class:`~syndr_lightning.callbacks.umap.UMAPCallback` and the demo; none needs Lightning
or Hydra. Every map subsamples at most ``max_samples`` images per dataset (seeded), so
memory and time stay bounded whatever the dataset size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from syndr_lightning.reshape.params import DRCDownParams
from syndr_lightning.utils.errors import InputError
from syndr_lightning.utils.io import atomic_open
from syndr_lightning.utils.progress import progress as show_progress
from syndr_lightning.viz.figures import (
    embed_umap,
    plot_cluster_histogram,
    plot_feature_map,
    plot_reference_selection,
)

__all__ = [
    "cluster_sizes",
    "drcdown_cluster_figure",
    "feature_maps",
    "manifest_features",
    "reference_selection_map",
    "subsample",
]


def subsample(manifest: pd.DataFrame, max_samples: int, seed: int = 0) -> pd.DataFrame:
    """At most ``max_samples`` rows of ``manifest`` (seeded, original order kept)."""
    if int(max_samples) < 3:
        raise InputError(f"max_samples must be >= 3 for a 2-D map; got {max_samples}")
    if len(manifest) <= max_samples:
        return manifest.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(manifest), max_samples, replace=False))
    return manifest.iloc[rows].reset_index(drop=True)


def manifest_features(
    scorer: Any, manifest: pd.DataFrame, bar: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(features [N,d], predicted scores [N])`` of a manifest's images with ``scorer``.

    ``scorer`` is an :class:`~syndr_lightning.inference.api.Scorer` (its crops and crop
    size apply); images are decoded in batches of ``scorer.batch_size``. ``bar``: a
    :class:`~syndr_lightning.utils.progress.ProgressTask` advanced per image.
    """
    paths = list(manifest["path"].astype(str))
    if not paths:
        raise InputError("the manifest is empty: no image to map")
    feats: list[torch.Tensor] = []
    preds: list[torch.Tensor] = []
    for start in range(0, len(paths), scorer.batch_size):
        crops = torch.stack(
            [scorer.preprocess(p) for p in paths[start : start + scorer.batch_size]]
        )
        score, f = scorer.crops_outputs(crops)
        feats.append(f)
        preds.append(score)
        if bar is not None:
            bar.advance(len(crops))
    return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def _colourings(table: pd.DataFrame) -> dict[str, Any]:
    """The panels that make sense for this table: score, reference, distortion type..."""
    out: dict[str, Any] = {}
    if "score" in table and table["score"].notna().any():
        out["score (label)"] = table["score"].to_numpy(dtype=float)
    out["predicted score"] = table["pred"].to_numpy(dtype=float)
    if "ref" in table and table["ref"].notna().any() and table["ref"].nunique() > 1:
        out["reference"] = table["ref"].astype("string")
    if "dist_type" in table and table["dist_type"].notna().any():
        out["distortion type"] = table["dist_type"].astype("Int64")
    if "source" in table and table["source"].nunique() > 1:
        out["source"] = table["source"].astype("string")
    return out


def feature_maps(
    scorer: Any,
    manifests: Mapping[str, pd.DataFrame],
    out_dir: str | os.PathLike[str],
    *,
    max_samples: int = 1000,
    seed: int = 0,
    n_epochs: int | None = None,
    prefix: str = "umap",
    title: str = "",
    progress: bool | Any = False,
) -> dict[str, Path]:
    """UMAP figures of the model's features for each dataset and, with several, jointly.

    Per dataset ``<prefix>_<name>.png`` (paper Fig. 1: coloured by label, prediction,
    reference, distortion type, source), and with more than one dataset
    ``<prefix>_joint.png`` (Fig. 3: source vs target features, coloured by dataset and
    score). The embedding coordinates go to ``<prefix>_embedding.csv``. Returns
    ``figure name -> path``.
    """
    if not manifests:
        raise InputError("feature_maps needs at least one dataset")
    out = Path(out_dir)
    tables: dict[str, pd.DataFrame] = {}
    feats: dict[str, np.ndarray] = {}
    show = {
        "enabled": progress is not False,
        "trainer": None if isinstance(progress, bool) else progress,
    }
    picked = {name: subsample(m, max_samples, seed).copy() for name, m in manifests.items()}
    n_images = sum(len(t) for t in picked.values())
    with show_progress(f"UMAP features ({n_images} images)", n_images, **show) as bar:
        for name, table in picked.items():
            f, pred = manifest_features(scorer, table, bar)
            table["pred"] = pred
            table["dataset"] = name
            tables[name], feats[name] = table, f
    joint_feats = np.concatenate(list(feats.values())) if len(tables) > 1 else None
    embs: dict[str, np.ndarray] = {}
    joint_emb: np.ndarray | None = None
    n_maps = len(tables) + (joint_feats is not None)
    with show_progress("UMAP embeddings", n_maps, **show) as fits:
        for name in tables:
            embs[name] = embed_umap(feats[name], seed=seed, n_epochs=n_epochs)
            fits.advance(1)
        if joint_feats is not None:
            joint_emb = embed_umap(joint_feats, seed=seed, n_epochs=n_epochs)
            fits.advance(1)
    figures: dict[str, Path] = {}
    rows: list[pd.DataFrame] = []
    for name, table in tables.items():
        emb = embs[name]
        figures[f"{prefix}/{name}"] = plot_feature_map(
            emb,
            _colourings(table),
            out / f"{prefix}_{_safe(name)}.png",
            title=f"{title}UMAP of learned features: {name} ({len(table)} images)",
        )
        rows.append(table.assign(umap_x=emb[:, 0], umap_y=emb[:, 1], map=name))
    if joint_emb is not None:
        joint = pd.concat(tables.values(), ignore_index=True)
        emb = joint_emb
        figures[f"{prefix}/joint"] = plot_feature_map(
            emb,
            {
                "dataset": joint["dataset"].astype("string"),
                "predicted score": joint["pred"],
            },
            out / f"{prefix}_joint.png",
            title=f"{title}UMAP of source and target features",
        )
        rows.append(joint.assign(umap_x=emb[:, 0], umap_y=emb[:, 1], map="joint"))
    keep = [
        "map",
        "dataset",
        "path",
        "score",
        "pred",
        "ref",
        "dist_type",
        "level",
        "umap_x",
        "umap_y",
    ]
    coords = pd.concat(rows, ignore_index=True)
    with atomic_open(out / f"{prefix}_embedding.csv", "w", newline="") as fh:
        coords[[c for c in keep if c in coords.columns]].to_csv(fh, index=False)
    return figures


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def cluster_sizes(cluster: np.ndarray, kept: np.ndarray | None = None) -> np.ndarray:
    """Cluster sizes k_1..k_m (singletons included) of a DRCDown ``cluster`` labelling.

    ``cluster[i]`` is sample i's component id, ``-1`` for samples in no similar pair (each
    a cluster of size 1). With ``kept``, only the kept samples are counted (sizes after
    downsampling). Memory is O(N).
    """
    labels = np.asarray(cluster, dtype=np.int64).ravel()
    if kept is not None:
        labels = labels[np.asarray(kept, dtype=np.int64)]
    singles = int((labels < 0).sum())
    grouped = np.unique(labels[labels >= 0], return_counts=True)[1]
    return np.concatenate([np.ones(singles, dtype=np.int64), grouped.astype(np.int64)])


def drcdown_cluster_figure(
    features: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike[str],
    params: DRCDownParams = DRCDownParams(),
    *,
    seed: int = 0,
    title: str = "Cluster sizes before and after DRCDown",
) -> tuple[Path, dict[str, Any]]:
    """Run DRCDown on ``features``/``labels`` and plot the cluster sizes before and after.

    Returns the PNG path and a summary (pairs, clusters of size >= 2, kept fraction).
    """
    from syndr_lightning.reshape import drcdown

    res = drcdown(
        np.asarray(features, dtype=np.float32),
        np.asarray(labels, dtype=np.float64),
        params,
        seed=seed,
        epoch=0,
    )
    before = cluster_sizes(res.cluster)
    after = cluster_sizes(res.cluster, res.kept)
    png = plot_cluster_histogram(before, after, path, t_u=params.T_u, title=title)
    summary = {
        "pairs": int(res.n_pairs),
        "clusters": int((before >= 2).sum()),
        "largest": int(before.max(initial=0)),
        "kept": len(res.kept),
        "total": int(before.sum()),
        "kept_fraction": len(res.kept) / max(1, int(before.sum())),
    }
    return png, summary


def reference_selection_map(
    train_refs: Sequence[str | os.PathLike[str]],
    candidates: Sequence[str | os.PathLike[str]],
    selected: Sequence[bool] | np.ndarray,
    spec: Any,
    path: str | os.PathLike[str],
    *,
    feature_cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n_epochs: int | None = None,
) -> Path:
    """Fig. 9: frozen-encoder features of training references and DDCUp candidates.

    ``selected[i]`` says whether candidate i was chosen by DDCUp; ``spec`` is the
    :class:`~syndr_lightning.data.upsample.UpsampleSpec` of the build (its encoder,
    weights and crop size are used, and its feature cache when given).
    """
    from syndr_lightning.data.upsample import reference_features

    chosen = np.asarray(selected, dtype=bool)
    if len(chosen) != len(candidates):
        raise InputError(f"{len(candidates)} candidates but {len(chosen)} selection flags")
    paths = [Path(p) for p in [*train_refs, *candidates]]
    feats = reference_features(paths, spec, feature_cache_dir)
    emb = embed_umap(
        feats,
        seed=seed,
        n_neighbors=min(15, max(2, len(paths) // 3)),
        n_epochs=n_epochs,
    )
    groups = ["train"] * len(train_refs) + ["selected" if c else "rejected" for c in chosen]
    return plot_reference_selection(
        emb,
        groups,
        path,
        title=f"Training references vs DDCUp candidates ({spec.params.encoder} features)",
    )
