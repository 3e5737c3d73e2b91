"""DRCDown step 1: similar pairs, exact w.r.t. a float64 decision, in O(N*d + pairs) memory.

A pair (i, j), i < j, is similar when the cosine similarity of the two feature rows,
computed in float64, is > 1 - t_f AND |y_i - y_j| < t_q.

How it is fast and exact:

* Samples are sorted by label. Row block [a, b) of the sorted order can only pair with
  sorted positions in [a, end) where ``y[end-1] < y[b-1] + t_q``, so every block is
  multiplied only against the columns inside its label window (labels spread over 0..10
  with t_q = 1 leave about a fifth of the symmetric product).
* Products are screened in low precision with a margin around 1 - t_f that exceeds the
  worst-case rounding error: ``float32`` (margin 3 (d + 8) 2**-24, 3.7e-4 at d = 2048), or
  on CPUs with native bfloat16 dot products ``bfloat16`` (about 4x faster there than
  float32). The bfloat16 copy carries one extra coordinate that subtracts a bfloat16 c
  just below 1 - t_f - margin inside the float32 accumulation, so the bfloat16 RESULT is
  small and positive for every candidate and rounded finely (rounding is monotone)
  instead of near 0.9 (one bf16 step there is 0.004); the input rounding is bounded per
  pair by the exact norms of the two rows' rounding errors (Cauchy-Schwarz), about
  0.0016 each at d = 2048, so the margin is about 0.004 instead of a worst-case 0.012.
  Candidates inside the margin are re-decided from the ORIGINAL features, first in
  float32 (float32 margin), then the few left in float64. Block candidates are
  collected first and re-decided in a few large batches.
* Rows and columns are processed in bounded blocks; nothing N x N is ever allocated.

``similar_pairs_slice`` runs the search for a contiguous range of label-sorted rows, so
the search can be split over ranks (``balanced_slices`` gives equal-work ranges); the
union of the slices of any partition of ``[0, N)`` is exactly ``similar_pairs``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from syndr_lightning.reshape._validate import (
    check_choice,
    check_int,
    check_labels_1d,
    check_threshold,
    features_and_norms,
    float_feature_array,
    screening_norms_ok,
)
from syndr_lightning.reshape.params import BACKENDS, DRCDownParams, check_T_f
from syndr_lightning.utils.device import resolve_device
from syndr_lightning.utils.errors import InputError

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
# FAISS GPU indexes answer k-NN queries with k at most this value.
FAISS_GPU_MAX_K = 2048
# Small row blocks follow the label staircase closely (less work outside the windows).
_ROWS_CPU = 128
_ROWS_GPU = 8192
_COLS_CPU = 16384
_COL_QUANTUM = 32
_COLS_GPU = 65536
_EXACT_CHUNK = 256
# Float32 re-decision: partners per FAISS query row (bounds its padded id matrix).
_PAIRS_PER_ROW = 32
_QUERY_CHUNK = 2048  # query rows per FAISS call (16 MB at d = 2048)
# Row chunk of the one-off normalise/sort/convert pass (fits in cache).
_PREP_ROWS = 256
# The bfloat16 screening copy pads rows to a multiple of this many columns (d + 1 used).
_BF16_PAD = 16


def screening_margin(dim: int) -> float:
    """Float32 screening margin for cosine similarities of dimension ``dim``.

    A float32 dot product of d terms errs by at most gamma_d ||a|| ||b|| (gamma_d ~
    d 2**-24, Cauchy-Schwarz); a float32 row norm errs by at most gamma_d / 2 + u
    (relative, u = 2**-24) and its inverse, the scaling and the products add a few u:
    in all at most 2 gamma_d + 6 u. The margin, 3 (d + 8) 2**-24 + 1e-6, is 1.5 times
    that for every d.
    """
    return 3.0 * (dim + 8) * 2.0**-24 + 1e-6


def shifted_margin(dim: int, max_rounding: float, shift: float) -> float:
    """Margin of the shifted bfloat16 screen: |computed - exact| before the final rounding.

    ``max_rounding`` is the largest ||bf16(x) - x|| over the normalised rows (computed
    exactly when the copy is made); by Cauchy-Schwarz the input rounding moves a product
    by at most e_i + e_j + e_i e_j. Float32 accumulation of ``dim + 1`` terms (the shift
    term ``shift`` included) adds at most gamma_(d+1) (1 + shift + 3 e), taken as
    1.5 (dim + 1) 2**-24 (1 + shift + 3 e) (products of bfloat16 numbers are exact); float32
    normalisation of the original rows adds at most 2 eta + eta**2 with eta =
    (dim + 4) 2**-24. The final bfloat16 rounding is handled by rounding the thresholds
    (rounding is monotone), not here.
    """
    e = _inflate(max_rounding)
    return 2.0 * e + e * e + _shift_rest(dim, max_rounding, shift)


def _inflate(rounding: float | np.ndarray) -> float | np.ndarray:
    """A rounding-error norm computed in float32, made a safe upper bound."""
    return rounding * (1.0 + 1e-3) + 1e-7


def _shift_rest(dim: int, max_rounding: float, shift: float) -> float:
    """The part of ``shifted_margin`` that does not depend on the pair's rounding errors."""
    e = _inflate(max_rounding)
    eta = (dim + 4) * 2.0**-24
    accumulate = 1.5 * (dim + 1) * 2.0**-24 * (1.0 + abs(shift) + 3.0 * e)
    return accumulate + 2.0 * eta + eta * eta + 1e-6


