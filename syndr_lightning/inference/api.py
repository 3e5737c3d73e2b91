"""Score images with a trained checkpoint: ``load_model(path).score(image)``.

>>> from syndr_lightning import load_model
>>> m = load_model("run/checkpoints/last.ckpt")       # doctest: +SKIP
>>> m.score("photo.jpg")                              # doctest: +SKIP
6.83

Scores are on 0..10, higher is better (the model's output, clipped to that range). Each
image is decoded to RGB, cut into ``crops`` random crops of the training crop size (the
same crops for the same image size every time: the crop positions depend on the seed,
not on the call order) or one centre crop, ImageNet-normalised, and the crop predictions
are averaged, exactly as in validation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from syndr_lightning.utils.checkpoints import safe_torch_load
from syndr_lightning.utils.device import resolve_device
from syndr_lightning.utils.errors import ConfigError, InputError, SyndrError
from syndr_lightning.utils.images import IMAGE_SUFFIXES, pil_to_rgb, read_rgb
from syndr_lightning.utils.transforms import EvalTransform

__all__ = [
    "DEFAULT_CROP_SIZE",
    "ImageLike",
    "Scorer",
    "collect_images",
    "collect_inputs",
    "load_model",
    "read_checkpoint_meta",
    "to_rgb_array",
]

ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray | torch.Tensor

#: Crop size used when the checkpoint does not record the datamodule's ``crop_size``.
DEFAULT_CROP_SIZE = 224
SCORE_RANGE = (0.0, 10.0)


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any supported image input -> ``uint8 [H,W,3]`` RGB.

    Accepts a file path, a PIL image, a numpy array ``[H,W,3]`` / ``[H,W]`` (uint8, or
    float in 0..1) or a tensor ``[3,H,W]`` (uint8, or float in 0..1; raw RGB, not
    normalised). Unreadable files raise InputError naming the file.
    """
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"image file {str(path)!r} does not exist")
        return read_rgb(path, error=InputError)
    if isinstance(image, Image.Image):
        try:
            return pil_to_rgb(image)
        except ValueError as exc:
            raise InputError(f"cannot convert the PIL image to RGB: {exc}") from None
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise InputError(
                f"a tensor image must be [3,H,W] (or [1,H,W]) raw RGB; got shape "
                f"{tuple(image.shape)} (pass a batch as a list or score_batch)"
            )
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        return _array_to_uint8(image)
    raise InputError(
        f"cannot score an object of type {type(image).__name__}; pass a path, a PIL image, "
        "a numpy array [H,W,3] or a tensor [3,H,W]"
    )


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(f"an array image must be [H,W], [H,W,3] or [H,W,4]; got {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"array images must be uint8 or float in 0..1; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InputError("the image contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise InputError(
            f"float images must be raw RGB in 0..1 (not normalised); found values "
            f"{lo:.3f}..{hi:.3f}: divide by 255 or undo the normalisation"
        )
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def collect_images(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (recursively, by image suffix) into a sorted file list.

    Files named explicitly are kept whatever their suffix (an unreadable one is reported
    when scored). A path that does not exist, or no image at all, raises InputError.
    Entries that cannot be scored are left out: :func:`collect_inputs` says which, and why.
    """
    return collect_inputs(inputs)[0]


def collect_inputs(
    inputs: Iterable[str | os.PathLike[str]],
) -> tuple[list[Path], list[tuple[str, str]]]:
    """:func:`collect_images` plus every skipped entry with its reason: inside folders,
    each name with an image suffix that is not a regular file (a dangling link, a FIFO,
    a folder named ``x.png``). Symlinked sub-folders are followed (each folder once)."""
    out: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = set()
    missing: list[str] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found, odd = _walk_images(path)
            skipped.extend(odd)
        elif path.is_file():
            found = [path]
        else:
            missing.append(str(path))
            continue
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    if missing:
        raise InputError(
            f"{len(missing)} input path(s) do not exist (first: {missing[0]!r}); pass image "
            "files or folders"
        )
    if not out:
        raise InputError(
            f"no images found in the given inputs; expected files or folders containing "
            f"{', '.join(IMAGE_SUFFIXES)}"
            + (
                f" ({len(skipped)} skipped, first: {skipped[0][0]}: {skipped[0][1]})"
                if skipped
                else ""
            )
        )
    return out, skipped


def _walk_images(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files under ``folder`` (symlinked folders followed, loops cut), sorted; and
    the entries with an image suffix that are not regular files, with the reason."""
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    visited: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a link back up the tree
            dirs[:] = []
            continue
        visited.add(real)
        for name in dirs:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                skipped.append((str(Path(root) / name), "a folder, not an image file"))
        for name in files:
            p = Path(root) / name
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if p.is_file():
                found.append(p)
            elif p.is_symlink() and not p.exists():
                skipped.append((str(p), "a dangling symbolic link"))
            else:
                skipped.append((str(p), "not a regular file (a FIFO, socket or device)"))
    return sorted(found), sorted(skipped)


def read_checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Facts about a checkpoint needed for scoring: backbone, crop size (when recorded,
    in the checkpoint or in the run's ``config_resolved.yaml``)."""
    return _meta(_load_checkpoint(path), path)


def _meta(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, Any]:
    hp = dict(ckpt.get("hyper_parameters") or {})
    dm = dict(ckpt.get("datamodule_hyper_parameters") or {})
    crop = dm.get("crop_size")
    if crop is None:
        crop = _run_config_crop_size(Path(path).expanduser())
    return {
        "backbone": hp.get("backbone"),
        "init_weights": hp.get("init_weights") or hp.get("weights"),
        "crop_size": int(crop) if crop is not None else None,
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        # set by `syndr import` (released models): backbone, label scale, training set
        "protocol": ckpt.get("syndr_protocol"),
    }


def _run_config_crop_size(ckpt: Path) -> int | None:
    """``data.crop_size`` from the training run's ``config_resolved.yaml``, if beside it.

    Training writes the resolved config into the run folder and checkpoints into
    ``<run>/checkpoints/``, so the crop size the model was trained with is found there.
    """
    import yaml

    for folder in (ckpt.parent, ckpt.parent.parent):
        config = folder / "config_resolved.yaml"
        if not config.is_file():
            continue
        try:
            data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
            crop = data.get("crop_size")
            return int(crop) if crop is not None else None
        except (yaml.YAMLError, AttributeError, TypeError, ValueError):
            return None
    return None


def _load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    where = Path(path).expanduser()
    if not where.is_file():
        raise InputError(
            f"checkpoint {str(where)!r} does not exist; pass a .ckpt written by training "
            "(see the run's checkpoints/ folder)"
        )
    ckpt = safe_torch_load(where, error=InputError, what="checkpoint")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError(
            f"{str(where)!r} is not a Lightning checkpoint (no 'state_dict'); pass a .ckpt "
            "written by training"
        )
    return ckpt


def _module_from_checkpoint(cls: Any, ckpt: dict[str, Any], path: Any) -> torch.nn.Module:
    """Build ``cls`` from the checkpoint's hyper-parameters and load its weights.

    Nothing is downloaded (``weights="none"``: the tensors come from the checkpoint). A
    state dict that does not fit the model its hyper-parameters describe is refused in one
    line naming the missing, unexpected and differently shaped tensors.
    """
    from dataclasses import fields

    from syndr_lightning.models.params import ModelParams

    hp = dict(ckpt.get("hyper_parameters") or {})
    allowed = {f.name for f in fields(ModelParams)}
    kwargs = {k: v for k, v in hp.items() if k in allowed}
    kwargs["weights"] = "none"
    try:
        module = cls(**kwargs)
    except (SyndrError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(
            f"checkpoint {str(path)!r} describes a model that cannot be built "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); was it written by "
            "syndr_lightning training?"
        ) from None
    state = ckpt["state_dict"]
    diff = state_dict_mismatch(module.state_dict(), state)
    if diff:
        raise InputError(
            f"checkpoint {str(path)!r} does not fit the model its hyper-parameters describe "
            f"(backbone={hp.get('backbone')!r}): {diff}; was it written by another model "
            "config or another version of syndr_lightning?"
        )
    module.load_state_dict(state, strict=True)
    _refuse_non_finite(module, path)
    return module


def _refuse_non_finite(module: torch.nn.Module, path: Any) -> None:
    """InputError naming the first tensor with NaN/inf: such weights score nothing."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InputError(
                f"checkpoint {str(path)!r} has {bad} non-finite values (NaN/inf) in "
                f"{name!r}; the training diverged before it was saved - use an earlier "
                "checkpoint"
            )


def state_dict_mismatch(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, Any], show: int = 3
) -> str:
    """'' when ``found`` fits ``expected`` (same keys and shapes), else one line saying
    which keys are missing or unexpected and which shapes differ."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = [
        f"{k}: model {tuple(expected[k].shape)} vs checkpoint {tuple(found[k].shape)}"
        for k in expected
        if k in found
        and hasattr(found[k], "shape")
        and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, items in (
        ("missing", missing),
        ("unexpected", extra),
        ("different shapes", shapes),
    ):
        if items:
            more = f" and {len(items) - show} more" if len(items) > show else ""
            parts.append(f"{len(items)} {label} ({'; '.join(items[:show])}{more})")
    return ", ".join(parts)


@dataclass
class Scorer:
    """A trained BIQA model with its evaluation preprocessing; see :func:`load_model`."""

    module: torch.nn.Module
    crop_size: int = DEFAULT_CROP_SIZE
    crops: int = 5
    crop_mode: str = "random"
    seed: int = 0
    batch_size: int = 16
    device: str | torch.device = "cpu"

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device, ConfigError)
        self.transform = EvalTransform(self.crop_size, self.crops, self.crop_mode, self.seed)
        if int(self.batch_size) < 1:
            raise ConfigError(f"batch_size must be >= 1; got {self.batch_size}")
        # channels_last: 1.5-3x faster convolutions on CPU (oneDNN) and GPU (tensor cores)
        self.module.to(self.device, memory_format=torch.channels_last).eval()

    # ------------------------------------------------------------ preprocessing
    def preprocess(self, image: ImageLike) -> torch.Tensor:
        """One image -> normalised crops ``[n_crops,3,S,S]`` (crop positions fixed by seed)."""
        return self.transform(to_rgb_array(image), 0)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def crops_outputs(
        self, crops: torch.Tensor, clamp: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop-averaged ``(scores [B] in 0..10, features [B,d])`` of normalised crop stacks
        ``[B,n,3,S,S]`` (or ``[B,3,S,S]``, one crop each). ``clamp=False`` keeps the raw
        scores, as training's validation and test see them (``syndr eval``)."""
        if crops.dim() == 4:
            crops = crops[:, None]
        if crops.dim() != 5:
            raise InputError(f"crops must be [B,n,3,S,S] or [B,3,S,S]; got {tuple(crops.shape)}")
        b, n = crops.shape[:2]
        score, feats = self._forward(crops.flatten(0, 1))
        mean = score.float().view(b, n).mean(1)
        return (
            (mean.clamp(*SCORE_RANGE) if clamp else mean).cpu(),
            feats.float().view(b, n, -1).mean(1).cpu(),
        )

    def score_crops(self, crops: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Scores ``[B]`` (0..10) of normalised crop stacks ``[B,n,3,S,S]`` or ``[B,3,S,S]``."""
        return self.crops_outputs(crops, clamp)[0]

    def features_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Crop-averaged backbone features ``[B,d]`` of crop stacks ``[B,n,3,S,S]``."""
        return self.crops_outputs(crops)[1]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The module over ``x`` in chunks of at most ``batch_size`` crops, channels_last.

        Large CPU batches are slower per image than moderate ones (activations leave the
        caches), so the crops of a batch of images go through in ``batch_size`` chunks.
        """
        scores, feats = [], []
        for chunk in x.split(int(self.batch_size)):
            s, f = self.module(chunk.to(self.device).contiguous(memory_format=torch.channels_last))
            scores.append(s)
            feats.append(f)
        return torch.cat(scores), torch.cat(feats)

    def score(
        self, image: ImageLike | Sequence[ImageLike]
    ) -> float | list[float] | dict[str, float]:
        """Score one image (path, PIL image, array or tensor ``[3,H,W]``) or a list of them.

        A tensor ``[B,3,H,W]`` is scored as a batch of B images (returns a list); a folder
        path is scored image by image (returns ``{path: score}``, see :meth:`score_folder`).
        """
        if isinstance(image, str | os.PathLike) and Path(image).is_dir():
            return self.score_folder(image)
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            return self.score_batch(list(image))
        if isinstance(image, list | tuple):
            return self.score_batch(image)
        return self.score_batch([image])[0]

    def score_folder(
        self, folder: str | os.PathLike[str], *, workers: int = 0, progress: bool = False
    ) -> dict[str, float]:
        """``{path: score}`` of every image under ``folder`` (recursively, sorted).

        An unreadable file scores NaN (as an empty score in ``syndr predict``); a folder
        without images raises InputError.
        """
        from syndr_lightning.inference.predict import predict_files

        table = predict_files(self, collect_images([folder]), workers=workers, progress=progress)
        return {
            str(p): float(s)
            for p, s in zip(table["path"], table["score"].astype("float64"), strict=True)
        }

    def score_batch(self, images: Sequence[ImageLike]) -> list[float]:
        """Scores of ``images`` in order, ``batch_size`` images per forward pass."""
        out: list[float] = []
        for chunk in _chunks(list(images), self.batch_size):
            stack = torch.stack([self.preprocess(img) for img in chunk])
            out.extend(float(s) for s in self.score_crops(stack))
        return out

    def features(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Crop-averaged features ``[N,d]`` of ``images`` (for UMAP figures)."""
        feats: list[torch.Tensor] = []
        for chunk in _chunks(list(images), self.batch_size):
            feats.append(self.features_crops(torch.stack([self.preprocess(i) for i in chunk])))
        if not feats:
            raise InputError("features() needs at least one image")
        return torch.cat(feats).numpy()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_model(
    path: str | os.PathLike[str],
    *,
    crops: int = 5,
    crop_size: int | None = None,
    crop_mode: str = "random",
    device: str | torch.device | None = "cpu",
    batch_size: int = 16,
    seed: int = 0,
) -> Scorer:
    """Load a training checkpoint as a :class:`Scorer` with ``.score(image)``.

    ``crop_size`` defaults to the training crop size (recorded by the datamodule, or in
    the run's ``config_resolved.yaml`` next to ``checkpoints/``; else 224);
    ``crops`` random crops (or one centre crop with ``crop_mode="center"``) are averaged.
    """
    from syndr_lightning.models.module import BIQAModule

    ckpt = _load_checkpoint(path)
    meta = _meta(ckpt, path)
    module = _module_from_checkpoint(BIQAModule, ckpt, path)
    size = int(crop_size) if crop_size is not None else (meta["crop_size"] or DEFAULT_CROP_SIZE)
    return Scorer(
        module=module,
        crop_size=size,
        crops=int(crops),
        crop_mode=crop_mode,
        seed=int(seed),
        batch_size=int(batch_size),
        device=resolve_device(device, ConfigError),
    )
