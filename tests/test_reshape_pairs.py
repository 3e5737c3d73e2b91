"""DRCDown pair search: every backend equals the dense float64 oracle, borderline pairs too."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from syndr_lightning.fakedata.features import clustered_features
from syndr_lightning.reshape import balanced_slices, prepare, similar_pairs, similar_pairs_slice
from syndr_lightning.reshape import pairs as pairs_mod
from syndr_lightning.reshape.reference import ref_similar_pairs
from syndr_lightning.utils.errors import InputError


def _as_list(i: np.ndarray, j: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(i.tolist(), j.tolist(), strict=True))


def _borderline(n_pairs: int, dim: int, t_f: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose float64 cosine is 1 - t_f +- delta (delta far below float32 resolution)."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for k in range(n_pairs):
        u = rng.standard_normal(dim)
        u /= np.linalg.norm(u)
        w = rng.standard_normal(dim)
        w -= (w @ u) * u
        w /= np.linalg.norm(w)
        delta = (1e-9, 1e-8, 3e-7, 2e-3, 8e-3)[k % 5] * (1 if k % 2 == 0 else -1)
        cos = 1.0 - t_f + delta
        v = cos * u + np.sqrt(1.0 - cos**2) * w
        scale = rng.uniform(0.5, 3.0)
        rows += [u * scale, v]
        y = rng.uniform(0, 9)
        labels += [y, y + 0.5]
    return np.array(rows), np.array(labels)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    return clustered_features(600, dim=64, seed=3)


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "auto"])
def test_pairs_equal_oracle_on_clustered_data(clustered, precision):
    x, y = clustered
    expected = ref_similar_pairs(x, y, 0.1, 1.0)
    assert len(expected) > 100  # the data must actually contain clusters
    for backend in ("torch", "faiss", "auto"):
        i, j = similar_pairs(x, y, 0.1, 1.0, backend=backend, precision=precision)
        assert i.dtype == np.int64 and j.dtype == np.int64
        assert _as_list(i, j) == expected, backend


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_borderline_pairs_decided_in_float64(precision, dtype):
    t_f = 0.1
    x, y = _borderline(60, 48, t_f, seed=0)
    x = x.astype(dtype)
    expected = ref_similar_pairs(x, y, t_f, 1.0)
    if dtype == np.float64:  # exactly the +delta pairs (2k, 2k+1) for even k are similar
        assert expected == [(2 * k, 2 * k + 1) for k in range(60) if k % 2 == 0]
    for backend in ("torch", "faiss"):
        i, j = similar_pairs(x, y, t_f, 1.0, backend=backend, block_rows=7, precision=precision)
        assert _as_list(i, j) == expected, backend


def test_plan_reused_with_other_precision():
    x, y = _borderline(40, 32, 0.1, seed=1)
    expected = ref_similar_pairs(x, y, 0.1, 1.0)
    for made, used in (("bfloat16", "float32"), ("float32", "bfloat16")):
        plan = prepare(x, y, precision=made)
        assert plan.precision == made
        i, j = similar_pairs_slice(plan, None, 0, plan.n, precision=used, block_rows=16)
        assert _as_list(i, j) == expected, (made, used)


def test_screening_margins_cover_rounding():
    from syndr_lightning.reshape.pairs import screening_margin, shifted_margin

    # float32: above gamma_d plus two float32 norms, for small and large d
    for d in (2, 64, 2048, 100_000):
        assert screening_margin(d) > 3 * (d + 4) * 2.0**-24
    # shifted bfloat16: two rounding-error norms plus accumulation, within the worst case
    assert 2 * 0.0018 < shifted_margin(2048, 0.0018, 0.8984375) < 0.006
    u = 2.0**-8
    assert shifted_margin(2048, u, 0.9) < 3 * u + 4 * 2048 * 2.0**-24 + 1e-4


def test_bfloat16_screen_at_full_dimension_is_exact():
    """d = 2048 (the real feature size): pairs within 1e-9..8e-3 of the threshold."""
    for t_f in (0.1, 0.05, 0.3):
        x, y = _borderline(40, 2048, t_f, seed=2)
        x32 = x.astype(np.float32)
        expected = ref_similar_pairs(x32, y, t_f, 1.0)
        plan = prepare(x32, y, precision="bfloat16")
        assert 0 < plan.max_rounding < 2.0**-8
        i, j = similar_pairs_slice(plan, None, 0, plan.n, t_f, 1.0, block_rows=16)
        assert _as_list(i, j) == expected, t_f


def test_label_threshold_is_strict():
    x = np.ones((3, 4)) + np.arange(12).reshape(3, 4) * 1e-3
    y = np.array([3.0, 4.0, 3.999])
    i, j = similar_pairs(x, y, 0.1, 1.0)
    assert _as_list(i, j) == [(0, 2), (1, 2)]  # |3 - 4| = 1 is not < 1


def test_small_blocks_and_column_chunks_agree(clustered, monkeypatch):
    x, y = clustered
    expected = ref_similar_pairs(x, y, 0.15, 0.7)
    monkeypatch.setattr(pairs_mod, "_COLS_CPU", 13)
    i, j = similar_pairs(x, y, 0.15, 0.7, backend="torch", block_rows=5)
    assert _as_list(i, j) == expected
    i, j = similar_pairs(x, y, 0.15, np.inf, backend="torch", block_rows=64)
    assert _as_list(i, j) == ref_similar_pairs(x, y, 0.15, np.inf)


def test_slices_partition_the_search(clustered):
    x, y = clustered
    full = similar_pairs(x, y)
    plan = prepare(x, y)
    slices = balanced_slices(y, 4, t_q=1.0)
    assert slices[0][0] == 0 and slices[-1][1] == len(y)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices))
    parts = [similar_pairs_slice(plan, None, a, b) for a, b in slices]
    assert sum(p[0].size for p in parts) == full[0].size
    i = np.concatenate([p[0] for p in parts])
    j = np.concatenate([p[1] for p in parts])
    o = np.lexsort((j, i))
    np.testing.assert_array_equal(i[o], full[0])
    np.testing.assert_array_equal(j[o], full[1])


def test_faiss_knn_fallback_matches_range_search(clustered):
    import faiss

    x, _ = clustered
    xs = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    index = faiss.IndexFlatIP(xs.shape[1])
    index.add(xs)
    low = 0.85
    r1, c1, _ = pairs_mod._faiss_range_block(xs, xs[:200], low)
    r2, c2, _ = pairs_mod._faiss_knn_block(index, xs, xs[:200], low, k=3)
    assert np.bincount(r1).max() > 3  # some rows exceed k and need the fallback
    assert sorted(zip(r1.tolist(), c1.tolist(), strict=False)) == sorted(
        zip(r2.tolist(), c2.tolist(), strict=False)
    )


def test_no_pairs_and_float32_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 32)).astype(np.float32)
    y = rng.uniform(0, 10, 50)
    i, j = similar_pairs(x, y)
    assert i.size == 0 and j.size == 0 and i.dtype == np.int64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "precision": "fp8"}, "precision"),
        ({"features": np.zeros((0, 4)), "labels": np.zeros(0)}, "at least 1 row"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(2)}, "vector of 3 labels"),
        ({"features": np.full((3, 4), np.nan), "labels": np.zeros(3)}, "NaN or inf"),
        ({"features": np.ones((3, 4)), "labels": np.array([0, np.inf, 1])}, "finite"),
        ({"features": np.zeros((3, 4)), "labels": np.zeros(3)}, "all zeros"),
        ({"features": np.ones(4), "labels": np.zeros(4)}, "2-D"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "t_f": 0.0}, "t_f"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "t_f": 2.5}, "t_f"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "t_q": -1.0}, "t_q"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "backend": "gpu"}, "backend"),
        ({"features": np.ones((3, 4)), "labels": np.zeros(3), "device": "tpu:x"}, "device"),
    ],
)
def test_bad_input_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        similar_pairs(**kwargs)


def test_bad_slice_refused(clustered):
    x, y = clustered
    with pytest.raises(InputError, match="row slice"):
        similar_pairs_slice(x, y, 10, 5000)


def test_repeated_searches_never_mix():
    """Searches one after another give each its own pairs; a plan from prepare() is not
    changed by later searches."""
    xa, ya = clustered_features(300, dim=48, seed=5)
    xb, yb = clustered_features(300, dim=48, seed=6)
    plan_a = prepare(xa, ya, precision="bfloat16")
    expected_a = ref_similar_pairs(xa, ya, 0.1, 1.0)
    expected_b = ref_similar_pairs(xb, yb, 0.1, 1.0)
    assert expected_a != expected_b
    for _ in range(2):  # the second round runs on reused memory
        assert _as_list(*similar_pairs(xa, ya, precision="bfloat16")) == expected_a
        assert _as_list(*similar_pairs(xb, yb, precision="bfloat16")) == expected_b
    screen_before = plan_a.screen.clone()
    similar_pairs(xb, yb, precision="bfloat16")
    assert plan_a.screen[:, : xa.shape[1]].equal(screen_before[:, : xa.shape[1]])
    i, j = similar_pairs_slice(plan_a, None, 0, plan_a.n)
    assert _as_list(i, j) == expected_a


@pytest.mark.parametrize("scale", [1e25, 1e-20, 1e-36, 1e-40, 1e-42])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_extreme_feature_scales_match_oracle(clustered, scale, precision):
    """float32 rows whose squares overflow or underflow float32 (down to subnormals,
    whose norm's reciprocal overflowed: 853 of 902 pairs at 1e-40) are decided right."""
    x, y = clustered
    xs = (x.astype(np.float64) * scale).astype(np.float32)
    expected = ref_similar_pairs(xs.astype(np.float64), y, 0.1, 1.0)
    assert _as_list(*similar_pairs(xs, y, precision=precision)) == expected


def test_faiss_pair_dots_split_long_rows():
    """Rows with more partners than one FAISS query row holds are split, order kept."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 40)).astype(np.float32)
    i = np.r_[np.full(100, 7), rng.integers(0, 300, 200), np.full(33, 3)]
    j = rng.integers(0, 300, i.size)
    got = pairs_mod._faiss_pair_dots(x, i, j)
    np.testing.assert_allclose(got, np.einsum("ij,ij->i", x[i], x[j]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_exact_ties_decided_like_the_oracle(precision):
    """Cosines of exactly -1 and +1 (1-D, opposite and duplicate rows) at t_f = 2 and 1."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((25, 1))
    x = np.vstack([x, x[:5], -x[5:10] * 3.0])
    y = rng.uniform(0, 10, x.shape[0])
    for t_f in (2.0, 1.0, 1e-6):
        expected = ref_similar_pairs(x, y, t_f, np.inf)
        for backend in ("torch", "faiss"):
            got = similar_pairs(x, y, t_f, np.inf, backend=backend, precision=precision)
            assert _as_list(*got) == expected, (t_f, backend)


def test_random_small_cases_match_oracle():
    """Random sizes, dims (1..300), dtypes, thresholds, precisions and backends, with
    duplicated, scaled and opposite rows; t_f = 2 is left out (there exactly opposite
    rows sit one float64 rounding step from the threshold, see docs/reshaping.md)."""
    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(1, 120))
        d = int(rng.choice([1, 2, 3, 16, 64, 300]))
        x = rng.standard_normal((n, d))
        if trial % 3 == 1:
            x = np.abs(x) + 0.01  # all-positive, like post-ReLU features
        if n > 3 and trial % 4 == 0:
            x[: n // 3] = x[n // 3 : 2 * (n // 3)] * rng.choice([1.0, -1.0, 2.5])
        x = x.astype(rng.choice([np.float32, np.float64]))
        y = rng.uniform(0, 10, n)
        if trial % 5 == 0:
            y = np.round(y)
        t_f = float(rng.choice([1e-6, 0.01, 0.1, 0.5, 1.0, 1.5, 1.999]))
        t_q = float(rng.choice([0.1, 1.0, 5.0, np.inf]))
        precision = str(rng.choice(["float32", "bfloat16"]))
        backend = str(rng.choice(["torch", "faiss"]))
        got = similar_pairs(x, y, t_f, t_q, backend=backend, precision=precision)
        assert _as_list(*got) == ref_similar_pairs(x, y, t_f, t_q), (trial, n, d, t_f)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_reused_scratch_memory_never_mixes_searches(precision: str) -> None:
    """Back-to-back searches of different sizes reuse one buffer and still equal the oracle."""
    pairs_mod._SCRATCH.take()  # start without a kept buffer
    cases = []
    for n, dim, seed in ((300, 48, 0), (120, 48, 1), (300, 64, 2), (500, 32, 3)):
        x, y = clustered_features(n, dim, seed=seed)
        cases.append((x, y))
    results = [similar_pairs(x, y, 0.1, 1.0, precision=precision) for x, y in cases]
    kept = pairs_mod._SCRATCH.take()
    assert kept is not None and kept.numel() > 0  # the buffer really was kept and reused
    for (x, y), (i, j) in zip(cases, results, strict=True):
        assert _as_list(i, j) == ref_similar_pairs(x, y, 0.1, 1.0)
    assert all(len(i) > 0 for i, _ in results)
