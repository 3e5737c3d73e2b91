"""The rank-split pair search equals the single-process search (2 CPU processes, gloo)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from syndr_lightning.reshape import drcdown, similar_pairs
from syndr_lightning.reshape.distributed import (
    all_gather_rows,
    distributed_drcdown,
    distributed_similar_pairs,
)
from syndr_lightning.reshape.params import DRCDownParams
from syndr_lightning.utils.errors import InputError


def _clustered(n: int = 900, d: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features in tight clusters (many similar pairs) plus labels on 0..10."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d))
    member = rng.integers(0, 40, size=n)
    x = centres[member] + rng.normal(scale=0.12, size=(n, d))
    y = np.clip(rng.uniform(0, 10, size=40)[member] + rng.normal(scale=0.4, size=n), 0, 10)
    return x.astype(np.float32), y


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = _clustered()
        i, j = distributed_similar_pairs(x, y, t_f=0.1, t_q=1.0, backend="torch", block_rows=64)
        res = distributed_drcdown(x, y, DRCDownParams(T_u=5, backend="torch"), seed=3, epoch=2)
        # Sharded feature pass, rank r computed samples r, r+2, ... (last one padded twice).
        idx = torch.arange(rank, x.shape[0], world)
        idx = torch.cat([idx, idx[-1:]])
        full = all_gather_rows(torch.from_numpy(x)[idx], idx, x.shape[0])
        # A rank handed different labels makes every rank raise (no hang).
        bad = y + (0.5 if rank == 1 else 0.0)
        try:
            distributed_similar_pairs(x, bad)
            mismatch = "no error"
        except InputError as exc:
            mismatch = str(exc)
        np.savez(
            Path(out) / f"rank{rank}.npz",
            i=i,
            j=j,
            kept=res.kept,
            cluster=res.cluster,
            full=full,
            mismatch=np.array(mismatch),
        )
    finally:
        dist.destroy_process_group()


def test_two_ranks_match_single_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    x, y = _clustered()
    ref_i, ref_j = similar_pairs(x, y, t_f=0.1, t_q=1.0, backend="torch")
    ref = drcdown(x, y, DRCDownParams(T_u=5, backend="torch"), seed=3, epoch=2)
    assert ref_i.size > 1000  # the data must have many pairs for the test to mean anything
    assert ref.kept.size < x.shape[0]
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_array_equal(got["i"], ref_i)
        np.testing.assert_array_equal(got["j"], ref_j)
        np.testing.assert_array_equal(got["kept"], ref.kept)
        np.testing.assert_array_equal(got["cluster"], ref.cluster)
        np.testing.assert_array_equal(got["full"], x)
        assert "every rank must pass the same" in str(got["mismatch"])


def test_single_process_fallback_and_bad_input() -> None:
    x, y = _clustered(n=200)
    i, j = distributed_similar_pairs(x, y, backend="torch")
    ref_i, ref_j = similar_pairs(x, y, backend="torch")
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(j, ref_j)
    rows = torch.from_numpy(x)
    np.testing.assert_array_equal(all_gather_rows(rows, torch.arange(200), 200), x)
    with pytest.raises(InputError, match="no rank computed the feature of sample 199"):
        all_gather_rows(rows[:199], torch.arange(199), 200)
    with pytest.raises(InputError, match=r"must lie in \[0, 200\)"):
        all_gather_rows(rows, torch.arange(200) + 1, 200)
    with pytest.raises(InputError, match="one index per feature row"):
        all_gather_rows(rows, torch.arange(10), 200)
