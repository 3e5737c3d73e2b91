"""Where the configs live and where runs write, without importing torch.

``conf_dir()`` finds the Hydra config folder: ``$SYNDR_CONF_DIR``, else the ``conf/``
shipped inside an installed wheel (``syndr_lightning/conf``, package data), else the
repository's top-level ``conf/`` (source checkout / editable install).
``default_root()`` is the root of every default path (``${syndr_root:}``): the repository
in a source checkout, else the working directory, never the installed package folder.
The ``syndr_run_name``/``syndr_run_group``/``syndr_run_tags`` resolvers name a run in
loggers: ``<task>-<target>-<backbone>-seed<seed>``, a sweep job with its swept overrides
appended (``...-T_f=0.05``); every job of one multirun shares one group unless the config
sets ``run_group`` (one per paper table) or ``sweep_group``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.launch import hydra_config as _hydra
from syndr_lightning.utils.launch import is_multirun

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
    "run_tags",
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


def sweep_run_name(
    overrides: Sequence[str], keys: Sequence[str] | None = None, skip: Sequence[str] = ()
) -> str:
    """``T_f=0.05,seed=1`` from a job's overrides: the swept ``keys`` (all but constant
    groups and paths when unknown) except ``skip``, each by its last component unless two
    clash."""
    items: list[tuple[str, str]] = []
    for text in overrides:
        key, sep, value = str(text).partition("=")
        bare = key.lstrip("+~")
        if not sep or key.startswith(_NAME_SKIP) or bare.startswith("paths.") or bare in skip:
            continue
        if keys and bare not in keys:
            continue
        items.append((bare, value))
    short = [k.rsplit(".", 1)[-1] for k, _ in items]
    names = [s if short.count(s) == 1 else k for s, (k, _) in zip(short, items, strict=True)]
    return ",".join(f"{n}={v}" for n, (_, v) in zip(names, items, strict=True))


# ---------------------------------------------------------------- run names (issue 23)
#: Config keys every run name shows; a sweep job's suffix leaves them out.
NAME_KEYS = ("target", "seed")


def _select(root: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    if root is None:
        return None
    return OmegaConf.select(root, key, default=None, throw_on_missing=False)


def _name_part(value: Any) -> str:
    return "_".join(str(value).replace("/", "_").split())


def _sweep_keys(hc: Any) -> list[str]:
    keys = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
    params = hc.get("sweeper", {}).get("params") or {}
    return keys + [str(k).lstrip("+~") for k in params]


def run_name(task_name: str | None = None, *, _root_: Any = None) -> str:
    """A run's logger name (``${syndr_run_name:}``): the config's ``run_name`` when set,
    else ``<task>-<target>-<backbone>-seed<seed>`` (the parts the config has) and, in a
    multirun job, its swept overrides other than target and seed
    (``syn2auth-livec-resnet50-seed1-T_f=0.05``)."""
    explicit = _select(_root_, "run_name")
    if explicit not in (None, ""):
        return str(explicit)
    task = _select(_root_, "task_name") or task_name or "train"
    parts = [task, _select(_root_, "target"), _select(_root_, "model.backbone")]
    name = "-".join(_name_part(p) for p in parts if p not in (None, ""))
    seed = _select(_root_, "seed")
    if seed is not None:
        name += f"-seed{seed}"
    hc = _hydra()
    if hc is None or not is_multirun(getattr(hc, "mode", "")):
        return name
    keys = _sweep_keys(hc)
    suffix = sweep_run_name(list(hc.overrides.task), keys, skip=NAME_KEYS)  # type: ignore[attr-defined]
    if not suffix and not any(k in keys for k in NAME_KEYS):
        suffix = f"job{hc.job.get('num')}"  # type: ignore[attr-defined]
    return f"{name}-{_name_part(suffix)}" if suffix else name


def run_group(task_name: str | None = None, *, _root_: Any = None) -> str:
    """A run's group (``${syndr_run_group:}``): the config's ``run_group`` when set (e.g.
    one per paper table), else its ``sweep_group`` (``hparams_search`` configs), else one
    group per multirun (``<task>-<sweep folder>``), else the task name."""
    for key in ("run_group", "sweep_group"):
        value = _select(_root_, key)
        if value not in (None, ""):
            return str(value)
    task = str(_select(_root_, "task_name") or task_name or "train")
    hc = _hydra()
    if hc is None or not is_multirun(getattr(hc, "mode", "")):
        return task
    return f"{task}-{Path(str(hc.sweep.dir)).name}"  # type: ignore[attr-defined]


def run_tags(*, _root_: Any = None) -> list[str]:
    """A run's tags (``${syndr_run_tags:}``): the config's ``tags`` (experiments set them),
    then its task name and sweep name, each once, at most 64 characters (W&B's limit)."""
    tags = list(_select(_root_, "tags") or [])
    tags += [_select(_root_, "task_name"), _select(_root_, "sweep_name")]
    out: list[str] = []
    for tag in tags:
        text = str(tag)[:64] if tag not in (None, "") else ""
        if text and text not in out:
            out.append(text)
    return out


def register_resolvers() -> None:
    """Register ``${syndr_root:}`` and the run resolvers ``${syndr_run_name:}``,
    ``${syndr_run_group:}``, ``${syndr_run_tags:}``, ``${syndr_multirun:}``."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("syndr_root"):
        OmegaConf.register_new_resolver("syndr_root", lambda: str(default_root()))
    resolvers = {
        "syndr_run_name": run_name,
        "syndr_run_group": run_group,
        "syndr_run_tags": run_tags,
        "syndr_multirun": is_multirun,
    }
    for name, function in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
