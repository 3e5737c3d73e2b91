"""``syndr-train [+experiment=NAME] [key=value ...]``: the Hydra entry point.

Also ``syndr train ...`` and ``python -m syndr_lightning ...``. The config folder is
``syndr_lightning.config.conf_dir()`` (the wheel's packaged configs or the repository's
``conf/``), the primary config ``train``. The config key ``task`` (a dotted path, default
``syndr_lightning.train.train``) names the function that receives the composed config.
User mistakes (SyndrError) print one line on stderr and exit with status 2 (config and
usage errors, found before anything is built) or 1 (data errors found later).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndr_lightning.utils.errors import ConfigError, SyndrError, report_error

if TYPE_CHECKING:
    from omegaconf import DictConfig

DEFAULT_TASK = "syndr_lightning.train.train"
#: Set once the task runs: an OSError before it is Hydra's, creating the run folder.
_TASK_STARTED: list[bool] = []


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
    _TASK_STARTED.append(True)
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
        from syndr_lightning.utils.errors import missing_dependency

        print(missing_dependency(exc, "syndr-train"), file=sys.stderr)
        sys.exit(1)
    except SyndrError as exc:
        _record_status(cfg, exc)
        # SystemExit is not caught by Hydra's error reporting: one line, non-zero status
        # (2: the config is wrong, 1: the data are; see docs/failures.md).
        sys.exit(report_error(exc))
    except Exception as exc:  # a crash: recorded as failed, reported by Hydra
        _record_status(cfg, exc)
        raise


def _record_status(cfg: DictConfig, exc: BaseException) -> None:
    """``run_status.json`` (diverged / preempted / failed) in the run folder, if any."""
    try:
        folder = cfg.paths.output_dir
    except Exception:  # no run folder (a config error before one exists): nothing to record
        return
    if not folder:  # e.g. a check that failed before Hydra set the run folder
        return
    from syndr_lightning.run_status import write_run_status

    with contextlib.suppress(OSError):  # a full or read-only disk: the error line says it
        write_run_status(str(folder), exc)


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
            sys.exit(report_error(ConfigError(text)))
        except OSError as exc:  # creating the run folder (Hydra's own mkdir), before the task
            if _TASK_STARTED or exc.errno not in _FULL_ERRNOS + _REFUSED_ERRNOS:
                return original(reraise(exc))
            _exit_for_run_folder(exc, Path(str(exc.filename or "")))
        except Exception as exc:  # anything else: Hydra's report (stripped traceback)
            return original(reraise(exc))

    run_and_report._syndr = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report
    _run_folder_errors_in_one_line()


#: errno values of a run folder that cannot be written: full (exit 1) or refused (exit 2).
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_REFUSED_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _run_folder_errors_in_one_line() -> None:
    """A run folder Hydra cannot create or write its ``.hydra/`` files into (full disk,
    read-only or forbidden folder): one line with the table's code (1 full, 2 refused),
    and no empty files left behind (``.hydra/*.yaml``, the job log)."""
    import hydra.core.utils as hydra_core_utils

    original = hydra_core_utils._save_config
    if getattr(original, "_syndr", False):
        return

    def save_config(cfg: Any, filename: str, output_dir: Path) -> None:
        try:
            original(cfg, filename, output_dir)
        except OSError as exc:
            _remove_empty_run_files(Path(output_dir))
            _exit_for_run_folder(exc, Path(output_dir).parent)

    save_config._syndr = True  # type: ignore[attr-defined]
    hydra_core_utils._save_config = save_config


def _remove_empty_run_files(hydra_dir: Path) -> None:
    """Delete the empty files a failed start left (``.hydra/*.yaml``, ``*.log``) and the
    folders that are then empty; never a file with content."""
    run_dir = hydra_dir.parent
    for pattern, folder in (("*.yaml", hydra_dir), ("*.log", run_dir)):
        for f in folder.glob(pattern):
            with contextlib.suppress(OSError):
                if f.is_file() and f.stat().st_size == 0:
                    f.unlink()
    for folder in (hydra_dir, run_dir):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


def _exit_for_run_folder(exc: OSError, run_dir: Path) -> None:
    """Print why the run folder cannot be written (one line) and exit; other errors re-raise."""
    from syndr_lightning.utils.errors import DiskFullError

    where = str(exc.filename or run_dir)
    fix = "(paths.log_dir=... or hydra.run.dir=...)"
    error: SyndrError
    if exc.errno in _FULL_ERRNOS:
        error = DiskFullError(
            f"no space left to write the run folder {where!r} ({exc.strerror}); free space "
            f"there or put runs elsewhere {fix}"
        )
    elif exc.errno in _REFUSED_ERRNOS:
        error = ConfigError(
            f"cannot write the run folder {where!r} ({exc.strerror}); choose a writable place {fix}"
        )
    else:
        raise exc
    sys.exit(report_error(error))


def main() -> None:
    """Find conf/, then hand over to Hydra (the task module is imported only to run it)."""
    import warnings

    if any(a in ("--version", "-V") for a in sys.argv[1:]):
        from syndr_lightning import __version__

        print(f"syndr-lightning {__version__}")
        return

    from syndr_lightning.utils.images import max_image_pixels

    try:  # a malformed $SYNDR_MAX_IMAGE_PIXELS: refused before any work
        max_image_pixels()
    except ConfigError as exc:
        sys.exit(report_error(exc))
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
        sys.exit(report_error(exc))
    _config_errors_in_one_line()
    _TASK_STARTED.clear()
    try:
        hydra.main(version_base="1.3", config_path=config_path, config_name="train")(run_task)()
    finally:
        _show_sweep_folder()


if __name__ == "__main__":
    main()
