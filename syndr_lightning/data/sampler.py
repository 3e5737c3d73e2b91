"""Epoch-seeded sampling: an epoch's order, crops and flips depend on (seed, epoch) only.

So a resumed run repeats an uninterrupted one (docs/syndr.md), whatever Lightning does
with the loader's iterators and workers in between.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["EpochSampler", "WorkerSeeder", "epoch_seed", "seed_epoch_rngs"]


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from (seed, epoch), stable across runs and platforms."""
    h = hashlib.sha256(f"syndr-epoch:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def seed_epoch_rngs(seed: int, epoch: int, worker: int = -1) -> None:
    """Seed torch, numpy and random from (seed, epoch[, worker])."""
    s = epoch_seed(seed, epoch) if worker < 0 else epoch_seed(seed * 1_000_003 + worker, epoch)
    torch.manual_seed(s)
    np.random.seed(s % (2**32))
    random.seed(s)


class EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation of ``range(n)`` that is a pure function of (seed, epoch).

    Every ``iter()`` yields the same order, and (``reseed=True``) first seeds the global
    RNGs from (seed, epoch), so the training crops and flips drawn after it are the same
    however often Lightning re-creates the iterator (it does so once more in a normal
    epoch than in the first epoch after a resume). Together with :class:`WorkerSeeder`
    an epoch's randomness depends on (seed, epoch) only, and a resumed run repeats an
    uninterrupted one.
    """

    def __init__(self, n: int, seed: int, epoch: int, reseed: bool = True) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.reseed = bool(reseed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if self.reseed:
            seed_epoch_rngs(self.seed, self.epoch)
        order = np.random.default_rng(epoch_seed(self.seed, self.epoch)).permutation(self.n)
        yield from (int(i) for i in order)


class WorkerSeeder:
    """``worker_init_fn`` seeding each loader worker from (seed, epoch, worker id)."""

    def __init__(self, seed: int, epoch: int) -> None:
        self.seed = int(seed)
        self.epoch = int(epoch)

    def __call__(self, worker_id: int) -> None:
        seed_epoch_rngs(self.seed, self.epoch, worker=int(worker_id))
