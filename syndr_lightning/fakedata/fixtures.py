"""Tiny datasets in every official format, written at test time.

Each writer reproduces the published layout (file names, columns, ``.mat`` keys, xlsx
sheets and header rows, image naming and case quirks) with a handful of tiny images, so
loaders, the CLI and training can be exercised without the real (licensed) data::

    from syndr_lightning.fakedata.fixtures import write_fixture
    root = write_fixture("kadid10k", tmp_path / "kadid", n_refs=3, types=[1, 3])
    root = write_fixture("livec", tmp_path / "livec", n_images=12)

``write_fixture`` returns what ``load_dataset(name, ...)`` takes as root (the CSV file
for ``csv``, the dataset folder otherwise). Scores are random but plausible: distorted
images get worse with the level, so a model can learn something from them.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from syndr_lightning.data.datasets.csiq import CSIQ_TYPES
from syndr_lightning.data.datasets.live import LIVE_FOLDERS
from syndr_lightning.fakedata.kadid import kadid_ref_id, write_kadid
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.io import atomic_open, atomic_path

Size = tuple[int, int]

#: CSIQ reference names in the official order (the first is numeric).
CSIQ_REFS: tuple[str, ...] = (
    "1600", "aerial_city", "boston", "bridge", "butter_flower", "cactus",
    "child_swimming", "couple", "elk", "family", "fisher", "foxy", "geckos",
    "lady_liberty", "lake", "log_seaside", "monument", "native_american", "redwood",
    "roping", "rushmore", "shroom", "snow_leaves", "sunset_sparrow", "sunsetcolor",
    "swarm", "trolley", "turtle", "veggies", "woman",
)  # fmt: skip

_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}


def reference_image(rng: np.random.Generator, size: Size) -> np.ndarray:
    """A smooth random RGB image (HxWx3 uint8) standing in for pristine content."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b = rng.uniform(0.05, 0.4, 2)
        phase = rng.uniform(0, 6.3)
        img[..., c] = 127 + 100 * np.sin(a * xx + b * yy + phase)
    return np.clip(img, 0, 255).astype(np.uint8)


def degrade(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Add noise growing with ``level`` (1..5) to ``img``."""
    noise = rng.normal(0.0, 6.0 * level, img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def save_image(img: np.ndarray, path: Path) -> Path:
    """Write ``img`` atomically in the format given by ``path``'s suffix."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot write image {path.name!r}: use .png, .bmp or .jpg")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _write_mat(path: Path, data: dict[str, Any]) -> None:
    import scipy.io

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        scipy.io.savemat(fh, data)


def _cell(names: Sequence[str], shape: str = "column") -> np.ndarray:
    """A MATLAB cell array of strings as scipy writes it."""
    out = np.empty((len(names), 1) if shape == "column" else (1, len(names)), dtype=object)
    for i, name in enumerate(names):
        out.flat[i] = name
    return out


def _write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    with atomic_path(path) as tmp:
        book.save(tmp)


def _kadid(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 2,
           types: Sequence[int] | None = None, levels: Sequence[int] = (1, 2, 3, 4, 5),
           ref_ids: Sequence[int] | None = None, distinct: int | None = None) -> Path:  # fmt: skip
    ids = list(ref_ids) if ref_ids is not None else list(range(n_refs))
    type_list = list(types) if types is not None else list(range(1, 26))
    if distinct is not None and int(distinct) < 1:
        raise ConfigError(f"write_fixture('kadid10k'): distinct must be >= 1, got {distinct!r}")
    severity = rng.uniform(0.4, 0.9, 26)
    base: dict[str, float] = {}

    def refs() -> Iterator[tuple[str, np.ndarray]]:
        for i in ids:
            ref = reference_image(rng, size)
            base[kadid_ref_id(i)] = rng.uniform(4.3, 4.9)
            yield kadid_ref_id(i), ref

    def distort(ref_id: str, ref: np.ndarray, t: int, lev: int) -> tuple[Any, float, float]:
        k = type_list.index(t)
        if distinct is not None and k >= int(distinct):
            # the (k mod distinct)-th type's image of this level, hard-linked
            first = type_list[k % int(distinct)]
            img: Any = root / "images" / f"{ref_id}_{first:02d}_{lev:02d}.png"
        else:
            img = degrade(ref, lev, rng)
        dmos = np.clip(base[ref_id] - (lev - 1) * severity[t] + rng.normal(0, 0.1), 1.0, 5.0)
        return img, round(float(dmos), 4), round(float(rng.uniform(0.1, 1.0)), 4)

    write_kadid(root, refs(), type_list, levels, distort, save_image)
    return root


def _kadis(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 4,
           dist_imgs: bool = False, types: Sequence[int] = (1, 3),
           levels: Sequence[int] = (1, 3, 5)) -> Path:  # fmt: skip
    lines = ["ref_im,dist_type_1,dist_type_2"]
    for i in range(n_refs):
        stem = f"kadis{i:06d}"
        ref = reference_image(rng, size)
        save_image(ref, root / "ref_imgs" / f"{stem}.png")
        t1, t2 = rng.integers(1, 26, 2)
        lines.append(f"{stem}.png,{t1},{t2}")
        if dist_imgs:
            for t in types:
                for lev in levels:
                    path = root / "dist_imgs" / f"{stem}_{t:02d}_{lev:02d}.bmp"
                    save_image(degrade(ref, lev, rng), path)
    _write_text(root / "kadis700k_ref_imgs.csv", "\n".join(lines) + "\n")
    return root


def _livec(root: Path, rng: np.random.Generator, size: Size, n_images: int = 10) -> Path:
    names = [f"t{i}.bmp" for i in range(1, 8)] + [f"{i + 3}.bmp" for i in range(n_images)]
    for i, name in enumerate(names):
        folder = root / "Images" / ("trainingImages" if i < 7 else "")
        save_image(degrade(reference_image(rng, size), 1 + i % 5, rng), folder / name)
    mos = rng.uniform(5, 95, len(names))
    _write_mat(root / "Data" / "AllImages_release.mat", {"AllImages_release": _cell(names)})
    _write_mat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos[None, :]})
    return root


