"""The authors' released SynDR-IQA models as this framework's checkpoints.

The reference code (``train_test_IQA_cross.py``) saves ``<dataset>_model_best.pth.tar``:
a dict whose ``state_dict`` holds its ``Baseline`` module, ``backbone.N.*`` (torchvision's
ResNet-50 without ``fc`` as an ``nn.Sequential``: 0 conv1, 1 bn1, 4..7 layer1..4) and
``classify.0.*`` (one Linear 2048 -> 1), besides ``epoch``, ``best_SRCC``/``best_PLCC``
and the optimizer state. Its inputs are ImageNet-normalised RGB crops and its outputs
are on the 0..10 label scale (the training labels min-max scaled, higher is better):
the same contract as :class:`~syndr_lightning.models.module.BIQAModule`, so the
conversion is a renaming of tensors. :func:`convert_state_dict` is that renaming;
:func:`import_released` reads a file (``weights_only=True``) and writes a checkpoint
that ``load_model``, ``syndr predict``, ``syndr eval`` and ``syndr export`` take.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from syndr_lightning.utils.errors import InputError

__all__ = [
    "AUTHORS_CROP",
    "RESNET_CHILDREN",
    "convert_state_dict",
    "import_released",
    "released_globals",
    "training_target",
]

#: Positions of torchvision ResNet-50's children in ``nn.Sequential(*children[:-1])``
#: that hold tensors (2 relu, 3 maxpool, 8 avgpool have none).
RESNET_CHILDREN: dict[int, str] = {
    0: "conv1",
    1: "bn1",
    4: "layer1",
    5: "layer2",
    6: "layer3",
    7: "layer4",
}
#: The reference code's training and test crop (``--patch_size``).
AUTHORS_CROP = 224
#: Training sets as the reference code names them -> this framework's loader names.
TRAINING_SETS = {"kadid-10k": "kadid10k", "kadid10k": "kadid10k"}
#: Test sets as the reference code names them (``--test_db``) -> loader / cell names.
TARGETS = {
    "livec": "livec",
    "koniq": "koniq10k",
    "koniq-10k": "koniq10k",
    "bid": "bid",
    "live": "live",
    "csiq": "csiq",
    "tid2013": "tid2013",
    "kadid-10k": "kadid10k",
    **{f"pipal{i}": f"pipal{i}" for i in range(1, 7)},
}


def released_globals() -> list[Any]:
    """The numpy scalar types the reference code's ``best_SRCC``/``best_PLCC`` pickle as
    (``scipy.stats`` returns numpy floats); reading them runs no code."""
    import numpy as np

    found: list[Any] = [np.dtype]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            found.append(__import__(module, fromlist=["scalar"]).scalar)
            break
        except (ImportError, AttributeError):
            continue
    found += [
        getattr(np.dtypes, n) for n in ("Float64DType", "Float32DType") if hasattr(np, "dtypes")
    ]
    return found


def convert_state_dict(state: Mapping[str, Any], source: str = "file") -> dict[str, torch.Tensor]:
    """The reference ``Baseline``'s tensors under :class:`BIQAModule`'s names (resnet50).

    ``module.`` prefixes (a ``DataParallel`` save) are dropped. A key outside the
    layout, or a missing head, raises :class:`InputError` naming it.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if not torch.is_tensor(value):
            unknown.append(key)
            continue
        match = re.fullmatch(r"backbone\.(\d+)\.(.+)", name)
        if match and int(match.group(1)) in RESNET_CHILDREN:
            out[f"backbone.net.{RESNET_CHILDREN[int(match.group(1))]}.{match.group(2)}"] = value
        elif name in ("classify.0.weight", "classify.0.bias"):
            out[f"head.{name.rsplit('.', 1)[1]}"] = value
        else:
            unknown.append(key)
    if unknown or "head.weight" not in out:
        what = f"unexpected keys {unknown[:3]}" if unknown else "no classify.0.weight"
        raise InputError(
            f"{source} is not a SynDR-IQA Baseline state dict ({what}); expected the keys "
            f"'backbone.<0..7>.*' (ResNet-50 without fc) and 'classify.0.weight/bias' of the "
            f"authors' <dataset>_model_best.pth.tar"
        )
    return out


