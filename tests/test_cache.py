"""ImageCache: identical pixels, variable sizes, rebuilt on change, safe across processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from syndr_lightning.data.cache import ImageCache, decode_rgb
from syndr_lightning.utils.errors import DatasetError, InputError


def _images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (w, h, ext) in enumerate([(32, 24, "png"), (17, 9, "jpg"), (40, 30, "bmp")]):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = folder / f"im{i}.{ext}"
        Image.fromarray(arr).save(path)
        out.append(path)
    gray = folder / "gray.png"
    Image.fromarray(rng.integers(0, 256, (8, 12), dtype=np.uint8), mode="L").save(gray)
    out.append(gray)
    return out


def test_cache_returns_identical_pixels(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img")
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert cache.built and len(cache) == 4
    for p in paths:
        got = cache.get(p)
        assert got.dtype == np.uint8 and got.shape[2] == 3
        np.testing.assert_array_equal(got, decode_rgb(p))
        got[0, 0] = 0  # a copy: writing does not touch the cache
    np.testing.assert_array_equal(cache.get(str(paths[0])), decode_rgb(paths[0]))
    assert paths[1] in cache and tmp_path / "other.png" not in cache


def test_cache_is_reused_then_rebuilt_when_a_file_changes(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img")
    first = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    again = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert not again.built and again.data_file == first.data_file

    new = np.full((5, 6, 3), 200, dtype=np.uint8)
    Image.fromarray(new).save(paths[0])
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    rebuilt = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert rebuilt.built and rebuilt.data_file != first.data_file
    np.testing.assert_array_equal(rebuilt.get(paths[0]), new)
    assert not first.data_file.exists()  # the stale buffer is removed
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1


def test_corrupt_index_or_data_triggers_rebuild(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img")
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    cache.index_file.write_text("{broken")
    assert ImageCache.open_or_build(paths, tmp_path / "cache", progress=False).built
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    with open(cache.data_file, "r+b") as fh:
        fh.truncate(10)
    fixed = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    assert fixed.built
    np.testing.assert_array_equal(fixed.get(paths[2]), decode_rgb(paths[2]))


def test_cache_errors_are_clear(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img")
    with pytest.raises(DatasetError, match="does not exist"):
        ImageCache.open_or_build([*paths, tmp_path / "gone.png"], tmp_path / "c", progress=False)
    bad = tmp_path / "img" / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"bad\.png"):
        ImageCache.open_or_build([*paths, bad], tmp_path / "c", progress=False)
    # a valid header with truncated pixel data fails during decoding, mid-build
    cut = tmp_path / "img" / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cannot decode image .*cut\.png"):
        ImageCache.open_or_build([*paths, cut], tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").iterdir())  # nothing half-written is left
    with pytest.raises(InputError, match="no paths"):
        ImageCache.open_or_build([], tmp_path / "c")
    cache = ImageCache.open_or_build(paths, tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="not in the cache"):
        cache.get(bad)
    with pytest.raises(InputError, match="out of range"):
        cache[4]


def _read_in_child(cache: ImageCache, path: str) -> tuple[int, int]:
    arr = cache.get(path)
    return int(arr.sum()), os.getpid()


def test_cache_works_in_worker_processes(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img")
    cache = ImageCache.open_or_build(paths, tmp_path / "cache", progress=False)
    cache.get(paths[0])  # the parent has a memmap open before forking
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._mm is None
    np.testing.assert_array_equal(clone.get(paths[2]), decode_rgb(paths[2]))
    with mp.get_context("fork").Pool(1) as pool:
        total, pid = pool.apply(_read_in_child, (cache, str(paths[1])))
    assert pid != os.getpid()
    assert total == int(decode_rgb(paths[1]).sum())
