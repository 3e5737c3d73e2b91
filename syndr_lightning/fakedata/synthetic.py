"""Tiny procedurally generated IQA datasets for tests, the demo and offline runs.

:func:`generate_synthetic_iqa` writes a KADID-like set (reference images, each distorted
by a few types at increasing levels) and :func:`generate_authentic_like` a set of images
with mixed, unknown distortions (no reference/type columns), each with a generic CSV
(``path,score[,ref,type,level]``, paths relative to the CSV) that
``load_dataset("csv", <csv>)`` reads. :func:`generate_references` writes pristine images
only (a stand-in for an unlabeled candidate pool).

Layout written by :func:`generate_synthetic_iqa` under ``out_dir``::

    refs/ref_000.png ...              pristine references (not listed in the CSV)
    images/ref_000_01_01.png ...      distorted images, <ref>_<type>_<level>
    labels.csv                        path,score,ref,type,level (score ~ MOS on 1..5)
    generator.json                    the parameters and the SHA-256 of labels.csv; a
                                      later call with the same ones reuses the files
                                      (an edited labels.csv is written again)

Everything is deterministic given ``seed``; all writes are atomic.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from syndr_lightning.data.datasets.base import BaseDataset, DatasetInfo, register
from syndr_lightning.data.datasets.generic import CSVDataset
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.integrity import file_sha256
from syndr_lightning.utils.io import atomic_open, atomic_path

__all__ = [
    "DISTORTIONS",
    "SyntheticDataset",
    "generate_authentic_like",
    "generate_references",
    "generate_synthetic_iqa",
    "make_reference",
]

CSV_NAME = "labels.csv"
META_NAME = "generator.json"
#: Key of ``generator.json`` holding the SHA-256 of ``labels.csv``.
LABELS_DIGEST = "labels_sha256"


def make_reference(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Return one smooth, colourful, textured ``uint8`` image ``[H,W,3]`` drawn from ``rng``."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Low-frequency colour field: coarse noise upsampled smoothly.
    coarse = rng.uniform(0.0, 1.0, size=(4, 5, 3))
    field = np.stack(
        [ndimage.zoom(coarse[..., c], (h / 4, w / 5), order=3)[:h, :w] for c in range(3)], -1
    )
    # A few oriented sinusoidal gratings give texture of distinct frequency per image.
    for _ in range(3):
        freq = rng.uniform(0.05, 0.35)
        angle = rng.uniform(0.0, np.pi)
        phase = rng.uniform(0.0, 2 * np.pi)
        grating = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        field += 0.12 * grating[..., None] * rng.uniform(-1.0, 1.0, size=3)
    # Sharp-edged shapes (discs and rectangles) so that blur and blockiness are visible.
    for _ in range(int(rng.integers(2, 5))):
        colour = rng.uniform(0.0, 1.0, size=3)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        if rng.random() < 0.5:
            radius = rng.uniform(0.1, 0.3) * min(h, w)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        else:
            hh, ww = rng.uniform(0.15, 0.4) * h, rng.uniform(0.15, 0.4) * w
            mask = (np.abs(yy - cy) < hh / 2) & (np.abs(xx - cx) < ww / 2)
        field[mask] = 0.35 * field[mask] + 0.65 * colour
    field = (field - field.min()) / max(field.max() - field.min(), 1e-8)
    return np.clip(np.round(field * 235 + 10), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    out = ndimage.gaussian_filter(img.astype(np.float64), sigma=(0.4 + 2.2 * s, 0.4 + 2.2 * s, 0))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _noise(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float64) + rng.normal(0.0, 4.0 + 40.0 * s, size=img.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _darken(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    out = 255.0 * (img.astype(np.float64) / 255.0) ** (1.0 + 2.5 * s) * (1.0 - 0.45 * s)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=round(60 - 57 * s))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def _pixelate(img: np.ndarray, s: float, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    factor = 1.5 + 6.0 * s
    small = Image.fromarray(img).resize(
        (max(1, int(w / factor)), max(1, int(h / factor))), Image.Resampling.BILINEAR
    )
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST), dtype=np.uint8).copy()


# type id (1-based, like KADID) -> (name, function(img, strength in (0, 1], rng), severity).
# ``severity`` scales how fast the quality score falls with the level.
DISTORTIONS: dict[
    int, tuple[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray], float]
] = {
    1: ("gaussian_blur", _blur, 1.0),
    2: ("gaussian_noise", _noise, 0.9),
    3: ("darken", _darken, 0.7),
    4: ("jpeg", _jpeg, 0.85),
    5: ("pixelate", _pixelate, 0.95),
}


def _check_args(size: tuple[int, int], **counts: int) -> tuple[int, int]:
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 8:
        raise InputError(f"size must be (height, width) with both >= 8 pixels, got {size!r}")
    for key, value in counts.items():
        if int(value) < 1:
            raise InputError(f"{key} must be >= 1, got {value}")
    return int(size[0]), int(size[1])


def _save_png(img: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def _reuse(out_dir: Path, meta: dict[str, object]) -> Path | None:
    """Return the CSV of an earlier identical generation whose files all exist and whose
    table matches the digest written with it, else None (the set is written again)."""
    csv_path, meta_path = out_dir / CSV_NAME, out_dir / META_NAME
    if not (csv_path.is_file() and meta_path.is_file()):
        return None
    try:
        recorded = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(recorded, dict):
            return None
        digest = recorded.pop(LABELS_DIGEST, None)
        if recorded != meta:
            return None
        if digest != file_sha256(csv_path):  # edited labels (or an older set): rewritten
            return None
        rel = pd.read_csv(csv_path)["path"]
    except (ValueError, KeyError, OSError):
        return None
    if all((out_dir / p).is_file() for p in rel):
        return csv_path
    return None


def _write_table(out_dir: Path, rows: list[dict[str, object]], meta: dict[str, object]) -> Path:
    csv_path = out_dir / CSV_NAME
    with atomic_open(csv_path, "w", newline="") as fh:
        pd.DataFrame(rows).to_csv(fh, index=False)
    with atomic_open(out_dir / META_NAME, "w") as fh:
        json.dump({**meta, LABELS_DIGEST: file_sha256(csv_path)}, fh, indent=2, sort_keys=True)
    return csv_path


#: KADID-10k's number of each built-in distortion (``kadid_types=True``): Gaussian blur,
#: white noise, darken, JPEG, pixelate. GenDist applies these to DDCUp's new references.
KADID_TYPE_IDS: dict[int, int] = {1: 1, 2: 11, 3: 17, 4: 10, 5: 21}


def generate_synthetic_iqa(
    out_dir: str | Path,
    n_refs: int = 6,
    n_types: int = 3,
    n_levels: int = 3,
    size: tuple[int, int] = (48, 64),
    seed: int = 0,
    kadid_types: bool = False,
    progress: bool = False,
    variants: int = 1,
) -> Path:
    """Write a tiny KADID-like dataset under ``out_dir`` and return its CSV path.

    ``n_refs`` references x ``n_types`` distortion types (1..5: blur, noise, darkening,
    JPEG, pixelation) x ``n_levels`` levels. The score is a MOS-like value on 1..5 that
    falls with the level (faster for more severe types), plus a small per-reference offset
    and rater noise. Reference ids are ``ref_000``... Calling again with the same
    arguments reuses the files. ``kadid_types`` writes each type under its KADID-10k
    number (:data:`KADID_TYPE_IDS`), so DDCUp's GenDist can distort new references the
    same way; ``progress`` shows the generation on stderr. ``variants`` > 1 makes the
    set redundant, as synthetic IQA sets are: each (reference, type, level) is written
    ``variants`` times, each from a slightly shifted, slightly re-lit shot of the same
    reference (``<ref>_<type>_<level>_v<k>.png``), with its own rater noise; the ``ref``
    column stays the reference, so splits by reference keep the shots together.
    """
    h, w = _check_args(size, n_refs=n_refs, n_types=n_types, n_levels=n_levels, variants=variants)
    if n_types > len(DISTORTIONS):
        raise InputError(
            f"n_types must be at most {len(DISTORTIONS)} (the built-in distortions "
            f"{[v[0] for v in DISTORTIONS.values()]}), got {n_types}"
        )
    out = Path(out_dir)
    meta: dict[str, object] = {
        "kind": "synthetic_iqa",
        "n_refs": int(n_refs),
        "n_types": int(n_types),
        "n_levels": int(n_levels),
        "size": [h, w],
        "seed": int(seed),
        "version": 1,
    }
    if kadid_types:
        meta["kadid_types"] = True
    if variants > 1:
        meta["variants"] = int(variants)
    reused = _reuse(out, meta)
    if reused is not None:
        return reused
    from syndr_lightning.utils.progress import progress as show_progress

    rows: list[dict[str, object]] = []
    total = n_refs * n_types * n_levels * int(variants)
    with show_progress("generating synthetic images", total, enabled=progress) as bar:
        for r in range(n_refs):
            _synthetic_reference(
                out, r, n_types, n_levels, (h, w), seed, kadid_types, rows, int(variants)
            )
            bar.advance(n_types * n_levels * int(variants))
    return _write_table(out, rows, meta)


def _synthetic_reference(
    out: Path,
    r: int,
    n_types: int,
    n_levels: int,
    hw: tuple[int, int],
    seed: int,
    kadid_types: bool,
    rows: list[dict[str, object]],
    variants: int = 1,
) -> None:
    """Write reference ``r`` and its distorted images (``variants`` shots each); append rows."""
    h, w = hw
    ref_id = f"ref_{r:03d}"
    rng = np.random.default_rng([seed, r])
    margin = 6 if variants > 1 else 0
    canvas = make_reference(rng, (h + margin, w + margin))
    ref_offset = rng.normal(0.0, 0.15)
    shots = [canvas[:h, :w]]
    for v in range(1, variants):
        vrng = np.random.default_rng([seed, r, 0, 0, v])
        dy, dx = (int(x) for x in vrng.integers(0, margin + 1, size=2))
        gain = float(vrng.uniform(0.97, 1.03))
        shot = canvas[dy : dy + h, dx : dx + w].astype(np.float64) * gain
        shots.append(np.clip(np.round(shot), 0, 255).astype(np.uint8))
    _save_png(shots[0], out / "refs" / f"{ref_id}.png")
    for t in range(1, n_types + 1):
        _, func, severity = DISTORTIONS[t]
        for lev in range(1, n_levels + 1):
            strength = lev / n_levels
            for v, shot in enumerate(shots):
                drng = np.random.default_rng([seed, r, t, lev] + ([v] if v else []))
                img = func(shot, strength, drng)
                tid = KADID_TYPE_IDS[t] if kadid_types else t
                suffix = f"_v{v}" if variants > 1 else ""
                rel = f"images/{ref_id}_{tid:02d}_{lev:02d}{suffix}.png"
                _save_png(img, out / rel)
                mos = 4.7 - 3.4 * severity * strength + ref_offset + drng.normal(0.0, 0.08)
                rows.append(
                    {
                        "path": rel,
                        "score": round(float(np.clip(mos, 1.0, 5.0)), 4),
                        "ref": ref_id,
                        "type": tid,
                        "level": lev,
                    }
                )


def generate_authentic_like(
    out_dir: str | Path,
    n: int = 12,
    size: tuple[int, int] = (48, 64),
    seed: int = 100,
) -> Path:
    """Write ``n`` images with random mixtures of distortions and a ``path,score`` CSV.

    Mimics an authentic test set: no reference or type columns, every image has its own
    content, and the score (MOS-like, 1..5) falls with the total distortion applied.
    """
    h, w = _check_args(size, n=n)
    out = Path(out_dir)
    meta: dict[str, object] = {
        "kind": "authentic_like",
        "n": int(n),
        "size": [h, w],
        "seed": int(seed),
        "version": 1,
    }
    reused = _reuse(out, meta)
    if reused is not None:
        return reused
    rows: list[dict[str, object]] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        img = make_reference(rng, (h, w))
        damage = 0.0
        for t in rng.permutation(list(DISTORTIONS))[: int(rng.integers(0, 3))]:
            _, func, severity = DISTORTIONS[int(t)]
            strength = float(rng.uniform(0.1, 1.0))
            img = func(img, strength, rng)
            damage += severity * strength
        rel = f"images/img_{i:04d}.png"
        _save_png(img, out / rel)
        mos = 4.7 - 2.0 * damage + rng.normal(0.0, 0.1)
        rows.append({"path": rel, "score": round(float(np.clip(mos, 1.0, 5.0)), 4)})
    return _write_table(out, rows, meta)


def generate_references(
    out_dir: str | Path,
    n: int = 8,
    size: tuple[int, int] = (48, 64),
    seed: int = 200,
) -> list[Path]:
    """Write ``n`` pristine images ``cand_0000.png``... (an unlabeled pool) and return them."""
    h, w = _check_args(size, n=n)
    out = Path(out_dir)
    paths: list[Path] = []
    for i in range(n):
        path = out / f"cand_{i:04d}.png"
        if not path.is_file():
            _save_png(make_reference(np.random.default_rng([seed, i]), (h, w)), path)
        paths.append(path)
    return paths


@register
class SyntheticDataset(BaseDataset):
    """Loader ``synthetic``: generates (or reuses) a tiny dataset under ``root``, then reads it.

    Options: ``kind`` (``synthetic``, KADID-like; ``authentic``; or ``references``, an
    unlabeled pool of pristine images for DDCUp's ``data.candidates``), ``seed``,
    ``size``, and ``n_refs``/``n_types``/``n_levels``/``kadid_types`` (synthetic) or ``n``
    (authentic, references). The built-in, offline default data of
    ``conf/data/synthetic.yaml``; :meth:`references` gives DDCUp the pristine images.
    """

    info = DatasetInfo(
        name="synthetic",
        kind="generic",
        higher_is_better_raw=True,
        raw_range=(1.0, 5.0),
        published_images=None,
        published_references=None,
        label_file=CSV_NAME,
    )

    def __init__(self, root: str | Path, kind: str = "synthetic", **options: Any) -> None:
        Path(root).expanduser().mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        if kind not in ("synthetic", "authentic", "references"):
            raise ConfigError(
                f"synthetic loader: kind must be synthetic, authentic or references, got {kind!r}"
            )
        self.kind = kind
        self.gen_options = {k: (tuple(v) if k == "size" else v) for k, v in options.items()}
        if kind == "synthetic":
            self.gen_options.setdefault("progress", True)

    def _generate(self) -> Any:
        gen = {
            "synthetic": generate_synthetic_iqa,
            "authentic": generate_authentic_like,
            "references": generate_references,
        }[self.kind]
        try:
            return gen(self.root, **self.gen_options)
        except TypeError as exc:
            raise ConfigError(f"synthetic loader ({self.kind}): bad options: {exc}") from None

    def load(self) -> pd.DataFrame:
        if self.kind == "references":
            raise ConfigError(
                "synthetic loader: kind=references is an unlabeled pool; use it as "
                "data.candidates (DDCUp), not as a labelled train/val/test set"
            )
        return CSVDataset(self._generate(), dataset_name=f"synthetic_{self.kind}").load()

    def references(self) -> dict[str, Path]:
        """Pristine images by id: the generated references (synthetic) or the pool."""
        if self.kind == "authentic":
            raise ConfigError("synthetic loader: kind=authentic has no reference images")
        if self.kind == "references":
            return {p.stem: p for p in self._generate()}
        table = pd.read_csv(self._generate())
        return {str(r): self.root / "refs" / f"{r}.png" for r in sorted(set(table["ref"]))}
