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
from inference_helpers import AuthorsBaseline, save_released, write_image
from PIL import Image
from torch import nn

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.inference.api import load_model
from syndr_lightning.inference.released import convert_state_dict, training_target

CROP = 32


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[AuthorsBaseline, Path]:
    """Their module with random weights and batch-norm statistics, saved as they save it."""
    folder = tmp_path_factory.mktemp("model") / "12-01_10_00_00_kadid-10k_cross_livec_test"
    model = AuthorsBaseline.random(seed=7)
    path = save_released(model, folder / "kadid-10k_model_best.pth.tar")
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


def test_reproduce_released_reports_the_authors_models(released, tmp_path: Path, capsys) -> None:
    """``syndr reproduce --released DIR``: no training; Table 1's LIVEC cell from the model
    whose run folder says ``cross_livec``, a mapped file for KonIQ, in the report."""
    from syndr_lightning.paper.released import find_released

    _, src = released
    models = tmp_path / "released"
    (models / src.parent.name).mkdir(parents=True)
    (models / src.parent.name / src.name).write_bytes(src.read_bytes())
    save_released(AuthorsBaseline.random(seed=8), models / "other" / "model_best.pth.tar")
    data = tmp_path / "data"
    for name in ("livec", "koniq10k"):
        write_fixture(
            name,
            data / name,
            size=(232, 228),
            **{"n_images": 3},
        )
    out = tmp_path / "campaign"
    base = [
        "reproduce",
        "--tables",
        "1",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--released",
        str(models),
    ]
    assert syndr_main([*base, f"paths.data_dir={data}"]) == 2  # other/ names no target
    assert "--released-map model_best.pth.tar=TARGET" in capsys.readouterr().err
    found = find_released(models, ["model_best.pth.tar=koniq10k"])
    assert sorted(t for _, t in found) == ["koniq10k", "livec"]
    code = syndr_main(
        [*base, "--released-map", "model_best.pth.tar=koniq10k", f"paths.data_dir={data}"]
    )
    assert code == 0
    report = (out / "paper_report.md").read_text()
    section = report.split("## Released models")[1]
    for line in ("| 1 | syndr | livec | SRCC |", "| 1 | syndr | koniq10k | PLCC |"):
        assert line in section
    records = json.loads((out / "released" / "released.json").read_text())["records"]
    assert {(r["dataset"], r["images"]) for r in records} == {("livec", 3), ("koniq10k", 3)}
    assert not list(out.glob("table1/*"))  # nothing trained
