"""DDCUp's upsampled training set, built once and cached atomically.

``build_upsampled_set`` turns the training references and a candidate pool into new
labelled training samples:

training refs + candidates -> frozen-encoder features -> ``ddcup_select`` -> GenDist at
the active types and levels (or the reference code's pre-distorted images) ->
``ddcup_pseudo_labels`` from the training labels ``[n_ref, n_type, n_level]`` -> a
manifest.

The result lives in ``<cache_root>/ddcup/<key>/`` where ``key`` hashes everything that
affects it (training data identity and labels, candidate identities, types, levels, k,
T_ref, weights rule, temperature, encoder and weights, seed, format version). The
directory is built under a temporary name and renamed when complete, so a build that is
killed or fails leaves nothing that a later run trusts; a complete cache is reused.
``meta.json`` holds the SHA-256 of ``manifest.csv`` and the XXH3-64 digest of every image
the set generated; a set whose table or any image differs (even with its size and mtime
kept) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.distort.spec import GENDIST_VERSION
from syndr_lightning.reshape.params import DDCUpParams
from syndr_lightning.utils.errors import ConfigError, DatasetError, InputError
from syndr_lightning.utils.images import IMAGE_SUFFIXES
from syndr_lightning.utils.integrity import file_digest, file_sha256
from syndr_lightning.utils.io import atomic_open, file_identity, git_sha
from syndr_lightning.utils.locking import build_once, remove_stale_temporaries

#: Upsampled sets already announced as reused in this process.
_ANNOUNCED: set[str] = set()
log = logging.getLogger(__name__)

#: Bump when the cache layout or the meaning of its contents changes (2: reference
#: features cropped with the training transforms' resampler; file identities with mtime).
UPSAMPLE_FORMAT_VERSION = 2
_PREDIST_NAME = re.compile(r"^(.+)_(\d{2})_(\d{2})$")


@dataclass(frozen=True)
class UpsampleSpec:
    """One DDCUp build: the training ``types``, the validated :class:`DDCUpParams`
    (passed whole) and the ``seed``; all of them enter the cache key."""

    types: tuple[int, ...]
    params: DDCUpParams = field(default_factory=DDCUpParams)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.types:
            raise ConfigError("DDCUp needs at least one distortion type (data.types)")
        object.__setattr__(self, "types", tuple(int(t) for t in self.types))
        object.__setattr__(self, "seed", int(self.seed))

    def flat(self) -> dict[str, Any]:
        """The spec as the flat mapping of the cache key and ``meta.json`` (names kept
        from format 1: ``crop_size`` = ``encoder_crop``, ``select`` = ``select_candidates``)."""
        p = self.params
        return {
            "types": list(self.types),
            "levels": list(p.levels),
            "k": p.k,
            "T_ref": p.T_ref,
            "weights": p.weights,
            "temperature": p.temperature,
            "encoder": p.encoder,
            "encoder_weights": p.encoder_weights,
            "crop_size": p.encoder_crop,
            "seed": self.seed,
            "select": p.select_candidates,
        }

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> UpsampleSpec:
        """The spec a ``meta.json`` records (:meth:`flat`)."""
        f = dict(flat)
        params = DDCUpParams(
            k=f.get("k", DDCUpParams.k),
            T_ref=f.get("T_ref", DDCUpParams.T_ref),
            weights=f.get("weights", DDCUpParams.weights),
            temperature=f.get("temperature", DDCUpParams.temperature),
            levels=tuple(f.get("levels") or DDCUpParams.levels),
            encoder=f.get("encoder", DDCUpParams.encoder),
            encoder_weights=f.get("encoder_weights", DDCUpParams.encoder_weights),
            encoder_crop=f.get("crop_size", DDCUpParams.encoder_crop),
            select_candidates=f.get("select", DDCUpParams.select_candidates),
        )
        return cls(tuple(f.get("types") or ()), params, int(f.get("seed", 0)))


@dataclass
class UpsampledSet:
    """A built (or reused) upsampled set."""

    manifest: pd.DataFrame  # absolute paths; source='upsampled'
    directory: Path
    key: str
    reused: bool
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def label_cube(
    manifest: pd.DataFrame, refs: Sequence[str], types: Sequence[int], levels: Sequence[int]
) -> np.ndarray:
    """Training labels ``[n_ref, n_type, n_level]`` (0..10 ``score``) from a manifest.

    Raises :class:`DatasetError` naming the first missing (ref, type, level).
    """
    for col in ("ref", "dist_type", "level", "score"):
        if col not in manifest.columns:
            raise DatasetError(f"the training manifest lacks column {col!r}; DDCUp needs it")
    df = manifest.dropna(subset=["ref", "dist_type", "level"])
    table = df.groupby(["ref", "dist_type", "level"])["score"].mean()
    cube = np.full((len(refs), len(types), len(levels)), np.nan)
    lookup = table.to_dict()
    for a, r in enumerate(refs):
        for b, t in enumerate(types):
            for c, lv in enumerate(levels):
                value = lookup.get((r, int(t), int(lv)))
                if value is None:
                    raise DatasetError(
                        f"the training set has no image of reference {r!r}, type {int(t)}, "
                        f"level {int(lv)}; DDCUp's pseudo-labels need every (ref, type, "
                        f"level) of the active types at levels {list(levels)}: check "
                        f"data.types and that the dataset is complete"
                    )
                cube[a, b, c] = value
    return cube


def list_images(folder: str | Path) -> dict[str, Path]:
    """Stem -> path of the images directly inside ``folder`` (sorted by name)."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(
            f"candidate folder {str(root)!r} does not exist; point data.candidates.root at a "
            f"folder of pristine images (KADIS-700k or any image folder)"
        )
    out = {
        p.stem: p
        for p in sorted(root.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }
    if not out:
        raise DatasetError(f"candidate folder {str(root)!r} holds no images ({IMAGE_SUFFIXES})")
    return out


def predistorted_candidates(
    root: str | Path,
) -> tuple[dict[str, Path], dict[tuple[str, int, int], Path]]:
    """Read the reference code's layout ``<root>/{ref_imgs,dist_imgs}``.

    ``dist_imgs`` holds ``<ref>_<TT>_<LL>.<ext>`` (``.bmp`` in the reference code).
    Returns (ref stem -> path, (ref, type, level) -> distorted path).
    """
    base = Path(root)
    refs = list_images(base / "ref_imgs")
    dist_dir = base / "dist_imgs"
    if not dist_dir.is_dir():
        raise DatasetError(
            f"{str(base)!r} has no dist_imgs/ folder; the pre-distorted layout is "
            f"<root>/ref_imgs/<ref>.png and <root>/dist_imgs/<ref>_<TT>_<LL>.bmp"
        )
    dist: dict[tuple[str, int, int], Path] = {}
    for p in sorted(dist_dir.iterdir()):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _PREDIST_NAME.match(p.stem)
        if m is not None:
            dist[(m.group(1), int(m.group(2)), int(m.group(3)))] = p
    return refs, dist


def cache_key(
    spec: UpsampleSpec,
    train_refs: Mapping[str, Path],
    labels: np.ndarray,
    candidates: Mapping[str, Path],
    predistorted: Mapping[tuple[str, int, int], Path] | None = None,
) -> str:
    """Hash of everything that affects the upsampled set (24 hex characters).

    Data identity is ``utils.io.file_identity`` (name, size, mtime) of every training
    reference and candidate, the training label cube, and the pre-distorted files when
    used. Paths themselves are not part of the key, so moving a dataset keeps its cache
    valid.
    """
    h = hashlib.sha256()
    h.update(
        json.dumps({"format": UPSAMPLE_FORMAT_VERSION, **spec.flat()}, sort_keys=True).encode()
    )
    for name in sorted(train_refs):
        h.update(f"T|{name}|{file_identity(Path(train_refs[name]))}\n".encode())
    h.update(np.ascontiguousarray(np.round(labels, 6), dtype=np.float64).tobytes())
    for name in sorted(candidates):
        h.update(f"C|{name}|{file_identity(Path(candidates[name]))}\n".encode())
    if predistorted is None:
        h.update(f"G|{GENDIST_VERSION}\n".encode())  # GenDist makes the images
    else:
        h.update(b"predistorted")
        for k in sorted(predistorted):
            h.update(f"D|{k}|{file_identity(Path(predistorted[k]))}\n".encode())
    return h.hexdigest()[:24]


# --------------------------------------------------------------------------- cache


def _key_of(temp: Path) -> str:
    """The cache key of a temporary build folder ``.<key>.<random>.tmp``."""
    return temp.name[1:].split(".", 1)[0]


def _clean_stale(parent: Path, key: str) -> None:
    """Remove temporary build folders nobody is building any more (any key).

    Called while holding ``key``'s lock, so every temporary of ``key`` is a dead (or
    stopped and overtaken) builder's; a temporary of another key is kept while that
    key's lock is live (``utils.locking``).
    """
    remove_stale_temporaries(
        parent,
        ".*.tmp",
        lambda t: [] if _key_of(t) == key else [parent / f".{_key_of(t)}.lock"],
    )


@contextlib.contextmanager
def _building(final: Path) -> Iterator[Path]:
    """A temporary folder renamed onto ``final`` when the body succeeds.

    Never deletes a complete set: when ``final`` became complete meanwhile (a builder
    that lost its lock), the temporary is dropped and the existing set kept; an
    incomplete ``final`` (damaged by hand) is moved aside first. The owner record stays
    in the folder until after the final rename, so no cleaner takes it for abandoned.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        with atomic_open(tmp / "owner.json") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, fh)
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if final.exists() and load_cached(final) is None:
            aside = Path(
                tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            )
            os.replace(final, aside / "damaged")
            shutil.rmtree(aside, ignore_errors=True)
        if not final.exists():
            try:
                os.rename(tmp, final)
            except OSError:
                if load_cached(final) is None:  # not a complete set published by another run
                    raise
        (final / "owner.json").unlink(missing_ok=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_cached(directory: str | Path) -> UpsampledSet | None:
    """Return the upsampled set stored in ``directory`` if it is complete, else ``None``."""
    d = Path(directory)
    meta_file, manifest_file = d / "meta.json", d / "manifest.csv"
    if not (meta_file.is_file() and manifest_file.is_file()):
        return None
    try:
        meta = json.loads(meta_file.read_text())
        df = pd.read_csv(manifest_file, dtype={"ref": str})
    except (OSError, ValueError):
        return None
    if meta.get("format") != UPSAMPLE_FORMAT_VERSION or meta.get("key") != d.name:
        return None
    if len(df) != int(meta.get("n_samples", -1)):
        return None
    if meta.get("manifest_sha256") != file_sha256(manifest_file):
        return None  # edited or corrupted labels (or an older set without a digest): rebuilt
    if _changed_image(d, df, meta) is not None:
        return None
    df = _absolute(df, d)
    if not all(Path(p).is_file() for p in df["path"]):
        return None
    return UpsampledSet(manifest=df, directory=d, key=d.name, reused=True, meta=meta)


def _image_digests(directory: Path, df: pd.DataFrame) -> dict[str, str | None]:
    """XXH3-64 of each image the set holds itself (relative paths; pre-distorted images
    are the user's files, listed by absolute path, and not included)."""
    rel = [str(p) for p in df["path"] if not Path(str(p)).is_absolute()]
    return {p: file_digest(directory / p) for p in rel}


def _changed_image(directory: Path, df: pd.DataFrame, meta: Mapping[str, Any]) -> str | None:
    """The first generated image that differs from its recorded digest (or a set written
    without digests: ``"meta.json"``), else None."""
    recorded = meta.get("images_xxh3")
    if not isinstance(recorded, dict):
        return "meta.json"
    for rel, digest in _image_digests(directory, df).items():
        if digest is None or recorded.get(rel) != digest:
            log.warning(
                "DDCUp: image %s of the upsampled set %s does not match its digest; "
                "the set is rebuilt",
                rel,
                directory,
            )
            return rel
    return None


def _absolute(df: pd.DataFrame, directory: Path) -> pd.DataFrame:
    df = df.copy()
    df["path"] = [str(p) if Path(p).is_absolute() else str(directory / p) for p in df["path"]]
    df["dist_type"] = df["dist_type"].astype("Int64")
    df["level"] = df["level"].astype("Int64")
    if "seed" in df.columns:
        df["seed"] = df["seed"].astype("Int64")
    return df


# --------------------------------------------------------------------------- features and GenDist


def reference_features(
    paths: Sequence[Path], spec: UpsampleSpec, cache_dir: str | Path | None
) -> np.ndarray:
    """Frozen-encoder features ``[n, d]`` of reference images (reshape.features).

    The encoder is built under ``torch.manual_seed(spec.seed)`` inside a forked RNG, so
    an encoder without pretrained weights (``weights: none``, tests) is reproducible and
    the caller's RNG stream is untouched.
    """
    import torch

    from syndr_lightning.reshape.features import extract_reference_features

    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.seed))
            feats = extract_reference_features(
                [str(p) for p in paths],
                encoder=spec.params.encoder,
                weights=spec.params.encoder_weights,
                cache_dir=cache_dir,
                crop_size=int(spec.params.encoder_crop),
            )
    except ConfigError as exc:
        raise ConfigError(
            f"DDCUp's frozen encoder (reshape.encoder={spec.params.encoder!r}, "
            f"reshape.encoder_weights={spec.params.encoder_weights!r}) cannot be built: {exc}. "
            f"Set reshape.encoder_weights to a local weights file, or use "
            f"reshape.encoder=efficientnet_lite0 reshape.encoder_weights=offline"
        ) from None
    return np.asarray(feats, dtype=np.float32)


