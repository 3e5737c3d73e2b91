"""DRCDown inside the Lightning loop: per-epoch subsets, batch counts, resume, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from syndr_lightning.callbacks.drcdown import DRCDownCallback
from syndr_lightning.data.syndr import SynDRDataModule
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.reshape.engine import DRCDownSelector, subset_hash
from syndr_lightning.reshape.features import extract_features
from syndr_lightning.reshape.params import DRCDownParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError

RESHAPE = {"ddcup": False, "drcdown": True, "T_f": 0.05, "T_q": 10.0, "T_u": 2}


class TinyIQA(L.LightningModule):
    """A minimal BIQA model: conv features + linear head, L1 loss."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(8, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f).squeeze(1), f

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        score, _ = self(batch["image"])
        return nn.functional.l1_loss(score, batch["score"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


class Recorder(L.Callback):
    """Records, per epoch, the weights at epoch start, the batch count and the indices."""

    def __init__(self) -> None:
        self.snapshots: dict[int, dict] = {}
        self.batches: dict[int, int] = {}
        self.indices: dict[int, list[int]] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        e = trainer.current_epoch
        self.snapshots[e] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.batches[e] = int(trainer.num_training_batches)
        self.indices[e] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.indices[trainer.current_epoch].extend(batch["index"].tolist())


@pytest.fixture(scope="module")
def kadid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kadid")
    return write_fixture("kadid10k", root, n_refs=4, types=[1, 3], levels=[1, 2, 3, 4, 5])


def make_dm(kadid: Path, tmp: Path, **kw) -> SynDRDataModule:
    args = dict(
        train={"name": "kadid10k", "root": str(kadid), "options": {"types": [1, 3]}},
        val_fraction=0.25,
        batch_size=4,
        crop_size=16,
        eval_crops=1,
        hflip=True,
        cache_dir=str(tmp / "cache"),
        reshape=ReshapeParams.from_config(RESHAPE),
        seed=3,
    )
    args.update(kw)
    return SynDRDataModule(**args)


def make_trainer(tmp: Path, epochs: int, callbacks: list, **kw) -> L.Trainer:
    args = dict(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        reload_dataloaders_every_n_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp),
        callbacks=callbacks,
        deterministic=True,
    )
    args.update(kw)
    return L.Trainer(**args)


def test_each_epoch_trains_on_the_subset_of_its_start_weights(kadid: Path, tmp_path: Path):
    L.seed_everything(0)
    dm = make_dm(kadid, tmp_path)
    rec, cb = Recorder(), DRCDownCallback()
    trainer = make_trainer(tmp_path, 3, [rec, cb])
    trainer.fit(TinyIQA(), datamodule=dm)
    n_orig = dm.n_original
    assert n_orig == 30  # 3 training refs x 2 types x 5 levels
    pool = dm.train_manifest.iloc[:n_orig]
    hashes = []
    for e in range(3):
        model = TinyIQA()
        model.load_state_dict(rec.snapshots[e])
        fresh = DRCDownSelector(
            list(pool["path"]),
            pool["score"].to_numpy(),
            dm.reshape.drcdown_params,
            dm.feature_pass,
            3,
            dm.drcdown_selector.cache_dir,
        )
        expected = fresh.compute(model, e).kept
        seen = sorted(rec.indices[e])
        assert seen == sorted(expected.tolist()), f"epoch {e} trained on another subset"
        assert len(expected) < n_orig  # DRCDown removed something
        assert rec.batches[e] == math.ceil(len(expected) / 4)
        hashes.append(subset_hash(expected))
    assert len(set(hashes)) > 1  # subsets change from epoch to epoch
    history = json.loads((tmp_path / "drcdown_history.json").read_text())
    assert [h["hash"] for h in history] == hashes
    assert all(h["stats"]["clusters"] >= 1 for h in history)
    saved = np.load(tmp_path / "drcdown_subsets.npz")
    assert subset_hash(saved["epoch_2"]) == hashes[2]


def test_logged_metrics(kadid: Path, tmp_path: Path):
    L.seed_everything(0)
    dm = make_dm(kadid, tmp_path)
    trainer = make_trainer(tmp_path, 1, [DRCDownCallback()])
    trainer.fit(TinyIQA(), datamodule=dm)
    m = trainer.callback_metrics
    for key in (
        "drcdown/kept",
        "drcdown/clusters",
        "drcdown/size_max",
        "drcdown/size_k2_over_k",
        "drcdown/size_cv",
        "drcdown/feature_seconds",
        "drcdown/select_seconds",
        "drcdown/clusters_after",
        "drcdown/clusters_incl_singletons",
    ):
        assert key in m, key
    # The subset's hash is run metadata (W&B summary, TensorBoard text), not a number.
    assert "drcdown/subset_hash" not in m
    assert 0 < float(m["drcdown/kept"]) < dm.n_original


def test_resume_reproduces_subsets(kadid: Path, tmp_path: Path):
    def run(root: Path, epochs: int, ckpt: str | None = None) -> list[dict]:
        L.seed_everything(0)
        cb = DRCDownCallback()
        saver = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=root / "ckpt", save_top_k=-1, every_n_epochs=1, filename="{epoch}"
        )
        trainer = make_trainer(root, epochs, [cb, saver], enable_checkpointing=True)
        trainer.fit(TinyIQA(), datamodule=make_dm(kadid, root), ckpt_path=ckpt)
        return cb.history

    full = run(tmp_path / "full", 4)
    resumed = run(tmp_path / "resumed", 4, ckpt=str(tmp_path / "full" / "ckpt" / "epoch=1.ckpt"))
    assert [h["epoch"] for h in resumed] == [0, 1, 2, 3]  # history restored from the checkpoint
    assert [h["hash"] for h in resumed] == [h["hash"] for h in full]


