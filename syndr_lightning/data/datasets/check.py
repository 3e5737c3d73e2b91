"""Verify a dataset folder: counts against the published ones, files, labels, ranges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from syndr_lightning.data.datasets.base import REGISTRY, BaseDataset, read_csv
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.images import verify_image

MAX_LISTED = 5


def _unreadable(path: str, full: bool) -> str | None:
    """Return why ``path`` cannot be read as an image, or None (``utils.images``)."""
    return verify_image(path, full=full)


def check_dataset(
    name: str, root: str | Path, *, full: bool = False, progress: bool = False, **options: Any
) -> dict:
    """Check dataset ``name`` at ``root`` and return a JSON-able report.

    Keys: ``dataset``, ``root``, ``usable``, ``images``, ``references`` (None for
    authentic sets), ``score_min``/``score_max`` (normalised 0..10 range present),
    ``raw_min``/``raw_max``, ``higher_is_better_raw``, ``published_images``,
    ``published_references`` and ``problems`` (a list of strings, empty when all is
    well). Counts that differ from the published ones are problems that leave the data
    usable; a missing label file, missing/unreadable images or unusable labels are not.
    ``full=True`` decodes every image instead of reading its header; ``progress=True``
    shows the decoding pass (``full``) on stderr.
    """
    if name not in REGISTRY:
        raise ConfigError(
            f"unknown dataset {name!r}; allowed values: {', '.join(sorted(REGISTRY))}"
        )
    info = REGISTRY[name].info
    report: dict[str, Any] = {
        "dataset": name,
        "root": str(root),
        "usable": False,
        "images": 0,
        "references": None,
        "score_min": None,
        "score_max": None,
        "raw_min": None,
        "raw_max": None,
        "higher_is_better_raw": info.higher_is_better_raw,
        "published_images": info.published_images,
        "published_references": info.published_references,
        "problems": [],
    }
    problems: list[str] = report["problems"]
    fatal: list[str] = []
    try:
        try:
            loader = REGISTRY[name](root, **options)
        except TypeError as exc:  # an option the loader does not take
            raise ConfigError(f"{name}: bad option for this dataset ({exc})") from None
        df = loader.read_checked()
    except DatasetError as exc:
        problems.append(str(exc))
        report["reason"] = str(exc)
        return report

    report["images"] = len(df)
    if len(df) == 0:
        fatal.append(f"{name}: the label file lists no images")
    has_refs = info.kind != "authentic" and name != "folder" and df["ref"].notna().any()
    if has_refs:
        report["references"] = int(df["ref"].nunique())
    labeled = info.kind not in ("unlabeled",)
    raw = df["raw_score"].to_numpy(dtype=np.float64)
    score = df["score"].to_numpy(dtype=np.float64)
    if np.isfinite(raw).any():
        report["raw_min"] = float(np.nanmin(raw))
        report["raw_max"] = float(np.nanmax(raw))
        report["score_min"] = float(np.nanmin(score))
        report["score_max"] = float(np.nanmax(score))
    if labeled and len(df):
        n_bad = int((~np.isfinite(raw)).sum())
        if n_bad:
            first = int(np.flatnonzero(~np.isfinite(raw))[0])
            fatal.append(
                f"{name}: {n_bad} images have no numeric score in the label file (first: "
                f"row {first + 1}, {str(df['path'].iloc[first])!r})"
            )
    if info.raw_range is not None and report["raw_min"] is not None:
        lo, hi = info.raw_range
        margin = 0.1 * (hi - lo)
        outside = np.flatnonzero((raw < lo - margin) | (raw > hi + margin))
        if len(outside):
            first = int(outside[0])
            problems.append(
                f"{name}: {len(outside)} raw scores lie outside the published range "
                f"{lo:g}..{hi:g} (margin {margin:.3g}); first: {raw[first]:.6g} for "
                f"{str(df['path'].iloc[first])!r} (image {first + 1} of {len(df)} listed by "
                f"{info.label_file or 'the label file'}); wrong label column or file?"
            )

    if not loader.filtered():
        if info.published_images is not None and len(df) != info.published_images:
            problems.append(
                f"{name}: {len(df)} images found, {info.published_images} published "
                f"(a partial or modified copy?)"
            )
        refs = report["references"]
        if has_refs and info.published_references is not None and refs != info.published_references:
            problems.append(
                f"{name}: {refs} references found, {info.published_references} published"
            )

    # A generic CSV names pristine images only when asked to (ref_path / refs_dir): a
    # plain ``ref`` column (grouping for splits) declares none, and needs none.
    declares = name != "csv" or "ref_path" in read_csv(name, loader.root) or loader.refs_dir
    if has_refs and declares and type(loader).references is not BaseDataset.references:
        try:
            declared = loader.references()
        except DatasetError as exc:  # e.g. a ref_path that is not an image
            declared = {}
            problems.append(str(exc))
        present = {
            r: p for r, p in declared.items() if Path(p).is_file() and verify_image(str(p)) is None
        }
        lacking = sorted(set(df["ref"].dropna().astype(str)) - set(present))
        if lacking and (declared or name != "csv"):
            expected = (
                "a ref_path column naming an image, or refs_dir holding <ref>.png"
                if name == "csv"
                else repr(str(loader.root / "images" / (lacking[0] + ".png")))
            )
            text = (
                f"{name}: {len(lacking)} references of the label file have no readable "
                f"pristine image (first: {', '.join(lacking[:MAX_LISTED])}; expected e.g. "
                f"{expected}); DDCUp and GenDist need them - re-extract the dataset"
            )
            # KADID's references are what SynDR trains from: a copy without them is unusable.
            (fatal if name == "kadid10k" else problems).append(text)

    missing = [p for p in df["path"] if not Path(p).is_file()]
    if missing:
        fatal.append(
            f"{name}: {len(missing)} images listed in the label file are missing "
            f"(first: {', '.join(missing[:MAX_LISTED])})"
        )
    unreadable = []
    missing_set = set(missing)
    from syndr_lightning.utils.progress import progress as show_progress

    # Reading headers is quick; decoding every image (full) is the long step.
    with show_progress(f"decoding {len(df)} images", len(df), enabled=progress and full) as bar:
        for p in df["path"]:
            bar.advance(1)
            if p in missing_set:
                continue
            why = _unreadable(p, full)
            if why is not None:
                unreadable.append(f"{p} ({why})")
    if unreadable:
        fatal.append(
            f"{name}: {len(unreadable)} images cannot be read "
            f"(first: {'; '.join(unreadable[:MAX_LISTED])})"
        )
    problems.extend(fatal)
    report["usable"] = not fatal
    if fatal:
        report["reason"] = fatal[0]
    return report
