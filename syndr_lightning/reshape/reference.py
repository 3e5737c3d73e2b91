"""Straightforward reshaping: dense N x N float64 matrices, every pair enumerated, a Python
disjoint-set loop, the reference DDCUp loop.

Used ONLY as test oracle and benchmark baseline: memory is O(N^2) and it is slow. Do not
call it from training code.
"""

from __future__ import annotations

import numpy as np


def _unit64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt((x * x).sum(axis=1))[:, None]


def ref_similar_pairs(
    features: np.ndarray, labels: np.ndarray, t_f: float = 0.1, t_q: float = 1.0
) -> list[tuple[int, int]]:
    """Every pair i < j with float64 cosine similarity > 1 - t_f and |y_i - y_j| < t_q.

    The dense N x N similarity matrix is computed at once; then every pair is visited.
    """
    x = _unit64(features)
    y = np.asarray(labels, dtype=np.float64).tolist()
    sim = x @ x.T
    thr = 1.0 - t_f
    n = x.shape[0]
    pairs = []
    for i in range(n):
        row = sim[i].tolist()
        yi = y[i]
        for j in range(i + 1, n):
            if row[j] > thr and abs(yi - y[j]) < t_q:
                pairs.append((i, j))
    return pairs


def ref_clusters(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Disjoint-set union over the pairs; returns clusters (size >= 2) as sorted lists."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for a in range(n):
        groups.setdefault(find(a), []).append(a)
    return sorted((g for g in groups.values() if len(g) >= 2), key=lambda g: g[0])


def ref_downsample(
    n: int, clusters: list[list[int]], t_u: int = 20, rule: str = "reference", seed: int = 0
) -> list[int]:
    """Keep every sample outside clusters; thin clusters with Python's ``random``."""
    import random

    rnd = random.Random(seed)
    drop: set[int] = set()
    for members in clusters:
        size = len(members)
        apply = size > t_u if rule == "reference" else size / 2 > t_u
        if apply:
            kept = set(rnd.sample(members, max(t_u, size // 2)))
            drop.update(m for m in members if m not in kept)
    return [a for a in range(n) if a not in drop]


def ref_drcdown(
    features: np.ndarray,
    labels: np.ndarray,
    t_f: float = 0.1,
    t_q: float = 1.0,
    t_u: int = 20,
    rule: str = "reference",
    seed: int = 0,
) -> tuple[list[int], list[list[int]]]:
    """The whole baseline DRCDown: kept indices and clusters."""
    n = np.asarray(features).shape[0]
    pairs = ref_similar_pairs(features, labels, t_f, t_q)
    clusters = ref_clusters(n, pairs)
    return ref_downsample(n, clusters, t_u, rule, seed), clusters


def ref_ddcup_select(train_feats: np.ndarray, cand_feats: np.ndarray) -> list[int]:
    """The reference code's selection loop over dense distance matrices."""
    t = _unit64(train_feats)
    c = _unit64(cand_feats)
    d_tt = 1.0 - t @ t.T
    np.fill_diagonal(d_tt, np.inf)
    min_t = d_tt.min(axis=1)
    np.fill_diagonal(d_tt, -np.inf)
    max_t = d_tt.max(axis=1)
    thr = float(np.median(min_t))
    d_ct = 1.0 - c @ t.T
    keep = [a for a in range(c.shape[0]) if d_ct[a].min() > thr and d_ct[a].max() < max_t.max()]
    if not keep:
        return []
    cc = c[keep]
    d_cc = 1.0 - cc @ cc.T
    # The reference loop relies on a symmetric matrix; take the upper triangle's values.
    d_cc = np.triu(d_cc, 1) + np.triu(d_cc, 1).T
    np.fill_diagonal(d_cc, np.inf)
    alive = list(range(len(keep)))
    while len(alive) > 1:
        sub = d_cc[np.ix_(alive, alive)]
        flat = int(np.argmin(sub))
        r, _ = divmod(flat, len(alive))
        if sub.flat[flat] >= thr:
            break
        del alive[r]
    return [keep[a] for a in alive]


def ref_pseudo_labels(
    train_feats: np.ndarray,
    new_feats: np.ndarray,
    train_labels: np.ndarray,
    k: int | str = 5,
    t_ref: float = 0.05,
    weights: str = "reference",
    temperature: float = 0.05,
) -> np.ndarray:
    """Per new ref, per (type, level): a Python loop over the kept neighbours."""
    t = _unit64(train_feats)
    x = _unit64(new_feats)
    y = np.asarray(train_labels, dtype=np.float64)
    kk = t.shape[0] if k == "all" else int(k)
    out = np.full((x.shape[0], *y.shape[1:]), np.nan)
    for a in range(x.shape[0]):
        d = 1.0 - t @ x[a]
        nn = sorted(range(t.shape[0]), key=lambda j: (d[j], j))[:kk]
        nn = [j for j in nn if d[j] - d[nn[0]] < t_ref]
        logits = np.array([d[j] if weights == "reference" else -d[j] / temperature for j in nn])
        w = np.exp(logits - logits.max())
        w = w / w.sum()
        for pos in np.ndindex(*y.shape[1:]):
            num = den = 0.0
            for wj, j in zip(w, nn, strict=True):
                v = y[(j, *pos)]
                if not np.isnan(v):
                    num += wj * v
                    den += wj
            if den > 0:
                out[(a, *pos)] = num / den
    return out.astype(np.float32)
