"""DDCUp selection and pseudo-labels equal the brute-force reference loop."""

from __future__ import annotations

import numpy as np
import pytest

from syndr_lightning.reshape import (
    ddcup_neighbours,
    ddcup_pseudo_labels,
    ddcup_select,
    selection_thresholds,
)
from syndr_lightning.reshape.reference import ref_ddcup_select, ref_pseudo_labels
from syndr_lightning.utils.errors import InputError


def _data(seed: int, n_ref: int = 30, n_cand: int = 150, dim: int = 8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_ref, dim)), rng.standard_normal((n_cand, dim)), rng


def test_selection_equals_reference_loop():
    removed_somewhere = False
    for seed in range(12):
        t, c, _ = _data(seed)
        sel = ddcup_select(t, c)
        assert sel.dtype == np.int64 and np.all(np.diff(sel) > 0)
        assert sel.tolist() == ref_ddcup_select(t, c)
        # Selected candidates are pairwise at least the threshold apart.
        thr = selection_thresholds(t).min_distance
        cs = c[sel] / np.linalg.norm(c[sel], axis=1, keepdims=True)
        d = 1 - cs @ cs.T
        np.fill_diagonal(d, np.inf)
        assert d.min() >= thr
        cn = c / np.linalg.norm(c, axis=1, keepdims=True)
        tn = t / np.linalg.norm(t, axis=1, keepdims=True)
        passing = int(((1 - cn @ tn.T).min(axis=1) > thr).sum())
        removed_somewhere |= sel.size < passing
    assert removed_somewhere


@pytest.mark.parametrize("list_size", [1, 3, 64])
def test_selection_with_short_lists_and_exact_ties(monkeypatch, list_size):
    from syndr_lightning.reshape import ddcup

    monkeypatch.setattr(ddcup, "_LIST_SIZE", list_size)
    t, c, rng = _data(7, n_ref=25, n_cand=120, dim=6)
    # Exact duplicates (ties everywhere) and tight groups that need many drops.
    c = np.concatenate(
        [c, np.repeat(c[:3], 30, axis=0), c[5] + 1e-3 * rng.standard_normal((40, 6))]
    )
    c = c[rng.permutation(len(c))]
    sel = ddcup_select(t, c)
    assert sel.tolist() == ref_ddcup_select(t, c)
    thr = selection_thresholds(t)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    d = 1 - cn @ tn.T
    passing = int(((d.min(axis=1) > thr.min_distance) & (d.max(axis=1) < thr.max_distance)).sum())
    assert sel.size + 25 < passing  # the duplicate groups were thinned


def test_selection_rejects_near_duplicates_and_outliers():
    t, _, rng = _data(0, n_ref=20, dim=6)
    dup = t[3] + 1e-6 * rng.standard_normal(6)  # nearer than the median NN distance
    assert ddcup_select(t, dup[None]).size == 0
    thr = selection_thresholds(t)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    far = -tn[np.argmax(tn @ tn.mean(axis=0))]  # antipode of a training ref
    d = 1 - tn @ far
    assert d.min() > thr.min_distance and d.max() >= thr.max_distance
    assert ddcup_select(t, far[None]).size == 0  # rejected by the max-of-max bound alone


@pytest.mark.parametrize("weights", ["reference", "softmin"])
@pytest.mark.parametrize("k", [1, 3, 5, "all"])
def test_pseudo_labels_equal_reference(weights, k):
    t, c, rng = _data(4, n_ref=25, n_cand=40)
    y = rng.uniform(0, 10, (25, 6, 3))
    y[rng.random(y.shape) < 0.15] = np.nan
    got = ddcup_pseudo_labels(t, c, y, k=k, t_ref=0.2, weights=weights, temperature=0.07)
    want = ref_pseudo_labels(t, c, y, k=k, t_ref=0.2, weights=weights, temperature=0.07)
    assert got.dtype == np.float32 and got.shape == (40, 6, 3)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5, equal_nan=True)