def _koniq(root: Path, rng: np.random.Generator, size: Size, n_images: int = 8,
           resolution: str = "512x384") -> Path:  # fmt: skip
    head = "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore"
    lines = [",".join(f'"{c}"' for c in head.split(","))]
    for i in range(n_images):
        name = f"{1000000 + 7919 * i}.jpg"
        save_image(reference_image(rng, size), root / resolution / name)
        counts = rng.integers(0, 40, 5)
        total = int(counts.sum()) or 1
        mos = float((counts * np.arange(1, 6)).sum() / total) if counts.sum() else 3.0
        sd = rng.uniform(0.4, 0.9)
        z = (mos - 1) / 4 * 100
        row = [name, *counts.tolist(), total, f"{mos:.4f}", f"{sd:.4f}", f"{z:.4f}"]
        lines.append(",".join(f'"{v}"' if j == 0 else str(v) for j, v in enumerate(row)))
    _write_text(root / "koniq10k_scores_and_distributions.csv", "\n".join(lines) + "\n")
    return root


def _bid(root: Path, rng: np.random.Generator, size: Size, n_images: int = 6) -> Path:
    rows: list[list[Any]] = [["Image Number", "Average Subjective Grade"]]
    for i in range(1, n_images + 1):
        save_image(reference_image(rng, size), root / "ImageDatabase" / f"DatabaseImage{i:04d}.JPG")
        rows.append([i, round(float(rng.uniform(0.3, 4.8)), 4)])
    _write_xlsx(root / "DatabaseGrades.xlsx", {"Plan1": rows})
    return root


#: LIVE release 2: distorted images per folder (the rest of each folder are ref copies).
LIVE_DISTORTED: tuple[int, ...] = (169, 175, 145, 145, 145)