def _generate(
    refs: Mapping[str, Path],
    out_dir: Path,
    types: Sequence[int],
    levels: Sequence[int],
    seed: int,
    workers: int,
    progress: bool = True,
) -> pd.DataFrame:
    """Run GenDist on ``refs``; return a table with columns ref, type, level, path, seed.

    GenDist names outputs by the reference file's stem; ``ref`` is mapped back to the
    candidate id.
    """
    from syndr_lightning.distort import generate

    by_stem = {Path(p).stem: name for name, p in refs.items()}
    if len(by_stem) != len(refs):
        raise InputError(
            "two selected candidates share a file name stem; GenDist names outputs by stem, "
            "so give candidate images unique names"
        )
    table = generate(
        [str(p) for p in refs.values()],
        out_dir,
        types=list(types),
        levels=list(levels),
        seed=int(seed),
        workers=int(workers),
        progress=progress,
    )
    table = pd.DataFrame(table)
    missing = {"ref", "type", "level", "path"} - set(table.columns)
    if missing:
        raise InputError(f"GenDist returned a manifest without columns {sorted(missing)}")
    table["ref"] = [by_stem.get(str(r), str(r)) for r in table["ref"]]
    return table


# --------------------------------------------------------------------------- build


def build_upsampled_set(
    train_manifest: pd.DataFrame,
    train_refs: Mapping[str, str | Path],
    candidates: Mapping[str, str | Path] | str | Path,
    cache_root: str | Path,
    spec: UpsampleSpec,
    *,
    predistorted: str | Path | None = None,
    workers: int = 0,
    feature_cache_dir: str | Path | None = None,
    progress: bool = True,
) -> UpsampledSet:
    """Build (or reuse) DDCUp's upsampled training set.

    ``train_refs`` maps each training reference id (the manifest's ``ref``) to its
    pristine image; ``candidates`` maps candidate ids to images, or is a folder of
    images. With ``predistorted`` (the reference code's ``kadid_add81`` layout:
    ``ref_imgs/`` and ``dist_imgs/<ref>_<TT>_<LL>.bmp``) candidates come from its
    ``ref_imgs`` and their distorted images are taken as they are instead of GenDist.
    Returns the manifest (absolute paths, ``source='upsampled'``) and where it lives.
    """
    refs = {str(k): Path(v) for k, v in sorted(train_refs.items())}
    if len(refs) < 2:
        raise InputError(f"DDCUp needs at least 2 training references; got {len(refs)}")
    used = set(train_manifest["ref"].dropna().astype(str))
    missing = sorted(used - set(refs))
    if missing:
        raise DatasetError(
            f"no pristine image for training references {missing[:5]}; the dataset root "
            f"must hold the reference images (KADID-10k: images/I01.png or ref_imgs/)"
        )
    refs = {k: v for k, v in refs.items() if k in used}
    dist_files: dict[tuple[str, int, int], Path] | None = None
    if predistorted is not None:
        cands, dist_files = predistorted_candidates(predistorted)
    elif isinstance(candidates, (str, Path)):
        cands = list_images(candidates)
    else:
        cands = {str(k): Path(v) for k, v in candidates.items()}
    if not cands:
        raise InputError("the DDCUp candidate pool is empty")
    names = list(refs)
    labels = label_cube(train_manifest, names, spec.types, spec.params.levels)
    key = cache_key(spec, refs, labels, cands, dist_files)
    root = Path(cache_root) / "ddcup"
    final = root / key
    cached = load_cached(final)
    if cached is not None:
        if str(final) not in _ANNOUNCED:  # setup runs for fit and again for test: say it once
            _ANNOUNCED.add(str(final))
            log.info(
                "DDCUp: reusing the upsampled set %s (%d samples)", final, len(cached.manifest)
            )
        return cached

    def build() -> UpsampledSet:
        _clean_stale(root, key)
        _build_into(
            final,
            key,
            spec,
            refs,
            names,
            cands,
            dist_files,
            labels,
            train_manifest,
            predistorted,
            workers,
            feature_cache_dir,
            progress,
        )
        result = load_cached(final)
        if result is None:  # pragma: no cover - would be a bug in the writer
            raise DatasetError(f"the upsampled set written to {str(final)!r} does not read back")
        result.reused = False
        log.info("DDCUp: upsampled set of %d samples written to %s", len(result.manifest), final)
        return result

    # One builder per key across processes and hosts; the others wait and reuse its set.
    return build_once(root / f".{key}.lock", lambda: load_cached(final), build)


