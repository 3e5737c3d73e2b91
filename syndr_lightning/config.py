"""Where the configs live and where runs write, without importing torch.

``conf_dir()`` finds the Hydra config folder: ``$SYNDR_CONF_DIR``, else the ``conf/``
shipped inside an installed wheel (``syndr_lightning/conf``, package data), else the
repository's top-level ``conf/`` (source checkout / editable install).
``default_root()`` is the root of every default path (``${syndr_root:}``): the repository
in a source checkout, else the working directory, never the installed package folder.
The ``syndr_run_name``/``syndr_run_group`` resolvers name a run in loggers: a sweep job is
named after its own overrides (``T_f=0.05,seed=1``) and every job of one multirun shares
one group.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from syndr_lightning.utils.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository folder of a source checkout (in an installed wheel: site-packages).
REPO_ROOT = PACKAGE_DIR.parent

__all__ = [
    "REPO_ROOT",
    "conf_dir",
    "default_root",
    "is_multirun",
    "register_resolvers",
    "run_group",
    "run_name",
    "sweep_run_name",
    "swept_keys",
]

# Overrides that never tell two jobs of one multirun apart (or are paths).
_NAME_SKIP = ("+experiment", "experiment", "+hparams_search", "hparams_search", "hydra.")


def is_source_checkout() -> bool:
    """True when the package sits in its repository (next to pyproject.toml and conf/)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (
        REPO_ROOT / "conf" / "train.yaml"
    ).is_file()


def conf_dir() -> Path:
    """The absolute config folder ($SYNDR_CONF_DIR, packaged ``conf``, or ``<repo>/conf``)."""
    env = os.environ.get("SYNDR_CONF_DIR")
    if env:
        candidate = Path(env).expanduser().resolve()
    elif (PACKAGE_DIR / "conf" / "train.yaml").is_file():
        candidate = PACKAGE_DIR / "conf"
    else:
        candidate = REPO_ROOT / "conf"
    if not (candidate / "train.yaml").is_file():
        raise ConfigError(
            f"config folder {str(candidate)!r} has no train.yaml; reinstall syndr-lightning "
            f"(the wheel ships its configs as syndr_lightning/conf), install it from its "
            f"repository (pip install -e .), or point SYNDR_CONF_DIR to a conf/ folder"
        )
    return candidate


def default_root() -> Path:
    """Root of the default data/cache/log folders: the repository, else the working directory."""
    return REPO_ROOT if is_source_checkout() else Path.cwd().resolve()


_SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(", "tag(", "shuffle(", "sort(")
#: Environment variable through which the launching process tells its jobs the swept keys.
SWEPT_KEYS_ENV = "SYNDR_SWEPT_KEYS"


def _top_level_comma(value: str) -> bool:
    """A comma outside brackets, quotes and escapes (``a,b``; not ``[1,2]`` or ``a\\,b``)."""
    depth, quote, escaped = 0, "", False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def swept_keys(argv: Sequence[str]) -> list[str]:
    """Keys a command line sweeps (``k=a,b`` or ``k=range(...)``), without ``+``/``~``."""
    keys = []
    for text in argv:
        key, sep, value = str(text).partition("=")
        swept = _top_level_comma(value) or value.startswith(_SWEEP_FUNCTIONS)
        if sep and not key.startswith("-") and swept:
            keys.append(key.lstrip("+~"))
    return keys


def sweep_run_name(overrides: Sequence[str], keys: Sequence[str] | None = None) -> str:
    """``T_f=0.05,seed=1`` from a job's overrides: the swept ``keys`` (all but constant
    groups and paths when unknown), each by its last component unless two clash."""
    items: list[tuple[str, str]] = []
    for text in overrides:
        key, sep, value = str(text).partition("=")
        bare = key.lstrip("+~")
        if not sep or key.startswith(_NAME_SKIP) or bare.startswith("paths."):
            continue
        if keys and bare not in keys:
            continue
        items.append((bare, value))
    short = [k.rsplit(".", 1)[-1] for k, _ in items]
    names = [s if short.count(s) == 1 else k for s, (k, _) in zip(short, items, strict=True)]
    return ",".join(f"{n}={v}" for n, (_, v) in zip(names, items, strict=True))


def _hydra() -> object | None:
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - hydra is a dependency
        return None
    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun(mode: object | None = None) -> bool:
    """Whether Hydra runs a multirun: ``mode`` (a ``RunMode`` or its name), by default
    the mode of the running Hydra job (False outside Hydra). The one such test."""
    if mode is None:
        hc = _hydra()
        mode = "" if hc is None else getattr(hc, "mode", "")
    return str(mode).upper().split(".")[-1] == "MULTIRUN"


def run_name(task_name: str) -> str:
    """A run's logger name: its sweep overrides in a multirun job, else ``task_name``."""
    hc = _hydra()
    if hc is None or not is_multirun(getattr(hc, "mode", "")):
        return str(task_name)
    keys = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
    params = hc.get("sweeper", {}).get("params") or {}  # type: ignore[attr-defined]
    keys += [str(k).lstrip("+~") for k in params]
    name = sweep_run_name(list(hc.overrides.task), keys)  # type: ignore[attr-defined]
    num = hc.job.get("num")  # type: ignore[attr-defined]
    return name or f"{task_name}-{num}"


def run_group(task_name: str) -> str:
    """One group per multirun (``<task>-<sweep folder>``); ``task_name`` for a single run."""
    hc = _hydra()
    if hc is None or not is_multirun(getattr(hc, "mode", "")):
        return str(task_name)
    return f"{task_name}-{Path(str(hc.sweep.dir)).name}"  # type: ignore[attr-defined]


def register_resolvers() -> None:
    """Register ``${syndr_root:}``, ``${syndr_run_name:task}``, ``${syndr_run_group:task}``."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("syndr_root"):
        OmegaConf.register_new_resolver("syndr_root", lambda: str(default_root()))
    if not OmegaConf.has_resolver("syndr_run_name"):
        OmegaConf.register_new_resolver("syndr_run_name", run_name)
    if not OmegaConf.has_resolver("syndr_run_group"):
        OmegaConf.register_new_resolver("syndr_run_group", run_group)