def _live(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 3,
          published: bool = False) -> Path:  # fmt: skip
    n_refs = 29 if published else n_refs
    refnames = [f"ref{i}.bmp" for i in range(n_refs)]
    refs = [reference_image(rng, size) for _ in refnames]
    for name, img in zip(refnames, refs, strict=True):
        save_image(img, root / "refimgs" / name)
    all_names: list[str] = []
    dmos: list[float] = []
    orgs: list[int] = []
    for f, (folder, n_published) in enumerate(LIVE_FOLDERS):
        # small: one distorted image per reference plus one copy of the first reference;
        # published: the release's folder sizes, references cycling
        n_dist = LIVE_DISTORTED[f] if published else n_refs
        n_orig = n_published - n_dist if published else 1
        entries = [(j % n_refs, True) for j in range(n_orig)]
        entries += [(j % n_refs, False) for j in range(n_dist)]
        for k, (j, original) in enumerate(entries, start=1):
            img = refs[j]
            out = img if original else degrade(img, int(rng.integers(1, 6)), rng)
            save_image(out, root / folder / f"img{k}.bmp")
            all_names.append(refnames[j])
            orgs.append(int(original))
            dmos.append(0.0 if original else float(rng.uniform(10, 90)))
    _write_mat(
        root / "dmos_realigned.mat",
        {"dmos_new": np.array([dmos]), "orgs": np.array([orgs], dtype=np.float64)},
    )
    _write_mat(root / "refnames_all.mat", {"refnames_all": _cell(all_names, "row")})
    return root


def _csiq(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 2,
          levels: int = 3, flat: bool = False, csv: bool = False) -> Path:  # fmt: skip
    header = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]
    rows: list[list[Any]] = []
    for r, name in enumerate(CSIQ_REFS[:n_refs]):
        # case quirk: the second reference's files are capitalised, the sheet is not
        file_stem = name.capitalize() if r == 1 else name
        ref = reference_image(rng, size)
        save_image(ref, root / "src_imgs" / f"{file_stem}.png")
        for dst_type, (idx, folder, tag, n_lev) in CSIQ_TYPES.items():
            for lev in range(1, min(levels, n_lev) + 1):
                sub = "dst_imgs_all" if flat else f"dst_imgs/{folder}"
                save_image(degrade(ref, lev, rng), root / sub / f"{file_stem}.{tag}.{lev}.png")
                dmos = float(np.clip(0.15 * lev + rng.normal(0, 0.03), 0, 1))
                image: Any = int(name) if name.isdigit() else name
                rows.append([image, idx, dst_type, lev, round(dmos / 5, 4), round(dmos, 4)])
    if csv:
        lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
        _write_text(root / "csiq.DMOS.csv", "\n".join(lines) + "\n")
    else:
        sheet = [["CSIQ image quality database"], ["DMOS by image"], [], header, *rows]
        _write_xlsx(
            root / "csiq.DMOS.xlsx", {"note": [["see all_by_image"]], "all_by_image": sheet}
        )
    return root


def _tid2013(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 2,
             types: Sequence[int] | None = None, levels: Sequence[int] = (1, 2, 3, 4, 5)) -> Path:  # fmt: skip
    type_list = list(types) if types is not None else list(range(1, 25))
    lines = []
    for r in range(1, n_refs + 1):
        # case quirk: the last reference is stored lower-case ('i25.bmp'), the rest 'I01.BMP'
        last = r == n_refs
        ref = reference_image(rng, size)
        save_image(ref, root / "reference_images" / (f"i{r:02d}.bmp" if last else f"I{r:02d}.BMP"))
        for t in type_list:
            for lev in levels:
                name = f"i{r:02d}_{t:02d}_{lev}.bmp"
                file_name = name.upper().replace(".BMP", ".bmp") if last else name
                save_image(degrade(ref, lev, rng), root / "distorted_images" / file_name)
                mos = float(np.clip(6.5 - 0.9 * lev + rng.normal(0, 0.3), 0, 9))
                lines.append(f"{mos:.5f} {name}")
    _write_text(root / "mos_with_names.txt", "\n".join(lines) + "\n")
    return root


def _pipal(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 2,
           per_class: int = 1) -> Path:  # fmt: skip
    for r in range(1, n_refs + 1):
        ref_name = f"A{r:04d}"
        ref = reference_image(rng, size)
        save_image(ref, root / "Train_Ref" / f"{ref_name}.bmp")
        lines = []
        for cls in range(7):
            for t in range(per_class):
                name = f"{ref_name}_{cls:02d}_{t:02d}.bmp"
                save_image(degrade(ref, 1 + (cls + t) % 5, rng), root / "Distortion" / name)
                lines.append(f"{name},{rng.uniform(1000, 1900):.4f}")
        _write_text(root / "Train_Label" / f"{ref_name}.txt", "\n".join(lines) + "\n")
    return root


