"""DDCUp: select diverse new reference content and give it nearest-neighbour pseudo-labels.

Distances are cosine distances ``1 - cos`` computed in float64 from L2-normalised rows,
in row blocks, so memory stays linear in the number of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from syndr_lightning.reshape._validate import (
    check_choice,
    check_features,
    check_int,
    check_same_dim,
    check_threshold,
)
from syndr_lightning.reshape.params import WEIGHTS, DDCUpParams
from syndr_lightning.utils.errors import InputError

_BLOCK = 1024
_LIST_SIZE = 64  # close candidates remembered per candidate by the selection loop


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distances between normalised rows (one block of ``a`` against ``b``)."""
    return 1.0 - a @ b.T


@dataclass(frozen=True)
class SelectionThresholds:
    """The two bounds of DDCUp's reference selection rule."""

    min_distance: float  # median over training refs of the distance to their nearest other ref
    max_distance: float  # max over training refs of the distance to their farthest ref


def selection_thresholds(train_feats: np.ndarray) -> SelectionThresholds:
    """Median nearest-neighbour distance and max farthest distance among training refs."""
    t = _normalise(check_features(train_feats, "train_feats", min_rows=2))
    n = t.shape[0]
    min_t = np.empty(n)
    max_t = np.empty(n)
    for a in range(0, n, _BLOCK):
        d = _dist(t[a : a + _BLOCK], t)
        rows = np.arange(d.shape[0])
        d[rows, rows + a] = np.inf
        min_t[a : a + _BLOCK] = d.min(axis=1)
        d[rows, rows + a] = -np.inf
        max_t[a : a + _BLOCK] = d.max(axis=1)
    return SelectionThresholds(float(np.median(min_t)), float(max_t.max()))


