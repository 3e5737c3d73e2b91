"""``syndr reproduce``: every table of the paper from one command.

    syndr reproduce --tables 1,2 --seeds 3 --plan                 # every run, its cost
    syndr reproduce --tables all --seeds 3 paths.data_dir=/datasets trainer=gpu
    syndr reproduce ... hydra/launcher=slurm hydra.launcher.partition=gpu
    syndr reproduce --tables all --seeds 3 --report               # report only

Without ``--plan`` / ``--report`` the pending runs are trained (one Hydra multirun), then
the report is written. The same command again skips every finished run (resume).
Only argparse is imported here; the work is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from syndr_lightning.utils.errors import exit_code


def _default_out() -> str:
    import os

    from syndr_lightning.config import default_root

    base = os.environ.get("SYNDR_LOG_DIR") or str(
        Path(os.environ.get("SYNDR_ROOT") or default_root()) / "logs"
    )
    return str(Path(base) / "reproduce")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``reproduce`` to the ``syndr`` parser."""
    p = subparsers.add_parser(
        "reproduce",
        help="plan, run (resumably) and report every table of the paper",
        description=__doc__.split("\n\n")[0]
        + " Positional KEY=VALUE arguments are Hydra overrides given to every run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tables", default="all", help="tables to reproduce: 1,2,5-7 or all (default)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per run (default 3)")
    p.add_argument("--out", default=None, help="campaign folder (default: <log_dir>/reproduce)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--plan", action="store_true", help="print every run and the cost; run nothing"
    )
    mode.add_argument("--report", action="store_true", help="write the report only; run nothing")
    p.add_argument(
        "--epoch-minutes",
        type=float,
        default=None,
        help="GPU minutes per training epoch for the cost estimate (default: what finished "
        "runs recorded)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="keep the cells matching table<T>/<row>/<target> (e.g. 'table5/kall/*'); repeatable",
    )
    p.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="BACKBONE=FILE",
        help="a local weights file for a backbone wherever the tables use it, e.g. "
        "resnet50=/w/resnet50.pth, clip_vit_b_16=/w/open_clip_pytorch_model.bin; repeatable",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every run (KEY=VALUE)")
    p.set_defaults(func=run)


def _apply_weights(runs: list, weights: list[str]) -> None:
    """Point every run's ``model.weights`` / ``reshape.encoder_weights`` of a backbone at
    the local file given for it."""
    from syndr_lightning.models.backbones import BACKBONES
    from syndr_lightning.utils.errors import ConfigError

    files: dict[str, str] = {}
    for item in weights:
        name, sep, file = item.partition("=")
        if not sep or name not in BACKBONES or not Path(file).expanduser().is_file():
            raise ConfigError(
                f"--weights {item!r}: expected BACKBONE=FILE with BACKBONE one of "
                f"{', '.join(BACKBONES)} and FILE an existing weights file"
            )
        files[name] = str(Path(file).expanduser().resolve())
    if not files:
        return
    for run in runs:
        over = list(run.overrides)
        values = dict(o.split("=", 1) for o in over)
        backbone = values.get("model.backbone", "resnet50")
        encoder = values.get("reshape.encoder", "resnet50")
        extra = []
        if backbone in files:
            extra.append(f"model.weights={files[backbone]}")
        if encoder in files and run.expect.get("ddcup"):
            extra.append(f"reshape.encoder_weights={files[encoder]}")
        keys = {e.split("=", 1)[0] for e in extra}
        run.overrides = tuple([o for o in over if o.split("=", 1)[0] not in keys] + extra)


def run(args: argparse.Namespace) -> int:
    """The command: plan, run or report."""
    from syndr_lightning.paper.plan import campaign, epochs_of, format_plan
    from syndr_lightning.paper.report import write_report
    from syndr_lightning.paper.runner import launch
    from syndr_lightning.paper.tables import parse_tables
    from syndr_lightning.utils.errors import ConfigError, SyndrError
    from syndr_lightning.utils.interrupt import catch_interrupt

    try:
        tables = parse_tables(args.tables)
        if args.seeds < 1:
            raise ConfigError(f"--seeds {args.seeds}: expected a number of seeds >= 1")
        bad = [o for o in args.overrides if "=" not in o]
        if bad:
            raise ConfigError(
                f"{bad[0]!r} is not a Hydra override; expected KEY=VALUE (e.g. "
                f"paths.data_dir=/datasets trainer=gpu)"
            )
        root = Path(args.out or _default_out()).expanduser().resolve()
        runs, cells = campaign(tables, args.seeds, args.only)
        if not cells:
            raise ConfigError(f"--only {args.only} keeps no cell of tables {', '.join(tables)}")
        _apply_weights(runs, args.weights)
        if args.plan:
            text = format_plan(
                root, tables, runs, cells, epochs_of(args.overrides), args.epoch_minutes
            )
            sys.stdout.write(text)
            return 0
        if not args.report:
            pending = [r for r in runs if r.status(root) != "done"]
            print(
                f"reproduce: {len(runs) - len(pending)} of {len(runs)} runs done; running "
                f"{len(pending)} in {root}",
                file=sys.stderr,
            )
            with catch_interrupt() as interrupt:
                code = launch(root, pending, args.overrides)
            if interrupt.pressed:  # one line; the report waits for the next command
                left = len([r for r in runs if r.status(root) != "done"])
                print(
                    f"reproduce: interrupted (Ctrl-C); {len(runs) - left} of {len(runs)} runs "
                    f"done; the same command resumes",
                    file=sys.stderr,
                )
                return 130
            if code:
                print(
                    f"reproduce: the multirun stopped (exit {code}); the same command resumes",
                    file=sys.stderr,
                )
        # every cell of the chosen tables (runs shared with --only's cells included)
        _, report_cells = campaign(tables, args.seeds)
        md, csv, text = write_report(root, tables, report_cells, args.seeds)
        sys.stdout.write(text)
        print(f"wrote {md} and {csv}", file=sys.stderr)
        return 0 if args.report or not [r for r in runs if r.status(root) != "done"] else 1
    except SyndrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
