"""Lightning's "can it learn at all" check: a few batches overfit through the default path.

The model is the default one (``model=lite``: BIQAModule on EfficientNet-Lite0 with its
genuine ImageNet weights), built from the composed config like every run; the data go
through the regular IQADataModule, loader, manifest and transforms. Two batches of
generated images are trained for a few epochs and then scored with the evaluation
transform: the training SRCC must reach 0.95. A broken loss (e.g. a constant), labels
that no longer match their images, or a crop pipeline that destroys the distortions
cannot reach it, so this test fails on them.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from scipy.stats import spearmanr

from syndr_lightning.compose import build_datamodule, instantiate
from syndr_lightning.data.datamodule import ManifestDataset
from syndr_lightning.train import compose_config

OVERFIT = [
    "data=generated",  # the plain IQADataModule on generated KADID-like images
    "reshape=none",
    "trainer=cpu",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=4",  # 4 x 2 x 4 = 32 images = 2 batches of 16
    "data.train.options.size=[48,56]",
    "data.val_fraction=0",
    "data.test=[]",
    "data.batch_size=16",
    "data.crop_size=40",
    "data.eval_crops=1",
    "data.eval_crop_mode=center",
    "model.lr=1e-3",  # few steps: higher learning rates than the paper's
    "model.lr_ratio=30",
]
EPOCHS = 20


def test_a_few_batches_overfit_with_the_default_model(tmp_path: Path) -> None:
    cfg = compose_config([*OVERFIT, f"paths.cache_dir={tmp_path}"], output_dir=tmp_path / "run")
    assert cfg.model.backbone == "efficientnet_lite0" and cfg.model.weights == "offline"
    L.seed_everything(0, workers=True)
    dm = build_datamodule(cfg)
    model = instantiate(cfg.model, "model")
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    train = dm.train_manifest
    assert train is not None and len(train) == 32
    data = ManifestDataset(train, dm.eval_transform)
    model.eval()
    with torch.no_grad():
        images = torch.stack([data[i]["image"] for i in range(len(data))])
        pred = model.predict_crops(images).numpy()
    srcc = float(spearmanr(pred, train["score"].to_numpy())[0])
    print(f"overfit check: training SRCC {srcc:.3f} after {EPOCHS} epochs of 2 batches")
    assert np.isfinite(srcc) and srcc >= 0.95, (
        f"the default model could not fit 2 batches (training SRCC {srcc:.3f} < 0.95): the "
        "loss, the labels or the crop pipeline is broken"
    )
