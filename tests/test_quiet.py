"""Third-party noise kept from the user: a FLOPs column of zeros, W&B's deprecation and
"has no effect" warnings; ``syndr --help`` names every export format."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from syndr_lightning.logs import _DropNoise

SUMMARY = """
  | Name         | Type       | Params | Mode  | FLOPs
------------------------------------------------------------
0 | backbone     | Backbone   | 3.4 M  | train | 0
1 | head         | Linear     | 1.3 K  | train | 0
------------------------------------------------------------
3.4 M     Trainable params
13.489    Total estimated model params size (MB)
0         Total Flops"""


def _filtered(msg: str) -> str:
    record = logging.LogRecord("lightning.pytorch", logging.INFO, "", 0, msg, None, None)
    assert _DropNoise().filter(record)
    return record.getMessage()


def test_model_summary_loses_a_flops_column_of_zeros() -> None:
    text = _filtered(SUMMARY)
    assert "FLOP" not in text.upper(), text
    assert "0 | backbone     | Backbone   | 3.4 M  | train" in text.splitlines()
    assert "Total estimated model params size" in text
    counted = SUMMARY.replace("| train | 0\n1", "| train | 12 M\n1").replace("0    ", "12 M ")
    assert _filtered(counted) == counted  # real counts stay


class _Run:
    def __init__(self) -> None:
        self.summary: dict[str, Any] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def define_metric(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))


class WandbLogger:  # the name is what tracking.wandb_runs looks for
    def __init__(self) -> None:
        self.experiment = _Run()


def test_no_deprecated_wandb_summary_rule() -> None:
    """The dashboard's summary rules at the start of fit: none is W&B's deprecated
    ``copy`` (the test numbers are logged once: the default summary is their value)."""
    from types import SimpleNamespace

    from syndr_lightning.callbacks.dashboard import DashboardCallback

    logger = WandbLogger()
    trainer = SimpleNamespace(
        is_global_zero=True,
        loggers=[logger],
        checkpoint_callbacks=[SimpleNamespace(monitor="val/srcc")],
        datamodule=SimpleNamespace(test_names=["livec", "koniq"]),
    )
    DashboardCallback().on_fit_start(trainer, None)  # type: ignore[arg-type]
    rules = [kw.get("summary") for _, kw in logger.experiment.calls]
    assert "copy" not in rules and "max" in rules


def test_wandb_logger_without_the_anonymous_setting(tmp_path: Any) -> None:
    pytest.importorskip("wandb", reason="wandb is in the 'cluster' extra")
    from syndr_lightning.build import build_loggers
    from syndr_lightning.compose import compose_config

    cfg = compose_config(["logger=wandb", f"paths.log_dir={tmp_path}"], output_dir=tmp_path)
    (logger,) = [lg for lg in build_loggers(cfg) if type(lg).__name__ == "WandbLogger"]
    assert "anonymous" not in logger._wandb_init  # wandb warns on anonymous=None


def test_syndr_help_names_every_export_format(capsys: pytest.CaptureFixture[str]) -> None:
    from syndr_lightning.cli import main as syndr_main
    from syndr_lightning.inference.export import FORMATS

    with pytest.raises(SystemExit):
        syndr_main(["--help"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("export"))
    for fmt in ("TorchScript", "ONNX", "torch.export"):
        assert fmt in line, line
    assert len(FORMATS) == 3


def test_lightning_notes_dropped_where_they_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Filtered on the emitting loggers, so no handler (Hydra's, pytest's) sees them."""
    from syndr_lightning.logs import quiet_third_party

    quiet_third_party()
    notes = {
        "lightning.pytorch.trainer.connectors.checkpoint_connector": (
            "`weights_only` was not set, defaulting to `False`."
        ),
        "lightning.pytorch.utilities.rank_zero": "\N{ELECTRIC LIGHT BULB} Tip: try litlogger",
    }
    with caplog.at_level(logging.INFO):
        for name, text in notes.items():
            logging.getLogger(name).info(text)
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]


def test_lightning_imported_after_routing_prints_each_line_once() -> None:
    """A task that imports Lightning only after the entry point routed its lines (the demo,
    reproduce's runs) printed every Lightning line twice: once through Lightning's own
    console handler, once through the root (Hydra's) handler."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, format='root: %(message)s', level=logging.INFO)\n"
        "from syndr_lightning.logs import route_lightning\n"
        "assert 'lightning' not in sys.modules\n"
        "route_lightning()\n"
        "from lightning.pytorch.utilities.rank_zero import rank_zero_info\n"
        "rank_zero_info('hello once')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "hello once" in ln]
    assert lines == ["root: hello once"], done.stdout + done.stderr
