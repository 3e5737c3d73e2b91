"""W&B credentials and mode: wandb's own login decides, a run without any login is
logged offline (with one note saying how to upload it later)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

__all__ = ["finish_wandb", "resolve_wandb_mode", "wandb_logged_in", "wandb_note"]

_NOTE_SHOWN = False


def wandb_logged_in(env: Mapping[str, str] | None = None) -> bool:
    """True when wandb has credentials: ``WANDB_API_KEY`` or a netrc entry for its host.

    The same places ``wandb login`` writes to and wandb reads from: the netrc file
    (``$NETRC``, else ``~/.netrc``) under the host of ``$WANDB_BASE_URL``
    (default ``https://api.wandb.ai``).
    """
    import netrc
    from urllib.parse import urlparse

    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    path = Path(env["NETRC"]) if env.get("NETRC") else Path.home() / ".netrc"
    try:
        auth = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def resolve_wandb_mode(entry: DictConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Leave W&B's mode to wandb (login, ``WANDB_MODE``, settings, ``offline``), except that
    a run without any login is logged offline; returns the note saying so, else None."""
    env = os.environ if env is None else env
    if entry.get("offline") or env.get("WANDB_MODE") or wandb_logged_in(env):
        return None
    with open_dict(entry):
        entry.offline = True
    return (
        "W&B: not logged in (no WANDB_API_KEY, no netrc entry from `wandb login`): logging "
        "offline; upload later with `wandb sync <run>/wandb/offline-run-*`"
    )


def wandb_note(node: Any) -> None:
    """Resolve the mode of every W&B entry of ``node`` (the ``logger`` group); print the
    offline note once per process."""
    global _NOTE_SHOWN
    for entry in node.values() if isinstance(node, DictConfig) else ():
        if isinstance(entry, DictConfig) and str(entry.get("_target_", "")).endswith("WandbLogger"):
            note = resolve_wandb_mode(entry)
            if note and not _NOTE_SHOWN:
                _NOTE_SHOWN = True
                print(note, file=sys.stderr)


def finish_wandb(loggers: Sequence[Any]) -> None:
    if not any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish()
