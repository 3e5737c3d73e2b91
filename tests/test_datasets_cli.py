"""``syndr data check``: succeeds on every fixture, fails cleanly on damaged copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from syndr_lightning.cli import main
from syndr_lightning.fakedata.fixtures import write_fixture

SMALL: dict[str, dict] = {
    "kadid10k": {"n_refs": 1, "types": [1], "levels": [1, 2]},
    "kadis700k": {"n_refs": 2},
    "livec": {"n_images": 2},
    "koniq10k": {"n_images": 2},
    "bid": {"n_images": 2},
    "live": {"n_refs": 1},
    "csiq": {"n_refs": 1, "levels": 1},
    "tid2013": {"n_refs": 1, "types": [1], "levels": [1, 2]},
    "pipal": {"n_refs": 1},
    "spaq": {"n_images": 2},
    "csv": {"n_refs": 1},
    "folder": {"n_images": 2},
}
KEYS = {"dataset", "images", "references", "score_min", "score_max", "raw_min", "raw_max"}
KEYS |= {"higher_is_better_raw", "problems"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | str, str]:
    code = main(["data", "check", *argv])
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, out, err


@pytest.mark.parametrize("name", sorted(SMALL))
def test_check_succeeds_on_each_fixture(tmp_path, capsys, name: str) -> None:
    root = write_fixture(name, tmp_path / name, **SMALL[name])
    code, report, err = _run(capsys, name, str(root), "--json")
    assert code == 0, err
    assert set(report) >= KEYS
    assert report["dataset"] == name and report["images"] > 0
    assert err == ""
    if name not in ("kadis700k", "folder"):
        assert report["score_min"] == 0.0 and report["score_max"] == 10.0
    if name in ("livec", "koniq10k", "bid", "spaq"):
        assert report["references"] is None


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_check_fails_cleanly_on_damaged_copies(tmp_path: Path, capsys) -> None:
    good = write_fixture("kadid10k", tmp_path / "good", **SMALL["kadid10k"])

    no_label = tmp_path / "no_label"
    shutil.copytree(good, no_label)
    (no_label / "dmos.csv").unlink()
    code, _, err = _run(capsys, "kadid10k", str(no_label), "--json")
    assert code == 1 and "dmos.csv" in _one_line(err)

    no_image = tmp_path / "no_image"
    shutil.copytree(good, no_image)
    (no_image / "images" / "I01_01_02.png").unlink()
    code, report, err = _run(capsys, "kadid10k", str(no_image), "--json")
    assert code == 1 and "I01_01_02.png" in _one_line(err)
    assert report["usable"] is False and any("missing" in p for p in report["problems"])

    wrong_col = tmp_path / "wrong_col"
    shutil.copytree(good, wrong_col)
    text = (wrong_col / "dmos.csv").read_text().replace("dmos,var", "score,var", 1)
    (wrong_col / "dmos.csv").write_text(text)
    code, _, err = _run(capsys, "kadid10k", str(wrong_col))
    assert code == 1 and "lacks columns ['dmos']" in _one_line(err)

    garbage = tmp_path / "garbage"
    shutil.copytree(good, garbage)
    (garbage / "images" / "I01_01_01.png").write_bytes(b"this is not a png")
    code, report, err = _run(capsys, "kadid10k", str(garbage), "--json")
    assert code == 1 and "cannot be read" in _one_line(err)

    code, _, err = _run(capsys, "kadid10k", str(tmp_path / "absent"))
    assert code == 1 and "does not exist" in _one_line(err)


def test_check_wrong_mat_key_and_usage_errors(tmp_path: Path, capsys) -> None:
    import numpy as np
    import scipy.io

    livec = write_fixture("livec", tmp_path / "c", n_images=2)
    scipy.io.savemat(livec / "Data" / "AllImages_release.mat", {"names": np.zeros(3)})
    code, _, err = _run(capsys, "livec", str(livec))
    assert code == 1 and "AllImages_release" in _one_line(err)

    code, _, err = _run(capsys, "nosuchset", str(livec))
    assert code == 2 and "unknown dataset" in _one_line(err)
    code, _, err = _run(capsys, "livec", str(livec), "-o", "refs=cross74")
    assert code == 2 and "unknown option" in _one_line(err)


def test_check_options_and_human_output(tmp_path: Path, capsys) -> None:
    root = write_fixture("kadid10k", tmp_path / "k", ref_ids=[0, 5], types=[1, 2], levels=[1])
    code, report, _ = _run(capsys, "kadid10k", str(root), "-o", "refs=cross74", "--json")
    assert code == 0 and report["images"] == 2 and report["references"] == 1
    # a selected subset is not compared with the published counts
    assert not any("published" in p for p in report["problems"])
    code, text, _ = _run(capsys, "kadid10k", str(root), "-o", "types=[2]")
    assert code == 0 and isinstance(text, str) and "images: 2" in text
    assert main(["data", "list"]) == 0
    assert "kadid10k" in capsys.readouterr().out


def test_split_command_writes_a_reproducible_file(tmp_path: Path, capsys) -> None:
    from syndr_lightning.data.datasets import load_dataset
    from syndr_lightning.data.splits import load_split

    root = write_fixture("kadid10k", tmp_path / "k", n_refs=4, types=[1], levels=[1, 2])
    out = tmp_path / "splits" / "kadid.json"
    assert main(["data", "split", "kadid10k", str(root), str(out), "--val-fraction", "0.25"]) == 0
    assert "by reference" in capsys.readouterr().out
    back = load_split(load_dataset("kadid10k", root), out)
    assert back.groupby("ref")["split"].nunique().max() == 1
    assert (back["split"] == "val").sum() == 2
    assert main(["data", "split", "kadid10k", str(tmp_path / "none"), str(out)]) == 1
    assert "does not exist" in _one_line(capsys.readouterr().err)
    # a file given as the root of a folder dataset is refused clearly
    assert main(["data", "check", "kadid10k", str(root / "dmos.csv")]) == 1
    assert "is a file" in _one_line(capsys.readouterr().err)
