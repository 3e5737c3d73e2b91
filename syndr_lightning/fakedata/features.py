"""KADID-like synthetic features for tests, benchmarks and notebooks (no model needed).

Sample s has a reference r, a distortion type t (25) and a level l (1..5). Its feature is
``a_l * R_r + b_l * T_t + noise`` with random unit directions R (content) and T
(distortion): content dominates at level 1 and distortion at level 5, as the paper
observes for models trained on synthetic data, so near-duplicates form clusters by
reference at low levels and by type at high levels. Labels on 0..10 fall with the level
at a per-type rate from a per-reference base score (:func:`clustered_features`).
:func:`geometric_clusters` makes cluster-shaped inputs of any size on any device (the
GPU and scaling benchmarks).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from syndr_lightning.reshape._validate import check_int

_CONTENT = np.array([1.0, 0.8, 0.55, 0.35, 0.2])
_DISTORTION = np.array([0.2, 0.45, 0.7, 0.9, 1.0])


def clustered_features(
    n: int, dim: int = 2048, seed: int = 0, n_types: int = 25, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(features [n, dim], labels [n])`` with KADID-like cluster structure."""
    n = check_int(n, "n", minimum=1)
    dim = check_int(dim, "dim", minimum=2)
    n_types = check_int(n_types, "n_types", minimum=1)
    rng = np.random.default_rng(seed)
    n_refs = max(1, n // (n_types * 5))

    def unit(m: int) -> np.ndarray:
        v = rng.standard_normal((m, dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    refs, types = unit(n_refs), unit(n_types)
    ref = np.arange(n) // (n_types * 5) % n_refs
    typ = np.arange(n) // 5 % n_types
    lvl = np.arange(n) % 5
    base = rng.uniform(6.5, 10.0, n_refs)
    sev = rng.uniform(0.8, 2.0, n_types)
    labels = np.clip(base[ref] - 1.2 * sev[typ] * lvl + rng.normal(0.0, 0.3, n), 0.0, 10.0)
    noise_scale = rng.uniform(0.15, 0.35, n).astype(np.float32)
    out = np.empty((n, dim), dtype=dtype)
    for a in range(0, n, 4096):
        sl = slice(a, min(a + 4096, n))
        m = sl.stop - sl.start
        noise = rng.standard_normal((m, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
        out[sl] = (
            _CONTENT[lvl[sl], None].astype(np.float32) * refs[ref[sl]]
            + _DISTORTION[lvl[sl], None].astype(np.float32) * types[typ[sl]]
            + noise_scale[sl, None] * noise
        )
    return out, labels.astype(np.float64)


def geometric_clusters(
    n: int, dim: int, seed: int, device: torch.device, mean_cluster: float = 20.0
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[n, dim]`` float32 and labels on 0..10 shaped like a DRCDown input at scale.

    30% of the samples are isolated (random directions); the rest form clusters of
    geometric size (mean ``mean_cluster``, at most 10x that) whose members lie about 0.04
    in cosine distance from each other and share a label up to N(0, 0.3) noise, so most
    within-cluster pairs are similar at T_f = 0.1, T_q = 1. Generated on ``device`` in
    chunks; returned on the host.
    """
    rng = np.random.default_rng(seed)
    n_single = int(0.3 * n)
    sizes: list[int] = []
    total = 0
    while total < n - n_single:
        s = int(min(rng.geometric(1.0 / mean_cluster), 10 * mean_cluster, n - n_single - total))
        sizes.append(s)
        total += s
    member = np.repeat(np.arange(len(sizes)), sizes)
    base = rng.uniform(0.5, 9.5, size=len(sizes))
    labels = np.concatenate(
        [base[member] + rng.normal(0.0, 0.3, size=member.size), rng.uniform(0, 10, n_single)]
    )
    perm = rng.permutation(n)
    labels = np.clip(labels[perm], 0.0, 10.0)
    owner = np.concatenate([member, np.full(n_single, -1)])[perm]

    gen = torch.Generator(device=device).manual_seed(seed)
    centres = torch.randn(len(sizes), dim, generator=gen, device=device)
    centres /= centres.norm(dim=1, keepdim=True)
    out = np.empty((n, dim), dtype=np.float32)
    chunk = 65_536
    noise = 0.2 / math.sqrt(dim)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        own = torch.from_numpy(owner[a:b]).to(device)
        x = torch.randn(b - a, dim, generator=gen, device=device)
        clustered = own >= 0
        x[~clustered] /= x[~clustered].norm(dim=1, keepdim=True)
        x[clustered] = centres[own[clustered]] + noise * x[clustered]
        out[a:b] = x.cpu().numpy()
    return out, labels
