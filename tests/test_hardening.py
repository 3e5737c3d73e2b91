"""Nothing half-written, nothing silently wrong (issue 22): labels, images, caches, commands.

Each test here failed on the behaviour before the fix (docs/failures.md lists the promise
each one keeps). Preemption and checkpoints: tests/test_preemption.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from inference_helpers import make_checkpoint, write_image
from PIL import Image

from syndr_lightning.cli import main as syndr
from syndr_lightning.utils.errors import DatasetError


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def _csv(tmp: Path, scores: list[float], name: str = "labels.csv") -> Path:
    rows = []
    for k, s in enumerate(scores):
        img = tmp / "imgs" / f"{k}.png"
        if not img.exists():
            write_image(img, k, (24, 20))
        rows.append({"path": f"imgs/{k}.png", "score": s})
    out = tmp / name
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


# ------------------------------------------------------------------ degenerate labels


@pytest.mark.parametrize(
    ("scores", "needle"),
    [
        ([3.0] * 12, "all 12 scores are equal"),
        ([*np.linspace(1, 5, 11), 1e300], "is absurd"),
        ([*[1.0] * 11, 1.0 + 1e-12, 50.0], "spread is too small to rank"),
        ([1.0, float("inf"), 2.0], "infinite"),
    ],
)
def test_data_check_refuses_unrankable_labels_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scores: list[float], needle: str
) -> None:
    label_file = _csv(tmp_path, scores)
    assert syndr(["data", "check", "csv", str(label_file), "--headers-only"]) == 1
    capsys.readouterr()
    # Every loader uses the same check: training and eval refuse the file too.
    from syndr_lightning.data.datasets import load_dataset

    with pytest.raises(DatasetError, match=needle) as info:
        load_dataset("csv", str(label_file))
    assert str(label_file) in str(info.value)


def test_undefined_metrics_are_nan_not_zero() -> None:
    from syndr_lightning.metrics import iqa_metrics

    with pytest.warns(RuntimeWarning, match="undefined"):
        m = iqa_metrics(np.arange(6.0), np.full(6, 4.0))
    assert all(np.isnan(v) for v in m.values())
    with pytest.warns(RuntimeWarning, match="predictions are all equal"):
        m = iqa_metrics(np.full(6, 2.0), np.arange(6.0))
    assert all(np.isnan(v) for v in m.values())


def test_reshape_up_with_all_nan_labels_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.standard_normal((4, 8)).astype(np.float32))
    np.save(tmp_path / "cands.npy", rng.standard_normal((6, 8)).astype(np.float32))
    np.save(tmp_path / "labels.npy", np.full((4, 2, 3), np.nan))
    out = tmp_path / "up.npz"
    args = ["reshape", "up", "--train-refs", str(tmp_path / "train.npy")]
    args += ["--candidates", str(tmp_path / "cands.npy"), "--labels", str(tmp_path / "labels.npy")]
    assert syndr([*args, "--out", str(out)]) != 0
    assert "missing (NaN)" in _err_line(capsys)
    assert not out.exists()


# ------------------------------------------------------------------ corrupt images


def _flip_idat_crc_byte(path: Path) -> None:
    """Flip one bit of the IDAT chunk's CRC-32 (Pillow never checks it; the pixel data
    itself is also protected by zlib's Adler-32, which this Pillow does check)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"IDAT")
    length = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 + length + 1] ^= 0x01
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_png_with_a_flipped_byte_is_refused_by_data_check_and_before_fitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.data.check_images import check_images

    label_file = _csv(tmp_path, list(np.linspace(1, 5, 4)))
    bad = tmp_path / "imgs" / "2.png"
    _flip_idat_crc_byte(bad)
    Image.open(bad).load()  # Pillow decodes it without a word
    assert syndr(["data", "check", "csv", str(label_file)]) == 1
    assert "fails its CRC check" in capsys.readouterr().err
    n_bad, first = check_images([str(p) for p in (tmp_path / "imgs").glob("*.png")])
    assert n_bad == 1 and str(bad) in first and "CRC" in first