def native_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 dot products (oneDNN), making bf16 screening pay."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class PairPlan:
    """Inputs of the pair search prepared once: label order and the normalised screening copy."""

    order: np.ndarray  # sorted position -> original index (int64)
    labels_sorted: np.ndarray  # float64 labels in sorted order
    # L2-normalised rows in sorted order: float32 [N, d], or bfloat16 [N, d + pad] whose
    # column d is the shift coordinate (set by each search) and the rest zeros
    screen: torch.Tensor
    features: np.ndarray  # the caller's features, original order (for the re-decision)
    norms: np.ndarray  # L2 norms of ``features`` rows (float32 accuracy, stored as float64)
    # bfloat16 copy: ||bf16(row) - row|| per sorted row (float32); None for float32
    rounding: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.order.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return int(self.features.shape[1])

    @property
    def max_rounding(self) -> float:
        """Largest bfloat16 rounding-error norm of a normalised row (0 for float32 copies)."""
        if self.rounding is None or self.rounding.size == 0:
            return 0.0
        return float(self.rounding.max())

    @property
    def precision(self) -> str:
        """``float32`` or ``bfloat16``: the dtype products are screened in."""
        return "bfloat16" if self.screen.dtype == torch.bfloat16 else "float32"

    def sorted_float32(self) -> np.ndarray:
        """The normalised rows in sorted order as float32 numpy (a new copy if screening in bf16)."""
        if self.screen.dtype == torch.float32:
            return self.screen.numpy()
        return _screen_copy(self.features, self.norms, self.order, torch.float32)[0].numpy()


def label_order(labels: np.ndarray) -> np.ndarray:
    """The canonical sorted order of the pair search (stable argsort of the labels)."""
    return np.argsort(np.asarray(labels, dtype=np.float64), kind="stable").astype(np.int64)


class _BadNorms(Exception):
    """A row norm computed while copying is unusable: validate in float64 instead."""


class _ScratchBuffer:
    """The memory of the last finished search's screening copy, reused by the next one.

    Back-to-back searches (DRCDown every epoch, sweeps, benchmarks) would otherwise fault
    in a fresh copy (~40 MB at N = 9,250) each time; reusing it is 12% of a whole
    ``similar_pairs`` call at N = 9,250, d = 2,048 (docs/reshaping.md). Buffers above
    ``max_bytes`` are not kept.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._buf: torch.Tensor | None = None
        self._lock = threading.Lock()

    def take(self) -> torch.Tensor | None:
        """The kept buffer (1-D uint8), now owned by the caller, or None."""
        with self._lock:
            buf, self._buf = self._buf, None
        return buf

    def give(self, screen: torch.Tensor) -> None:
        """Keep ``screen``'s memory for the next search (the caller no longer reads it)."""
        nbytes = screen.untyped_storage().nbytes()
        if screen.device.type != "cpu" or nbytes > self.max_bytes:
            return
        buf = torch.empty(0, dtype=torch.uint8).set_(screen.untyped_storage())
        with self._lock:
            if self._buf is None or self._buf.numel() < nbytes:
                self._buf = buf


_SCRATCH = _ScratchBuffer()


