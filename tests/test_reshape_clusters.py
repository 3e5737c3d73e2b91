"""DRCDown clusters, downsampling rules, statistics, and the end-to-end drcdown()."""

from __future__ import annotations

import numpy as np
import pytest

from syndr_lightning.fakedata.features import clustered_features
from syndr_lightning.reshape import (
    cluster_stats,
    connected_clusters,
    downsample,
    drcdown,
    keep_count,
    similar_pairs,
)
from syndr_lightning.reshape.params import DRCDownParams
from syndr_lightning.reshape.reference import ref_clusters, ref_similar_pairs
from syndr_lightning.utils.errors import InputError


def _partition(cluster: np.ndarray) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for a, c in enumerate(cluster.tolist()):
        if c >= 0:
            groups.setdefault(c, []).append(a)
    return [groups[c] for c in sorted(groups)]


def _sizes_to_cluster(sizes: list[int], n_single: int) -> np.ndarray:
    cluster = np.concatenate([np.full(s, k) for k, s in enumerate(sizes)] + [np.full(n_single, -1)])
    return np.random.default_rng(0).permutation(cluster).astype(np.int64)


def test_clusters_equal_brute_force_partition():
    x, y = clustered_features(500, dim=48, seed=5)
    pairs = ref_similar_pairs(x, y, 0.1, 1.0)
    i, j = similar_pairs(x, y, 0.1, 1.0)
    cluster = connected_clusters(len(y), i, j)
    expected = ref_clusters(len(y), pairs)
    assert len(expected) >= 5
    assert _partition(cluster) == expected  # ids follow each cluster's smallest member
    assert set(np.flatnonzero(cluster < 0)) == set(range(len(y))) - {a for p in pairs for a in p}


def test_clusters_on_random_graph_any_pair_order():
    rng = np.random.default_rng(1)
    n = 300
    i = rng.integers(0, n, 200)
    j = rng.integers(0, n, 200)
    keep = i != j
    i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    pairs = sorted(set(zip(i.tolist(), j.tolist(), strict=True)))
    cluster = connected_clusters(n, i, j)
    assert _partition(cluster) == ref_clusters(n, pairs)
    perm = rng.permutation(i.size)
    np.testing.assert_array_equal(connected_clusters(n, j[perm], i[perm]), cluster)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("reference", {30: 20, 50: 25, 10: 10, 21: 20, 41: 20, 20: 20}),
        ("paper", {30: 30, 50: 25, 10: 10, 21: 21, 41: 20, 20: 20}),
    ],
)
def test_kept_counts_follow_rule(rule, expected):
    sizes = list(expected)
    cluster = _sizes_to_cluster(sizes, n_single=17)
    kept = downsample(cluster, DRCDownParams(T_u=20, rule=rule), seed=3, epoch=1)
    assert np.all(np.diff(kept) > 0) and kept.dtype == np.int64
    counts = np.bincount(cluster[kept][cluster[kept] >= 0], minlength=len(sizes))
    assert {s: int(counts[k]) for k, s in enumerate(sizes)} == expected
    assert np.count_nonzero(cluster[kept] < 0) == 17  # samples in no pair always kept
    assert all(keep_count(s, 20, rule) == expected[s] for s in sizes)