def test_reload_every_epoch_is_required(kadid: Path, tmp_path: Path):
    dm = make_dm(kadid, tmp_path)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
        reload_dataloaders_every_n_epochs=0, limit_val_batches=0,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="reload_dataloaders_every_n_epochs=1"):
        trainer.fit(TinyIQA(), datamodule=dm)


def test_train_indices_without_trainer_is_a_clear_error(kadid: Path, tmp_path: Path):
    dm = make_dm(kadid, tmp_path)
    dm.setup("fit")
    with pytest.raises(ConfigError, match="attached to a Trainer"):
        dm.train_indices(0)
    off = make_dm(kadid, tmp_path, reshape=ReshapeParams.from_config({**RESHAPE, "drcdown": False}))
    off.setup("fit")
    assert len(off.train_indices(0)) == off.n_original


def test_feature_pass_cache_and_batches_agree(kadid: Path, tmp_path: Path):
    paths = sorted(str(p) for p in (kadid / "images").glob("I0*_*.png"))[:13]
    model = TinyIQA()
    plain = extract_features(model, paths, crop_size=16, batch_size=5)
    cold = extract_features(model, paths, crop_size=16, batch_size=4, cache_dir=tmp_path)
    warm = extract_features(model, paths, crop_size=16, batch_size=64, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("crops_*.u8"))) == 1
    np.testing.assert_allclose(plain, cold, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain, warm, rtol=1e-5, atol=1e-6)
    assert plain.dtype == np.float32 and plain.shape == (13, 8)
    half = extract_features(model, paths, crop_size=16, half=True)
    assert half.dtype == np.float16
    assert model.training  # the mode of the model is restored


def test_feature_pass_is_the_model_on_imagenet_normalised_centre_crops(tmp_path: Path):
    """extract_features equals model.features run here on torchvision's centre crops
    (after its bilinear tensor resize, rounded to uint8) normalised with ImageNet
    constants written here; cold and warm crop caches too."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    rng = np.random.default_rng(0)
    paths = []
    # (h, w): every resize below is exact and every crop offset even.
    for k, (h, w) in enumerate([(40, 48), (36, 36), (24, 36)]):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    torch.manual_seed(0)
    model = TinyIQA()

    def expected(crop: int, resize: int | None) -> np.ndarray:
        crops = []
        for p in paths:
            with Image.open(p) as im:
                x = torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1)
            h, w = x.shape[1:]
            short = max(resize or min(h, w), crop)
            if short != min(h, w):  # bilinear, aspect kept, back to uint8 (the crop cache)
                s = short / min(h, w)
                y = TF.resize(x.float() / 255, [round(h * s), round(w * s)], antialias=s < 1)
                x = y.clamp(0, 1).mul(255).round().to(torch.uint8)
            x = TF.center_crop(x, [crop, crop]).float() / 255
            crops.append(TF.normalize(x, list(mean), list(std)))
        with torch.no_grad():
            return model.eval().features(torch.stack(crops)).numpy()

    for crop, resize in ((16, None), (16, 20), (32, None)):  # crop, downscale, upscale
        want = expected(crop, resize)
        got = extract_features(model, paths, crop_size=crop, resize=resize, batch_size=2)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    cache = tmp_path / "cache"
    for _ in ("cold", "warm"):
        got = extract_features(model, paths, crop_size=16, resize=20, cache_dir=cache)
        np.testing.assert_allclose(got, expected(16, 20), rtol=1e-4, atol=1e-5)
    assert len(list(cache.glob("crops_*.u8"))) == 1


def test_bad_drcdown_settings():
    with pytest.raises(ConfigError, match="T_f"):
        DRCDownParams(T_f=0.0)
    with pytest.raises(ConfigError, match="rule"):
        DRCDownParams(rule="median")


DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import lightning as L
    sys.path.insert(0, {test_dir!r})
    from test_drcdown_callback import TinyIQA, make_dm
    from pathlib import Path
    from syndr_lightning.callbacks.drcdown import DRCDownCallback

    out = Path({out!r})
    L.seed_everything(0)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", devices=2, strategy="ddp",
        reload_dataloaders_every_n_epochs=1, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(out),
        callbacks=[DRCDownCallback()],
    )
    trainer.fit(TinyIQA(), datamodule=make_dm(Path({kadid!r}), out))
    """
)


def test_ddp_ranks_train_on_the_same_subset(kadid: Path, tmp_path: Path):
    script = tmp_path / "ddp_run.py"
    script.write_text(
        DDP_SCRIPT.format(test_dir=str(Path(__file__).parent), out=str(tmp_path), kadid=str(kadid))
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "drcdown_history.json").read_text())
    r1 = json.loads((tmp_path / "drcdown_history.rank1.json").read_text())
    assert [h["epoch"] for h in r0] == [0, 1]
    assert [h["hash"] for h in r0] == [h["hash"] for h in r1]
    assert all(h["kept"] < h["total"] for h in r0)