def _screen_copy(
    x: np.ndarray,
    norms: np.ndarray | None,
    order: np.ndarray,
    dtype: torch.dtype,
    scratch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray]:
    """Normalised rows in ``order`` as ``dtype``, each row's bfloat16 rounding-error norm,
    and the row norms (original order; computed here, chunk by chunk, when ``norms`` is
    None: raises ``_BadNorms`` when one is unusable).

    float32: ``[N, d]``. bfloat16: ``[N, d + pad]`` with zeros after column d - 1 (column
    d is the shift coordinate). One cache-sized chunk at a time: gather, scale, convert.
    ``scratch`` (1-D uint8) becomes the copy's memory when it is large enough.
    """
    n, d = x.shape
    width = d if dtype == torch.float32 else -(-(d + 1) // _BF16_PAD) * _BF16_PAD
    nbytes = n * width * torch.empty(0, dtype=dtype).element_size()
    if scratch is not None and scratch.numel() >= nbytes:
        out = scratch[:nbytes].view(dtype).view(n, width)
    else:
        out = torch.empty((n, width), dtype=dtype)
    if width > d:
        out[:, d:] = 0
    xt = torch.from_numpy(x)
    order_t = torch.from_numpy(order)
    # Row norms in sorted order: given, or measured on each gathered chunk.
    measure = norms is None
    norms_sorted = (
        torch.empty(n, dtype=torch.float64) if measure else torch.from_numpy(norms[order])
    )
    errs = torch.zeros(n, dtype=torch.float32)
    buf = torch.empty((min(_PREP_ROWS, n), d), dtype=torch.float32)
    for a in range(0, n, _PREP_ROWS):
        idx = order_t[a : a + _PREP_ROWS]
        k = idx.shape[0]
        rows = buf[:k]
        if xt.dtype == torch.float32:
            torch.index_select(xt, 0, idx, out=rows)
            if measure:
                norms_sorted[a : a + k] = torch.linalg.vector_norm(rows, dim=1)
            rows.div_(norms_sorted[a : a + k].to(torch.float32)[:, None])
        else:  # other float input: scale in float64, then round once
            raw = xt.index_select(0, idx).to(torch.float64)
            if measure:
                norms_sorted[a : a + k] = torch.linalg.vector_norm(raw, dim=1)
            rows.copy_(raw / norms_sorted[a : a + k][:, None])
        if dtype == torch.float32:
            out[a : a + k] = rows
            continue
        dst = out[a : a + k, :d]
        dst.copy_(rows)
        # The rounding error bf16(x) - x is exact in float32 (bf16 is a truncated float32).
        torch.linalg.vector_norm(rows.sub_(dst), dim=1, out=errs[a : a + k])
    if measure:
        # Checked once at the end: an unusable norm (NaN/inf/zero/overflow) poisons only
        # its own row, and the caller then redoes everything with float64 checks.
        if not screening_norms_ok(norms_sorted):
            raise _BadNorms
        norms = np.empty(n, dtype=np.float64)
        norms[order] = norms_sorted.numpy()
    return out, (None if dtype == torch.float32 else errs.numpy()), norms


def resolve_precision(precision: str, device: str | torch.device | None = None) -> str:
    """``auto`` -> ``bfloat16`` on CPUs with native bf16 dot products, else ``float32``."""
    precision = check_choice(precision, "precision", PRECISIONS)
    if precision != "auto":
        return precision
    dev = resolve_device(device)
    return "bfloat16" if dev.type == "cpu" and native_bfloat16() else "float32"


def prepare(
    features: np.ndarray,
    labels: np.ndarray,
    precision: str = "auto",
    device: str | torch.device | None = None,
    *,
    scratch: torch.Tensor | None = None,
) -> PairPlan:
    """Validate the inputs and build the label-sorted, normalised screening copy.

    ``precision`` (``auto``/``float32``/``bfloat16``) picks the screening dtype; ``auto``
    uses bfloat16 on CPUs with native bf16 dot products and float32 elsewhere (GPU).
    ``scratch``: memory the copy may use (see ``_ScratchBuffer``).
    """
    x = float_feature_array(features)
    norms = None
    if x is None:  # other dtypes/shapes: converted or explained by the float64 checks
        x, norms = features_and_norms(features, "features")
    rescaled = rows_near_unit(x)
    if rescaled is not x:
        x, norms = rescaled, None
    y = check_labels_1d(labels, "labels", x.shape[0])
    dtype = torch.bfloat16 if resolve_precision(precision, device) == "bfloat16" else torch.float32
    order = label_order(y)
    try:  # norms are measured while copying (one pass over the features)
        screen, rounding, norms = _screen_copy(x, norms, order, dtype, scratch)
    except _BadNorms:  # NaN/inf/zero rows (raises) or float32 overflow (float64 norms)
        x, norms = features_and_norms(x, "features")
        screen, rounding, norms = _screen_copy(x, norms, order, dtype, scratch)
    return PairPlan(
        order=order,
        labels_sorted=y[order],
        screen=screen,
        features=x,
        norms=norms,
        rounding=rounding,
    )


#: Rows whose largest |value| lies outside [2**-_SAFE_EXP, 2**_SAFE_EXP] are rescaled.
_SAFE_EXP = 60


def rows_near_unit(x: np.ndarray) -> np.ndarray:
    """``x`` itself, or a copy whose far-from-unit rows are scaled by a power of two.

    The cosine of two rows does not depend on their lengths, and scaling by 2**k is exact
    (also for float32 subnormals, which become normal numbers), so every cosine, the
    dense float64 oracle's included, is unchanged bit for bit; what changes is that no
    norm, reciprocal or square can underflow or overflow (features of about 1e-40 lost
    pairs to an infinite reciprocal before). Non-finite rows are left for the checks.
    """
    if x.dtype.kind != "f" or x.size == 0:
        return x
    peak = np.zeros(x.shape[0], dtype=np.float64)
    for a in range(0, x.shape[0], 4096):
        with np.errstate(invalid="ignore"):
            peak[a : a + 4096] = np.abs(x[a : a + 4096]).max(axis=1)
    ok = ~np.isfinite(peak) | (peak == 0) | ((peak >= 2.0**-_SAFE_EXP) & (peak <= 2.0**_SAFE_EXP))
    if ok.all():
        return x
    _mantissa, exp = np.frexp(np.where(ok, 1.0, peak))
    out = np.array(x, copy=True)
    rows = np.flatnonzero(~ok)
    out[rows] = np.ldexp(out[rows], (1 - exp[rows])[:, None].astype(np.int32)).astype(x.dtype)
    return out


def _window_ends(ys: np.ndarray, t_q: float) -> np.ndarray:
    """For each sorted position p, an end e such that every q >= e has y_q - y_p >= t_q.

    A tiny slack keeps the bound a superset under rounding; the exact label test is
    applied to every candidate afterwards.
    """
    if math.isinf(t_q):
        return np.full(ys.shape[0], ys.shape[0], dtype=np.int64)
    bound = ys + t_q
    bound = bound + 1e-9 * (1.0 + np.abs(bound))
    return np.searchsorted(ys, bound, side="right").astype(np.int64)


def balanced_slices(
    labels: np.ndarray, n_parts: int, t_q: float = DRCDownParams.T_q
) -> list[tuple[int, int]]:
    """Split the label-sorted rows into ``n_parts`` contiguous ranges of about equal work.

    The work of sorted row p is the number of columns it is multiplied with (its label
    window above p). Empty ranges are possible when ``n_parts`` exceeds the row count.
    """
    n_parts = check_int(n_parts, "n_parts", minimum=1)
    t_q = check_threshold(t_q, "t_q", low=0.0)
    ys = np.sort(np.asarray(labels, dtype=np.float64), kind="stable")
    n = ys.shape[0]
    work = (_window_ends(ys, t_q) - np.arange(n)).astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(work)])
    targets = cum[-1] * np.arange(1, n_parts) / n_parts
    cuts = np.searchsorted(cum, targets, side="left").clip(0, n)
    edges = [0, *(int(c) for c in cuts), n]
    return [(edges[k], max(edges[k], edges[k + 1])) for k in range(n_parts)]


