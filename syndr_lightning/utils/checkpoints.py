"""Loading checkpoint files without running code: ``torch.load(weights_only=True)`` only.

Our Lightning checkpoints hold tensors, ``OrderedDict``, and plain Python containers,
numbers and strings (hyper-parameters are stored as plain dicts), which torch's
weights-only unpickler accepts by default: :data:`CHECKPOINT_GLOBALS`, the extra
globals we allow, is therefore empty. A file that pickles anything else (a class, a
function, ``os.system``...) is refused in one line naming the global, and nothing in it
runs.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import ConfigError, InputError, SyndrError

__all__ = ["CHECKPOINT_GLOBALS", "check_resume_checkpoint", "safe_torch_load"]

#: Globals allowed beyond torch's weights-only defaults (none are needed: see the
#: module docstring and tests/test_failures.py::test_real_checkpoints_need_no_extra_globals).
CHECKPOINT_GLOBALS: tuple[Any, ...] = ()

_GLOBAL = re.compile(r"Unsupported global:\s*(?:GLOBAL\s+)?([\w.]+)")


def _reason(exc: BaseException) -> str:
    """One line saying why the weights-only unpickler refused the file."""
    text = str(exc)
    found = _GLOBAL.search(text)
    if found:
        return f"it pickles the Python object {found.group(1)!r}, which is never loaded"
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text.replace("\n", " "))
    if detail:
        return "the unpickler stops at: " + detail.group(1).split(" Check the doc")[0].strip()[:200]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:200]}"


def safe_torch_load(
    path: str | os.PathLike[str],
    *,
    error: type[SyndrError] = InputError,
    what: str = "checkpoint",
    extra_globals: Sequence[Any] = (),
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; failures raise ``error``.

    Missing, corrupt and foreign files, and files that would run code when unpickled,
    all raise ``error`` with one line naming the file. ``extra_globals``: further
    data-only globals this caller accepts (the released models' numpy scalars).
    """
    import torch

    where = Path(path).expanduser()
    if not where.is_file():
        raise error(f"{what} {str(where)!r} does not exist; pass an existing file")
    try:
        with torch.serialization.safe_globals([*CHECKPOINT_GLOBALS, *extra_globals]):
            return torch.load(where, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _GLOBAL.search(str(exc)):
            raise error(
                f"refusing to load {what} {str(where)!r}: {_reason(exc)} (only tensors and "
                "plain containers are read, so nothing in the file can run); pass a "
                "checkpoint written by syndr_lightning or a torch.save(state_dict) file"
            ) from None
        failure: BaseException = exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as exc:
        failure = exc
    raise error(
        f"cannot read {what} {str(where)!r}: not a readable PyTorch file ({_reason(failure)}); "
        "pass a file written by torch.save or by training"
    )


def check_resume_checkpoint(path: str | os.PathLike[str], key: str = "ckpt_path") -> dict[str, Any]:
    """Refuse in one line, before any work, a ``ckpt_path=`` that training cannot resume
    from: missing or a folder (ConfigError, exit 2), unreadable or truncated, or not a
    Lightning checkpoint (InputError, exit 1). Returns the checkpoint (weights only)."""
    where = Path(path).expanduser()
    hint = "pass a .ckpt written by training (e.g. <run>/checkpoints/last.ckpt)"
    if where.is_dir():
        raise ConfigError(f"{key}={str(path)!r} is a folder; {hint}")
    if not where.is_file():
        raise ConfigError(f"{key}={str(path)!r} does not exist; {hint}")
    state = safe_torch_load(where, what=key)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(
            f"{key}={str(path)!r} is not a Lightning training checkpoint (no 'state_dict'); {hint}"
        )
    return state