def test_same_seed_epoch_same_subset_other_epoch_differs():
    cluster = _sizes_to_cluster([100, 60, 45], n_single=5)
    a = downsample(cluster, DRCDownParams(T_u=20), seed=7, epoch=2)
    b = downsample(cluster, DRCDownParams(T_u=20), seed=7, epoch=2)
    c = downsample(cluster, DRCDownParams(T_u=20), seed=7, epoch=3)
    d = downsample(cluster, DRCDownParams(T_u=20), seed=8, epoch=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.size == c.size == d.size == 50 + 30 + 22 + 5


def test_cluster_stats_values():
    cluster = np.array([-1, -1, 0, 0, 0, 1, 1])
    st = cluster_stats(cluster)
    sizes = np.array([1, 1, 3, 2], dtype=float)
    assert st["m"] == 4 and st["n_clusters"] == 2 and st["n_singletons"] == 2
    assert st["size_max"] == 3 and st["kept_fraction"] == 1.0
    assert st["size_mean"] == pytest.approx(7 / 4)
    assert st["size_k2_over_k"] == pytest.approx(15 / 7)
    assert st["size_cv"] == pytest.approx(sizes.std() / sizes.mean())
    after = cluster_stats(cluster, np.array([0, 2, 3, 5]))
    assert after["n_kept"] == 4 and after["kept_fraction"] == pytest.approx(4 / 7)
    assert after["m"] == 3 and after["size_max"] == 2 and after["n_clusters"] == 1


def test_drcdown_end_to_end():
    x, y = clustered_features(700, dim=48, seed=2)
    res = drcdown(x, y, DRCDownParams(T_f=0.1, T_q=1.0, T_u=4), seed=0, epoch=0)
    expected = ref_clusters(len(y), ref_similar_pairs(x, y, 0.1, 1.0))
    assert _partition(res.cluster) == expected
    kept_set = set(res.kept.tolist())
    for members in expected:
        assert sum(m in kept_set for m in members) == keep_count(len(members), 4, "reference")
    assert res.n_pairs == len(ref_similar_pairs(x, y, 0.1, 1.0))
    assert res.stats_after["n_kept"] == res.kept.size < len(y)
    assert res.stats_after["size_max"] < res.stats_before["size_max"]
    assert set(res.summary()) == {"n_pairs", "seconds_pairs", "seconds_select", "before", "after"}


def test_bad_input_refused():
    with pytest.raises(InputError, match="seed"):
        downsample(np.array([0, 0, -1]), seed=-1)
    with pytest.raises(InputError, match="1-D integer"):
        downsample(np.array([0.5, 1.0]))
    with pytest.raises(InputError, match=r"\[0, 5\)"):
        connected_clusters(5, np.array([0]), np.array([5]))
    with pytest.raises(InputError, match="equal length"):
        connected_clusters(5, np.array([0, 1]), np.array([2]))
    with pytest.raises(InputError, match="kept"):
        cluster_stats(np.array([0, 0]), np.array([3]))


def test_drcdown_defaults_are_the_papers():
    import inspect

    from syndr_lightning.reshape.drcdown import drcdown_from_pairs

    paper = DRCDownParams()
    assert (paper.T_f, paper.T_q, paper.T_u, paper.rule) == (0.1, 1.0, 20, "reference")
    for fn in (drcdown, drcdown_from_pairs, downsample):  # the entry points take it whole
        assert inspect.signature(fn).parameters["params"].default == paper


def test_no_pairs_at_all():
    """Empty pair lists (of any dtype, e.g. np.asarray([]) is float) leave every sample alone."""
    for empty in (np.asarray([]), np.zeros(0, dtype=np.int64)):
        np.testing.assert_array_equal(connected_clusters(3, empty, empty), [-1, -1, -1])


def test_pair_indices_are_checked_on_both_sides():
    for i, j in (([-1], [2]), ([2], [-1]), ([5], [0]), ([0], [5])):
        with pytest.raises(InputError, match=r"\[0, 5\)"):
            connected_clusters(5, np.array(i), np.array(j))
    with pytest.raises(InputError, match=r"found range \[-1, 7\]"):
        connected_clusters(5, np.array([-1, 3]), np.array([7, 4]))
    for i, j in (([0.0], [1.0]), ([0], [1.0]), ([0.0], [1])):
        with pytest.raises(InputError, match="integer indices"):
            connected_clusters(5, np.array(i), np.array(j))


def test_cluster_edge_cases():
    """Sizes 0 and 1, one cluster with id 0, t_u=1, the paper rule's boundary, ids < -1."""
    empty = np.zeros(0, dtype=np.int64)
    assert connected_clusters(0, empty, empty).shape == (0,)
    np.testing.assert_array_equal(connected_clusters(1, empty, empty), [-1])
    assert downsample(empty).shape == (0,)
    assert (
        downsample(np.zeros(10, dtype=np.int64), DRCDownParams(T_u=2)).size == 5
    )  # max(t_u, n // 2)
    assert downsample(np.zeros(4, dtype=np.int64), DRCDownParams(T_u=1)).size == 2
    assert keep_count(40, 20, "paper") == 40 and keep_count(42, 20, "paper") == 21
    assert keep_count(20, 20, "reference") == 20 and keep_count(21, 20, "reference") == 20
    with pytest.raises(InputError, match=">= -1"):
        downsample(np.array([-2, 0, 0]))
    with pytest.raises(InputError, match="1-D integer"):
        cluster_stats(np.array([0, 0]), np.zeros((1, 1), dtype=np.int64))
    for bad in (-1, 2):
        with pytest.raises(InputError, match=r"kept: indices must lie in \[0, 2\)"):
            cluster_stats(np.array([0, 0]), np.array([bad]))
    only_zero = cluster_stats(np.array([0, 0, -1]))
    assert only_zero["n_clusters"] == 1 and only_zero["size_max"] == 2 and only_zero["m"] == 2
    none = cluster_stats(empty)
    assert none["m"] == 0 and none["size_max"] == 0 and none["size_mean"] == 0.0
    # A cluster absent from `kept` is no cluster of size 0.
    st = cluster_stats(np.array([0, 0, 1, 1]), np.array([2, 3]))
    assert st["m"] == 1 and st["size_mean"] == 2.0 and st["n_clusters"] == 1
