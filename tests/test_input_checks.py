"""Inputs that slipped through (issue 32): paths normalised before the duplicate check,
``syndr data check`` agreeing with training on what is usable, scores that differ only
by rounding noise, and reference images that are declared but are not images."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from inference_helpers import write_image

from syndr_lightning.cli import main as syndr
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.utils.errors import DatasetError


def _csv(tmp: Path, rows: dict[str, list[object]], name: str = "labels.csv") -> Path:
    for k in range(6):
        img = tmp / "imgs" / f"{k}.png"
        if not img.exists():
            write_image(img, k, (24, 20))
    out = tmp / name
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def _report(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict]:
    code = syndr(["data", "check", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_same_image_spelled_two_ways_is_a_duplicate(tmp_path: Path) -> None:
    paths = ["imgs/0.png", "imgs/../imgs/0.png", "imgs/1.png", "imgs/2.png"]
    csv = _csv(tmp_path, {"path": paths, "score": [1.0, 5.0, 2.0, 3.0]})
    with pytest.raises(DatasetError, match="listed more than once") as info:
        load_dataset("csv", str(csv))
    assert "rows 1, 2" in str(info.value)
    ok = _csv(tmp_path, {"path": paths[1:], "score": [5.0, 2.0, 3.0]}, "ok.csv")
    assert ".." not in load_dataset("csv", str(ok))["path"].iloc[0]  # stored normalised


@pytest.mark.parametrize(
    ("scores", "needle"),
    [([3.0], "only 1 image has a score"), ([5.0, 5.000000000011, 5.0, 5.0000000000005], "noise")],
)
def test_data_check_refuses_what_training_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scores: list[float], needle: str
) -> None:
    paths = [f"imgs/{k}.png" for k in range(len(scores))]
    csv = _csv(tmp_path, {"path": paths, "score": scores})
    code, report = _report(capsys, ["csv", str(csv)])
    assert code == 1 and report["usable"] is False
    assert needle in report["reason"] and str(csv) in report["reason"]
    with pytest.raises(DatasetError, match=needle):  # training's loader says the same
        load_dataset("csv", str(csv))


def test_plain_ref_column_is_no_problem_but_a_text_ref_path_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: dict[str, list[object]] = {
        "path": [f"imgs/{k}.png" for k in range(6)],
        "score": [1, 2, 3, 4, 5, 6],
        "ref": ["a", "a", "b", "b", "c", "c"],
    }
    code, report = _report(capsys, ["csv", str(_csv(tmp_path, rows))])
    assert code == 0 and report["problems"] == []  # a ref column only groups rows
    (tmp_path / "notes.txt").write_text("not an image")
    rows["ref_path"] = ["notes.txt"] * 2 + ["imgs/4.png"] * 4
    code, report = _report(capsys, ["csv", str(_csv(tmp_path, rows, "with_refs.csv"))])
    assert code == 0 and len(report["problems"]) == 1
    assert "notes.txt" in report["problems"][0] and "not an image" in report["problems"][0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inference_helpers import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt")


def test_predict_checks_images_as_data_check_and_names_every_skip(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from PIL import Image

    photos = tmp_path / "photos"
    write_image(photos / "good.png", 0)
    write_image(tmp_path / "elsewhere" / "linked.png", 1)
    (photos / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    crc = write_image(photos / "crc.png", 2)
    data = bytearray(crc.read_bytes())
    at = data.find(b"IDAT")
    data[at + 4 + int.from_bytes(data[at - 4 : at], "big") + 1] ^= 0x01  # the chunk's CRC
    crc.write_bytes(bytes(data))
    Image.new("RGB", (1, 1)).save(photos / "dot.png")
    (photos / "gone.png").symlink_to(tmp_path / "missing.png")
    os.mkfifo(photos / "pipe.png")
    (photos / "folder.png").mkdir()
    out = tmp_path / "scores.csv"
    assert syndr(["predict", "--ckpt", str(ckpt), str(photos), "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False).set_index("path")
    scored = {Path(p).name for p, e in table["error"].items() if not e}
    assert scored == {"good.png", "linked.png"}  # the symlinked sub-folder is searched
    reasons = {Path(p).name: e for p, e in table["error"].items() if e}
    assert "CRC" in reasons["crc.png"] and "1x1" in reasons["dot.png"]
    assert "dangling" in reasons["gone.png"] and "FIFO" in reasons["pipe.png"]
    assert "folder" in reasons["folder.png"]
    assert "scored 2 of 7 images" in capsys.readouterr().out