def training_target(path: str | os.PathLike[str]) -> str | None:
    """The test set a released file was trained for, from the reference code's run folder
    name (``<date>_kadid-10k_cross_<test_db>_<description>``) or the file name; None
    when neither says."""
    where = Path(path)
    for text in (where.parent.name, where.name):
        match = re.search(r"cross_([a-z0-9-]+?)(?:_|$)", text.lower())
        if match and match.group(1) in TARGETS:
            return TARGETS[match.group(1)]
    return None


def _read(path: Path) -> dict[str, Any]:
    from syndr_lightning.utils.checkpoints import safe_torch_load

    obj = safe_torch_load(path, what="released model", extra_globals=released_globals())
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        return dict(obj)
    if isinstance(obj, Mapping) and obj and all(torch.is_tensor(v) for v in obj.values()):
        return {"state_dict": dict(obj)}  # a bare state_dict with the same keys
    raise InputError(
        f"{str(path)!r} holds neither a dict with a 'state_dict' entry nor a bare state "
        f"dict; expected the authors' <dataset>_model_best.pth.tar"
    )


def _number(value: Any) -> float | int | None:
    try:
        return (
            value.item()
            if hasattr(value, "item")
            else (float(value) if value is not None else None)
        )
    except (TypeError, ValueError):
        return None


def import_released(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    training_set: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Convert the authors' ``.pth.tar`` (or bare state dict) at ``src`` into a checkpoint
    at ``out`` (written atomically); return its protocol metadata.

    ``training_set`` defaults to the file name's dataset (``kadid-10k`` -> ``kadid10k``),
    ``target`` to the run folder's ``cross_<test_db>`` (see :func:`training_target`).
    """
    import lightning as L

    from syndr_lightning.inference.api import state_dict_mismatch
    from syndr_lightning.models.module import BIQAModule
    from syndr_lightning.utils.io import atomic_path

    where = Path(src).expanduser()
    raw = _read(where)
    state = convert_state_dict(raw["state_dict"], repr(str(where)))
    module = BIQAModule(backbone="resnet50", weights="none")
    ours = module.state_dict()
    # the input re-normalisation buffers are identities here (ImageNet in, ImageNet used)
    fixed = {k: v for k, v in ours.items() if k in ("backbone.in_scale", "backbone.in_shift")}
    diff = state_dict_mismatch({k: v for k, v in ours.items() if k not in fixed}, state)
    if diff:
        raise InputError(f"{str(where)!r} does not fit the authors' ResNet-50 Baseline: {diff}")
    module.load_state_dict({**fixed, **state}, strict=True)
    stem = where.name.split("_model_best")[0].split("_checkpoint")[0]
    protocol = {
        "source": "released (Li-aobo/SynDR-IQA reference code)",
        "file": where.name,
        "sha256": hashlib.sha256(where.read_bytes()).hexdigest(),
        "backbone": "resnet50",
        "input": "ImageNet-normalised RGB crops of 224 px",
        "label_scale": "0..10, higher is better (training labels min-max scaled)",
        "training_set": training_set or TRAINING_SETS.get(stem.lower(), stem or None),
        "target": target or training_target(where),
        "epoch": _number(raw.get("epoch")),
        "best_srcc": _number(raw.get("best_SRCC")),
        "best_plcc": _number(raw.get("best_PLCC")),
    }
    hparams = dict(module.hparams)
    hparams["init_weights"] = f"released:{where.name}"
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": hparams,
        "datamodule_hyper_parameters": {"crop_size": AUTHORS_CROP},
        "epoch": protocol["epoch"] if isinstance(protocol["epoch"], int) else 0,
        "global_step": 0,
        "pytorch-lightning_version": L.__version__,
        "syndr_protocol": protocol,
    }
    target_file = Path(out).expanduser()
    with atomic_path(target_file) as tmp:
        torch.save(ckpt, tmp)
    return protocol
