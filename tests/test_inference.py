"""Prediction API and ``syndr predict``: paths, PIL images, tensors, folders, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from inference_helpers import CROP, make_checkpoint, write_image
from PIL import Image

from syndr_lightning import load_model
from syndr_lightning.cli import main as syndr_main
from syndr_lightning.inference.api import collect_images, read_checkpoint_meta, to_rgb_array
from syndr_lightning.utils.errors import InputError


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def test_score_path_pil_array_tensor_agree(ckpt: Path, tmp_path: Path) -> None:
    img_path = write_image(tmp_path / "a.png", 1)
    m = load_model(ckpt, crops=3, crop_size=CROP)
    pil = Image.open(img_path)
    arr = np.array(pil.convert("RGB"))
    tensor = torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0
    s_path = m.score(str(img_path))
    assert isinstance(s_path, float)
    assert 0.0 <= s_path <= 10.0
    assert m.score(pil) == pytest.approx(s_path, abs=1e-6)
    assert m.score(arr) == pytest.approx(s_path, abs=1e-6)
    assert m.score(tensor) == pytest.approx(s_path, abs=1e-4)
    # Deterministic, and independent of the position in a list.
    other = write_image(tmp_path / "b.jpg", 2)
    batch = m.score([other, img_path])
    assert batch[1] == pytest.approx(s_path, abs=1e-6)
    assert batch[0] != pytest.approx(batch[1], abs=1e-6)


def test_checkpoint_meta_and_bad_checkpoint(ckpt: Path, tmp_path: Path) -> None:
    meta = read_checkpoint_meta(ckpt)
    assert meta["backbone"] == "tiny_cnn"
    assert meta["crop_size"] is None  # nothing recorded: load_model falls back to 224
    # A training run folder: <run>/config_resolved.yaml and <run>/checkpoints/*.ckpt.
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config_resolved.yaml").write_text("data:\n  crop_size: 48\n")
    in_run = run / "checkpoints" / "last.ckpt"
    in_run.write_bytes(ckpt.read_bytes())
    assert read_checkpoint_meta(in_run)["crop_size"] == 48
    assert load_model(in_run).crop_size == 48
    assert load_model(in_run, crop_size=CROP).crop_size == CROP
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_model(junk)
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.ckpt")


def test_bad_inputs_raise_clear_errors(ckpt: Path, tmp_path: Path) -> None:
    m = load_model(ckpt, crops=1, crop_size=CROP)
    with pytest.raises(InputError, match=r"raw RGB in 0\.\.1"):
        m.score(np.full((40, 40, 3), 3.5, dtype=np.float32))
    with pytest.raises(InputError, match=r"\[3,H,W\]"):
        to_rgb_array(torch.zeros(5, 8, 8))
    with pytest.raises(InputError, match="cannot score an object"):
        m.score(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="do not exist"):
        collect_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        collect_images([tmp_path / "empty"])


def test_predict_folder_with_corrupt_file(ckpt: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "photos"
    formats = ["a.png", "b.jpg", "sub/c.bmp", "sub/deeper/d.tiff", "e.webp", "f.JPEG"]
    for i, name in enumerate(formats):
        write_image(root / name, i)
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "notes.txt").write_text("not an image, not listed")
    single = write_image(tmp_path / "single.png", 99)
    out = tmp_path / "scores.csv"
    code = syndr_main(
        [
            "predict",
            "--ckpt",
            str(ckpt),
            str(root),
            str(single),
            "--out",
            str(out),
            "--crops",
            "2",
            "--crop-size",
            str(CROP),
            "--batch-size",
            "3",
            "--quiet",
        ]
    )
    assert code == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["path", "score", "error"]
    assert len(table) == len(formats) + 2  # six images, the broken file, the single file
    names = {Path(p).name: row for p, row in zip(table["path"], table.itertuples(), strict=True)}
    assert "notes.txt" not in names
    broken = names["broken.png"]
    assert broken.score == "" and "IEND chunk (truncated)" in broken.error  # checked first
    good = table[table["error"] == ""]
    assert len(good) == len(formats) + 1
    scores = good["score"].astype(float)
    assert scores.between(0, 10).all()
    # The CLI and the Python API give the same score for the same file.
    api = load_model(ckpt, crops=2, crop_size=CROP)
    assert float(names["single.png"].score) == pytest.approx(api.score(single), abs=1e-3)
    assert "1 unreadable" in capsys.readouterr().out


def test_predict_cli_errors_are_one_line(ckpt: Path, tmp_path: Path, capsys) -> None:
    img = write_image(tmp_path / "a.png", 0)
    out = tmp_path / "o.csv"
    code = syndr_main(["predict", "--ckpt", str(tmp_path / "x.ckpt"), str(img), "--out", str(out)])
    assert code == 1  # a missing checkpoint is bad input (usage mistakes are 2)
    err = capsys.readouterr().err.strip()
    assert err.startswith("syndr predict: error: checkpoint") and "\n" not in err
    assert not out.exists()
