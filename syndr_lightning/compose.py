"""Compose ``conf/`` (``config.conf_dir``) as the CLI does, for tests and notebooks.

Validation is ``run_config.RunConfig.from_config``; objects come from ``build.py``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from syndr_lightning.config import conf_dir, register_resolvers

__all__ = ["compose_config"]


register_resolvers()  # ${syndr_root:} and the run-name resolvers, before any compose


# ------------------------------------------------------------------ config plumbing
def compose_config(
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike[str] | None = None,
    config_name: str = "train",
) -> DictConfig:
    """Compose ``conf/`` as the CLI would (for tests and notebooks).

    ``output_dir`` plays the role of Hydra's run folder (``${hydra:runtime.output_dir}``).
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir()), job_name="syndr"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(Path(output_dir).resolve())
    HydraConfig.instance().set_config(cfg)
    # Like the config @hydra.main hands to a task: no `hydra` node (``${hydra:...}``
    # resolves through the HydraConfig singleton set above).
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