def _spaq(root: Path, rng: np.random.Generator, size: Size, n_images: int = 6) -> Path:
    head = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
    rows: list[list[Any]] = [head]
    for i in range(1, n_images + 1):
        name = f"{i:05d}.jpg"
        save_image(reference_image(rng, size), root / "TestImage" / name)
        rows.append([name, *(round(float(v), 2) for v in rng.uniform(5, 95, 6))])
    _write_xlsx(root / "Annotations" / "MOS and Image attribute scores.xlsx", {"Sheet1": rows})
    return root


def _csv(root: Path, rng: np.random.Generator, size: Size, n_refs: int = 3,
         n_images: int = 2) -> Path:  # fmt: skip
    lines = ["path,score,ref,type,level"]
    for r in range(n_refs):
        ref = reference_image(rng, size)
        for k in range(n_images):
            rel = f"images/r{r}_{k}.png"
            save_image(degrade(ref, k + 1, rng), root / rel)
            lines.append(f"{rel},{rng.uniform(0, 100):.3f},r{r},1,{k + 1}")
    path = root / "labels.csv"
    _write_text(path, "\n".join(lines) + "\n")
    return path


def _folder(root: Path, rng: np.random.Generator, size: Size, n_images: int = 4) -> Path:
    for i in range(n_images):
        save_image(reference_image(rng, size), root / f"img{i:03d}.{('png', 'jpg')[i % 2]}")
    return root


WRITERS: dict[str, Callable[..., Path]] = {
    "kadid10k": _kadid,
    "kadis700k": _kadis,
    "livec": _livec,
    "koniq10k": _koniq,
    "bid": _bid,
    "live": _live,
    "csiq": _csiq,
    "tid2013": _tid2013,
    "pipal": _pipal,
    "spaq": _spaq,
    "csv": _csv,
    "folder": _folder,
}


def write_fixture(
    name: str, root: str | Path, *, seed: int = 0, size: Size = (32, 24), **options: Any
) -> Path:
    """Write a tiny copy of dataset ``name`` in its official format under ``root``.

    ``size`` is (width, height) of every image. Options per dataset:

    - ``kadid10k``: ``n_refs`` (2), ``types`` (all 25), ``levels`` (1..5), ``ref_ids``
      (0-based ids, overrides ``n_refs``; e.g. ``range(81)`` for the full reference set),
      ``distinct`` (None: every image encoded; N: only the first N types' images of each
      reference and level are encoded, the others are hard links to them: the full
      81 x 25 x 5 layout in about a second)
    - ``kadis700k``: ``n_refs`` (4), ``dist_imgs`` (False), ``types`` (1, 3),
      ``levels`` (1, 3, 5)
    - ``livec`` / ``koniq10k`` / ``bid`` / ``spaq`` / ``folder``: ``n_images``
      (LIVEC also writes its 7 training entries); ``koniq10k``: ``resolution``
    - ``live``: ``n_refs`` (3), ``published`` (the release's 982 entries, 779 distorted,
      29 references); ``csiq``: ``n_refs`` (2), ``levels`` (3), ``flat``
      (all in ``dst_imgs_all/``), ``csv`` (plain ``csiq.DMOS.csv`` instead of the xlsx)
    - ``tid2013``: ``n_refs`` (2), ``types`` (1..24), ``levels`` (1..5)
    - ``pipal``: ``n_refs`` (2), ``per_class`` (1 image per distortion class 00..06)
    - ``csv``: ``n_refs`` (3), ``n_images`` per reference (2)

    Returns the root to pass to ``load_dataset`` (the CSV file for ``csv``).
    """
    if name not in WRITERS:
        raise ConfigError(f"no fixture writer for {name!r}; available: {sorted(WRITERS)}")
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    writer = WRITERS[name]
    allowed = list(inspect.signature(writer).parameters)[3:]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"write_fixture({name!r}): unknown options {unknown}; allowed: {allowed}")
    return writer(folder, np.random.default_rng(seed), tuple(size), **options)