def test_jpeg_with_a_broken_marker_structure_is_refused(tmp_path: Path) -> None:
    from syndr_lightning.utils.images import verify_image

    good = write_image(tmp_path / "a.jpg", 1)
    assert verify_image(good) is None
    data = good.read_bytes()
    cut = tmp_path / "b.jpg"
    cut.write_bytes(data[:-2] + b"\0" * 8)  # truncated, padded with zeros: no end marker
    Image.open(cut).load()  # Pillow decodes it (libjpeg's warning is not surfaced)
    assert "JPEG file ends inside its image data" in (verify_image(cut) or "")


def test_data_check_notices_a_kadid_copy_lacking_a_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.fakedata.fixtures import write_fixture

    root = write_fixture("kadid10k", tmp_path / "kadid", n_refs=2, types=[1], levels=[1, 2, 3])
    assert syndr(["data", "check", "kadid10k", str(root), "--headers-only"]) == 0
    capsys.readouterr()
    (root / "images" / "I02.png").unlink()
    assert syndr(["data", "check", "kadid10k", str(root), "--headers-only"]) == 1
    assert "I02" in capsys.readouterr().err


# ------------------------------------------------------------------ cache integrity


def _edit_keeping_size_and_mtime(path: Path, offset: int) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_image_cache_edit_is_found_and_rebuilt(tmp_path: Path) -> None:
    from syndr_lightning.data.cache import ImageCache

    paths = [str(write_image(tmp_path / f"{k}.png", k, (20, 16))) for k in range(3)]
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    truth = [cache.get(p) for p in paths]
    index = json.loads(cache.index_file.read_text())
    _edit_keeping_size_and_mtime(cache.data_file, 20 * 16 * 3 + 5)  # inside image 1
    opened = ImageCache(cache.index_file, index)  # edited while a run has it open:
    with pytest.raises(DatasetError, match="does not match the checksum") as info:
        opened.get(paths[1])  # the edited image is never returned
    assert "\n" not in str(info.value)
    rebuilt = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert rebuilt.built  # its index was removed: the next open rebuilds
    for p, t in zip(paths, truth, strict=True):
        np.testing.assert_array_equal(rebuilt.get(p), t)
    # An index without checksums (an older version's) is rebuilt, never trusted.
    index = json.loads(rebuilt.index_file.read_text())
    del index["checksums"]
    index["version"] = 2
    rebuilt.index_file.write_text(json.dumps(index))
    assert ImageCache.open_or_build(paths, tmp_path / "cache", progress=False).built


def test_crop_cache_edit_is_found_and_rebuilt(tmp_path: Path) -> None:
    from syndr_lightning.reshape.features import CropCache, extract_features

    paths = [str(write_image(tmp_path / f"{k}.png", k, (24, 20))) for k in range(5)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    model.append(torch.nn.Flatten())
    plain = extract_features(model, paths, crop_size=16)
    cache_dir = tmp_path / "crops"
    extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    cache = CropCache(cache_dir, paths, 16, None)
    assert cache.ready and cache.verify()
    _edit_keeping_size_and_mtime(cache.file, 2 * 16 * 16 * 3 + 7)  # inside crop 2
    got = extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6)
    assert cache.ready and cache.verify()  # rebuilt by that pass


# ------------------------------------------------------------------ commands


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt")


def test_predict_refuses_non_finite_weights_as_eval_does(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith("head.weight"))
    state["state_dict"][key][0, 0] = float("nan")
    bad = tmp_path / "nan.ckpt"
    torch.save(state, bad)
    img = write_image(tmp_path / "a.png", 0)
    out = tmp_path / "scores.csv"
    assert syndr(["predict", "--ckpt", str(bad), str(img), "--out", str(out)]) == 1
    assert "non-finite" in _err_line(capsys) and not out.exists()