def _build_into(
    final: Path,
    key: str,
    spec: UpsampleSpec,
    refs: Mapping[str, Path],
    names: list[str],
    cands: Mapping[str, Path],
    dist_files: Mapping[tuple[str, int, int], Path] | None,
    labels: np.ndarray,
    train_manifest: pd.DataFrame,
    predistorted: str | Path | None,
    workers: int,
    feature_cache_dir: str | Path | None,
    progress: bool,
) -> None:
    """Encode, select, distort and pseudo-label into a temporary folder; publish it."""
    from syndr_lightning.reshape import ddcup_pseudo_labels, ddcup_select

    with _building(final) as tmp:
        cand_names = list(cands)
        log.info(
            "DDCUp: encoding %d training references and %d candidates (%s)",
            len(names),
            len(cand_names),
            spec.params.encoder,
        )
        train_feats = reference_features([refs[n] for n in names], spec, feature_cache_dir)
        cand_feats = reference_features([cands[n] for n in cand_names], spec, feature_cache_dir)
        if spec.params.select_candidates:
            selected = np.asarray(ddcup_select(train_feats, cand_feats), dtype=np.int64)
        else:
            selected = np.arange(len(cand_names), dtype=np.int64)
        chosen = [cand_names[i] for i in selected]
        log.info(
            "DDCUp: %d of %d candidates selected; distorting them at types %s, levels %s",
            len(chosen),
            len(cand_names),
            list(spec.types),
            list(spec.params.levels),
        )
        new_labels = (
            ddcup_pseudo_labels(
                train_feats,
                cand_feats[selected],
                labels,
                k=len(names) if spec.params.k == "all" else min(int(spec.params.k), len(names)),
                t_ref=float(spec.params.T_ref),
                weights=spec.params.weights,
                temperature=float(spec.params.temperature),
            )
            if len(chosen)
            else np.empty((0, len(spec.types), len(spec.params.levels)), np.float32)
        )
        rows = _distorted_rows(chosen, cands, dist_files, spec, tmp, workers, progress)
        df = _assemble(rows, chosen, new_labels, spec, tmp, train_manifest)
        with atomic_open(tmp / "manifest.csv") as fh:
            df.to_csv(fh, index=False)
        with atomic_open(tmp / "candidate_pool.txt") as fh:  # the pool DDCUp chose from
            fh.write("".join(f"{n}\n" for n in cand_names))
        meta = {
            "format": UPSAMPLE_FORMAT_VERSION,
            "key": key,
            "spec": spec.flat(),
            "n_train_refs": len(names),
            "n_candidates": len(cands),
            "candidate_pool_file": "candidate_pool.txt",
            "selected": chosen,
            "n_samples": len(df),
            "manifest_sha256": file_sha256(tmp / "manifest.csv"),
            "images_xxh3": _image_digests(tmp, df),
            "predistorted": str(predistorted) if predistorted is not None else None,
            "git": git_sha(),
        }
        with atomic_open(tmp / "meta.json") as fh:
            json.dump(meta, fh, indent=1)


