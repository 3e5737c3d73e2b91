"""Logging of a training run: each line once, harmless third-party noise off, and a
readable record without a terminal (SLURM, nohup): one line per epoch, the results table
and the run folder in the job's log file (``<task>.log``) and on stdout.

:func:`quiet_third_party` runs before Hydra starts (``__main__``); :func:`route_lightning`
once the task runs (Hydra's handlers exist then); ``callbacks.epoch_log.EpochLog`` writes
the epoch lines; :func:`log_text` writes a block of text to the log file only. Standard
library only (``syndr-train --help`` stays instant).
"""

from __future__ import annotations

import logging
import re

__all__ = ["log_text", "quiet_third_party", "route_lightning", "show_run_folder"]

log = logging.getLogger("syndr_lightning")

#: Loggers whose INFO lines read like errors or repeat what we print ourselves.
_QUIET = (
    "faiss.loader",  # "Could not load library with AVX512 support" (then loads another)
    "hydra_plugins.hydra_optuna_sweeper",  # study name, storage, sampler, directions...
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper",
)
_LIGHTNING = ("lightning", "lightning.pytorch", "lightning.fabric")
#: Lightning's loggers that emit the lines :class:`_DropNoise` drops or trims (a logger's
#: filters see the records logged on it, whatever handler prints them later).
_LIGHTNING_NOISY = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.callbacks.model_summary",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
)
#: Lightning lines that are no news to the user (advertising; our own ModelSummary callback;
#: a full checkpoint, as every checkpoint we save is, said on each save without a flag).
_DROP = (
    "\N{ELECTRIC LIGHT BULB} Tip",
    "Trainer already configured with model summary",
    "`weights_only` was not set, defaulting to `False`",
)


def _without_zero_flops(msg: str) -> str:
    """The model summary without its FLOPs column and total when they are all zero (FLOPs
    are counted only with an example input, which our modules do not declare)."""
    lines = msg.splitlines()
    header = next((i for i, line in enumerate(lines) if line.rstrip().endswith("| FLOPs")), None)
    if header is not None:
        cut = lines[header].rstrip().rindex("| FLOPs")
        rows = [line for line in lines if line[:1].isdigit() and len(line) > cut and "|" in line]
        if all(line[cut:].strip(" |") in ("0", "") for line in rows):
            lines = [
                line[:cut].rstrip() if "|" in line or set(line) == {"-"} else line for line in lines
            ]
    zero_total = re.compile(r"^\s*(0\s+Total Flops|Total FLOPs: 0)\s*$", re.IGNORECASE)
    return "\n".join(line for line in lines if not zero_total.match(line))


class _DropNoise(logging.Filter):
    """Drops Lightning's advertising tips; a FLOPs column and total of zeros leave the
    model summary."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg.lstrip().startswith(_DROP) or "litlogger" in msg.lower():
            return False
        if "flops" in msg.lower():
            record.msg = _without_zero_flops(msg)
            record.args = None
        return True


_FILTER = _DropNoise()


def quiet_third_party() -> None:
    """Raise the noisy loggers to WARNING and filter Lightning's tip / zero FLOPs lines."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in (*_LIGHTNING, *_LIGHTNING_NOISY):
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)


def route_lightning() -> None:
    """Send Lightning's lines through the root handlers only (Hydra's console and log
    file), instead of its own stderr handler as well: each line once. A no-op when the
    root logger has no handler (a notebook), where Lightning's own handler is the only one.
    """
    quiet_third_party()
    root = logging.getLogger()
    if not root.handlers:
        return
    # Importing lightning adds its own console handler: import it now, so a task that
    # imports Lightning only later (the demo, reproduce's runs) does not print twice.
    import lightning  # noqa: F401

    for handler in root.handlers:  # filters of a logger do not see its children's records
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name in _LIGHTNING:
        lg = logging.getLogger(name)
        for handler in list(lg.handlers):
            if type(handler) is logging.StreamHandler:
                lg.removeHandler(handler)
        lg.propagate = True


def _file_handlers() -> list[logging.FileHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def log_text(text: str) -> None:
    """Write ``text`` (e.g. the printed results table) into the run's log file(s) only."""
    record = logging.LogRecord("syndr_lightning", logging.INFO, __file__, 0, text, None, None)
    for handler in _file_handlers():
        handler.handle(record)


def show_run_folder(path: str) -> None:
    """Print the run folder on stdout and write it into the log file (the last line)."""
    line = f"run folder: {path}"
    print(line, flush=True)
    log_text(line)
