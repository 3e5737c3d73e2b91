"""``syndr-train [+experiment=NAME] [key=value ...]``: the Hydra entry point.

Also ``syndr train ...`` and ``python -m syndr_lightning ...``. The config folder is
``syndr_lightning.config.conf_dir()`` (the wheel's packaged configs or the repository's
``conf/``), the primary config ``train``. The config key ``task`` (a dotted path, default
``syndr_lightning.train.train``) names the function that receives the composed config.
User mistakes (SyndrError) print one line on stderr and exit with status 2 (config and
usage errors, found before anything is built) or 1 (data errors found later).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syndr_lightning.utils.errors import ConfigError, SyndrError, exit_code, one_line

if TYPE_CHECKING:
    from omegaconf import DictConfig

DEFAULT_TASK = "syndr_lightning.train.train"


def resolve_task(path: str) -> Callable[[DictConfig], Any]:
    """Import the task function named by the dotted ``path``."""
    module_name, _, attr = str(path).rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), attr) if module_name else None
    except (ImportError, AttributeError):
        func = None
    if not callable(func):
        raise ConfigError(
            f"task={path!r} is not an importable function; expected a dotted path such as "
            f"{DEFAULT_TASK}"
        )
    return func


def run_task(cfg: DictConfig) -> float | None:
    """Run ``cfg.task`` and return the sweep objective (``cfg.optimized_metric``)."""
    try:
        from syndr_lightning.utils.launch import check_hydra_launch, objective

        check_hydra_launch(cfg)  # one device per sweep job (docs/scaling.md)
        task = resolve_task(cfg.get("task") or DEFAULT_TASK)
        from syndr_lightning.config import is_multirun
        from syndr_lightning.logs import route_lightning

        route_lightning()  # Lightning imported by now: its lines once, through Hydra's handlers
        if is_multirun() and cfg.get("reproduce") is None:  # reproduce reports its own
            _remember_sweep_folder()
        metrics = task(cfg)
        if not isinstance(metrics, dict) or not is_multirun():
            return None

        return objective(metrics, cfg.get("optimized_metric"))
    except ModuleNotFoundError as exc:  # an optional dependency: one line, no traceback
        from syndr_lightning.cli import missing_dependency

        print(missing_dependency(exc, "syndr-train"), file=sys.stderr)
        sys.exit(1)
    except SyndrError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        # SystemExit is not caught by Hydra's error reporting: one line, non-zero status
        # (2: the config is wrong, 1: the data are; see docs/failures.md).
        sys.exit(exit_code(exc))


#: The folder of the multirun this process runs (set by its first job), printed at the end.
_SWEEP_FOLDER: list[str] = []


def _remember_sweep_folder() -> None:
    from hydra.core.hydra_config import HydraConfig

    folder = os.path.abspath(str(HydraConfig.get().sweep.dir))
    if folder not in _SWEEP_FOLDER:
        _SWEEP_FOLDER.append(folder)


def _show_sweep_folder() -> None:
    """After a multirun: its folder, which ``syndr sweep collect`` reads (one line)."""
    while _SWEEP_FOLDER:
        folder = _SWEEP_FOLDER.pop(0)
        print(f"sweep folder: {folder} (summary: syndr sweep collect {folder})", flush=True)


def _config_errors_in_one_line() -> None:
    """Hydra's own config errors (an unknown key, a bad override, a missing config group
    option) as one line and exit status 2, like every other configuration error.

    Hydra reports them in several lines with status 1 through ``run_and_report``; only
    its compact (user-facing) exceptions are changed here, crashes keep their traceback.
    """
    import hydra._internal.utils as hydra_utils
    from hydra.errors import CompactHydraException, InstantiationException

    original = hydra_utils.run_and_report
    if getattr(original, "_syndr", False):
        return

    def reraise(exc: BaseException) -> Callable[[], Any]:
        def again() -> Any:
            raise exc

        return again

    def run_and_report(func: Callable[[], Any]) -> Any:
        try:
            return func()
        except CompactHydraException as exc:
            if isinstance(exc, InstantiationException):
                return original(reraise(exc))
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            text = " ".join(f"{exc}{cause}".split()).split(" Config search path:")[0]
            print(f"error: {text}", file=sys.stderr)
            sys.exit(2)
        except Exception as exc:  # anything else: Hydra's report (stripped traceback)
            return original(reraise(exc))

    run_and_report._syndr = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report


def main() -> None:
    """Find conf/, then hand over to Hydra (the task module is imported only to run it)."""
    import warnings

    if any(a in ("--version", "-V") for a in sys.argv[1:]):
        from syndr_lightning import __version__

        print(f"syndr-lightning {__version__}")
        return

    import hydra

    from syndr_lightning.config import SWEPT_KEYS_ENV, conf_dir, register_resolvers, swept_keys

    register_resolvers()
    from syndr_lightning.logs import quiet_third_party

    quiet_third_party()  # before Hydra: the Optuna sweeper logs while it starts
    # Sweep jobs are named after the keys this command line sweeps (config.run_name).
    os.environ[SWEPT_KEYS_ENV] = ",".join(swept_keys(sys.argv[1:]))

    # Lightning 2.6 calls a deprecated torch pytree API on every batch; not actionable here.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # An empty validation loader is what the paper protocol asks for (nothing held out).
    warnings.filterwarnings("ignore", message=r"Total length of .* across ranks is zero")

    try:
        config_path = str(conf_dir())
    except SyndrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    _config_errors_in_one_line()
    try:
        hydra.main(version_base="1.3", config_path=config_path, config_name="train")(run_task)()
    finally:
        _show_sweep_folder()


if __name__ == "__main__":
    main()
