"""Failure behaviour (docs/failures.md): hostile checkpoints, damaged images and labels,
diverging training, late and multi-line errors. Caches under concurrency: test_locking.py."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from inference_helpers import CROP, make_checkpoint, write_image
from PIL import Image

from syndr_lightning import load_model
from syndr_lightning.cli import main as syndr_main
from syndr_lightning.data.cache import ImageCache
from syndr_lightning.data.datamodule import read_manifest_image
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.manifest import make_manifest, validate_manifest
from syndr_lightning.inference.api import to_rgb_array
from syndr_lightning.models.backbones import build_backbone
from syndr_lightning.models.module import BIQAModule
from syndr_lightning.utils.checkpoints import CHECKPOINT_GLOBALS, safe_torch_load
from syndr_lightning.utils.errors import ConfigError, DatasetError, InputError
from syndr_lightning.utils.images import MAX_PIXELS_ENV, image_size, read_rgb


def _one_line(err: str) -> str:
    """The one error line on stderr (progress-bar rows, drawn with '━', are not errors)."""
    lines = [line for line in err.strip().splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


# ----------------------------------------------------------------- 1. checkpoints
class _Payload:
    """Unpickling this runs ``open(marker, "w")``: creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def test_malicious_checkpoint_runs_nothing_and_is_refused(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(InputError, match="refusing to load checkpoint") as info:
        load_model(evil)
    assert "\n" not in str(info.value) and "io.open" in str(info.value)
    with pytest.raises(ConfigError, match=r"refusing to load model\.weights file"):
        build_backbone("tiny_cnn", str(evil))
    img = write_image(tmp_path / "a.png", 0)
    code = syndr_main(["predict", "--ckpt", str(evil), str(img), "--out", str(tmp_path / "o.csv")])
    # a refused checkpoint is bad data: exit status 1 (utils.cliopts: 1 data, 2 usage)
    assert code == 1 and "refusing" in _one_line(capsys.readouterr().err)
    assert not marker.exists() and not (tmp_path / "o.csv").exists()
    # The payload is live: the unsafe loader this replaced would have run it.
    torch.load(evil, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_real_checkpoints_need_no_extra_globals(tmp_path: Path) -> None:
    """A checkpoint written by fitting (loops, callbacks, optimizer states, hparams)."""
    torch.manual_seed(0)
    model = BIQAModule(backbone="tiny_cnn", weights="none")
    data = [{"image": torch.randn(2, 3, 16, 16), "score": torch.rand(2) * 10} for _ in range(2)]
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="fit")
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        callbacks=[ckpt_cb],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    assert CHECKPOINT_GLOBALS == ()
    loaded = safe_torch_load(tmp_path / "fit.ckpt")
    assert type(loaded["hyper_parameters"]) is dict and loaded["optimizer_states"]
    scorer = load_model(tmp_path / "fit.ckpt", crops=1, crop_size=CROP)
    for key, value in model.state_dict().items():
        assert torch.equal(scorer.module.state_dict()[key], value)


def test_checkpoint_of_another_model_config_names_keys_and_shapes(ckpt: Path, tmp_path: Path):
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    state = data["state_dict"]
    state["head.weight"] = torch.zeros(1, 7)
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(2)
    other = tmp_path / "other.ckpt"
    torch.save(data, other)
    with pytest.raises(InputError) as info:
        load_model(other)
    msg = str(info.value)
    assert "\n" not in msg and "backbone='tiny_cnn'" in msg
    assert "1 missing (head.bias)" in msg and "1 unexpected (extra.weight)" in msg
    assert "head.weight: model (1, " in msg and "checkpoint (1, 7)" in msg


# ----------------------------------------------------------------- 3. images
def _png16(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> Path:
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    return path


def test_16_bit_images_are_scaled_everywhere(ckpt: Path, tmp_path: Path) -> None:
    from syndr_lightning.reshape.features import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        load_feature_pass_crop,
        load_reference_tensor,
    )

    path = _png16(tmp_path / "deep.png", 32768)
    want = np.full((30, 40, 3), 128, np.uint8)  # round(32768 * 255 / 65535)
    for reader in (read_rgb, read_manifest_image, to_rgb_array):
        np.testing.assert_array_equal(reader(path), want)
    cache = ImageCache.open_or_build([path], tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(cache.get(path), want)
    np.testing.assert_array_equal(load_feature_pass_crop(str(path), 16), want[:16, :16])
    crop = load_reference_tensor(path, 16) * torch.tensor(IMAGENET_STD).view(3, 1, 1)
    crop += torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert torch.allclose(crop, torch.full_like(crop, 128 / 255), atol=1e-5)
    # predict no longer scores a mid-grey 16-bit image as a white one
    m = load_model(ckpt, crops=1, crop_size=CROP)
    grey = tmp_path / "grey8.png"
    Image.fromarray(want).save(grey)
    assert m.score(path) == pytest.approx(m.score(grey), abs=1e-6)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white, stored 40 wide x 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "rotated.png"
    Image.fromarray(arr).save(path, exif=exif)
    got = read_rgb(path)
    assert got.shape == (40, 20, 3) and image_size(path) == (40, 20)
    np.testing.assert_array_equal(got, np.rot90(arr, k=-1))  # the white half is now on top
    cache = ImageCache.open_or_build([path], tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(cache.get(path), got)


def _bomb(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A PNG whose header claims w x h pixels (a decompression bomb's signature)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_decompression_bomb_is_one_line_everywhere(ckpt: Path, tmp_path: Path, capsys, monkeypatch):
    bomb = (
        _bomb(tmp_path / "photos" / "bomb.png") if (tmp_path / "photos").mkdir() is None else None
    )
    good = write_image(tmp_path / "photos" / "good.png", 1)
    with pytest.raises(DatasetError, match="pixel limit") as info:
        read_rgb(bomb)
    assert "\n" not in str(info.value) and "bomb.png" in str(info.value)
    # predict: the bomb is reported like any unreadable image; the others are scored
    out = tmp_path / "s.csv"
    args = ["predict", "--ckpt", str(ckpt), str(tmp_path / "photos"), "--out", str(out)]
    assert syndr_main([*args, "--crop-size", str(CROP), "--quiet"]) == 0
    table = pd.read_csv(out, keep_default_na=False).set_index("path")
    assert "pixel limit" in table.loc[str(bomb), "error"] and table.loc[str(good), "error"] == ""
    # data check (folder of images): exit 1, one line naming the file
    capsys.readouterr()
    assert syndr_main(["data", "check", "folder", str(tmp_path / "photos")]) == 1
    assert "bomb.png" in _one_line(capsys.readouterr().err)
    # the limit is configurable: a 48x40 image is refused under a limit of 1000 pixels
    monkeypatch.setenv(MAX_PIXELS_ENV, "")  # restored after the test (--max-pixels sets it)
    small = tmp_path / "small.csv"
    argv = ["predict", "--ckpt", str(ckpt), str(good), "--out", str(small), "--quiet"]
    assert syndr_main([*argv, "--crop-size", str(CROP), "--max-pixels", "1000"]) == 1
    assert "above the limit of 1,000" in pd.read_csv(small, keep_default_na=False)["error"][0]
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(DatasetError, match="above the limit of 1,000"):
        read_manifest_image(str(good))


# ----------------------------------------------------------------- 3. labels
def test_duplicate_images_with_conflicting_scores_are_refused(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / f"{i}.png", i)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,score\n0.png,1\n1.png,5\n0.png,9\n2.png,3\n")
    with pytest.raises(DatasetError, match=r"0\.png' at label rows 1, 3 .* scores 1, 9"):
        load_dataset("csv", str(csv))
    averaged = load_dataset("csv", str(csv), duplicates="mean")
    assert len(averaged) == 3
    assert averaged.set_index("path")["raw_score"].to_dict() == {
        str(tmp_path / "0.png"): 5.0,
        str(tmp_path / "1.png"): 5.0,
        str(tmp_path / "2.png"): 3.0,
    }
    with pytest.raises(ConfigError, match="duplicates='sum' is unknown"):
        make_manifest(["a"], [1.0], dataset="x", duplicates="sum")


def test_nan_score_names_file_and_row(tmp_path: Path) -> None:
    df = make_manifest(["a.png", "b.png", "c.png"], [1.0, np.nan, 3.0], dataset="mine")
    with pytest.raises(DatasetError, match=r"row 1, 'b\.png'.*'mine'"):
        validate_manifest(df)


def test_reshape_down_refuses_labels_outside_0_10(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.standard_normal((10, 4)))
    np.save(tmp_path / "y.npy", rng.uniform(0, 100, 10))
    out = tmp_path / "o.npz"
    argv = ["reshape", "down", "--features", str(tmp_path / "f.npy"), "--out", str(out)]
    assert syndr_main([*argv, "--labels", str(tmp_path / "y.npy")]) == 1
    assert "must lie in 0..10" in _one_line(capsys.readouterr().err) and not out.exists()


def test_npy_with_a_huge_header_is_refused_before_allocating(tmp_path: Path, capsys) -> None:
    fake = tmp_path / "huge.npy"
    with open(fake, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**6)}
        )
        fh.write(b"\0" * 64)
    np.save(tmp_path / "y.npy", np.zeros(3))
    out = tmp_path / "o.npz"
    argv = ["reshape", "down", "--features", str(fake), "--labels", str(tmp_path / "y.npy")]
    assert syndr_main([*argv, "--out", str(out)]) == 1
    assert "header claims shape (1000000000, 1000000)" in _one_line(capsys.readouterr().err)
    (tmp_path / "dir.npz").mkdir()
    assert syndr_main([*argv, "--out", str(tmp_path / "dir.npz")]) == 2  # usage: checked first
    assert "is a directory" in _one_line(capsys.readouterr().err)


# ----------------------------------------------------------------- predict
def test_predict_checks_out_first_and_keeps_an_old_csv(
    ckpt: Path, tmp_path: Path, capsys, monkeypatch
):
    import syndr_lightning.inference.predict as predict_cli

    img = write_image(tmp_path / "a.png", 0)
    (tmp_path / "outdir").mkdir()

    def never(*a: object, **k: object) -> None:
        raise AssertionError("scored before checking --out")

    with monkeypatch.context() as m:
        m.setattr(predict_cli, "predict_files", never)
        code = syndr_main(
            ["predict", "--ckpt", str(ckpt), str(img), "--out", str(tmp_path / "outdir")]
        )
    assert code == 2 and "is a directory" in _one_line(capsys.readouterr().err)
    out = tmp_path / "scores.csv"
    out.write_text("path,score,error\nold.png,7.0,\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (broken / "y.png").write_bytes(b"")
    argv = ["predict", "--ckpt", str(ckpt), str(broken), "--out", str(out), "--quiet"]
    assert syndr_main([*argv, "--crop-size", str(CROP)]) == 1
    assert "none of the 2 images" in _one_line(capsys.readouterr().err)
    assert out.read_text() == "path,score,error\nold.png,7.0,\n"
    assert not list(tmp_path.glob(".scores.csv*"))


# ----------------------------------------------------------------- training
TINY = [
    "model=tiny",
    "reshape=none",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=3",
    "data.train.options.size=[40,48]",
    "data.test=[]",
    "callbacks.rich_progress_bar=null",
]


def _cfg(tmp_path: Path, *extra: str):
    from syndr_lightning.train import compose_config

    GlobalHydra.instance().clear()
    paths = [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'logs'}"]
    return compose_config([*TINY, *paths, *extra], output_dir=tmp_path / "run")


def test_diverged_training_stops_naming_the_learning_rate(tmp_path: Path, capsys) -> None:
    from syndr_lightning.__main__ import run_task

    with pytest.raises(SystemExit) as info:
        run_task(_cfg(tmp_path, "model.lr=1e20"))
    assert info.value.code == 3  # diverged: its own status (docs/failures.md), not 2 or 1
    line = _one_line(capsys.readouterr().err)
    assert "training diverged" in line and "model.lr=1e+20" in line and "lower model.lr" in line
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_corrupt_training_image_is_found_before_fitting(tmp_path: Path, monkeypatch) -> None:
    from syndr_lightning.data import check_images as ci
    from syndr_lightning.train import train

    calls: list[str] = []
    real = ci.verify_image

    def counting(path: str) -> str | None:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(ci, "verify_image", counting)
    cfg = _cfg(tmp_path, "trainer.max_epochs=1")
    train(cfg)  # generates the data; every image decodes and the set is remembered
    n_images = len(calls)
    assert n_images > 0
    train(_cfg(tmp_path, "trainer.max_epochs=1"))
    assert len(calls) == n_images  # remembered by file identity: not decoded again
    victim = sorted((tmp_path / "cache" / "synthetic").rglob("*.png"))[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # truncated
    fitted: list[int] = []
    monkeypatch.setattr(BIQAModule, "training_step", lambda *a, **k: fitted.append(1))
    with pytest.raises(DatasetError, match=rf"checked before fitting.*{victim.name}"):
        train(_cfg(tmp_path, "trainer.max_epochs=1"))
    assert fitted == []
