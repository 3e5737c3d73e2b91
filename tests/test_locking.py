"""Caches under concurrent runs (utils/locking): one builder per key, the others wait and
reuse; stale locks are taken over; complete results are never deleted; stale
temporaries are cleaned; an unwritable cache folder is one line."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import threading
import time
from pathlib import Path

import lock_workers
import numpy as np
import pytest
from inference_helpers import write_image

from syndr_lightning.data import upsample
from syndr_lightning.data.cache import ImageCache
from syndr_lightning.utils import locking
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.locking import BuildLock, build_once


def _spawn_map(func, args_list: list[tuple]) -> list:
    with mp.get_context("spawn").Pool(len(args_list)) as pool:
        return pool.starmap(func, args_list)


def test_processes_building_one_key_build_once_and_read_the_same(tmp_path: Path) -> None:
    results = _spawn_map(lock_workers.build_value, [(str(tmp_path), 4)] * 4)
    assert len(set(results)) == 1 and results[0].startswith("built by ")
    assert len((tmp_path / "builds.log").read_text().split()) == 1  # one builder
    assert not (tmp_path / ".key.lock").exists()  # released


def test_processes_building_one_image_cache_share_one_build(tmp_path: Path) -> None:
    paths = [str(write_image(tmp_path / "img" / f"{i}.png", i)) for i in range(6)]
    out = _spawn_map(lock_workers.image_cache, [(paths, str(tmp_path / "cache"), 3)] * 3)
    pixels = {o[:-4] if o.endswith(b"True") else o[:-5] for o in out}
    assert len(pixels) == 1  # identical content everywhere
    assert sum(o.endswith(b"True") for o in out) == 1  # exactly one process decoded
    assert not list((tmp_path / "cache").glob(".*"))  # no lock, no temporary left


# ------------------------------------------------------------- stale locks
def _fake_lock(path: Path, host: str, pid: int) -> None:
    path.mkdir()
    (path / "owner.json").write_text(json.dumps({"host": host, "pid": pid, "token": "old"}))
    (path / "heartbeat").write_text("old 7")


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    lock = tmp_path / ".k.lock"
    _fake_lock(lock, socket.gethostname(), 2**22 + 7)  # no such process
    t0 = time.monotonic()
    assert build_once(lock, lambda: None, lambda: "mine", stale_s=30.0) == "mine"
    assert time.monotonic() - t0 < 10.0 and not lock.exists()


def test_remote_owner_is_waited_for_while_it_beats_and_taken_over_when_it_stops(tmp_path):
    lock = tmp_path / ".k.lock"
    _fake_lock(lock, "another-host", os.getpid())  # a live pid here means nothing there
    beating = threading.Event()

    def owner() -> None:  # the remote builder's heartbeat, for 1.5 s, then it dies
        n = 0
        while not beating.wait(0.05) and n < 30:
            n += 1
            (lock / "heartbeat").write_text(f"old {n}")

    thread = threading.Thread(target=owner)
    thread.start()
    t0 = time.monotonic()
    got = build_once(lock, lambda: None, lambda: "mine", heartbeat_s=0.05, stale_s=0.5)
    waited = time.monotonic() - t0
    beating.set()
    thread.join()
    assert got == "mine"
    assert waited >= 1.5  # not taken while the remote heartbeat advanced


def test_waiter_returns_what_the_owner_publishes(tmp_path: Path) -> None:
    lock = BuildLock(tmp_path / ".k.lock", heartbeat_s=0.05)
    assert lock.try_acquire()
    result = tmp_path / "r.txt"

    def finish() -> None:
        time.sleep(0.4)
        result.write_text("theirs")
        lock.release()

    thread = threading.Thread(target=finish)
    thread.start()
    got = build_once(
        tmp_path / ".k.lock", lambda: result.read_text() if result.exists() else None, lambda: "x"
    )
    thread.join()
    assert got == "theirs"


def test_try_lock_does_not_wait(tmp_path: Path) -> None:
    first = BuildLock(tmp_path / ".k.lock")
    assert first.try_acquire()
    with BuildLock(tmp_path / ".k.lock").held(wait=False) as got:
        assert got is False
    first.release()
    assert not (tmp_path / ".k.lock").exists()


# ------------------------------------------------------------- DDCUp: never delete a set
def test_complete_upsampled_set_is_never_replaced(tmp_path: Path) -> None:
    final = tmp_path / "abc"
    final.mkdir()
    (final / "marker").write_text("complete")
    inode = final.stat().st_ino
    complete = upsample.UpsampledSet(manifest=None, directory=final, key="abc", reused=True)  # type: ignore[arg-type]
    orig = upsample.load_cached
    upsample.load_cached = lambda d: complete if Path(d) == final else orig(d)  # type: ignore[assignment]
    try:
        with upsample._building(final) as tmp:
            assert (tmp / "owner.json").is_file()
            (tmp / "meta.json").write_text("{}")
    finally:
        upsample.load_cached = orig  # type: ignore[assignment]
    assert final.stat().st_ino == inode and (final / "marker").read_text() == "complete"
    assert not list(tmp_path.glob(".abc.*.tmp"))


def test_owner_record_stays_until_the_final_rename(tmp_path: Path, monkeypatch) -> None:
    final = tmp_path / "key1"
    seen: list[bool] = []
    real = os.rename

    def spy(src, dst):  # the publishing rename: the owner record is still in place
        seen.append((Path(src) / "owner.json").is_file())
        return real(src, dst)

    monkeypatch.setattr(upsample.os, "rename", spy)
    with upsample._building(final) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert seen == [True] and final.is_dir() and not (final / "owner.json").exists()


# ------------------------------------------------------------- stale temporaries
def test_stale_temporaries_of_every_cache_are_cleaned(tmp_path: Path) -> None:
    paths = [str(write_image(tmp_path / "img" / f"{i}.png", i)) for i in range(2)]
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    dead = cache_dir / ".imgcache-0123456789abcdef-ffff.u8.x1.tmp"  # a killed build
    dead.write_bytes(b"\0" * 4096)
    busy = cache_dir / ".imgcache-fedcba9876543210-ffff.u8.x2.tmp"  # a live build
    busy.write_bytes(b"\0" * 10)
    live = BuildLock(cache_dir / ".imgcache-fedcba9876543210.lock")
    assert live.try_acquire()
    try:
        ImageCache.open_or_build(paths, cache_dir, progress=False)
    finally:
        live.release()
    assert not dead.exists() and busy.exists()
    # DRCDown crop cache: a killed build's temporary goes when the cache is next written
    import torch

    from syndr_lightning.reshape.features import extract_features

    crops = tmp_path / "crops"
    crops.mkdir()
    old = crops / ".crops_000000000000000000000000_2x8.u8.zz.tmp"
    old.write_bytes(b"\0" * 100)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    feats = extract_features(net, paths, crop_size=8, cache_dir=crops)
    assert feats.shape == (2, 4) and not old.exists()
    assert len(list(crops.glob("crops_*.u8"))) == 1
    # reference features: stale .npy temporaries go when features are next computed
    from syndr_lightning.reshape.features import extract_reference_features

    ref_cache = tmp_path / "ref"
    ref_cache.mkdir()
    from syndr_lightning.reshape.features import pool_cache_file

    pool_file = pool_cache_file(ref_cache, [Path(p) for p in paths], "tiny_cnn", "none", 224)
    stale = ref_cache / f".{pool_file.name}.q.tmp"  # one cache file per pool
    stale.write_bytes(b"x")
    extract_reference_features(paths, encoder="tiny_cnn", weights="none", cache_dir=ref_cache)
    assert not stale.exists() and list(ref_cache.glob("*.npy")) == [pool_file]


def test_unwritable_cache_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    paths = [str(write_image(tmp_path / "img" / "0.png", 0))]
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.mkdir

    def refuse(path, *args, **kwargs):  # what a read-only folder does (root ignores modes)
        if Path(path).parent == ro:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(locking.os, "mkdir", refuse)
    with pytest.raises(ConfigError, match="is not writable") as info:
        ImageCache.open_or_build(paths, ro, progress=False)
    assert "\n" not in str(info.value) and str(ro) in str(info.value)
    monkeypatch.undo()
    # a complete cache in a read-only folder is still read (no lock needed)
    built = ImageCache.open_or_build(paths, tmp_path / "ok", progress=False)
    monkeypatch.setattr(locking.os, "mkdir", refuse)
    again = ImageCache.open_or_build(paths, tmp_path / "ok", progress=False)
    assert not again.built and np.array_equal(again[0], built[0])


def test_processes_building_one_upsampled_set_share_it(tmp_path: Path) -> None:
    """Two runs of a sweep (one DDCUp key) at once: one builds, the other reuses it."""
    from syndr_lightning.fakedata.fixtures import write_fixture

    data = {
        "kadid": str(write_fixture("kadid10k", tmp_path / "kadid", n_refs=3, types=[1, 3])),
        "kadis": str(write_fixture("kadis700k", tmp_path / "kadis", n_refs=3)),
    }
    out = _spawn_map(lock_workers.upsampled_set, [(data, str(tmp_path / "cache"), 2)] * 2)
    assert out[0][:2] == out[1][:2]  # same folder, identical manifest
    assert sorted(o[2] for o in out) == [False, True]  # built once, reused once
    assert not list((tmp_path / "cache" / "ddcup").glob(".*"))  # no lock, no temporary


def test_free_space_check_counts_removed_temporaries(tmp_path: Path, monkeypatch) -> None:
    from syndr_lightning.data import cache as cache_mod
    from syndr_lightning.utils.errors import DatasetError

    paths = [str(write_image(tmp_path / "img" / "0.png", 0))]
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / ".imgcache-0123456789abcdef-1.u8.a.tmp").write_bytes(b"\0" * 2048)
    usage = cache_mod.shutil.disk_usage(folder)
    monkeypatch.setattr(cache_mod.shutil, "disk_usage", lambda p: usage._replace(free=10))
    with pytest.raises(DatasetError, match=r"after removing 0\.00 GiB of stale temporaries"):
        ImageCache.open_or_build(paths, folder, progress=False)
    assert not list(folder.glob(".imgcache-*.tmp"))
