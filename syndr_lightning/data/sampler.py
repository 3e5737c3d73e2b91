"""Epoch-seeded, resumable sampling: an epoch's order, crops and flips depend on (seed,
epoch) only, and a loader interrupted mid-epoch resumes at the batch it stopped at.

So a resumed run repeats an uninterrupted one bit for bit (docs/training.md, "Resume"),
whatever Lightning does with the loader's iterators and workers in between:

* :class:`EpochSampler`: the order is a permutation that is a pure function of
  (seed, epoch); it can start ``start`` positions in (the batches already trained on).
* :class:`SeededSubset`: each sample's random crop and flip are drawn from a generator
  seeded by (seed, epoch, sample), not from a global stream, so they do not depend on
  which samples were loaded before it, in which process, or whether some were skipped.
* :class:`WorkerSeeder`: each loader worker's global RNGs seeded from (seed, epoch, id).
* :class:`ResumableLoader`: a DataLoader with Lightning's ``state_dict`` /
  ``load_state_dict`` interface (the loop saves it in every checkpoint): it records the
  epoch, the batches the loop has trained on and the global RNG states, and a restored
  loader skips those batches and hands the RNG states back at its first batch.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "EpochSampler",
    "ResumableLoader",
    "SeededSubset",
    "WorkerSeeder",
    "epoch_seed",
    "get_rng_states",
    "seed_epoch_rngs",
    "set_rng_states",
]

log = logging.getLogger(__name__)


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


def get_rng_states() -> dict[str, Any]:
    """The global torch, numpy and Python RNG states, as tensors and plain containers
    (what ``torch.load(weights_only=True)`` reads back)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    npy = states["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))


class EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation of ``range(n)`` that is a pure function of (seed, epoch).

    Every ``iter()`` yields the same order from position ``start`` on (0 unless a resumed
    loader skips the batches it already trained on) and (``reseed=True``) first seeds the
    global RNGs from (seed, epoch); ``rng_states`` (set by a resumed loader) are restored
    instead, once, so the model's own randomness continues where it stopped.
    """

    def __init__(self, n: int, seed: int, epoch: int, reseed: bool = True) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.reseed = bool(reseed)
        self.start = 0
        self.rng_states: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.n - self.start

    def __iter__(self) -> Iterator[int]:
        if self.reseed:
            seed_epoch_rngs(self.seed, self.epoch)
        if self.rng_states is not None:
            set_rng_states(self.rng_states)
            self.rng_states = None
        order = np.random.default_rng(epoch_seed(self.seed, self.epoch)).permutation(self.n)
        yield from (int(i) for i in order[self.start :])


class SeededSubset(Dataset):
    """``dataset[indices[j]]`` with torch's global generator seeded from (seed, epoch, j)
    while it is loaded (and restored afterwards): a sample's random crop and flip are the
    same whatever was loaded before it. ``seed=None``: the global stream (no seeding)."""

    def __init__(self, dataset: Dataset, indices: list[int], seed: int | None, epoch: int) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.base = None if seed is None else epoch_seed(int(seed), int(epoch))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> Any:
        if self.base is None:
            return self.dataset[self.indices[j]]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.base + 1_000_003 * (int(j) + 1)) % (1 << 63))
            return self.dataset[self.indices[j]]


class WorkerSeeder:
    """``worker_init_fn`` seeding each loader worker from (seed, epoch, worker id)."""

    def __init__(self, seed: int, epoch: int) -> None:
        self.seed = int(seed)
        self.epoch = int(epoch)

    def __call__(self, worker_id: int) -> None:
        seed_epoch_rngs(self.seed, self.epoch, worker=int(worker_id))


class ResumableLoader(DataLoader):
    """A training DataLoader over an :class:`EpochSampler` that Lightning can resume.

    ``trained`` returns how many batches of this loader the training loop has finished
    (the datamodule reads it from the trainer: the loader itself cannot tell, since
    Lightning fetches one batch ahead). :meth:`state_dict` saves it with the epoch and the
    global RNG states; :meth:`load_state_dict` (called by Lightning on the loader of the
    resumed epoch, before its first ``iter()``) makes the sampler start after those
    batches. A state of another epoch, or of a finished epoch, changes nothing. Under
    DDP Lightning replaces the sampler with a distributed one: the loader then resumes at
    the start of the interrupted epoch (a warning says so).
    """

    def __init__(
        self,
        *args: Any,
        epoch: int = 0,
        trained: Callable[[], int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        sampler = kwargs.get("sampler")
        self.epoch_sampler = sampler if isinstance(sampler, EpochSampler) else None
        self.epoch = int(epoch)
        self.trained = trained

    def __len__(self) -> int:
        if self.epoch_sampler is None:
            return super().__len__()
        # the epoch's full length, skipped batches included (Lightning counts them)
        return -(-self.epoch_sampler.n // int(self.batch_size or 1))

    def state_dict(self) -> dict[str, Any]:
        """Where the training loop stands in this loader's epoch."""
        if self.trained is None:
            return {}
        return {
            "epoch": self.epoch,
            "batches": int(self.trained()),
            "rng": get_rng_states(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Skip the batches a checkpoint of this epoch had trained on."""
        done = int(state_dict.get("batches", 0))
        sampler = self.epoch_sampler
        if int(state_dict.get("epoch", -1)) != self.epoch or not 0 < done < len(self):
            return
        if sampler is None:
            log.warning(
                "resuming mid-epoch under a distributed sampler: the interrupted epoch "
                "restarts from its first batch (exact resume needs a single process)"
            )
            return
        sampler.start = done * int(self.batch_size or 1)
        if state_dict.get("rng") is not None:
            sampler.rng_states = state_dict["rng"]