def _distorted_rows(
    chosen: list[str],
    cands: Mapping[str, Path],
    dist_files: Mapping[tuple[str, int, int], Path] | None,
    spec: UpsampleSpec,
    tmp: Path,
    workers: int,
    progress: bool,
) -> pd.DataFrame:
    """(ref, type, level, path, seed) for every selected candidate x type x level."""
    if not chosen:
        return pd.DataFrame(columns=["ref", "type", "level", "path", "seed"])
    if dist_files is not None:
        rows = []
        for name in chosen:
            for t in spec.types:
                for lv in spec.params.levels:
                    p = dist_files.get((name, int(t), int(lv)))
                    if p is None:
                        raise DatasetError(
                            f"pre-distorted image of {name!r} type {int(t)} level {int(lv)} "
                            f"is missing from dist_imgs/ (expected {name}_{int(t):02d}_"
                            f"{int(lv):02d}.bmp); regenerate it or drop the predistorted "
                            f"option to let GenDist make it"
                        )
                    rows.append(
                        {"ref": name, "type": int(t), "level": int(lv), "path": str(p.resolve())}
                    )
        return pd.DataFrame(rows)
    table = _generate(
        {n: cands[n] for n in chosen},
        tmp / "images",
        spec.types,
        spec.params.levels,
        spec.seed,
        workers,
        progress,
    )
    table = table.copy()
    table["path"] = [os.path.relpath(Path(p).resolve(), tmp.resolve()) for p in table["path"]]
    return table


