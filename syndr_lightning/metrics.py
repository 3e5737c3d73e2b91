"""IQA correlation metrics: SRCC, PLCC, KRCC (torchmetrics) and PLCC after a logistic fit.

``plcc`` is the plain Pearson correlation (what the reference code reports);
``plcc_logistic`` first maps predictions through the 4-parameter logistic of the VQEG
protocol, fitted by least squares (scipy) monotone in the direction of the plain
Pearson correlation, and carries that direction, so its sign is always that of ``plcc``; it falls back to the plain
Pearson value when the fit fails. All four are higher-is-better and lie in [-1, 1].
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit
from torchmetrics import Metric
from torchmetrics.functional import (
    kendall_rank_corrcoef,
    pearson_corrcoef,
    spearman_corrcoef,
)
from torchmetrics.utilities import dim_zero_cat

from syndr_lightning.utils.errors import InputError

__all__ = [
    "METRIC_NAMES",
    "IQAMetrics",
    "LogisticPLCC",
    "iqa_metrics",
    "logistic4",
    "logistic_plcc",
]

METRIC_NAMES: tuple[str, ...] = ("srcc", "plcc", "krcc", "plcc_logistic")


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQEG 4-parameter logistic ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``."""
    z = np.clip(-(x - b3) / max(abs(b4), 1e-12), -60.0, 60.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def _as_pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred.detach().cpu() if torch.is_tensor(pred) else pred, dtype=np.float64)
    t = np.asarray(target.detach().cpu() if torch.is_tensor(target) else target, np.float64)
    p, t = np.ascontiguousarray(p.reshape(-1)), np.ascontiguousarray(t.reshape(-1))
    if p.shape != t.shape:
        raise InputError(
            f"pred and target must have the same length, got {p.shape[0]} and {t.shape[0]}"
        )
    if p.size < 2:
        raise InputError(f"need at least 2 (pred, target) pairs to correlate, got {p.size}")
    if not np.all(np.isfinite(p)):
        raise InputError(
            "the predictions must be finite but contain NaN or inf (did the training diverge? "
            "lower the learning rate)"
        )
    if not np.all(np.isfinite(t)):
        raise InputError("the targets must be finite but contain NaN or inf; check the labels")
    return p, t


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def _monotone_logistic(s: float) -> Any:
    """The 4-parameter logistic with amplitude ``s * amp`` (``amp >= 0``): monotone in the
    direction ``s`` (+1 increasing, -1 decreasing) for every parameter value."""

    def f(x: np.ndarray, low: float, amp: float, b3: float, b4: float) -> np.ndarray:
        return (
            logistic4(x, low + s * amp, low, b3, b4)
            if s > 0
            else logistic4(x, low, low + amp, b3, b4)
        )

    return f


