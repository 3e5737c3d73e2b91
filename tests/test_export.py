"""``syndr export``: TorchScript and ONNX files score like the checkpoint."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from inference_helpers import CROP, make_checkpoint
from onnx.reference import ReferenceEvaluator

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.inference.api import load_model
from syndr_lightning.inference.export import export_model, load_torchscript
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("exp") / "tiny.ckpt", seed=3)


def _fixed_crops(n: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7)
    return torch.rand(n, 3, CROP, CROP, generator=gen)


def _reference_scores(ckpt: Path, raw: torch.Tensor) -> np.ndarray:
    scorer = load_model(ckpt, crops=1, crop_size=CROP)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return scorer.score_crops((raw - mean) / std).numpy()


def test_torchscript_round_trip(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    assert syndr_main(
        ["export", "--ckpt", str(ckpt), "--format", "torchscript", "--out", str(out),
         "--crop-size", str(CROP)]
    ) == 0  # fmt: skip
    model, meta = load_torchscript(out)
    assert meta["crop_size"] == str(CROP)
    raw = _fixed_crops()
    expected = _reference_scores(ckpt, raw)
    assert np.ptp(expected) > 1e-3  # image-dependent scores, not a constant
    with torch.no_grad():
        got = model(raw).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Any batch size works after tracing.
    with torch.no_grad():
        np.testing.assert_allclose(model(raw[:1]).numpy(), expected[:1], atol=1e-4)
    _truncated_is_one_line(out, load_torchscript)


def test_onnx_round_trip(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    assert syndr_main(
        ["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(out),
         "--crop-size", str(CROP)]
    ) == 0  # fmt: skip
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["crop_size"] == str(CROP) and meta["producer"] == "syndr_lightning"
    raw = _fixed_crops(3)
    expected = _reference_scores(ckpt, raw)
    got = ReferenceEvaluator(str(out)).run(None, {"image": raw.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_errors(ckpt: Path, tmp_path: Path, capsys) -> None:
    scorer = load_model(ckpt, crops=1, crop_size=CROP)
    with pytest.raises(ConfigError, match="unknown"):
        export_model(scorer.module, "tflite", tmp_path / "m.tflite", crop_size=CROP)
    code = syndr_main(
        ["export", "--ckpt", str(tmp_path / "none.ckpt"), "--format", "onnx", "--out",
         str(tmp_path / "m.onnx")]
    )  # fmt: skip
    assert code == 1  # a missing checkpoint is bad input; usage mistakes are 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_torch_export_round_trip(ckpt: Path, tmp_path: Path) -> None:
    """--format torch-export: an ExportedProgram (.pt2) that torch.export.load reads and
    that scores like the checkpoint, at any batch size."""
    from syndr_lightning.inference.export import load_exported

    out = tmp_path / "model.pt2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert syndr_main(
            ["export", "--ckpt", str(ckpt), "--format", "torch-export", "--out", str(out),
             "--crop-size", str(CROP)]
        ) == 0  # fmt: skip
        model, meta = load_exported(out)
    # torch.export's note on weights sharing storage is not passed on to the user.
    assert not [w for w in caught if "No complete tensor" in str(w.message)]
    assert isinstance(torch.export.load(str(out)), torch.export.ExportedProgram)
    assert meta["crop_size"] == str(CROP)
    raw = _fixed_crops(5)
    expected = _reference_scores(ckpt, raw)
    with torch.no_grad():
        np.testing.assert_allclose(model(raw).numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(model(raw[:1]).numpy(), expected[:1], atol=1e-4)
    _truncated_is_one_line(out, load_exported)


def _truncated_is_one_line(out: Path, load: Any) -> None:
    """A truncated copy of an exported file is refused in one line (InputError)."""
    cut = out.with_name("cut" + out.suffix)
    data = out.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a complete") as info:
        load(cut)
    assert "\n" not in str(info.value) and str(cut) in str(info.value)


def test_onnx_runs_in_onnxruntime(ckpt: Path, tmp_path: Path) -> None:
    """The ONNX file in onnxruntime (in the `export` extra, so `make test` has it; skipped,
    saying so, only in an environment installed without that extra)."""
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime is not installed (pip install 'syndr-lightning[export]')"
    )
    out = tmp_path / "model.onnx"
    scorer = load_model(ckpt, crops=1, crop_size=CROP)
    export_model(scorer.module, "onnx", out, crop_size=CROP)
    raw = _fixed_crops(4)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": raw.numpy()})[0]
    np.testing.assert_allclose(got, _reference_scores(ckpt, raw), atol=1e-4)
