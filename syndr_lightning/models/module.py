"""The BIQA LightningModule: backbone -> pooled features -> one Linear head -> score.

Training: L1 loss on one crop per image. Evaluation batches carry ``[B,n_crops,3,H,W]``;
predictions are averaged over the crops. Metrics: ``val/{srcc,plcc,krcc,plcc_logistic}``
and ``test/<dataset>/<metric>`` (one test dataloader per dataset, names from the
datamodule's ``test_names``); ``test_prefix`` renames ``test`` (e.g. ``test_last``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from syndr_lightning.metrics import IQAMetrics
from syndr_lightning.models.backbones import build_backbone
from syndr_lightning.models.params import ModelParams
from syndr_lightning.utils.errors import ConfigError, DivergenceError, InputError

__all__ = ["BIQAModule"]


class BIQAModule(L.LightningModule):
    """Blind IQA regressor (the paper's model: ResNet-50 + Linear, L1, Adam two lrs)."""

    def __init__(self, params: ModelParams | None = None, **values: Any) -> None:
        """Build from ``params`` (what ``RunConfig`` built from ``model.*``) or, for
        notebooks and ``load_from_checkpoint``, from its fields as keywords
        (:class:`~syndr_lightning.models.params.ModelParams`: defaults, checks, meaning).

        ``freeze_bn`` keeps the backbone's batch-norm layers in evaluation mode while
        training (running statistics frozen at their pretrained values; their scale and
        shift still train). The paper trains them (False); small batches of a small proxy
        dataset need it (conf/experiment/demo.yaml, docs/demo.md). ``lr_schedule``:
        ``none`` (the paper: constant learning rates) or ``cosine`` (both learning rates
        follow half a cosine from their value at epoch 0 towards 0 at
        ``trainer.max_epochs``, stepped once per epoch). ``max_loss``: a training step
        whose loss is above it (or not finite) ends the run as diverged
        (:class:`DivergenceError`); None checks non-finite losses only. ``head_bias``: ``zero`` (the
        paper) or ``label_mean``: when a training starts from step 0 (not on resume) the
        head's bias is set to the mean training label, so an L1 loss ranks the images from
        the first step instead of first lifting every prediction into the label range.

        Checkpoints store ``weights="none"`` (the trained tensors are in the state dict),
        so ``load_from_checkpoint`` never needs a download; the original choice survives as
        ``init_weights``.
        """
        super().__init__()
        if params is not None and values:
            raise TypeError("BIQAModule takes ModelParams or its fields as keywords, not both")
        params = params if params is not None else ModelParams.from_config(values)
        self.model_params = params
        # Saved into checkpoints, not sent to the loggers: train() logs the whole run config
        # (model.* included) once; Lightning would push these again at every fit,
        # validate and test call (docs/metrics.md).
        self.save_hyperparameters(asdict(params), logger=False)
        self.backbone, self.feature_dim = build_backbone(params.backbone, params.weights)
        self.head = nn.Linear(self.feature_dim, 1)
        nn.init.kaiming_normal_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.loss_fn: nn.Module = {
            "l1": nn.L1Loss(),
            "mse": nn.MSELoss(),
            "smooth_l1": nn.SmoothL1Loss(),
        }[params.loss]
        self.val_metrics = IQAMetrics()
        self.test_metrics = nn.ModuleDict()
        self.test_prefix = "test"
        self._pred_range: list[Any] | None = None  # (min, max, count) of an epoch's predictions
        self._last_loss: torch.Tensor | None = None
        self.freeze_bn = params.freeze_bn

    def train(self, mode: bool = True) -> BIQAModule:
        """``nn.Module.train``, keeping the backbone's batch norms in eval mode when
        ``freeze_bn``."""
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------- forward
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``[B,d]`` of ImageNet-normalised images ``[B,3,H,W]``."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(score [B], features [B,d])``."""
        feats = self.features(x)
        return self.head(feats).squeeze(-1), feats

    def predict_crops(self, images: torch.Tensor) -> torch.Tensor:
        """Scores ``[B]`` for ``[B,3,H,W]`` or crop stacks ``[B,n,3,H,W]`` (crop average)."""
        if images.dim() == 4:
            return self(images)[0]
        if images.dim() != 5:
            raise InputError(
                f"expected images [B,3,H,W] or [B,n_crops,3,H,W], got shape {tuple(images.shape)}"
            )
        b, n = images.shape[:2]
        scores = self(images.flatten(0, 1))[0]
        return scores.view(b, n).mean(dim=1)

    # ------------------------------------------------------------ training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """L1 (or the configured) loss of one random crop per image."""
        pred = self(batch["image"])[0]
        loss = self.loss_fn(pred, batch["score"].to(pred.dtype))
        self._check_loss(loss)
        self._track_predictions(pred)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=pred.shape[0],
            sync_dist=True,
        )
        return loss

    # ------------------------------------------------------- divergence
    def _diverged(self, what: str) -> DivergenceError:
        hp = self.hparams
        return DivergenceError(
            f"training diverged at epoch {self.current_epoch}, step {self.global_step}: "
            f"{what}; the learning rate is too high for this model and data (model.lr="
            f"{hp.lr:g}, head {hp.lr * hp.lr_ratio:g}): lower model.lr (e.g. 10x) and run again"
        )

    def _check_loss(self, loss: torch.Tensor) -> None:
        """Remember the loss; the decision is taken on the (DDP-synced) gradients."""
        self._last_loss = loss.detach()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop when the loss explodes (above ``max_loss``) or the gradients are not finite
        (a non-finite loss gives such gradients).

        Under DDP the gradients are already averaged over the ranks and the loss bound is
        checked on the largest loss of any rank, so every rank takes the same decision.
        With fp16 mixed precision inf gradients are expected (the grad scaler skips those
        steps): only the loss bound is checked there.
        """
        trainer = getattr(self, "_trainer", None)
        bound = self.model_params.max_loss
        if bound is not None and self._last_loss is not None:
            loss = self._last_loss.float()
            if trainer is not None and trainer.world_size > 1:
                loss = trainer.strategy.reduce(loss.clone(), reduce_op="max")
            if bool(torch.isfinite(loss)) and float(loss) > float(bound):
                raise self._diverged(
                    f"the training loss is {float(loss):g}, above model.max_loss={bound:g} "
                    "(an exploding loss)"
                )
        if trainer is not None and str(trainer.precision).startswith("16"):
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
            loss_value = float(self._last_loss) if self._last_loss is not None else float("nan")
            raise self._diverged(
                f"the training loss is {loss_value:g} and the gradients are not finite"
            )

    def _track_predictions(self, pred: torch.Tensor) -> None:
        p = pred.detach().float()
        lo, hi = p.min(), p.max()
        if self._pred_range is None:
            self._pred_range = [lo, hi, p.numel()]
        else:
            r = self._pred_range
            self._pred_range = [torch.minimum(r[0], lo), torch.maximum(r[1], hi), r[2] + p.numel()]

    def on_train_start(self) -> None:
        """``head_bias=label_mean``: start the head's bias at the mean training label
        (a fresh training only: a resumed one keeps its trained bias)."""
        if self.hparams.get("head_bias", "zero") != "label_mean" or self.global_step > 0:
            return
        manifest = getattr(self.trainer.datamodule, "train_manifest", None)
        if manifest is None or "score" not in manifest:
            raise ConfigError(
                "model.head_bias=label_mean needs a datamodule with a train_manifest "
                "(the IQA data modules have one); use model.head_bias=zero otherwise"
            )
        with torch.no_grad():
            self.head.bias.fill_(float(np.nanmean(manifest["score"].to_numpy(np.float64))))

    def on_train_epoch_start(self) -> None:
        """Start tracking the range of this epoch's training predictions."""
        self._pred_range = None
        if self.freeze_bn:  # whatever a loop or callback restored, the norms stay frozen
            self.train()

    def on_train_epoch_end(self) -> None:
        """Stop when every training prediction of the epoch was the same value.

        Checked on a single process only (DDP ranks would each see their own share; the
        validation check, on predictions gathered from every rank, covers DDP).
        """
        r = self._pred_range
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1:
            return
        if r is not None and r[2] >= 2 and bool(r[0] == r[1]):
            raise self._diverged(
                f"every training prediction of the epoch is {float(r[0]):g} (the model "
                "collapsed to a constant)"
            )

    def _compute_checked(self, metric: IQAMetrics) -> dict[str, torch.Tensor]:
        """``metric.compute()`` (gathered over ranks: same decision everywhere); NaN or
        constant predictions stop the run as a divergence."""
        try:
            values = metric.compute()
        except InputError:
            if metric.pred_range is not None and not metric.pred_range[2]:
                raise self._diverged("the validation predictions are NaN or infinite") from None
            raise
        lo, hi, _ = metric.pred_range or (0.0, 1.0, True)
        if lo == hi:
            raise self._diverged(
                f"every validation prediction is {lo:g} (the model collapsed to a constant)"
            )
        return values

    def configure_optimizers(self) -> Any:
        """Adam with the backbone at ``lr`` and the head at ``lr * lr_ratio``; with
        ``lr_schedule=cosine`` also a per-epoch cosine decay over ``trainer.max_epochs``."""
        hp = self.model_params  # the one route of model.lr & co. (ModelParams)
        optimizer = torch.optim.Adam(
            [
                # names: the learning rates are logged as lr-Adam/backbone, lr-Adam/head
                {"params": self.backbone.parameters(), "lr": hp.lr, "name": "backbone"},
                {"params": self.head.parameters(), "lr": hp.lr * hp.lr_ratio, "name": "head"},
            ],
            lr=hp.lr,
            weight_decay=hp.weight_decay,
        )
        if hp.lr_schedule == "none":
            return optimizer
        epochs = self._trainer.max_epochs if self._trainer is not None else None
        if epochs is None or int(epochs) < 1:
            raise ConfigError(
                f"model.lr_schedule=cosine decays over trainer.max_epochs, which must be a "
                f"positive number of epochs; got {epochs!r}"
            )
        total = int(epochs)

        def factor(epoch: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # ---------------------------------------------------------- evaluation
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Collect crop-averaged predictions for the validation metrics."""
        self.val_metrics.update(self.predict_crops(batch["image"]), batch["score"])

    def on_validation_epoch_end(self) -> None:
        """Log ``val/<metric>`` over the whole validation set."""
        if self.val_metrics.update_count == 0:
            return
        if self.trainer.sanity_checking:
            values = self.val_metrics.compute()
        else:
            values = self._compute_checked(self.val_metrics)
        for k, v in values.items():
            # Already gathered over ranks by torchmetrics: identical everywhere.
            self.log(f"val/{k}", v.float(), prog_bar=k == "srcc", sync_dist=True)
        self.val_metrics.reset()

    def test_names(self) -> list[str]:
        """Names of the test dataloaders (from the datamodule when it has them)."""
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        names = list(getattr(dm, "test_names", []) or [])
        if not names and trainer is not None:
            loaders = trainer.test_dataloaders
            count = len(loaders) if isinstance(loaders, list | tuple) else 1
            names = [f"test{i}" for i in range(count)]
        return names

    def _test_metric(self, dataloader_idx: int) -> IQAMetrics:
        names = self.test_names()
        name = names[dataloader_idx] if dataloader_idx < len(names) else f"test{dataloader_idx}"
        if name not in self.test_metrics:
            self.test_metrics[name] = IQAMetrics().to(self.device)
        return self.test_metrics[name]  # type: ignore[return-value]

    def test_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, torch.Tensor]:
        """Collect crop-averaged predictions of test dataset ``dataloader_idx``; return them
        with the MOS and manifest rows (``pred``, ``score``, ``index``) for callbacks."""
        pred = self.predict_crops(batch["image"])
        self._test_metric(dataloader_idx).update(pred, batch["score"])
        return {"pred": pred.detach(), "score": batch["score"], "index": batch["index"]}

    def on_test_epoch_start(self) -> None:
        """Start every test run with empty metric states."""
        for metric in self.test_metrics.values():
            metric.reset()

    def on_test_epoch_end(self) -> None:
        """Log ``<test_prefix>/<dataset>/<metric>`` for every test dataset."""
        for name, metric in self.test_metrics.items():
            if metric.update_count == 0:
                continue
            values = metric.compute()
            self.log_dict(
                {f"{self.test_prefix}/{name}/{k}": v.float() for k, v in values.items()},
                add_dataloader_idx=False,
                sync_dist=True,
            )
            metric.reset()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Crop-averaged scores of a batch."""
        return self.predict_crops(batch["image"])

    # --------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store ``weights="none"`` so loading rebuilds the model without any download."""
        hp = checkpoint.get("hyper_parameters")
        if isinstance(hp, dict):
            original = hp.get("weights")
            if original not in (None, "none"):
                hp["init_weights"] = hp.get("init_weights") or original
            hp["weights"] = "none"
