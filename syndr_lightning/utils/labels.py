"""Label sanity in one place: every loader (``data.manifest.make_manifest``), ``syndr data
check`` and ``syndr reshape`` refuse labels that cannot be ranked.

A label set is refused, naming where it came from, when

* a score is infinite, or its magnitude is above :data:`ABSURD` (1e15: no quality scale
  comes near it; one such value squashes every other min-max normalised label to ~0);
* every score is missing (NaN);
* fewer than 2 images have a score, or every score is the same, or the scores differ
  only by floating-point noise (relative range below :data:`FLOAT_NOISE`): nothing to
  rank, SRCC and PLCC are undefined;
* the spread is too small to rank: the central 80 % of the normalised scores (10th to
  90th percentile) span less than :data:`MIN_SPREAD` of the range, i.e. almost every
  image has the same label and a few outliers carry the whole range.
"""

from __future__ import annotations

import numpy as np

from syndr_lightning.utils.errors import DatasetError, SyndrError

__all__ = ["ABSURD", "FLOAT_NOISE", "MIN_SPREAD", "LabelError", "check_labels"]


class LabelError(DatasetError):
    """A label set that cannot be ranked (loaders prefix the label file's path)."""


#: Largest magnitude a raw score may have.
ABSURD = 1e15
#: Smallest interdecile range of the scores, as a fraction of their full range.
MIN_SPREAD = 1e-6
#: Smallest full range of the scores, relative to their magnitude: below it the scores
#: differ only by floating-point noise (5.0 .. 5.000000000011).
FLOAT_NOISE = 1e-9


def check_labels(
    raw: np.ndarray | list[float],
    where: str,
    *,
    error: type[SyndrError] = LabelError,
    allow_nan: bool = True,
) -> None:
    """Raise ``error`` (one line naming ``where``) when ``raw`` cannot be ranked.

    ``allow_nan``: single missing scores are left to the caller (the manifest check names
    their rows); all-missing is always refused.
    """
    values = np.asarray(raw, dtype=np.float64).ravel()
    if values.size == 0:
        return
    inf = np.flatnonzero(np.isinf(values))
    if inf.size:
        raise error(
            f"{where}: {inf.size} scores are infinite (first at position {int(inf[0]) + 1}); "
            "give every image a finite score or remove its row"
        )
    finite_mask = np.isfinite(values)
    if not finite_mask.any():
        raise error(
            f"{where}: every one of the {values.size} scores is missing (NaN); the label file "
            "has no usable score column"
        )
    if not allow_nan and not finite_mask.all():
        bad = np.flatnonzero(~finite_mask)
        raise error(
            f"{where}: {bad.size} scores are NaN (first at position {int(bad[0]) + 1}); "
            "give every image a score"
        )
    finite = values[finite_mask]
    big = np.flatnonzero(np.abs(values) > ABSURD)
    if big.size:
        i = int(big[0])
        raise error(
            f"{where}: score {values[i]:.4g} at position {i + 1} is absurd (magnitude above "
            f"{ABSURD:g}); it would squash every other normalised label to about 0 - fix or "
            "remove that row"
        )
    if finite.size < 2:
        raise error(
            f"{where}: only {finite.size} image has a score; ranking needs at least 2 "
            "(SRCC/PLCC undefined) - add images or use another label file"
        )
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        raise error(
            f"{where}: all {finite.size} scores are equal ({lo:g}); constant labels cannot be "
            "ranked (SRCC/PLCC undefined) - check the score column"
        )
    if hi - lo <= FLOAT_NOISE * max(abs(lo), abs(hi)):
        raise error(
            f"{where}: the scores differ only by rounding noise ({lo!r}..{hi!r}, a relative "
            f"spread of {(hi - lo) / max(abs(lo), abs(hi)):.2g}); min-max scaling would "
            "stretch that noise to 0..10 - check the score column"
        )
    p10, p90 = np.percentile(finite, [10.0, 90.0])
    if finite.size >= 10 and (p90 - p10) < MIN_SPREAD * (hi - lo):
        raise error(
            f"{where}: the scores' spread is too small to rank: 80% of them lie within "
            f"{p90 - p10:.3g} while the range is {lo:.4g}..{hi:.4g} (a few outliers carry the "
            "whole range); fix the outlying rows or the score column"
        )
