"""KADID-like synthetic features for tests, benchmarks and notebooks (no model needed).

Sample s has a reference r, a distortion type t (25) and a level l (1..5). Its feature is
``a_l * R_r + b_l * T_t + noise`` with random unit directions R (content) and T
(distortion): content dominates at level 1 and distortion at level 5, as the paper
observes for models trained on synthetic data, so near-duplicates form clusters by
reference at low levels and by type at high levels. Labels on 0..10 fall with the level
at a per-type rate from a per-reference base score.
"""

from __future__ import annotations

import numpy as np

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