def test_predict_keeps_a_read_only_output_file(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = write_image(tmp_path / "a.png", 0)
    out = tmp_path / "scores.csv"
    out.write_text("keep me\n")
    out.chmod(0o444)
    args = ["predict", "--ckpt", str(ckpt), str(img), "--no-progress"]
    assert syndr([*args, "--out", str(out)]) == 2
    assert "read-only" in _err_line(capsys)
    assert out.read_text() == "keep me\n"


def _labelled(tmp: Path, n: int = 6) -> Path:
    return _csv(tmp, list(np.linspace(1, 9, n)))


def test_eval_json_has_null_for_undefined_metrics_and_names_skipped_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = make_checkpoint(tmp_path / "flat.ckpt")  # constant predictions: metrics undefined
    state = torch.load(flat, weights_only=True)
    for k in state["state_dict"]:
        if k.endswith("head.weight"):
            state["state_dict"][k].zero_()
    torch.save(state, flat)
    label_file = _labelled(tmp_path)
    (tmp_path / "imgs" / "3.png").write_bytes(b"not an image")
    out = tmp_path / "eval.json"
    args = ["eval", "--ckpt", str(flat), "--data", "csv", str(label_file), "--no-progress"]
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert syndr([*args, "--crops", "1", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "3.png" in captured.err and "skipped 1 unreadable" in captured.err
    strict = json.loads(out.read_text(), parse_constant=pytest.fail)
    assert strict["metrics"]["srcc"] is None
    assert strict["protocol"]["skipped"][0]["path"].endswith("3.png")
    json.loads(captured.out, parse_constant=pytest.fail)  # --json: valid JSON too


def test_eval_and_export_out_folder_and_bad_opset_are_one_line(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label_file = _labelled(tmp_path)
    folder = tmp_path / "existing"
    folder.mkdir()
    ev = ["eval", "--ckpt", str(ckpt), "--data", "csv", str(label_file), "--no-progress"]
    assert syndr([*ev, "--crops", "1", "--out", str(folder)]) == 2
    assert "is a directory" in _err_line(capsys)
    exp = ["export", "--ckpt", str(ckpt), "--format", "torchscript", "--out", str(folder)]
    assert syndr(exp) == 2
    assert "is a directory" in _err_line(capsys)
    onnx = ["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]
    assert syndr([*onnx, "--opset", "1"]) == 2
    assert "--opset 1 is not supported" in _err_line(capsys)
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob(".*.tmp"))


def test_big_endian_npy_features_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((30, 8))
    np.save(tmp_path / "f.npy", feats.astype(">f4"))
    np.save(tmp_path / "y.npy", np.linspace(0, 10, 30).astype(">f8"))
    out = tmp_path / "down.npz"
    args = ["reshape", "down", "--features", str(tmp_path / "f.npy")]
    assert syndr([*args, "--labels", str(tmp_path / "y.npy"), "--out", str(out)]) == 0
    assert out.is_file()


def test_distort_names_a_1x1_reference_and_refuses_out_equal_to_refs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = tmp_path / "refs"
    write_image(refs / "ok.png", 0, (24, 20))
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(refs / "dot.png")
    base = ["distort", "--refs", str(refs), "--types", "1", "--levels", "1", "--no-progress"]
    assert syndr([*base, "--out", str(tmp_path / "out")]) == 1
    assert "dot.png" in _err_line(capsys)
    (refs / "dot.png").unlink()
    assert syndr([*base, "--out", str(refs)]) == 2
    assert "is the --refs folder" in _err_line(capsys)
    assert sorted(p.name for p in refs.iterdir()) == ["ok.png"]


def test_cache_dir_naming_a_file_and_max_epochs_zero_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hydra.core.global_hydra import GlobalHydra

    from syndr_lightning.__main__ import run_task
    from syndr_lightning.train import compose_config

    a_file = tmp_path / "afile"
    a_file.write_text("")
    for override, needle in [
        (f"paths.cache_dir={a_file}", "is a file, not a folder"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 would test untrained weights"),
    ]:
        GlobalHydra.instance().clear()
        cfg = compose_config(
            ["model=tiny", "data=generated", "reshape=none", override], tmp_path / "out"
        )
        with pytest.raises(SystemExit) as info:
            run_task(cfg)
        assert info.value.code == 2
        assert needle in _err_line(capsys)


def test_unknown_config_key_exits_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from hydra.core.global_hydra import GlobalHydra

    from syndr_lightning.__main__ import main

    monkeypatch.setenv("SYNDR_LOG_DIR", str(tmp_path))
    for argv in (["trainer.bogus_key=1"], ["model=nosuch"]):
        GlobalHydra.instance().clear()
        monkeypatch.setattr("sys.argv", ["syndr-train", *argv])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code == 2
        line = _err_line(capsys)
        assert line.startswith("error: ") and argv[0].split("=")[1 if "model" in argv[0] else 0]


def test_json_helpers_never_write_nan() -> None:
    from syndr_lightning.utils.io import dumps_json

    text = dumps_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float32("nan")})
    assert json.loads(text, parse_constant=pytest.fail) == {"a": None, "b": [None, 1.5], "c": None}


# ------------------------------------------------------------------ full disks


def _tmpfs(path: Path, size: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root; not root")
    path.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    return path


@pytest.fixture
def full_disk(tmp_path: Path):
    disk = _tmpfs(tmp_path / "disk", "64k")
    filler = disk / "filler"
    with open(filler, "wb") as fh, contextlib.suppress(OSError):  # fill it completely
        fh.write(b"\0" * (64 * 1024))
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_predict_and_export_are_one_line_and_leave_nothing(
    ckpt: Path, tmp_path: Path, full_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imgs = [str(write_image(tmp_path / f"{k}.png", k)) for k in range(40)]
    out = full_disk / "scores.csv"
    args = ["predict", "--ckpt", str(ckpt), *imgs, "--crops", "1", "--no-progress"]
    assert syndr([*args, "--out", str(out)]) == 1
    assert "no space left" in _err_line(capsys)
    exp = ["export", "--ckpt", str(ckpt), "--format", "torchscript"]
    assert syndr([*exp, "--out", str(full_disk / "m.pt")]) == 1
    assert "no space left" in _err_line(capsys)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_full_disk_during_the_ddcup_build_is_one_line(tmp_path: Path) -> None:
    from syndr_lightning.data.datasets import get_loader, load_dataset
    from syndr_lightning.data.upsample import UpsampleSpec, build_upsampled_set
    from syndr_lightning.fakedata.fixtures import write_fixture
    from syndr_lightning.reshape.params import DDCUpParams

    kadid = write_fixture("kadid10k", tmp_path / "kadid", n_refs=3, types=[1])
    kadis = write_fixture("kadis700k", tmp_path / "kadis", n_refs=3, size=(64, 48))
    manifest = load_dataset("kadid10k", str(kadid), types=[1])
    refs = get_loader("kadid10k")(kadid, types=[1]).references()
    cands = get_loader("kadis700k")(kadis).references()
    spec = UpsampleSpec(
        (1,),
        DDCUpParams(
            encoder="tiny_cnn", encoder_weights="none", encoder_crop=32, select_candidates=False
        ),
    )
    from syndr_lightning.utils.errors import DiskFullError

    disk = _tmpfs(tmp_path / "disk", "48k")  # the lock fits, GenDist's images do not
    try:
        with pytest.raises(DiskFullError, match="no space left") as info:
            build_upsampled_set(manifest, refs, cands, disk, spec, progress=False)
        assert "\n" not in str(info.value)
        left = [p.relative_to(disk) for p in disk.rglob("*") if p.is_file()]
        assert left == [], left  # no temporary, no lock, no partial set
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_block_checksums_detect_a_single_flipped_bit() -> None:
    from syndr_lightning.utils.integrity import block_crcs

    for width in (296, 300):  # a multiple of 8 bytes, and not
        blocks = np.random.default_rng(0).integers(0, 256, (4, width), dtype=np.uint8)
        sums = block_crcs(blocks)
        blocks[1, 17] ^= 0x04
        assert np.flatnonzero(block_crcs(blocks) != sums).tolist() == [1]
