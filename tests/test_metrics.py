"""IQA metrics against scipy on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss
import torch

from syndr_lightning.metrics import (
    IQAMetrics,
    LogisticPLCC,
    iqa_metrics,
    logistic4,
    logistic_plcc,
)
from syndr_lightning.utils.errors import InputError


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    y = 4.0 * np.tanh(1.5 * x) + 0.2 * rng.normal(size=300)
    return x, y


def test_iqa_metrics_match_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = pair
    got = iqa_metrics(x, y)
    assert got["srcc"] == pytest.approx(ss.spearmanr(x, y)[0], abs=1e-6)
    assert got["plcc"] == pytest.approx(ss.pearsonr(x, y)[0], abs=1e-6)
    assert got["krcc"] == pytest.approx(ss.kendalltau(x, y)[0], abs=1e-6)


def test_known_values() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert iqa_metrics(x, x[::-1])["srcc"] == pytest.approx(-1.0)
    # One swapped pair out of 10: KRCC = (9 - 1) / 10.
    y = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    assert iqa_metrics(x, y)["krcc"] == pytest.approx(0.8)
    assert iqa_metrics(x, y)["srcc"] == pytest.approx(0.9)


def test_logistic_plcc_recovers_a_logistic_relation() -> None:
    x = np.linspace(-3, 3, 80)
    y = logistic4(x, 9.0, 1.0, 0.3, 0.3)
    assert ss.pearsonr(x, y)[0] < 0.97  # plain PLCC is hurt by the nonlinearity
    assert logistic_plcc(x, y) == pytest.approx(1.0, abs=1e-6)


def test_logistic_plcc_matches_scipy_after_fit(pair: tuple[np.ndarray, np.ndarray]) -> None:
    from scipy.optimize import curve_fit

    x, y = pair
    params, _ = curve_fit(
        logistic4, x, y, p0=[y.max(), y.min(), np.median(x), x.std()], maxfev=10000
    )
    expected = ss.pearsonr(logistic4(x, *params), y)[0]
    assert logistic_plcc(x, y) == pytest.approx(expected, abs=1e-6)
    assert logistic_plcc(x, y) > ss.pearsonr(x, y)[0]


def test_logistic_plcc_falls_back_on_tiny_input() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 3.0, 2.0])
    assert logistic_plcc(x, y) == pytest.approx(ss.pearsonr(x, y)[0])


def test_metric_objects_accumulate_batches(pair: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = pair
    m, lg = IQAMetrics(), LogisticPLCC()
    for chunk in np.array_split(np.arange(len(x)), 4):
        m.update(torch.tensor(x[chunk]), torch.tensor(y[chunk]))
        lg.update(torch.tensor(x[chunk]), torch.tensor(y[chunk]))
    out = m.compute()
    ref = iqa_metrics(x, y)
    for key, value in ref.items():
        assert float(out[key]) == pytest.approx(value, abs=1e-6)
    assert float(lg.compute()) == pytest.approx(ref["plcc_logistic"], abs=1e-9)


def test_bad_inputs_raise_input_error() -> None:
    with pytest.raises(InputError, match="same length"):
        iqa_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="at least 2"):
        iqa_metrics([1.0], [1.0])
    with pytest.raises(InputError, match="finite"):
        iqa_metrics([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="no predictions"):
        IQAMetrics().compute()


def test_logistic4_midpoint_and_asymptotes() -> None:
    """``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``: b2 far left, b1 far right, the
    mean of both at x = b3, and the slope set by |b4|."""
    b1, b2, b3, b4 = 9.0, 1.0, 0.5, 0.25
    x = np.array([-100.0, b3, 100.0, b3 + b4])
    got = logistic4(x, b1, b2, b3, b4)
    expected = [b2, (b1 + b2) / 2, b1, b2 + (b1 - b2) / (1 + np.exp(-1.0))]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(logistic4(x, b1, b2, b3, -b4), expected, rtol=1e-12)


def test_two_pairs_are_enough_and_small_spreads_correlate() -> None:
    assert iqa_metrics([1.0, 2.0], [3.0, 5.0])["plcc_logistic"] == pytest.approx(1.0)
    # A spread well below 1 (denominator of Pearson's r < 1) is still correlated.
    x = np.array([0.01, 0.02, 0.04, 0.03])
    y = np.array([0.02, 0.01, 0.04, 0.05])
    assert logistic_plcc(x, y) == pytest.approx(ss.pearsonr(x, y)[0], abs=1e-12)


def test_five_pairs_are_fitted() -> None:
    """From 5 pairs on the logistic is fitted (fewer fall back to the plain PLCC)."""
    x = np.array([-2.0, -0.5, 0.0, 0.4, 2.0])
    y = logistic4(x, 8.0, 2.0, 0.1, 0.3)
    assert ss.pearsonr(x, y)[0] < 0.99
    assert logistic_plcc(x, y) == pytest.approx(1.0, abs=1e-6)


def test_unit_ranges_are_fitted() -> None:
    """Predictions or targets spanning exactly 1 are fitted (only a zero range falls back)."""
    x = np.linspace(0.0, 1.0, 30)
    y = logistic4(x, 6.0, 2.0, 0.5, 0.05)
    assert ss.pearsonr(x, y)[0] < 0.99
    assert logistic_plcc(x, y) == pytest.approx(1.0, abs=1e-6)
    unit = (y - y.min()) / np.ptp(y)
    assert np.ptp(unit) == 1.0
    assert logistic_plcc(6.0 * x - 3.0, unit) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5])
def test_logistic_plcc_keeps_the_sign_of_plcc(seed: int) -> None:
    """Weak inverted predictors (the unconstrained fit turned PLCC -0.49 into +0.55 on
    seed 0): the logistic is fitted monotone in plcc's direction and keeps its sign."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 30))
    t = rng.uniform(0, 10, n)
    p = -0.3 * t + rng.normal(0, 3, n)
    plain = ss.pearsonr(p, t)[0]
    got = logistic_plcc(p, t)
    assert plain < 0 and got < 0, (plain, got)
    # Mirrored predictions give the mirrored value: the fit has one shape, two directions.
    assert logistic_plcc(-p, t) == pytest.approx(-got, abs=1e-6)


def test_inverted_logistic_relation_is_negative() -> None:
    x = np.linspace(-2.0, 2.0, 40)
    y = logistic4(-x, 8.0, 2.0, 0.1, 0.3)
    assert logistic_plcc(x, y) == pytest.approx(-1.0, abs=1e-6)
