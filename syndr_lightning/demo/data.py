"""The offline demo dataset: a small KADID-like set built from photographs shipped in packages.

Nothing is downloaded. The photographs come from scikit-image's sample data (astronaut,
coffee, chelsea, rocket, ...), scikit-learn's two sample images and matplotlib's
``grace_hopper.jpg``; whichever of them load on this machine are used. Each photograph
gets one *role*, so no content crosses roles:

* ``train`` / ``val``: several crops per photograph become reference images, distorted by
  GenDist with the training types (default: the LIVEC subset 1, 3, 10, 17, 18, 25) at
  levels 1..5;
* ``candidates``: pristine crops only, the unlabeled DDCUp candidate pool;
* ``test``: crops distorted with types the training set never sees (default 2, 9, 11,
  16, 21, 24), the "target domain" of the proxy task.

Labels are a documented full-reference proxy, not human opinion: SSIM (Wang et al. 2004;
Gaussian window sigma 1.5, on the luminance 0.2989 R + 0.5870 G + 0.1140 B, data range
255) between the distorted image and its reference, clipped to [0, 1] and mapped
linearly to a MOS-like 1..5 (``mos = 1 + 4 * ssim``); the loaders then min-max it to
0..10 like every dataset.

Layout under the returned root (built in a temporary folder, renamed when complete), in
KADID-10k's own format so the ``kadid10k`` loader, its ``references()`` and DDCUp work
on it unchanged::

    kadid/dmos.csv, kadid/images/I01.png, I01_01_01.png ...   train + val references
    target/dmos.csv, target/images/...                         test references, test types
    candidates/<photo>_<k>.png                                 DDCUp candidate pool
    demo.json          parameters, photo roles, reference ids -> crops, counts, label rule
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from syndr_lightning.fakedata.kadid import kadid_ref_id, write_kadid
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.io import atomic_dir, atomic_open
from syndr_lightning.utils.progress import progress as show_progress

__all__ = [
    "DEMO_VERSION",
    "DemoData",
    "DemoSpec",
    "available_photos",
    "build_demo_dataset",
    "proxy_mos",
    "reference_crops",
    "reference_tiles",
]

#: Bumped whenever the build changes what it writes, so old caches are not reused.
DEMO_VERSION = 2  # 2: val_crops_per_photo (held-out tiles of the training photographs)

_LUMA = np.array([0.2989, 0.5870, 0.1140])

PROXY_LABEL = (
    "proxy MOS = 1 + 4 * clip(SSIM(luma), 0, 1) against the pristine reference; SSIM with "
    "a Gaussian window (sigma 1.5), luma 0.2989 R + 0.5870 G + 0.1140 B, data range 255"
)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return np.asarray(getattr(data, name)())

    return load


def _skimage_stereo(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return np.asarray(data.stereo_motorcycle()[index])

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(name))

    return load


def _matplotlib(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib.cbook as cbook

        with Image.open(cbook.get_sample_data(name, asfileobj=False)) as img:
            return np.asarray(img.convert("RGB"))

    return load


#: Photographs shipped inside installed packages, in a fixed order.
PHOTO_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "retina": _skimage("retina"),
    "motorcycle_left": _skimage_stereo(0),
    "motorcycle_right": _skimage_stereo(1),
    "camera": _skimage("camera"),
    "moon": _skimage("moon"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "brick": _skimage("brick"),
    "clock": _skimage("clock"),
    "coins": _skimage("coins"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
}


def _as_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """Grey -> RGB, RGBA -> RGB, bool/float -> uint8."""
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        scaled = arr.astype(np.float64)
        if scaled.max() <= 1.0:
            scaled = scaled * 255.0
        arr = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise InputError(f"expected an image [H,W,3]; got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


def available_photos(
    names: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Load the shipped photographs that exist here: ``(name -> RGB uint8, name -> why not)``.

    A photograph is skipped (with the reason) when its package is missing or it needs a
    download (scikit-image's optional ``pooch`` data). Unknown names raise ConfigError.
    """
    wanted = list(PHOTO_SOURCES) if names is None else list(names)
    unknown = [n for n in wanted if n not in PHOTO_SOURCES]
    if unknown:
        raise ConfigError(
            f"unknown demo photographs {unknown}; choose from {sorted(PHOTO_SOURCES)}"
        )
    photos: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        try:
            photos[name] = _as_rgb_uint8(PHOTO_SOURCES[name]())
        except Exception as exc:  # a missing optional file or package: use the others
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return photos, skipped


