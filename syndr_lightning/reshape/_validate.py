"""Input checks shared by the reshaping functions: every user mistake becomes an InputError."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The pair-search backends of DRCDown (``reshape.backend``, ``syndr reshape down
#: --backend``): defined with the parameter objects, the one list every validation uses.
from syndr_lightning.reshape.params import BACKENDS  # noqa: F401  (re-exported)
from syndr_lightning.utils.errors import InputError

# Rows checked per chunk so that validating a large feature matrix never allocates a
# second full-size boolean array.
_CHECK_ROWS = 8192


def check_features(x: Any, name: str, *, min_rows: int = 1) -> np.ndarray:
    """Return ``x`` as a 2-D floating array after checking shape, finiteness and row norms.

    The array is not copied when it already is a floating numpy array.
    """
    return features_and_norms(x, name, min_rows=min_rows)[0]


def features_and_norms(x: Any, name: str, *, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Like ``check_features``, also returning the float64 L2 norm of every row (one pass)."""
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputError(
            f"{name}: expected a numeric feature array, found dtype {arr.dtype}; "
            "pass a float32/float64 array of shape [n, d]"
        )
    if arr.ndim != 2:
        raise InputError(
            f"{name}: expected a 2-D array [n_samples, dim], found shape {arr.shape}; "
            "reshape the features to one row per sample"
        )
    if arr.shape[0] < min_rows or arr.shape[1] == 0:
        raise InputError(
            f"{name}: expected at least {min_rows} row(s) and 1 column, found shape "
            f"{arr.shape}; pass a non-empty feature matrix"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    norms = np.empty(arr.shape[0], dtype=np.float64)
    for start in range(0, arr.shape[0], _CHECK_ROWS):
        chunk = arr[start : start + _CHECK_ROWS].astype(np.float64, copy=False)
        sq = np.einsum("ij,ij->i", chunk, chunk)
        bad = np.flatnonzero(~np.isfinite(sq))
        if bad.size:
            row = start + int(bad[0])
            if not np.isfinite(arr[row]).all():
                raise InputError(
                    f"{name}: row {row} contains NaN or inf; features must be finite "
                    "(check the feature extractor's output)"
                )
            raise InputError(
                f"{name}: row {row} has values too large to square in float64 "
                f"(max |x| = {np.abs(arr[row]).max():.3g}); rescale the features"
            )
        zero = np.flatnonzero(sq == 0.0)
        if zero.size:
            raise InputError(
                f"{name}: row {start + int(zero[0])} is all zeros, so its cosine similarity "
                "is undefined; drop that sample or fix its features"
            )
        norms[start : start + _CHECK_ROWS] = np.sqrt(sq)
    return arr, norms


def float_feature_array(x: Any, *, min_rows: int = 1) -> np.ndarray | None:
    """``x`` as a C-contiguous float32/float64 ``[n, d]`` array, or None when it is anything
    else (other dtypes, shapes or sizes: ``features_and_norms`` then converts or explains)."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.dtype not in (np.float32, np.float64):
        return None
    if arr.shape[0] < min_rows or arr.shape[1] == 0:
        return None
    return np.ascontiguousarray(arr)


def screening_norms_ok(norms: Any) -> bool:
    """Whether torch-computed row norms are usable for screening: all far from float32's
    limits (no NaN/inf, no zero rows, no overflow or underflow)."""
    return bool(((norms > 1e-30) & (norms < 1e30)).all())


def check_labels_1d(y: Any, name: str, n: int) -> np.ndarray:
    """Return ``y`` as a finite float64 vector of length ``n``."""
    arr = np.asarray(y)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputError(f"{name}: expected numeric labels, found dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(
            f"{name}: expected a vector of {n} labels (one per feature row), found shape "
            f"{arr.shape}; labels and features must describe the same samples"
        )
    arr = arr.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InputError(
            f"{name}: label {int(bad[0])} is {arr[bad[0]]}; labels must be finite scores "
            "(0..10 scale)"
        )
    return arr


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise unless two feature matrices have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"{name_a} has {a.shape[1]} feature columns but {name_b} has {b.shape[1]}; "
            "both must come from the same encoder"
        )


def check_threshold(
    value: Any,
    name: str,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float after checking it lies in the given interval."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, found {value!r}") from None
    if math.isnan(v):
        raise InputError(f"{name}: expected a number, found NaN")
    ok_low = v > low if low_open else v >= low
    ok_high = v < high if high_open else v <= high
    if not (ok_low and ok_high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise InputError(f"{name} must lie in {lo}{low}, {high}{hi}, found {v}")
    return v


def check_int(value: Any, name: str, *, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum`` (bools and floats with fractions refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {minimum}, found {value!r}")
    v = int(value)
    if v < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, found {v}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name}: expected one of {', '.join(choices)}, found {value!r}")
    return str(value)
