"""Cache digests that catch real damage (issue 32): reordered words inside one block, a
damaged sidecar, swapped generated labels, a changed byte in an upsampled image, and
damaged test-set caches found before training. Each edit keeps the file's size and mtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from inference_helpers import write_image

from syndr_lightning.data.cache import ImageCache


def _keep_stat(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path`` keeping its modification time (and size: same length)."""
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _swap_words(path: Path, offset: int) -> None:
    """Swap the two 8-byte words at ``offset`` and ``offset + 8`` (a sum of words keeps)."""
    data = bytearray(path.read_bytes())
    a, b = bytes(data[offset : offset + 8]), bytes(data[offset + 8 : offset + 16])
    assert a != b
    data[offset : offset + 8], data[offset + 8 : offset + 16] = b, a
    _keep_stat(path, bytes(data))


def test_digest_changes_when_words_of_a_block_are_reordered() -> None:
    from syndr_lightning.utils.integrity import block_crcs

    blocks = np.random.default_rng(1).integers(0, 256, (3, 64), dtype=np.uint8)
    sums = block_crcs(blocks)
    swapped = blocks.copy()
    swapped[1, 0:8], swapped[1, 8:16] = blocks[1, 8:16], blocks[1, 0:8]
    assert np.flatnonzero(block_crcs(swapped) != sums).tolist() == [1]


def test_image_cache_with_reordered_words_is_rebuilt_when_opened(tmp_path: Path) -> None:
    paths = [str(write_image(tmp_path / f"{k}.png", k, (20, 16))) for k in range(3)]
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    truth = [cache.get(p) for p in paths]
    _swap_words(cache.data_file, 20 * 16 * 3 + 40)  # inside image 1
    again = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert again.built  # found when opened, before any image is served
    for p, t in zip(paths, truth, strict=True):
        np.testing.assert_array_equal(again.get(p), t)


def _crop_setup(tmp_path: Path) -> tuple[list[str], torch.nn.Module, Path]:
    paths = [str(write_image(tmp_path / f"{k}.png", k, (24, 20))) for k in range(5)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    model.append(torch.nn.Flatten())
    return paths, model, tmp_path / "crops"


def test_crop_cache_with_reordered_words_is_rebuilt(tmp_path: Path) -> None:
    from syndr_lightning.reshape.features import CropCache, extract_features

    paths, model, cache_dir = _crop_setup(tmp_path)
    plain = extract_features(model, paths, crop_size=16)
    extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    cache = CropCache(cache_dir, paths, 16, None)
    assert cache.ready and cache.verify()
    _swap_words(cache.file, 2 * 16 * 16 * 3 + 24)  # inside crop 2
    assert not cache.verify()  # found (and the cache deleted) ...
    got = extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6)
    assert cache.ready and cache.verify()  # ... and rebuilt by the next pass


@pytest.mark.parametrize("damage", ["header", "truncated", "empty", "old-format"])
def test_damaged_crop_cache_sidecar_means_rebuild(tmp_path: Path, damage: str) -> None:
    from syndr_lightning.reshape.features import CropCache, extract_features
    from syndr_lightning.utils.integrity import block_crcs, crc_file

    paths, model, cache_dir = _crop_setup(tmp_path)
    plain = extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    cache = CropCache(cache_dir, paths, 16, None)
    sidecar = crc_file(cache.file)
    data = sidecar.read_bytes()
    if damage == "header":  # an unterminated string in the .npy header's literal
        at = data.index(b"'descr'")
        sidecar.write_bytes(data[:at] + b"'''" + data[at + 3 :])
    elif damage == "truncated":
        sidecar.write_bytes(data[:20])
    elif damage == "empty":
        sidecar.write_bytes(b"")
    else:  # the previous format: the digests alone, no header entry
        with open(sidecar, "wb") as fh:
            np.save(fh, block_crcs(cache.open()), allow_pickle=False)
    assert not cache.ready  # never a traceback: the cache is rebuilt
    got = extract_features(model, paths, crop_size=16, cache_dir=cache_dir)
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6)
    assert cache.ready and cache.verify()