def _assemble(
    rows: pd.DataFrame,
    chosen: list[str],
    new_labels: np.ndarray,
    spec: UpsampleSpec,
    tmp: Path,
    train_manifest: pd.DataFrame,
) -> pd.DataFrame:
    """The upsampled manifest: pseudo-label of each (new ref, type, level)."""
    ref_pos = {n: i for i, n in enumerate(chosen)}
    t_pos = {int(t): i for i, t in enumerate(spec.types)}
    l_pos = {int(lv): i for i, lv in enumerate(spec.params.levels)}
    scores = [
        float(new_labels[ref_pos[r], t_pos[int(t)], l_pos[int(lv)]])
        for r, t, lv in zip(rows["ref"], rows["type"], rows["level"], strict=True)
    ]
    dataset = str(train_manifest["dataset"].iloc[0]) if len(train_manifest) else "train"
    return pd.DataFrame(
        {
            "path": list(rows["path"]),
            "score": scores,
            "raw_score": np.nan,
            "ref": [str(r) for r in rows["ref"]],
            "dist_type": pd.array([int(t) for t in rows["type"]], dtype="Int64"),
            "level": pd.array([int(v) for v in rows["level"]], dtype="Int64"),
            "dataset": dataset,
            "source": "upsampled",
            "seed": pd.array(
                list(rows["seed"]) if "seed" in rows else [pd.NA] * len(rows), dtype="Int64"
            ),
        }
    )
