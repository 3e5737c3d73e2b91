"""Small slips of the first-day pass: the protocol line in words (no Python dict), crop
counts in the singular, a word when an image is smaller than the crop, the missing own
CSV named as such."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from syndr_lightning.data.datamodule import load_entry
from syndr_lightning.data.facts import count, describe_dataset
from syndr_lightning.protocol import Protocol
from syndr_lightning.utils import transforms
from syndr_lightning.utils.errors import DatasetError


def test_protocol_line_in_words() -> None:
    cfg = {
        "seed": 0,
        "data": {
            "train": {"name": "synthetic", "options": {"kind": "synthetic", "size": [160, 192]}},
            "eval_crops": 1,
            "eval_crop_mode": "random",
        },
    }
    proto = Protocol.from_config(cfg)
    assert proto.train == "synthetic (kind=synthetic, size=160x192)"
    assert "{" not in proto.line() and "1 random crop of" in proto.line()
    assert count(5, "random crop") == "5 random crops"
    assert describe_dataset("livec") == "livec"


def test_a_word_when_an_image_is_smaller_than_the_crop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transforms, "_UPSIZED", [])
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="syndr_lightning"):
        transforms.to_tensor(image, 32)
        transforms.to_tensor(image, 32)
    said = [
        r.getMessage() for r in caplog.records if "smaller than the 32 px crop" in r.getMessage()
    ]
    assert len(said) == 1 and "30x20" in said[0]


def test_missing_own_csv_is_not_a_download(tmp_path) -> None:
    entry = {"name": "csv", "root": str(tmp_path / "mine.csv"), "options": {}}
    with pytest.raises(DatasetError) as err:
        load_entry(entry, "data.train")
    assert "download" not in str(err.value) and "labels CSV" in str(err.value)


DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.skipif(not DOCS.is_dir(), reason="needs the repository's docs/ (a source checkout)")
def test_docs_list_every_debug_config_and_no_notes_on_who_ran_what() -> None:
    from syndr_lightning.config import conf_dir

    row = next(
        x for x in (DOCS / "training.md").read_text().splitlines() if x.startswith("| `debug`")
    )
    for config in sorted(Path(conf_dir(), "debug").glob("*.yaml")):
        assert f"`{config.stem}`" in row, config.stem
    for name in ("gpu_bench.md", "gendist.md"):
        text = (DOCS / name).read_text().lower()
        assert "session" not in text and "the issue measured" not in text, name