def test_damaged_test_set_cache_is_found_before_training(
    synthetic_csv: Path, authentic_csv: Path, tmp_path: Path
) -> None:
    from syndr_lightning.data.datamodule import IQADataModule

    def datamodule() -> IQADataModule:
        return IQADataModule(
            train={"name": "csv", "root": str(synthetic_csv)},
            test=[{"name": "csv", "root": str(authentic_csv), "label": "auth"}],
            batch_size=4,
            crop_size=32,
            image_cache=True,
            cache_dir=str(tmp_path / "c"),
        )

    first = datamodule()
    first.setup("fit")  # every cache the run reads is opened here, test sets included
    test_paths = list(first.test_manifests["auth"]["path"].astype(str))
    test_cache = ImageCache.open_or_build(test_paths, tmp_path / "c", progress=False)
    assert not test_cache.built
    truth = test_cache.get(test_paths[0])
    _swap_words(test_cache.data_file, 64)  # inside the first test image
    again = datamodule()
    again.setup("fit")  # no batch read yet
    reopened = ImageCache.open_or_build(test_paths, tmp_path / "c", progress=False)
    assert not reopened.built  # already rebuilt by setup
    np.testing.assert_array_equal(reopened.get(test_paths[0]), truth)


def test_swapped_generated_labels_are_written_again(tmp_path: Path) -> None:
    from syndr_lightning.fakedata.synthetic import generate_synthetic_iqa

    csv = generate_synthetic_iqa(tmp_path / "gen", n_refs=2, n_types=1, n_levels=3)
    before = pd.read_csv(csv)
    lines = csv.read_text().splitlines(keepends=True)
    lines[1], lines[3] = lines[3], lines[1]  # two rows (and so their scores) exchanged
    _keep_stat(csv, "".join(lines).encode())
    assert not pd.read_csv(csv).equals(before)
    again = generate_synthetic_iqa(tmp_path / "gen", n_refs=2, n_types=1, n_levels=3)
    pd.testing.assert_frame_equal(pd.read_csv(again), before)


def _build_upsampled(tmp_path: Path) -> tuple[Any, Callable[[], Any]]:
    """A tiny DDCUp set built once, and the call that builds (or reuses) it again."""
    from syndr_lightning.data.datasets import get_loader, load_dataset
    from syndr_lightning.data.upsample import UpsampleSpec, build_upsampled_set
    from syndr_lightning.fakedata.fixtures import write_fixture
    from syndr_lightning.reshape.params import DDCUpParams

    kadid = write_fixture("kadid10k", tmp_path / "kadid", n_refs=4, types=[1])
    kadis = write_fixture("kadis700k", tmp_path / "kadis", n_refs=3)
    manifest = load_dataset("kadid10k", str(kadid), types=[1])
    refs = get_loader("kadid10k")(kadid, types=[1]).references()
    cands = get_loader("kadis700k")(kadis).references()
    spec = UpsampleSpec(
        (1,),
        DDCUpParams(
            encoder="tiny_cnn", encoder_weights="none", encoder_crop=32, select_candidates=False
        ),
    )

    def build() -> Any:
        return build_upsampled_set(manifest, refs, cands, tmp_path / "c", spec, progress=False)

    return build(), build


def test_upsampled_manifest_edit_is_rebuilt(tmp_path: Path) -> None:
    from syndr_lightning.data.upsample import load_cached

    first, build = _build_upsampled(tmp_path)
    table = first.directory / "manifest.csv"
    header, row, rest = table.read_text().split("\n", 2)
    score_col = header.split(",").index("score")
    cells = row.split(",")
    value = cells[score_col]
    cells[score_col] = ("9" if value[0] != "9" else "1") + value[1:]  # same length
    _keep_stat(table, "\n".join([header, ",".join(cells), rest]).encode())
    assert load_cached(first.directory) is None
    again = build()
    assert not again.reused
    pd.testing.assert_frame_equal(again.manifest, first.manifest)


def test_upsampled_image_with_a_changed_byte_is_rebuilt(tmp_path: Path) -> None:
    from syndr_lightning.data.upsample import load_cached

    first, build = _build_upsampled(tmp_path)
    image = Path(first.manifest["path"].iloc[0])
    assert first.directory in image.parents
    good = image.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    _keep_stat(image, bytes(data))
    assert load_cached(first.directory) is None
    again = build()
    assert not again.reused
    assert image.read_bytes() == good
    pd.testing.assert_frame_equal(again.manifest, first.manifest)
