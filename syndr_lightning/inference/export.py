"""Export a trained BIQA model to TorchScript, ONNX or a torch.export program, for use
without this package.

The exported graph takes **raw RGB crops** ``float32 [B,3,S,S]`` in 0..1 (``S`` = the
training crop size, recorded in the file's metadata) and returns scores ``[B]`` on 0..10
(higher is better, clipped). ImageNet normalisation is inside the graph. To score an
image the way ``syndr predict`` does, cut ``n`` crops, score them, and average.

Metadata (crop size, normalisation, input/output meaning) is stored with the model:
TorchScript and ``torch-export`` (a ``torch.export`` ExportedProgram, ``.pt2``, loaded with
``torch.export.load``: the successor of TorchScript) as the extra file ``syndr.json``,
ONNX as ``metadata_props``.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.io import atomic_path, check_output_file
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "FORMATS",
    "ExportableScorer",
    "export_model",
    "load_exported",
    "load_torchscript",
    "run_onnx",
]

FORMATS = ("torchscript", "onnx", "torch-export")


class ExportableScorer(nn.Module):
    """Raw RGB crops ``[B,3,S,S]`` in 0..1 -> scores ``[B]`` in 0..10 (normalises inside)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.backbone = module.backbone
        self.head = module.head
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score a batch of raw crops."""
        feats = self.backbone((x - self.mean) / self.std)
        return self.head(feats).squeeze(-1).clamp(0.0, 10.0)


def _metadata(crop_size: int, source: str) -> dict[str, str]:
    return {
        "producer": "syndr_lightning",
        "input": "float32 [B,3,S,S] raw RGB in 0..1 (normalisation is inside the model)",
        "output": "float32 [B] quality score 0..10, higher is better; average over crops",
        "crop_size": str(int(crop_size)),
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "checkpoint": source,
    }


def export_model(
    module: nn.Module,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    crop_size: int,
    source: str = "",
    opset: int = 18,
) -> Path:
    """Write ``module`` (a BIQAModule) as ``fmt`` (torchscript|onnx) to ``out`` atomically."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    if int(crop_size) < 8:
        raise ConfigError(f"crop_size must be >= 8; got {crop_size}")
    if fmt == "onnx":
        check_opset(opset)
    final = check_output_file(out)
    wrapper = ExportableScorer(copy.deepcopy(module)).eval().cpu()
    wrapper.requires_grad_(False)  # the exported graph is for inference only
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, int(crop_size), int(crop_size), generator=gen)
    meta = _metadata(crop_size, source)
    # Serialised in memory first: a full disk is then one OSError on a plain write (torch's
    # own file writers abort the process), and the temporary is removed.
    buffer = io.BytesIO()
    if fmt == "torchscript":
        # TorchScript is deprecated upstream but still the one dependency-free format
        # that C++ (libtorch) and mobile runtimes load.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(wrapper, example)
            torch.jit.save(traced, buffer, _extra_files={"syndr.json": json.dumps(meta)})
    elif fmt == "torch-export":
        _export_program(wrapper, example, buffer, meta)
    else:
        _export_onnx(wrapper, example, buffer, meta, opset)
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return final


def check_opset(opset: int) -> None:
    """ConfigError unless torch's ONNX exporter supports ``opset``."""
    from torch.onnx import _constants

    lo = int(_constants.ONNX_MIN_OPSET)
    hi = int(_constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    if not lo <= int(opset) <= hi:
        raise ConfigError(
            f"--opset {opset} is not supported by this torch's ONNX exporter; choose "
            f"{lo}..{hi} (default 18)"
        )


#: torch.export's note on weights that share storage (harmless for CPU weights).
_NO_COMPLETE_TENSOR = r"No complete tensor found"


def _export_program(
    wrapper: nn.Module, example: torch.Tensor, buffer: io.BytesIO, meta: dict[str, str]
) -> None:
    """``torch.export``: an ``ExportedProgram`` (.pt2) with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        program = torch.export.export(wrapper, (example,), dynamic_shapes=({0: batch},))
    with warnings.catch_warnings():
        # Weights sharing storage (a view of a parameter): torch picks the first tensor of
        # the group, which is right for the CPU weights saved here; not the user's concern.
        warnings.filterwarnings("ignore", message=_NO_COMPLETE_TENSOR)
        torch.export.save(program, buffer, extra_files={"syndr.json": json.dumps(meta)})


def load_exported(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Load a ``torch-export`` file (``torch.export.load``): a callable module and metadata."""
    where = Path(path)
    if not where.is_file():
        raise InputError(f"exported model {str(where)!r} does not exist")
    extra = {"syndr.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_COMPLETE_TENSOR)
            program = torch.export.load(str(where), extra_files=extra)
        return program.module(), json.loads(extra["syndr.json"] or "{}")
    except Exception as exc:  # truncated, damaged or foreign: whatever the reader raises
        raise _unreadable(where, "torch-export", exc) from None


def _unreadable(where: Path, kind: str, exc: BaseException) -> InputError:
    """One line: ``where`` is not a complete ``kind`` file (the reader's first words)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return InputError(
        f"cannot read exported model {str(where)!r}: not a complete {kind} file "
        f"({type(exc).__name__}: {first[:160]}); export it again with syndr export"
    )


def _export_onnx(
    wrapper: nn.Module, example: torch.Tensor, buffer: io.BytesIO, meta: dict[str, str], opset: int
) -> None:
    try:
        import onnx
    except ModuleNotFoundError:
        raise ConfigError(
            "ONNX export needs the 'onnx' package: pip install 'syndr-lightning[export]'"
        ) from None
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            input_names=["image"],
            output_names=["score"],
            dynamic_axes={"image": {0: "batch"}, "score": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    buffer.seek(0)
    buffer.truncate()
    buffer.write(model.SerializeToString())


def load_torchscript(path: str | os.PathLike[str]) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Load an exported TorchScript scorer and its metadata."""
    extra = {"syndr.json": ""}
    where = Path(path)
    if not where.is_file():
        raise InputError(f"exported model {str(where)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(where), map_location="cpu", _extra_files=extra)
        meta = json.loads(extra["syndr.json"] or "{}")
    except Exception as exc:  # truncated, damaged or foreign: whatever the reader raises
        raise _unreadable(where, "TorchScript", exc) from None
    return model, meta


def run_onnx(path: str | os.PathLike[str], crops: np.ndarray) -> np.ndarray:
    """Run an exported ONNX scorer on raw crops ``[B,3,S,S]`` (onnxruntime if installed,
    else the ``onnx`` package's reference evaluator, slow but dependency-free)."""
    x = np.ascontiguousarray(crops, dtype=np.float32)
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        from onnx.reference import ReferenceEvaluator

        return np.asarray(ReferenceEvaluator(str(path)).run(None, {"image": x})[0])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"image": x})[0])
