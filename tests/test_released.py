"""The authors' released models: ``syndr import`` of their ``<dataset>_model_best.pth.tar``
(rebuilt here with their exact key layout from random weights), then predict, eval,
export and ``load_model(...).score``; scores equal their module's forward to 1e-5."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from inference_helpers import write_image
from PIL import Image
from torch import nn

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.inference.api import load_model
from syndr_lightning.inference.released import convert_state_dict, training_target

CROP = 32


class AuthorsBaseline(nn.Module):
    """The reference code's ``Baseline`` layout: ``backbone`` = torchvision ResNet-50's
    children without ``fc`` as an ``nn.Sequential``, ``classify`` = Sequential(Linear)."""

    def __init__(self) -> None:
        super().__init__()
        model = torchvision.models.resnet50(weights=None)
        self.backbone = nn.Sequential(*list(model.children())[:-1])
        self.classify = nn.Sequential(nn.Linear(2048, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone(x).reshape(x.size(0), -1))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuthorsBaseline, Path]:
    """Their module with random weights and batch-norm statistics, saved as they save it."""
    torch.manual_seed(7)
    model = AuthorsBaseline()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        model.classify[0].weight.normal_(0, 0.002)  # scores stay inside 0..10
        model.classify[0].bias.fill_(5.0)
    model.eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-5)
    folder = tmp_path_factory.mktemp("model") / "12-01_10_00_00_kadid-10k_cross_livec_test"
    folder.mkdir()
    path = folder / "kadid-10k_model_best.pth.tar"
    torch.save(
        {
            "epoch": 11,
            "state_dict": model.state_dict(),
            "best_SRCC": np.float64(0.8312),  # scipy's numpy floats, as their script stores
            "best_PLCC": np.float64(0.8541),
            "optimizer": optimizer.state_dict(),
        },
        path,
    )
    return model, path


def _their_score(model: nn.Module, image: Path) -> float:
    """Their test transform (centre crop, ToTensor, ImageNet Normalize) and forward."""
    tf = torchvision.transforms.Compose(
        [
            torchvision.transforms.CenterCrop(CROP),
            torchvision.transforms.ToTensor(),
            torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    with torch.no_grad():
        return float(model(tf(Image.open(image).convert("RGB"))[None])[0, 0])


def test_imported_model_scores_like_their_module(released, tmp_path: Path) -> None:
    model, src = released
    out = tmp_path / "livec.ckpt"
    assert syndr_main(["import", str(src), "--out", str(out)]) == 0
    meta = torch.load(out, weights_only=True)["syndr_protocol"]
    assert (meta["backbone"], meta["training_set"], meta["target"]) == (
        "resnet50",
        "kadid10k",
        "livec",
    )
    assert meta["epoch"] == 11 and meta["best_srcc"] == pytest.approx(0.8312)
    assert meta["label_scale"].startswith("0..10")

    images = [write_image(tmp_path / f"im{i}.png", seed=i, size=(40, 36)) for i in range(3)]
    scorer = load_model(out, crops=1, crop_mode="center", crop_size=CROP)
    for image in images:
        assert scorer.score(image) == pytest.approx(_their_score(model, image), abs=1e-5)
    # raw forward on the same crops, no clamping: the converted module is theirs
    x = torch.randn(2, 3, CROP, CROP)
    with torch.no_grad():
        want = model(x)[:, 0]
    np.testing.assert_allclose(scorer.score_crops(x, clamp=False).numpy(), want.numpy(), atol=1e-5)
    assert scorer.crop_size == CROP and load_model(out).crop_size == 224  # their patch size


def test_predict_eval_export_on_an_imported_model(released, tmp_path: Path, capsys) -> None:
    model, src = released
    out = tmp_path / "m.ckpt"
    assert syndr_main(["import", str(src), "--out", str(out), "--target", "bid"]) == 0
    image = write_image(tmp_path / "photo.png", seed=3, size=(40, 36))
    capsys.readouterr()
    code = syndr_main(
        [
            "predict",
            "--ckpt",
            str(out),
            str(image),
            "--out",
            "-",
            "--json",
            "--center",
            "--crop-size",
            str(CROP),
        ]
    )
    assert code == 0
    row = json.loads(capsys.readouterr().out)["scores"][0]
    assert row["score"] == pytest.approx(_their_score(model, image), abs=1e-5)

    root = write_fixture("livec", tmp_path / "livec", n_images=4, size=(40, 36))
    report = tmp_path / "eval.json"
    code = syndr_main(
        [
            "eval",
            "--ckpt",
            str(out),
            "--data",
            "livec",
            str(root),
            "--center",
            "--crop-size",
            str(CROP),
            "--out",
            str(report),
        ]
    )
    assert code == 0
    result = json.loads(report.read_text())
    assert result["protocol"]["trained"]["target"] == "bid"
    assert np.isfinite(result["metrics"]["srcc"])

    ts = tmp_path / "m.ts"
    code = syndr_main(
        [
            "export",
            "--ckpt",
            str(out),
            "--format",
            "torchscript",
            "--out",
            str(ts),
            "--crop-size",
            str(CROP),
        ]
    )
    assert code == 0 and ts.is_file()


def test_bare_state_dict_and_data_parallel_keys(released, tmp_path: Path) -> None:
    model, _ = released
    bare = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, bare)
    out = tmp_path / "bare.ckpt"
    assert syndr_main(["import", str(bare), "--out", str(out), "--target", "koniq10k"]) == 0
    image = write_image(tmp_path / "a.png", seed=5, size=(40, 36))
    score = load_model(out, crops=1, crop_mode="center", crop_size=CROP).score(image)
    assert score == pytest.approx(_their_score(model, image), abs=1e-5)


class _Evil:
    def __reduce__(self):  # would run code if unpickled without weights_only
        return (print, ("pwned",))


def test_foreign_and_unsafe_files_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    evil = tmp_path / "evil.pth.tar"
    with open(evil, "wb") as fh:
        pickle.dump({"state_dict": {}, "x": _Evil()}, fh, protocol=2)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(1, 2)}, other)
    for src in (evil, other):
        capsys.readouterr()
        assert syndr_main(["import", str(src), "--out", str(tmp_path / "o.ckpt")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("syndr import: error:") and "\n" not in err and "pwned" not in err
    assert not (tmp_path / "o.ckpt").exists()
    with pytest.raises(Exception, match=r"classify\.0\.weight"):
        convert_state_dict({"backbone.0.weight": torch.zeros(1)})


def test_target_from_their_run_folder_name() -> None:
    assert (
        training_target("m/01-02_03_04_05_kadid-10k_cross_koniq_x/kadid-10k_model_best.pth.tar")
        == "koniq10k"
    )
    assert training_target("m/01-02_03_04_05_kadid-10k_cross_pipal4_y/a.pth.tar") == "pipal4"
    assert training_target("kadid-10k_model_best.pth.tar") is None
