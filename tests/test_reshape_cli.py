"""`syndr reshape down|up`: round trips through files, bad input refused without writing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from syndr_lightning.cli import main
from syndr_lightning.fakedata.features import clustered_features
from syndr_lightning.reshape import ddcup_pseudo_labels, ddcup_select, drcdown
from syndr_lightning.reshape.params import DRCDownParams


@pytest.fixture()
def down_inputs(tmp_path):
    x, y = clustered_features(400, dim=32, seed=1)
    np.save(tmp_path / "F.npy", x)
    np.save(tmp_path / "Y.npy", y)
    return tmp_path, x, y


def test_down_round_trip(down_inputs, capsys):
    d, x, y = down_inputs
    out = d / "out.npz"
    argv = ["reshape", "down", "--features", str(d / "F.npy"), "--labels", str(d / "Y.npy")]
    rc = main([*argv, "--out", str(out), "--t-u", "3", "--rule", "paper", "--epoch", "2"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    with np.load(out) as z:
        kept, cluster = z["kept"], z["cluster"]
    want = drcdown(x, y, DRCDownParams(T_u=3, rule="paper"), epoch=2)
    assert kept.dtype == np.int64 and cluster.dtype == np.int64
    np.testing.assert_array_equal(kept, want.kept)
    np.testing.assert_array_equal(cluster, want.cluster)
    assert report["n_pairs"] == want.n_pairs and report["after"]["n_kept"] == kept.size


def test_up_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t, c = rng.standard_normal((20, 6)), rng.standard_normal((60, 6))
    y = rng.uniform(0, 10, (20, 3, 5))
    for name, arr in {"TR": t, "C": c, "L": y}.items():
        np.save(tmp_path / f"{name}.npy", arr)
    out = tmp_path / "up.npz"
    files = ["--train-refs", str(tmp_path / "TR.npy"), "--candidates", str(tmp_path / "C.npy")]
    opts = ["--k", "all", "--t-ref", "0.3", "--weights", "softmin", "--temperature", "0.1"]
    rc = main(
        ["reshape", "up", *files, "--labels", str(tmp_path / "L.npy"), "--out", str(out), *opts]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["n_selected"] > 0
    sel = ddcup_select(t, c)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["selected"], sel)
        assert z["selected"].dtype == np.int64 and z["labels"].dtype == np.float32
        want = ddcup_pseudo_labels(t, c[sel], y, "all", 0.3, "softmin", 0.1)
        np.testing.assert_array_equal(z["labels"], want)


def _fails_cleanly(argv, out, capsys, match):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))  # no temp file left behind


def test_down_bad_input_writes_nothing(down_inputs, capsys):
    d, x, _ = down_inputs
    out = d / "out.npz"
    feats, labels = str(d / "F.npy"), str(d / "Y.npy")
    np.save(d / "short.npy", np.linspace(0.0, 10.0, 10))
    bad = x.copy()
    bad[5, 3] = np.nan
    np.save(d / "nan.npy", bad)
    (d / "junk.npy").write_text("not an array")
    base = ["reshape", "down", "--out", str(out)]
    _fails_cleanly(
        [*base, "--features", feats, "--labels", str(d / "short.npy")], out, capsys, "400 labels"
    )
    _fails_cleanly(
        [*base, "--features", str(d / "nan.npy"), "--labels", labels], out, capsys, "NaN"
    )
    _fails_cleanly(
        [*base, "--features", str(d / "no.npy"), "--labels", labels], out, capsys, "not found"
    )
    _fails_cleanly(
        [*base, "--features", str(d / "junk.npy"), "--labels", labels],
        out,
        capsys,
        "not a readable",
    )
    _fails_cleanly(
        [*base, "--features", feats, "--labels", labels, "--t-f", "3"], out, capsys, "--t-f=3"
    )
    _fails_cleanly(
        [*base, "--features", feats, "--labels", labels, "--t-u", "0"], out, capsys, "--t-u=0"
    )
    txt = d / "out.txt"
    _fails_cleanly(
        ["reshape", "down", "--features", feats, "--labels", labels, "--out", str(txt)],
        txt,
        capsys,
        ".npz",
    )
    with pytest.raises(SystemExit) as exc:
        main([*base, "--features", feats, "--labels", labels, "--rule", "median"])
    assert exc.value.code != 0 and not out.exists()


def test_up_bad_input_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "TR.npy", rng.standard_normal((20, 6)))
    np.save(tmp_path / "C.npy", rng.standard_normal((60, 5)))
    np.save(tmp_path / "C6.npy", rng.standard_normal((60, 6)))
    np.save(tmp_path / "L.npy", rng.uniform(0, 10, (19, 3, 5)))
    out = tmp_path / "up.npz"
    base = ["reshape", "up", "--train-refs", str(tmp_path / "TR.npy"), "--out", str(out)]
    _fails_cleanly(
        [*base, "--candidates", str(tmp_path / "C.npy"), "--labels", str(tmp_path / "L.npy")],
        out,
        capsys,
        "feature columns",
    )
    _fails_cleanly(
        [*base, "--candidates", str(tmp_path / "C6.npy"), "--labels", str(tmp_path / "L.npy")],
        out,
        capsys,
        "n_ref=20",
    )
    np.save(tmp_path / "L.npy", rng.uniform(0, 10, (20, 3, 5)))
    _fails_cleanly(
        [
            *base,
            "--candidates",
            str(tmp_path / "C6.npy"),
            "--labels",
            str(tmp_path / "L.npy"),
            "--k",
            "x",
        ],
        out,
        capsys,
        "--k",
    )