def reference_crops(photo: np.ndarray, n_crops: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``n_crops`` reference images ``[h, w, 3]`` (``size = (w, h)``) from one photograph.

    The photograph is downscaled (bicubic) so that the crops tile a strip along its
    longer side, then ``n_crops`` evenly spaced, possibly overlapping crops are taken:
    neighbouring crops share content, like KADID's near-duplicate references.
    """
    if n_crops < 1:
        raise ConfigError(f"demo.crops_per_photo must be >= 1; got {n_crops}")
    w, h = size
    if w < 32 or h < 32:
        raise ConfigError(f"demo.ref_size must be at least 32x32; got {w}x{h}")
    ph, pw = photo.shape[:2]
    # Scale so the short side fits 1.25 crops (some context) and the crops can slide.
    scale = max(1.25 * h / ph, 1.25 * w / pw, min(h, w) / min(ph, pw))
    scale = max(scale, min(1.0, (w * (1 + 0.5 * (n_crops - 1))) / max(pw, ph)))
    new_w, new_h = max(w, round(pw * scale)), max(h, round(ph * scale))
    img = np.asarray(
        Image.fromarray(photo).resize((new_w, new_h), Image.Resampling.BICUBIC), dtype=np.uint8
    )
    ys = np.linspace(0, new_h - h, num=n_crops).round().astype(int)
    xs = np.linspace(0, new_w - w, num=n_crops).round().astype(int)
    if new_h - h > new_w - w:  # portrait: slide mainly downwards, a little across
        xs = xs[::-1]
    return [np.ascontiguousarray(img[y : y + h, x : x + w]) for y, x in zip(ys, xs, strict=True)]


def reference_tiles(photo: np.ndarray, n_tiles: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``n_tiles`` NON-overlapping reference images ``[h, w, 3]`` (``size = (w, h)``).

    The photograph is rescaled (bicubic) to cover a grid of ``gx x gy >= n_tiles`` tiles
    whose shape is closest to the photograph's, the grid is centred, and the first
    ``n_tiles`` tiles in row-major order are returned: no pixel is in two tiles, so a
    tile held out for validation shares the photograph but not its pixels.
    """
    if n_tiles < 1:
        raise ConfigError(f"demo.data tiles per photograph must be >= 1; got {n_tiles}")
    w, h = size
    if w < 32 or h < 32:
        raise ConfigError(f"demo.ref_size must be at least 32x32; got {w}x{h}")
    ph, pw = photo.shape[:2]
    grids = [(gx, -(-n_tiles // gx)) for gx in range(1, n_tiles + 1)]
    gx, gy = min(grids, key=lambda g: (abs(np.log((g[0] * w) / (g[1] * h) / (pw / ph))), g))
    scale = max(gx * w / pw, gy * h / ph)
    new_w, new_h = max(gx * w, round(pw * scale)), max(gy * h, round(ph * scale))
    img = np.asarray(
        Image.fromarray(photo).resize((new_w, new_h), Image.Resampling.BICUBIC), dtype=np.uint8
    )
    top, left = (new_h - gy * h) // 2, (new_w - gx * w) // 2
    tiles = [
        np.ascontiguousarray(
            img[top + r * h : top + (r + 1) * h, left + c * w : left + (c + 1) * w]
        )
        for r in range(gy)
        for c in range(gx)
    ]
    return tiles[:n_tiles]


def proxy_mos(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Full-reference proxy label on 1..5: ``1 + 4 * clip(SSIM(luma), 0, 1)``."""
    from skimage.metrics import structural_similarity

    ref = np.asarray(reference, dtype=np.float64)
    dist = np.asarray(distorted, dtype=np.float64)
    if ref.shape != dist.shape or ref.ndim != 3:
        raise InputError(
            f"reference and distorted image must be equal [H,W,3] arrays; got {ref.shape} "
            f"and {dist.shape}"
        )
    ssim = structural_similarity(
        ref @ _LUMA,
        dist @ _LUMA,
        data_range=255.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    return float(1.0 + 4.0 * np.clip(ssim, 0.0, 1.0))


@dataclass(frozen=True)
class DemoSpec:
    """What to build; every field is a key of ``demo.data`` in conf/experiment/demo.yaml."""

    photos: tuple[str, ...] | None = None
    n_train_photos: int = 8
    n_val_photos: int = 2
    n_candidate_photos: int = 5
    n_test_photos: int = 4
    crops_per_photo: int = 3
    val_crops_per_photo: int = 0
    ref_size: tuple[int, int] = (192, 144)
    train_types: tuple[int, ...] = (1, 3, 10, 17, 18, 25)
    test_types: tuple[int, ...] = (2, 9, 11, 16, 21, 24)
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    seed: int = 0

    def key(self) -> str:
        """Short hash of the spec (and the build version): the cache folder's name."""
        text = json.dumps({"version": DEMO_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def validate(self) -> None:
        """Raise ConfigError for counts or types that cannot work."""
        for name in ("n_train_photos", "n_test_photos", "crops_per_photo"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"demo.data.{name} must be >= 1; got {getattr(self, name)}")
        for name in ("n_val_photos", "n_candidate_photos", "val_crops_per_photo"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"demo.data.{name} must be >= 0; got {getattr(self, name)}")
        if self.n_val_photos == 0 and self.val_crops_per_photo == 0:
            raise ConfigError(
                "the demo needs validation references: set demo.data.val_crops_per_photo "
                "(held-out tiles of the training photographs) or demo.data.n_val_photos >= 1"
            )
        for name in ("train_types", "test_types"):
            types = getattr(self, name)
            if not types or any(not 1 <= int(t) <= 25 for t in types):
                raise ConfigError(f"demo.data.{name} must list KADID types 1..25; got {types}")
        if not self.levels or any(not 1 <= int(v) <= 5 for v in self.levels):
            raise ConfigError(f"demo.data.levels must list levels 1..5; got {self.levels}")


@dataclass
class DemoData:
    """Where the built demo dataset lives, and what it contains."""

    root: Path
    kadid_root: Path
    target_root: Path
    candidates_dir: Path
    train_refs: list[int]
    val_refs: list[int]
    meta: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


def _assign_roles(names: list[str], spec: DemoSpec) -> dict[str, list[str]]:
    need = spec.n_train_photos + spec.n_val_photos + spec.n_candidate_photos + spec.n_test_photos
    if len(names) < need:
        raise ConfigError(
            f"the demo needs {need} photographs (train {spec.n_train_photos} + val "
            f"{spec.n_val_photos} + candidates {spec.n_candidate_photos} + test "
            f"{spec.n_test_photos}) but only {len(names)} load here ({names}); lower the "
            f"demo.data.n_*_photos counts"
        )
    order = list(np.random.default_rng(spec.seed).permutation(len(names)))
    shuffled = [names[i] for i in order]
    roles: dict[str, list[str]] = {}
    start = 0
    for role, count in (
        ("train", spec.n_train_photos),
        ("val", spec.n_val_photos),
        ("candidates", spec.n_candidate_photos),
        ("test", spec.n_test_photos),
    ):
        roles[role] = shuffled[start : start + count]
        start += count
    return roles


def _save_png(img: np.ndarray, path: Path) -> None:
    Image.fromarray(img).save(path, format="PNG")


def _write_kadid(
    refs: list[tuple[str, np.ndarray]],
    types: Sequence[int],
    levels: Sequence[int],
    root: Path,
    seed: int,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``refs`` in KADID-10k's layout under ``root`` (``fakedata.kadid``), labelled
    with proxy_mos (``dmos`` 1..5, higher is better as in KADID; ``var`` = 0). Returns the
    table with the source crop name of every reference added.
    """
    from syndr_lightning.distort import derive_seed, distort_image

    if len(refs) > 81:
        raise ConfigError(f"the KADID layout holds at most 81 references; got {len(refs)}")
    (root / "images").mkdir(parents=True)
    crop_of = {kadid_ref_id(i): crop_name for i, (crop_name, _) in enumerate(refs)}
    n_images = len(refs) * len(types) * len(levels)
    with show_progress(
        f"demo data {root.name}: GenDist + SSIM labels ({n_images} images)",
        n_images,
        enabled=progress,
    ) as bar:

        def distort(
            ref_id: str, ref: np.ndarray, t: int, lv: int
        ) -> tuple[np.ndarray, float, float]:
            out = distort_image(ref, t, lv, seed=derive_seed(seed, crop_of[ref_id], t, lv))
            bar.advance(1)
            return out, round(proxy_mos(ref, out), 6), 0.0

        ids = ((kadid_ref_id(i), ref) for i, (_, ref) in enumerate(refs))
        table = write_kadid(root, ids, types, levels, distort, _save_png)
    return table.assign(crop=table["ref_img"].str[:-4].map(crop_of))


def build_demo_dataset(
    cache_dir: str | os.PathLike[str],
    spec: DemoSpec | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> DemoData:
    """Build (or reuse from ``cache_dir``) the demo dataset described by ``spec``.

    The folder is ``cache_dir/demo_<hash of spec>``; it is written under a temporary name
    and renamed when complete, so an interrupted build is never reused.
    """
    spec = spec or DemoSpec()
    spec.validate()
    say = log or (lambda _msg: None)
    root = Path(cache_dir).expanduser() / f"demo_{spec.key()}"
    meta_path = root / "demo.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        say(f"reusing the demo dataset cached at {root}")
        return _demo_data(root, meta, reused=True)

    photos, skipped = available_photos(spec.photos)
    for name, why in skipped.items():
        say(f"photograph {name!r} not available offline, skipped ({why})")
    roles = _assign_roles(list(photos), spec)
    say(
        "building the demo dataset from shipped photographs: "
        + "; ".join(f"{r}: {', '.join(v)}" for r, v in roles.items())
    )
    crops = {
        name: reference_crops(photos[name], spec.crops_per_photo, spec.ref_size)
        for role, names in roles.items()
        for name in names
        if role != "train" or not spec.val_crops_per_photo
    }
    held_out: dict[str, list[np.ndarray]] = {}
    if spec.val_crops_per_photo:
        # Non-overlapping tiles: the last ones of each training photograph validate.
        for name in roles["train"]:
            tiles = reference_tiles(
                photos[name], spec.crops_per_photo + spec.val_crops_per_photo, spec.ref_size
            )
            crops[name] = tiles[: spec.crops_per_photo]
            held_out[name] = tiles[spec.crops_per_photo :]

    def refs_of(role: str) -> list[tuple[str, np.ndarray]]:
        refs = [(f"{name}_{j}", crop) for name in roles[role] for j, crop in enumerate(crops[name])]
        if role == "val":  # held-out tiles of the training photographs first
            k = spec.crops_per_photo
            tiles = [
                (f"{n}_{k + j}", t)
                for n in roles["train"]
                for j, t in enumerate(held_out.get(n, []))
            ]
            refs = tiles + refs
        return refs

    with atomic_dir(root) as tmp:
        # Training and validation share one KADID folder (one score scale), selected
        # by reference id; the target set has its own folder and types.
        train_refs, val_refs = refs_of("train"), refs_of("val")
        source = _write_kadid(
            train_refs + val_refs, spec.train_types, spec.levels, tmp / "kadid", spec.seed
        )
        target = _write_kadid(
            refs_of("test"), spec.test_types, spec.levels, tmp / "target", spec.seed
        )
        (tmp / "candidates").mkdir()
        for name, crop in refs_of("candidates"):
            _save_png(crop, tmp / "candidates" / f"{name}.png")
        n_train = len(train_refs)
        meta = {
            "version": DEMO_VERSION,
            "spec": asdict(spec),
            "roles": roles,
            "skipped_photos": skipped,
            "train_refs": list(range(n_train)),
            "val_refs": list(range(n_train, n_train + len(val_refs))),
            "source_crops": dict(zip(source["ref_img"].str[:-4], source["crop"], strict=False)),
            "target_crops": dict(zip(target["ref_img"].str[:-4], target["crop"], strict=False)),
            "counts": {
                "train_refs": n_train,
                "val_refs": len(val_refs),
                "train_images": n_train * len(spec.train_types) * len(spec.levels),
                "val_images": len(val_refs) * len(spec.train_types) * len(spec.levels),
                "test_refs": len(refs_of("test")),
                "test_images": len(target),
                "candidate_refs": len(refs_of("candidates")),
            },
            "label": PROXY_LABEL,
        }
        with atomic_open(tmp / "demo.json") as fh:
            json.dump(meta, fh, indent=2)
    say(f"demo dataset written to {root} ({meta['counts']})")
    return _demo_data(root, meta, reused=False)


def _demo_data(root: Path, meta: dict[str, Any], *, reused: bool) -> DemoData:
    return DemoData(
        root=root,
        kadid_root=root / "kadid",
        target_root=root / "target",
        candidates_dir=root / "candidates",
        train_refs=[int(i) for i in meta["train_refs"]],
        val_refs=[int(i) for i in meta["val_refs"]],
        meta=meta,
        reused=reused,
    )
