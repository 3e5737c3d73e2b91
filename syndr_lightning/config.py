"""Where the configs live: ``conf_dir()`` and the ``${syndr_root:}`` resolver (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from syndr_lightning.utils.errors import ConfigError

__all__ = ["REPO_ROOT", "conf_dir", "register_resolvers"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def conf_dir() -> Path:
    """The absolute ``conf/`` folder ($SYNDR_CONF_DIR, else ``<repo>/conf``)."""
    env = os.environ.get("SYNDR_CONF_DIR")
    candidate = Path(env).expanduser().resolve() if env else REPO_ROOT / "conf"
    if not (candidate / "train.yaml").is_file():
        raise ConfigError(
            f"config folder {str(candidate)!r} has no train.yaml; syndr_lightning must be "
            f"installed editable from its repository (pip install -e .) so that conf/ sits "
            f"next to the package, or SYNDR_CONF_DIR must point to a conf/ folder"
        )
    return candidate


def register_resolvers() -> None:
    """Register ``${syndr_root:}`` (the repository folder) with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("syndr_root"):
        OmegaConf.register_new_resolver("syndr_root", lambda: str(REPO_ROOT))


register_resolvers()