def _upper_nn(c: np.ndarray, alive: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest alive candidate with a HIGHER index, for each of ``rows`` (inf/-1 if none)."""
    val = np.full(rows.size, np.inf)
    idx = np.full(rows.size, -1, dtype=np.int64)
    cols = np.arange(c.shape[0])
    for a in range(0, rows.size, _BLOCK):
        r = rows[a : a + _BLOCK]
        d = _dist(c[r], c)
        d[(cols[None, :] <= r[:, None]) | ~alive[None, :]] = np.inf
        arg = d.argmin(axis=1)
        val[a : a + _BLOCK] = d[np.arange(r.size), arg]
        idx[a : a + _BLOCK] = np.where(np.isfinite(val[a : a + _BLOCK]), arg, -1)
    return val, idx


class _CloseLists:
    """Per candidate, its nearest alive HIGHER-indexed candidates closer than ``thr``.

    Each row keeps up to ``m`` of them sorted by (distance, index), computed once; when
    the head is dropped the next alive entry takes over, and the row is recomputed only
    when its list runs out. Memory is O(K * m), never K x K.
    """

    def __init__(self, c: np.ndarray, thr: float, m: int = 64) -> None:
        self.c, self.thr = c, thr
        k = c.shape[0]
        self.m = min(m, k)
        self.alive = np.ones(k, dtype=bool)
        self.idx = np.full((k, self.m), -1, dtype=np.int64)
        self.dist = np.full((k, self.m), np.inf)
        self.ptr = np.zeros(k, dtype=np.int64)
        self.truncated = np.zeros(k, dtype=bool)
        self.direct = np.zeros(k, dtype=bool)  # rows whose list is ambiguous (exact ties)
        self._fill(np.arange(k))

    def _fill(self, rows: np.ndarray) -> None:
        k = self.c.shape[0]
        for a in range(0, rows.size, _BLOCK):
            r = rows[a : a + _BLOCK]
            # Only higher indices matter: start the columns at the block's first row.
            lo = min(int(r.min()), k - self.m)
            cols = np.arange(lo, k)
            d = _dist(self.c[r], self.c[lo:])
            d[(cols[None, :] <= r[:, None]) | ~self.alive[None, lo:] | (d >= self.thr)] = np.inf
            part = np.argpartition(d, self.m - 1, axis=1)[:, : self.m] + lo
            pd = np.take_along_axis(d, part - lo, axis=1)
            order = np.lexsort((part, pd), axis=-1)
            self.idx[r] = np.take_along_axis(part, order, axis=1)
            self.dist[r] = np.take_along_axis(pd, order, axis=1)
            self.truncated[r] = np.isfinite(d).sum(axis=1) > self.m
            self.ptr[r] = 0

    def head(self, i: int) -> tuple[float, int]:
        """Nearest alive higher-indexed candidate of ``i`` closer than thr: (dist, index)."""
        if self.direct[i]:
            val, idx = _upper_nn(self.c, self.alive, np.array([i]))
            return (float(val[0]), int(idx[0])) if val[0] < self.thr else (np.inf, -1)
        for attempt in range(2):
            p = int(self.ptr[i])
            while p < self.m and np.isfinite(self.dist[i, p]) and not self.alive[self.idx[i, p]]:
                p += 1
            self.ptr[i] = p
            exhausted = p == self.m or not np.isfinite(self.dist[i, p])
            if not self.truncated[i]:
                return (np.inf, -1) if exhausted else (float(self.dist[i, p]), int(self.idx[i, p]))
            # A truncated list is exact only strictly below its last distance (ties at the
            # cut may have been left out).
            if not exhausted and self.dist[i, p] < self.dist[i, -1]:
                return float(self.dist[i, p]), int(self.idx[i, p])
            if attempt == 0:
                self._fill(np.array([i]))
        self.direct[i] = True
        return self.head(i)


def ddcup_select(train_feats: np.ndarray, cand_feats: np.ndarray) -> np.ndarray:
    """Indices (int64, ascending) of the candidates DDCUp adds, by the reference code's rule.

    A candidate passes when its nearest training ref is farther than the median
    nearest-neighbour distance among training refs and its farthest one is nearer than
    the largest farthest distance among them. Then, while the closest remaining pair of
    passing candidates is nearer than that median, its lower-indexed member is dropped
    (ties: the lexicographically first pair, as a row-major argmin would pick).
    """
    t_raw = check_features(train_feats, "train_feats", min_rows=2)
    c_raw = check_features(cand_feats, "cand_feats")
    check_same_dim(t_raw, c_raw, "train_feats", "cand_feats")
    thr = selection_thresholds(t_raw)
    t = _normalise(t_raw)
    c = _normalise(c_raw)
    passing = np.zeros(c.shape[0], dtype=bool)
    for a in range(0, c.shape[0], _BLOCK):
        d = _dist(c[a : a + _BLOCK], t)
        passing[a : a + _BLOCK] = (d.min(axis=1) > thr.min_distance) & (
            d.max(axis=1) < thr.max_distance
        )
    sel = np.flatnonzero(passing).astype(np.int64)
    if sel.size < 2:
        return sel
    lists = _CloseLists(c[sel], thr.min_distance, _LIST_SIZE)
    # Every candidate is alive now: a list head is exact unless the list was cut at a tie.
    nn_val = lists.dist[:, 0].copy()
    nn_idx = np.where(np.isfinite(nn_val), lists.idx[:, 0], -1)
    for i in np.flatnonzero(lists.truncated & ~(lists.dist[:, 0] < lists.dist[:, -1])):
        nn_val[i], nn_idx[i] = lists.head(int(i))
    while True:
        i = int(np.argmin(nn_val))
        if not nn_val[i] < thr.min_distance:
            break
        lists.alive[i] = False
        nn_val[i] = np.inf
        nn_idx[i] = -1
        for s in np.flatnonzero(nn_idx == i):
            nn_val[s], nn_idx[s] = lists.head(int(s))
    return sel[lists.alive]


@dataclass(frozen=True)
class Neighbours:
    """Pseudo-label neighbours per new ref, padded to k columns (index -1, weight 0, distance NaN)."""

    indices: np.ndarray  # int64 [n_new, k] training-ref indices, nearest first
    weights: np.ndarray  # float64 [n_new, k], each row sums to 1 over its valid entries
    distances: np.ndarray  # float64 [n_new, k] cosine distances


def _check_k(k: Any, n_ref: int) -> int:
    if k == "all":
        return n_ref
    k = check_int(k, "k", minimum=1)
    if k > n_ref:
        raise InputError(
            f"k={k} neighbours requested but there are only {n_ref} training refs; "
            "use k <= n_ref or k='all'"
        )
    return k


def ddcup_neighbours(
    train_feats: np.ndarray,
    new_feats: np.ndarray,
    k: int | str = DDCUpParams.k,
    t_ref: float = DDCUpParams.T_ref,
    weights: str = DDCUpParams.weights,
    temperature: float = DDCUpParams.temperature,
) -> Neighbours:
    """The neighbours and weights behind ``ddcup_pseudo_labels`` (for diagnostics).

    For each new ref: its ``k`` nearest training refs (ties by index), kept while
    ``d_j - d_min < t_ref``; weights ``reference`` = softmax of the raw distances (the
    reference code: a farther neighbour gets slightly more weight) or ``softmin`` =
    softmax(-d / temperature).
    """
    t_raw = check_features(train_feats, "train_feats")
    n_raw = check_features(new_feats, "new_feats")
    check_same_dim(t_raw, n_raw, "train_feats", "new_feats")
    k = _check_k(k, t_raw.shape[0])
    t_ref = check_threshold(t_ref, "t_ref", low=0.0)
    weights = check_choice(weights, "weights", WEIGHTS)
    temperature = check_threshold(temperature, "temperature", low=0.0)
    t = _normalise(t_raw)
    x = _normalise(n_raw)
    n_new = x.shape[0]
    idx = np.full((n_new, k), -1, dtype=np.int64)
    w = np.zeros((n_new, k))
    dist = np.full((n_new, k), np.nan)
    for a in range(0, n_new, _BLOCK):
        d = _dist(x[a : a + _BLOCK], t)
        nn = np.argsort(d, axis=1, kind="stable")[:, :k]
        dn = np.take_along_axis(d, nn, axis=1)
        valid = dn - dn[:, :1] < t_ref
        if weights == "reference":
            logits = np.where(valid, dn, -np.inf)
        else:
            logits = np.where(valid, -dn / temperature, -np.inf)
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        w[a : a + _BLOCK] = e / e.sum(axis=1, keepdims=True)
        idx[a : a + _BLOCK] = np.where(valid, nn, -1)
        dist[a : a + _BLOCK] = np.where(valid, dn, np.nan)
    return Neighbours(indices=idx, weights=w, distances=dist)


def ddcup_pseudo_labels(
    train_feats: np.ndarray,
    new_feats: np.ndarray,
    train_labels: np.ndarray,
    k: int | str = DDCUpParams.k,
    t_ref: float = DDCUpParams.T_ref,
    weights: str = DDCUpParams.weights,
    temperature: float = DDCUpParams.temperature,
) -> np.ndarray:
    """Pseudo-labels float32 ``[n_new, *label_shape]`` for new refs (DDCUp Algorithm 2).

    ``train_labels`` is ``[n_ref, n_type, n_level]`` (any trailing shape works): the
    label of (new ref, type, level) is the weighted sum of its neighbours' labels at the
    same (type, level). NaN marks an absent label: it is left out and the remaining
    weights renormalised; the result is NaN only where every neighbour lacks it.
    """
    n_ref = check_features(train_feats, "train_feats").shape[0]
    y = np.asarray(train_labels)
    if y.dtype == object or not (
        np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)
    ):
        raise InputError(f"train_labels: expected numeric labels, found dtype {y.dtype}")
    if y.ndim < 1 or y.shape[0] != n_ref:
        raise InputError(
            f"train_labels: expected shape [n_ref={n_ref}, n_type, n_level] (one label block "
            f"per training ref), found {y.shape}"
        )
    y = y.astype(np.float64)
    if np.isinf(y).any():
        raise InputError("train_labels contains inf; use finite scores, NaN for absent labels")
    nb = ddcup_neighbours(train_feats, new_feats, k, t_ref, weights, temperature)
    flat = y.reshape(y.shape[0], -1)
    present = ~np.isnan(flat)
    vals = np.where(present, flat, 0.0)
    n_new = nb.indices.shape[0]
    num = np.zeros((n_new, flat.shape[1]))
    den = np.zeros((n_new, flat.shape[1]))
    for col in range(nb.indices.shape[1]):
        ok = nb.indices[:, col] >= 0
        j = np.where(ok, nb.indices[:, col], 0)
        wj = np.where(ok, nb.weights[:, col], 0.0)[:, None]
        num += wj * vals[j]
        den += wj * present[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out.reshape((n_new, *y.shape[1:])).astype(np.float32)