def logistic_plcc(pred: Any, target: Any) -> float:
    """Pearson correlation between ``logistic4(pred)`` (fitted to ``target``) and ``target``.

    The logistic is fitted monotone in the direction of the plain Pearson correlation (VQEG
    practice: the mapping keeps the predictions' order), and the result carries that
    direction: ``|plcc_logistic|`` is the linearity after the best monotone mapping, its sign
    that of ``plcc`` (an inverted predictor stays negative). A degenerate fit that
    correlates negatively gives NaN with a ``RuntimeWarning``. Falls back to the plain Pearson correlation when the fit does not
    converge or the fitted curve is flat (e.g. constant predictions).
    """
    p, t = _as_pair(pred, target)
    plain = _pearson(p, t)
    if p.size < 5 or np.ptp(p) == 0 or np.ptp(t) == 0 or np.isnan(plain):
        return plain
    # The curve spans the target range, centred on the predictions; least squares is
    # non-convex in the slope, so start from a few slopes and keep the best fit.
    sign = 1.0 if plain >= 0 else -1.0
    curve = _monotone_logistic(sign)
    # Fitted on standardised predictions and unit-range targets (Pearson's r is invariant
    # to both): a well-conditioned problem, so float noise in the predictions (another
    # conv algorithm, another batch size) moves the result by float noise only.
    p = (p - p.mean()) / (float(p.std()) or 1.0)
    t = (t - t.min()) / np.ptp(t)
    lo, hi = 0.0, 1.0
    low0 = lo if sign > 0 else hi
    spread = 1.0
    width = hi - lo
    bounds = (
        [lo - 10 * width, 0.0, -np.inf, -np.inf],
        [hi + 10 * width, 20 * width, np.inf, np.inf],
    )
    best_sse, mapped = np.inf, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for slope in (1.0, 0.3, 0.1, 3.0):
            p0 = [low0, width, float(np.median(p)), spread * slope]
            try:
                params, _ = curve_fit(
                    curve,
                    p,
                    t,
                    p0=p0,
                    bounds=bounds,
                    maxfev=5000,
                    xtol=1e-12,
                    ftol=1e-12,
                    gtol=1e-12,
                )
            except (RuntimeError, ValueError, FloatingPointError):
                continue
            candidate = curve(p, *params)
            sse = float(((candidate - t) ** 2).sum())
            if np.isfinite(sse) and sse < best_sse:
                best_sse, mapped = sse, candidate
    if mapped is None:
        return plain
    if not np.all(np.isfinite(mapped)) or np.ptp(mapped) == 0:
        return plain
    # A mapping monotone in the direction ``sign`` and fitted to the targets correlates
    # with them positively; the value carries the direction of the relation (plcc's sign).
    fitted = _pearson(mapped, t)
    if np.isnan(fitted):
        return plain
    if fitted < 0:
        warnings.warn(
            f"logistic PLCC: the monotone fit correlates negatively ({fitted:+.4f}) with the "
            f"targets (plain PLCC {plain:+.4f}); reporting NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    return sign * fitted


def iqa_metrics(pred: Any, target: Any) -> dict[str, float]:
    """Return ``{"srcc", "plcc", "krcc", "plcc_logistic"}`` for 1-D predictions and targets."""
    p, t = _as_pair(pred, target)
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        # A correlation with a constant is undefined: NaN, never 0 (which would rank it).
        which = "targets" if np.ptp(t) == 0 else "predictions"
        warnings.warn(
            f"the {which} are all equal ({(t if which == 'targets' else p)[0]:g}); SRCC, PLCC "
            "and KRCC are undefined and reported as NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        return dict.fromkeys(METRIC_NAMES, float("nan"))
    pt, tt = torch.from_numpy(p), torch.from_numpy(t)
    return {
        "srcc": float(spearman_corrcoef(pt, tt)),
        "plcc": float(pearson_corrcoef(pt, tt)),
        "krcc": float(kendall_rank_corrcoef(pt, tt)),
        "plcc_logistic": logistic_plcc(p, t),
    }


class _Collecting(Metric):
    """Accumulates predictions and targets (concatenated across DDP ranks on compute)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predictions and targets (any shape; flattened)."""
        self.preds.append(preds.detach().reshape(-1).to(torch.float64))
        self.target.append(target.detach().reshape(-1).to(torch.float64))

    def _arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.preds, list) and not self.preds:
            raise InputError("no predictions were collected; was the dataloader empty?")
        return dim_zero_cat(self.preds).cpu(), dim_zero_cat(self.target).cpu()


class LogisticPLCC(_Collecting):
    """PLCC after the 4-parameter logistic fit, as a torchmetrics metric."""

    def compute(self) -> torch.Tensor:
        """Fit on everything collected and return the Pearson correlation."""
        p, t = self._arrays()
        return torch.tensor(logistic_plcc(p.numpy(), t.numpy()), dtype=torch.float64)


class IQAMetrics(_Collecting):
    """SRCC, PLCC, KRCC and logistic PLCC over everything collected, as a dict of tensors."""

    #: ``(min, max, all finite)`` of the predictions seen by the last ``compute()``
    #: (gathered over DDP ranks), for divergence checks.
    pred_range: tuple[float, float, bool] | None = None

    def compute(self) -> dict[str, torch.Tensor]:
        """Return ``{name: value}`` for :data:`METRIC_NAMES`."""
        p, t = self._arrays()
        finite = bool(torch.isfinite(p).all())
        self.pred_range = (
            (float(p.min()), float(p.max()), finite) if p.numel() else (0.0, 0.0, finite)
        )
        values = iqa_metrics(p.numpy(), t.numpy())
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
