"""Output names that never collide: ``syndr eval``'s default result file names the
checkpoint and the data set; the eval task refuses two test sets of one label."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inference_helpers import CROP, make_checkpoint
from omegaconf import OmegaConf

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.inference.eval_cli import default_out
from syndr_lightning.utils.errors import ConfigError


def test_two_csv_test_sets_get_two_result_files(
    authentic_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = make_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    other = tmp_path / "other" / "labels.csv"
    other.parent.mkdir()
    other.write_text(authentic_csv.read_text())
    for img in authentic_csv.parent.iterdir():
        if img.suffix != ".csv":
            (other.parent / img.name).symlink_to(img)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    base = ["eval", "--ckpt", str(ckpt), "--crops", "1", "--crop-size", str(CROP)]
    for labels in (authentic_csv, other):
        assert syndr_main([*base, "--data", "csv", str(labels), "--no-progress"]) == 0
    written = sorted(os.listdir(work))
    assert len(written) == 2, written
    assert all(name.startswith("eval_run-last_csv-") for name in written), written


def test_default_out_keys_checkpoint_and_data_set() -> None:
    a = default_out("/r/1/checkpoints/last.ckpt", "livec", "/d/livec")
    assert a.startswith("eval_1-last_livec_") and a.endswith(".json")
    assert default_out("/r/1/checkpoints/last.ckpt", "livec", "/d/livec") == a  # a rerun
    assert default_out("/r/2/checkpoints/last.ckpt", "livec", "/d/livec") != a
    assert default_out("/r/1/checkpoints/epoch_003.ckpt", "livec", "/d/livec") != a
    assert default_out("/r/1/checkpoints/last.ckpt", "livec", "/e/livec") != a
    assert default_out("/r/1/checkpoints/last.ckpt", "livec", "/d/livec", {"x": 1}) != a


def test_eval_task_refuses_two_test_sets_of_one_label(tmp_path: Path) -> None:
    from syndr_lightning.eval_task import evaluate

    ckpt = make_checkpoint(tmp_path / "last.ckpt")
    cfg = OmegaConf.create(
        {
            "ckpt_path": str(ckpt),
            "paths": {"output_dir": str(tmp_path / "out")},
            "data": {
                "test": [{"name": "csv", "root": "/a.csv"}, {"name": "csv", "root": "/b.csv"}]
            },
        }
    )
    with pytest.raises(ConfigError, match=r"data.test.0 and data.test.1 are both labelled 'csv'"):
        evaluate(cfg)
    assert not (tmp_path / "out" / "metrics.json").exists()