def _gathered_pairs(
    x: np.ndarray, i: np.ndarray, j: np.ndarray
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(offset, x[i chunk], x[j chunk])`` gathered into two reused buffers."""
    xt = torch.from_numpy(x)
    rows = min(_EXACT_CHUNK, i.shape[0])
    bi = torch.empty((rows, x.shape[1]), dtype=xt.dtype)
    bj = torch.empty_like(bi)
    ti, tj = torch.from_numpy(i), torch.from_numpy(j)
    for a in range(0, i.shape[0], _EXACT_CHUNK):
        k = min(_EXACT_CHUNK, i.shape[0] - a)
        torch.index_select(xt, 0, ti[a : a + k], out=bi[:k])
        torch.index_select(xt, 0, tj[a : a + k], out=bj[:k])
        yield a, bi[:k], bj[:k]


def _faiss_pair_dots(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Float32 dot products x[i] . x[j] with FAISS's indexed inner products.

    Pairs are grouped by i into "virtual rows" of at most ``_PAIRS_PER_ROW`` partners, so
    the padded id matrix stays O(pairs) however the pairs are distributed; only the query
    rows are gathered (once per virtual row, in chunks), every partner is read in place.
    """
    import faiss

    order = np.argsort(i, kind="stable")
    ii, jj = i[order], j[order]
    starts = np.flatnonzero(np.r_[True, ii[1:] != ii[:-1]])  # first pair of each row
    rank = np.arange(ii.shape[0]) - np.repeat(starts, np.diff(np.r_[starts, ii.shape[0]]))
    # virtual row of each pair: one per (row, block of _PAIRS_PER_ROW partners)
    new_vrow = (rank % _PAIRS_PER_ROW) == 0
    vrow = np.cumsum(new_vrow) - 1
    slot = rank % _PAIRS_PER_ROW
    n_v = int(vrow[-1]) + 1
    ids = np.full((n_v, _PAIRS_PER_ROW), -1, dtype=np.int64)
    ids[vrow, slot] = jj
    query_rows = ii[new_vrow]
    ip = np.zeros((n_v, _PAIRS_PER_ROW), dtype=np.float32)
    chunk = _QUERY_CHUNK  # query rows per FAISS call
    xt = torch.from_numpy(x)
    qt = torch.empty((min(chunk, n_v), x.shape[1]), dtype=torch.float32)
    queries = qt.numpy()
    for a in range(0, n_v, chunk):  # queries gathered chunk by chunk: bounded memory
        k = min(chunk, n_v - a)
        torch.index_select(xt, 0, torch.from_numpy(query_rows[a : a + k]), out=qt[:k])
        faiss.fvec_inner_products_by_idx(
            faiss.swig_ptr(ip[a : a + k]),
            faiss.swig_ptr(queries[:k]),
            faiss.swig_ptr(x),
            faiss.swig_ptr(ids[a : a + k]),
            int(x.shape[1]),
            k,
            _PAIRS_PER_ROW,
        )
    out = np.empty(i.shape[0], dtype=np.float32)
    out[order] = ip[vrow, slot]
    return out


def float32_similarity(plan: PairPlan, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Float32 cosine similarity of original rows ``i`` and ``j`` (error < screening_margin)."""
    inv = (1.0 / plan.norms).astype(np.float32)
    x = np.ascontiguousarray(plan.features, dtype=np.float32)
    # Rows far from unit length could overflow/underflow a float32 dot: those are
    # normalised before multiplying; the rest are multiplied in place by FAISS.
    near_unit = plan.norms.min() > 1e-15 and plan.norms.max() < 1e15
    if near_unit and i.shape[0]:
        return _faiss_pair_dots(x, i, j) * inv[i] * inv[j]
    out = np.empty(i.shape[0], dtype=np.float32)
    for a, bi, bj in _gathered_pairs(x, i, j):
        k = bi.shape[0]
        bi.mul_(torch.from_numpy(inv[i[a : a + k]])[:, None])
        bj.mul_(torch.from_numpy(inv[j[a : a + k]])[:, None])
        out[a : a + k] = np.einsum("ij,ij->i", bi.numpy(), bj.numpy())
    return out


def float64_decision(plan: PairPlan, i: np.ndarray, j: np.ndarray, thr: float) -> np.ndarray:
    """Whether the float64 cosine of rows ``i`` and ``j`` exceeds ``thr``, as the oracle decides.

    The cosine is first computed as dot / sqrt(|x_i|^2 |x_j|^2) in float64 (relative error
    ~d 2**-53); only pairs within 1e-9 of ``thr`` are recomputed exactly the oracle's way
    (``exact_similarity``), where the summation order could matter.
    """
    cos = np.empty(i.shape[0], dtype=np.float64)
    for a, bi, bj in _gathered_pairs(plan.features, i, j):
        xi = bi.numpy().astype(np.float64, copy=False)
        xj = bj.numpy().astype(np.float64, copy=False)
        sq = np.einsum("ij,ij->i", xi, xi) * np.einsum("ij,ij->i", xj, xj)
        cos[a : a + xi.shape[0]] = np.einsum("ij,ij->i", xi, xj) / np.sqrt(sq)
    out = cos > thr
    near = np.flatnonzero(np.abs(cos - thr) <= 1e-9)
    if near.size:
        out[near] = exact_similarity(plan, i[near], j[near]) > thr
    return out


def exact_similarity(plan: PairPlan, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Float64 cosine similarity of original rows ``i`` and ``j`` (original indices).

    Computed like the dense oracle: rows normalised in float64 by ``sqrt(sum(x * x))``,
    then multiplied, so exact ties (duplicate or opposite rows: cosine exactly +-1) are
    decided the same way (the plan's norms are only float32-accurate and are not used).
    """
    out = np.empty(i.shape[0], dtype=np.float64)
    for a, bi, bj in _gathered_pairs(plan.features, i, j):
        xi = bi.numpy().astype(np.float64)
        xj = bj.numpy().astype(np.float64)
        xi /= np.sqrt((xi * xi).sum(axis=1))[:, None]
        xj /= np.sqrt((xj * xj).sum(axis=1))[:, None]
        out[a : a + xi.shape[0]] = np.einsum("ij,ij->i", xi, xj)
    return out


@contextlib.contextmanager
def _ieee_fp32(device: torch.device) -> Iterator[None]:
    """Disable TF32 and reduced-precision bf16 reductions for CUDA matmuls while screening.

    Either would break the screening margin (TF32 rounds inputs to 10 bits; split-K bf16
    reductions round partial sums).
    """
    if device.type != "cuda":
        yield
        return
    mm = torch.backends.cuda.matmul
    old_red = getattr(mm, "allow_bf16_reduced_precision_reduction", None)
    if old_red is not None:
        mm.allow_bf16_reduced_precision_reduction = False
    try:
        with _ieee_fp32_only(mm):
            yield
    finally:
        if old_red is not None:
            mm.allow_bf16_reduced_precision_reduction = old_red


@contextlib.contextmanager
def _ieee_fp32_only(mm: object) -> Iterator[None]:
    """IEEE float32 (no TF32) for CUDA matmuls inside the block."""
    if hasattr(mm, "fp32_precision"):
        old = mm.fp32_precision
        mm.fp32_precision = "ieee"
        try:
            yield
        finally:
            mm.fp32_precision = old
    else:  # older torch
        old_flag = mm.allow_tf32
        mm.allow_tf32 = False
        try:
            yield
        finally:
            mm.allow_tf32 = old_flag


def _round_down(value: float, dtype: torch.dtype) -> torch.Tensor:
    """The largest ``dtype`` number <= ``value`` (a 0-d tensor)."""
    t = torch.tensor(value, dtype=torch.float64).to(dtype)
    if float(t) > value:
        t = torch.nextafter(t, torch.tensor(-math.inf, dtype=dtype))
    return t


def _torch_candidates(
    plan: PairPlan,
    start: int,
    stop: int,
    low: float,
    ends: np.ndarray,
    device: torch.device,
    block_rows: int,
    block_cols: int,
    shift: float = 0.0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (row_pos, col_pos, value) with value >= low, col_pos > row_pos (sorted positions).

    bfloat16 plans: value = product - ``shift`` computed inside the accumulation (the
    row operand's coordinate d is 1, the column operand's is -shift; ``shift`` must be a
    bfloat16 number), so the bfloat16 result is rounded close to zero.
    """
    xs = plan.screen if device.type == "cpu" else plan.screen.to(device)
    shifted = xs.dtype == torch.bfloat16
    d = plan.dim
    if shifted:
        xs[:, d] = -shift
    # Compare in the screening dtype against a threshold rounded DOWN (a superset).
    low_t = _round_down(low, xs.dtype)
    # On CPU, compare with numpy: bfloat16 as int16 bit patterns, which order like the
    # values for positive thresholds (torch's bf16 comparison converts and is ~7x slower).
    as_bits = shifted and float(low_t) > 0
    low_np = int(low_t.view(torch.int16)) if as_bits else float(low_t)
    low_t = low_t.to(device)
    n = plan.n
    # Few tile shapes: the last row block is widened over earlier rows and column widths
    # are rounded up to a multiple of _COL_QUANTUM (the extra rows/columns are filtered out
    # afterwards), so the CPU matmul kernels are built for a handful of shapes only.
    with torch.inference_mode(), _ieee_fp32(device):
        for a in range(start, stop, block_rows):
            b = min(a + block_rows, stop)
            a_eff = max(0, b - block_rows)
            rows = xs[a_eff:b]
            if shifted:
                rows = rows.clone()
                rows[:, d] = 1.0
            end = int(ends[b - 1])
            for c0 in range(a, end, block_cols):
                c1 = min(c0 + block_cols, end)
                width = min(block_cols, -(-(c1 - c0) // _COL_QUANTUM) * _COL_QUANTUM)
                c1_eff = min(c0 + width, n)
                c0_eff = max(0, c1_eff - width)
                # Columns x rows: oneDNN packs the small row block, not the window.
                sims = xs[c0_eff:c1_eff] @ rows.T
                if device.type == "cpu":
                    # numpy's flatnonzero is far faster than torch.nonzero on CPU.
                    arr = (sims.view(torch.int16) if as_bits else sims.float()).numpy()
                    flat = np.flatnonzero(arr >= low_np)
                    if flat.size == 0:
                        continue
                    vals = arr.reshape(-1)[flat]
                    if as_bits:  # bfloat16 bits -> float32 (the high half of a float32)
                        vals = (vals.astype(np.int32) << 16).view(np.float32)
                    c, r = np.divmod(flat, rows.shape[0])
                else:
                    hit = torch.nonzero(sims >= low_t)
                    if hit.shape[0] == 0:
                        continue
                    vals = sims[hit[:, 0], hit[:, 1]].float().cpu().numpy()
                    hit = hit.cpu().numpy()
                    c, r = hit[:, 0], hit[:, 1]
                r = r.astype(np.int64) + a_eff
                c = c.astype(np.int64) + c0_eff
                keep = (c > r) & (r >= a) & (c >= c0) & (c < c1)
                yield r[keep], c[keep], vals[keep]


def _faiss_range_block(
    index_cols: np.ndarray, queries: np.ndarray, low: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CPU FAISS range search of ``queries`` against ``index_cols`` (inner product > low)."""
    import faiss

    index = faiss.IndexFlatIP(index_cols.shape[1])
    index.add(index_cols)
    lims, sims, cols = index.range_search(queries, float(low))
    rows = np.repeat(np.arange(queries.shape[0], dtype=np.int64), np.diff(lims).astype(np.int64))
    return rows, cols.astype(np.int64), sims.astype(np.float32)


def _faiss_knn_block(
    index, index_cols: np.ndarray, queries: np.ndarray, low: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-NN search on ``index`` (any FAISS index over ``index_cols``) with a range fallback.

    FAISS has no GPU range search, so the GPU path asks for the k best columns per row
    (k <= 2048 on GPU). A row whose k-th result is still above ``low`` may have more
    neighbours: those rows are answered again by an exact CPU range search.
    """
    k = min(k, index_cols.shape[0])
    sims, cols = index.search(queries, k)
    full = sims[:, -1] > low
    good = (sims > low) & ~full[:, None]
    rows = np.nonzero(good)[0].astype(np.int64)
    out_cols = cols[good].astype(np.int64)
    out_sims = sims[good].astype(np.float32)
    redo = np.flatnonzero(full)
    if redo.size:
        r2, c2, s2 = _faiss_range_block(index_cols, np.ascontiguousarray(queries[redo]), low)
        rows = np.concatenate([rows, redo[r2]])
        out_cols = np.concatenate([out_cols, c2])
        out_sims = np.concatenate([out_sims, s2])
    return rows, out_cols, out_sims


def _faiss_gpu_count() -> int:
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def _faiss_candidates(
    plan: PairPlan,
    start: int,
    stop: int,
    low: float,
    ends: np.ndarray,
    use_gpu: bool,
    block_rows: int,
    knn_k: int = FAISS_GPU_MAX_K,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Like ``_torch_candidates`` with FAISS: CPU range search, or GPU k-NN plus fallback."""
    import faiss

    res = faiss.StandardGpuResources() if use_gpu else None
    x32 = plan.sorted_float32()
    for a in range(start, stop, block_rows):
        b = min(a + block_rows, stop)
        end = int(ends[b - 1])
        cols_arr = x32[a:end]
        queries = x32[a:b]
        if use_gpu:
            index = faiss.GpuIndexFlatIP(res, cols_arr.shape[1])
            index.add(cols_arr)
            r, c, s = _faiss_knn_block(index, cols_arr, queries, low, knn_k)
        else:
            r, c, s = _faiss_range_block(cols_arr, queries, low)
        r = r + a
        c = c + a
        keep = c > r
        yield r[keep], c[keep], s[keep]


@dataclass(frozen=True)
class _Screen:
    """How one search screens products: keep values >= ``low``; above ``high`` a pair is
    similar for sure. Shifted bfloat16 screens store product - ``shift`` and decide the
    band per pair (``high`` is then infinite)."""

    threshold: float  # 1 - t_f: a pair is similar when its float64 cosine exceeds this
    low: float
    high: float
    shift: float = 0.0
    shifted: bool = False
    max_rounding: float = 0.0  # largest bfloat16 rounding-error norm of the plan's rows


def _plan_for(
    features: np.ndarray | PairPlan,
    labels: np.ndarray | None,
    precision: str,
    device: str | torch.device | None,
) -> PairPlan:
    """The plan to search: ``features`` itself when it is a ``PairPlan`` (re-copied from
    the original features when ``precision`` names another dtype), else a new one."""
    if not isinstance(features, PairPlan):
        return prepare(features, labels, precision, device)
    check_choice(precision, "precision", PRECISIONS)
    if precision in ("auto", features.precision):
        return features
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    # Rebuild from the original features: a bf16 copy must never be widened.
    screen, rounding, _ = _screen_copy(features.features, features.norms, features.order, dtype)
    return replace(features, screen=screen, rounding=rounding)


def _screen_bounds(plan: PairPlan, threshold: float, shifted: bool) -> _Screen:
    """The screening bounds of ``plan`` around ``threshold`` (see the module docstring)."""
    if not shifted:
        margin = screening_margin(plan.dim)
        return _Screen(threshold, threshold - margin, threshold + margin)
    # Screen products minus a bfloat16 shift just below threshold - margin: values near
    # 0 round finely, every candidate value is positive (>= 2**-10) and can be compared
    # as int16 bit patterns; |shift| <= |threshold| + 0.02.
    e_max = plan.max_rounding
    margin = shifted_margin(plan.dim, e_max, abs(threshold) + 0.02)
    shift = float(_round_down(threshold - margin - 2.0**-10, torch.bfloat16))
    return _Screen(threshold, threshold - shift - margin, math.inf, shift, True, e_max)


def _candidate_blocks(
    plan: PairPlan,
    start: int,
    stop: int,
    screen: _Screen,
    ends: np.ndarray,
    backend: str,
    device: torch.device,
    block_rows: int,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Screened candidates per block, ``(row_pos, col_pos, value)``, from ``backend``."""
    if backend == "faiss":
        if device.type == "cuda" and _faiss_gpu_count() == 0:
            raise InputError(
                "backend='faiss' with a CUDA device needs a FAISS build with GPU support; "
                "this FAISS has none: use backend='torch' or device='cpu'"
            )
        return _faiss_candidates(
            plan, start, stop, screen.low, ends, device.type == "cuda", block_rows
        )
    # "auto" and "torch": the blocked torch matmul is the fastest on CPU and GPU
    block_cols = _COLS_GPU if device.type == "cuda" else _COLS_CPU
    return _torch_candidates(
        plan, start, stop, screen.low, ends, device, block_rows, block_cols, shift=screen.shift
    )


def _label_filtered(
    blocks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
    labels_sorted: np.ndarray,
    t_q: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every block's candidates with |y_row - y_col| < t_q: sorted positions (compact
    ints) and float64 screened values, concatenated (O(pairs) memory)."""
    n = labels_sorted.shape[0]
    pos_dtype = np.int32 if n < 2**31 else np.int64
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for r, c, v in blocks:
        ok = np.abs(labels_sorted[c] - labels_sorted[r]) < t_q
        rows.append(r[ok].astype(pos_dtype))
        cols.append(c[ok].astype(pos_dtype))
        values.append(v[ok])
    if not rows:
        empty = np.empty(0, dtype=pos_dtype)
        return empty, empty, np.empty(0, dtype=np.float64)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(values).astype(np.float64)


def _shifted_band(
    plan: PairPlan,
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    screen: _Screen,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair bounds of a shifted bfloat16 screen: (kept candidates, undecided among them).

    Values are product - shift. Per pair, the input rounding moves the product by at most
    e_i + e_j + e_i e_j (each row's own rounding-error norm); the bfloat16 result is within
    2**-8 (relative) of the float32 accumulation and rounding is monotone, so the bounds
    are widened by that much. Pairs above the bound of the largest e are similar for sure;
    only the rest get their own bounds.
    """
    assert plan.rounding is not None
    thr, shift = screen.threshold, screen.shift
    rest = _shift_rest(plan.dim, screen.max_rounding, shift)
    hi_all = thr - shift + shifted_margin(plan.dim, screen.max_rounding, shift)
    idx = np.flatnonzero(values <= hi_all + 2.0**-8 * abs(hi_all) + 1e-12)
    e_r = _inflate(plan.rounding[rows[idx]].astype(np.float64))
    e_c = _inflate(plan.rounding[cols[idx]].astype(np.float64))
    m = e_r + e_c + e_r * e_c + rest
    lo = thr - shift - m
    hi = thr - shift + m
    lo -= 2.0**-8 * np.abs(lo) + 1e-12
    hi += 2.0**-8 * np.abs(hi) + 1e-12
    keep = np.ones(values.shape[0], dtype=bool)
    keep[idx] = values[idx] >= lo  # below: not similar for sure
    band = np.zeros(values.shape[0], dtype=bool)
    band[idx] = values[idx] <= hi  # above: similar for sure
    return keep, band[keep]


def _float32_band(
    plan: PairPlan, first: np.ndarray, second: np.ndarray, band: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Re-screen the band in float32 from the original features: (kept, still undecided)."""
    margin = screening_margin(plan.dim)
    s32 = float32_similarity(plan, first[band], second[band])
    keep = np.ones(first.shape[0], dtype=bool)
    keep[band] = s32 > threshold - margin
    undecided = np.zeros(first.shape[0], dtype=bool)
    undecided[band] = s32 <= threshold + margin
    return keep, undecided[keep]


def _sorted_pairs(first: np.ndarray, second: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs as int64 ``(i, j)`` with i < j, sorted by (i, j)."""
    i = np.minimum(first, second).astype(np.int64, copy=False)
    j = np.maximum(first, second).astype(np.int64, copy=False)
    order = np.argsort(i * max(n, 1) + j)  # (i, j) pairs are unique: one int64 key each
    return i[order], j[order]


def similar_pairs_slice(
    features: np.ndarray | PairPlan,
    labels: np.ndarray | None,
    start: int,
    stop: int,
    t_f: float = DRCDownParams.T_f,
    t_q: float = DRCDownParams.T_q,
    backend: str = "auto",
    device: str | torch.device | None = None,
    block_rows: int | None = None,
    precision: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Similar pairs whose first member lies in label-sorted rows ``[start, stop)``.

    Rows are positions in ``label_order(labels)``; each row is paired with every LATER
    sorted position, so a partition of ``[0, N)`` into slices yields every pair exactly
    once. Pass a ``PairPlan`` from ``prepare`` (and ``labels=None``) to reuse the prepared
    copy across slices (its screening precision is then used unless ``precision`` names
    another). Returns ``(i, j)`` in ORIGINAL indices, int64, i < j, sorted.

    Stages: screen the label windows in low precision (``_candidate_blocks``), keep the
    label-window pairs (``_label_filtered``), settle the screening band per pair
    (``_shifted_band``, ``_float32_band``), decide what is left in float64
    (``float64_decision``).
    """
    plan = _plan_for(features, labels, precision, device)
    n = plan.n
    t_f = float(check_T_f(t_f, "t_f", InputError))  # the one range of T_f (params.py)
    t_q = check_threshold(t_q, "t_q", low=0.0)  # inf allowed here: no label window
    backend = check_choice(backend, "backend", BACKENDS)
    start = check_int(start, "start", minimum=0)
    stop = check_int(stop, "stop", minimum=0)
    if not start <= stop <= n:
        raise InputError(
            f"row slice [{start}, {stop}) is not inside [0, {n}]; pass 0 <= start <= stop <= N"
        )
    dev = resolve_device(device)
    if block_rows is None:
        block_rows = _ROWS_GPU if dev.type == "cuda" else _ROWS_CPU
    block_rows = check_int(block_rows, "block_rows", minimum=1)
    shifted = plan.precision == "bfloat16" and backend != "faiss"
    screen = _screen_bounds(plan, 1.0 - t_f, shifted)
    ends = _window_ends(plan.labels_sorted, t_q)

    # Gather every block's candidates first (O(pairs) memory), then re-decide the band
    # in a few large batches: per-block batches would pay the gather set-up many times.
    blocks = _candidate_blocks(plan, start, stop, screen, ends, backend, dev, block_rows)
    rows, cols, values = _label_filtered(blocks, plan.labels_sorted, t_q)
    first, second = plan.order[rows], plan.order[cols]  # original indices
    if shifted and plan.rounding is not None:
        keep, band = _shifted_band(plan, rows, cols, values, screen)
        first, second = first[keep], second[keep]
        if band.any() and plan.features.dtype == np.float32:
            # The few left inside the float32 margin go to float64 (float64 features:
            # the whole band goes to float64).
            keep, band = _float32_band(plan, first, second, band, screen.threshold)
            first, second = first[keep], second[keep]
    else:
        band = values <= screen.high
    if band.any():
        keep = ~band
        keep[band] = float64_decision(plan, first[band], second[band], screen.threshold)
        first, second = first[keep], second[keep]
    return _sorted_pairs(first, second, n)


def similar_pairs(
    features: np.ndarray,
    labels: np.ndarray,
    t_f: float = DRCDownParams.T_f,
    t_q: float = DRCDownParams.T_q,
    backend: str = "auto",
    device: str | torch.device | None = None,
    block_rows: int | None = None,
    precision: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j with float64 cosine similarity > 1 - t_f and |y_i - y_j| < t_q.

    Features are L2-normalised inside. ``backend``: ``torch`` (blocked matmul over the
    label windows, CPU or GPU), ``faiss`` (CPU: range search on a flat inner-product
    index per label window; GPU: k-NN with k <= 2048 and a CPU range-search fallback for
    rows that hit the cap), ``auto`` = ``torch`` (fastest in ``bench_reshape.py``).
    ``device=None`` uses CUDA when available. ``precision``: the screening dtype of the
    torch backend (``auto``: bfloat16 on CPUs with native bf16 dot products, else
    float32); the result is the float64 decision whatever the screening precision.
    Returns int64 ``(i, j)`` sorted by (i, j).
    """
    plan = prepare(features, labels, precision, device, scratch=_SCRATCH.take())
    try:
        return similar_pairs_slice(plan, None, 0, plan.n, t_f, t_q, backend, device, block_rows)
    finally:
        _SCRATCH.give(plan.screen)