def test_neighbour_window_and_weight_direction():
    # Unit vectors at controlled angles from e0: distances 1 - cos.
    angles = np.array([0.10, 0.20, 0.30, 1.2])
    t = np.stack([np.cos(angles), np.sin(angles), np.zeros(4)], axis=1)
    x = np.array([[1.0, 0.0, 0.0]])
    d = 1 - np.cos(angles)
    nb = ddcup_neighbours(t, x, k=4, t_ref=d[2] - d[0] + 1e-9, weights="reference")
    assert nb.indices.tolist() == [[0, 1, 2, -1]]  # the 4th is outside the relative window
    w = nb.weights[0, :3]
    np.testing.assert_allclose(w, np.exp(d[:3]) / np.exp(d[:3]).sum())
    assert w[2] > w[0]  # reference: softmax of raw distances favours the farther one
    soft = ddcup_neighbours(t, x, k=4, t_ref=1.0, weights="softmin", temperature=0.05)
    assert soft.weights[0, 0] > soft.weights[0, 1] > soft.weights[0, 2] > soft.weights[0, 3]
    y = np.arange(4, dtype=float)[:, None, None] * np.ones((4, 2, 3))
    lab = ddcup_pseudo_labels(t, x, y, k=4, t_ref=d[2] - d[0] + 1e-9)
    np.testing.assert_allclose(lab[0], np.full((2, 3), (w * [0, 1, 2]).sum()), rtol=1e-6)


def test_all_absent_label_stays_nan():
    t, c, _ = _data(1, n_ref=6, n_cand=2)
    y = np.ones((6, 2, 2))
    y[:, 1, 0] = np.nan
    lab = ddcup_pseudo_labels(t, c, y, k="all", t_ref=10.0)
    assert np.isnan(lab[:, 1, 0]).all() and np.allclose(np.delete(lab.reshape(2, 4), 2, axis=1), 1)


def test_bad_input_refused():
    t, c, _ = _data(0)
    with pytest.raises(InputError, match="feature columns"):
        ddcup_select(t, c[:, :5])
    with pytest.raises(InputError, match="at least 2"):
        ddcup_select(t[:1], c)
    with pytest.raises(InputError, match="NaN"):
        ddcup_select(t, np.full_like(c, np.nan))
    y = np.zeros((30, 2, 3))
    with pytest.raises(InputError, match="k=31"):
        ddcup_pseudo_labels(t, c, y, k=31)
    with pytest.raises(InputError, match="t_ref"):
        ddcup_pseudo_labels(t, c, y, t_ref=-0.1)
    with pytest.raises(InputError, match="weights"):
        ddcup_pseudo_labels(t, c, y, weights="softmax")
    with pytest.raises(InputError, match="temperature"):
        ddcup_pseudo_labels(t, c, y, weights="softmin", temperature=0)
    with pytest.raises(InputError, match="n_ref=30"):
        ddcup_pseudo_labels(t, c, y[:29])
    with pytest.raises(InputError, match="train_feats: expected a 2-D"):
        ddcup_pseudo_labels(t[0], c, y)
    with pytest.raises(InputError, match="inf"):
        ddcup_pseudo_labels(t, c, np.full((30, 2, 3), np.inf))


@pytest.mark.parametrize("block", [4, 7])
def test_small_row_blocks_change_nothing(monkeypatch, block):
    """Block boundaries (1024 rows by default) never show in thresholds or selections."""
    from syndr_lightning.reshape import ddcup

    t, c, _ = _data(3, n_ref=23, n_cand=90, dim=6)
    expected = (selection_thresholds(t), ddcup_select(t, c).tolist())
    monkeypatch.setattr(ddcup, "_BLOCK", block)
    assert (selection_thresholds(t), ddcup_select(t, c).tolist()) == expected
    assert expected[1] == ref_ddcup_select(t, c)
    # The thresholds themselves, brute force: median nearest and max farthest distance.
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    d = 1 - tn @ tn.T
    np.fill_diagonal(d, np.inf)
    near = np.median(d.min(axis=1))
    np.fill_diagonal(d, -np.inf)
    assert expected[0].min_distance == pytest.approx(near, abs=1e-12)
    assert expected[0].max_distance == pytest.approx(d.max(), abs=1e-12)


def test_two_training_refs_are_enough():
    t, c, _ = _data(1, n_ref=2, n_cand=10)
    thr = selection_thresholds(t)
    assert thr.min_distance == pytest.approx(thr.max_distance)  # one pair: both bounds
    assert ddcup_select(t, c).tolist() == ref_ddcup_select(t, c)


def test_two_close_passing_candidates_keep_one():
    t, c, rng = _data(0)
    first = c[ddcup_select(t, c)[0]]
    pair = np.stack([first, first + 1e-6 * rng.standard_normal(first.shape)])
    assert ddcup_select(t, pair).tolist() == ref_ddcup_select(t, pair) == [1]
