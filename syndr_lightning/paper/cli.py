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
from typing import Any

from syndr_lightning.utils.errors import report_error


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
    mode.add_argument(
        "--released",
        default=None,
        metavar="DIR",
        help="evaluate the authors' released models found under DIR on their cells' test "
        "sets (datasets under paths.data_dir) and report them as their own section; no training",
    )
    p.add_argument(
        "--released-map",
        action="append",
        default=[],
        metavar="FILE=TARGET",
        help="the target of a released model whose folder/file name does not say it; repeatable",
    )
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


#: The most seeds a campaign may ask for (the paper uses 3; the intra-dataset protocol 10).
MAX_SEEDS = 100

#: Overrides a campaign sets per run itself: the same value for every run would be wrong.
_PER_RUN = {
    "seed": "the campaign trains seeds 0..N-1 (--seeds N) in their own folders; a seed "
    "override would train that one seed in every seed folder",
    "ckpt_path": "every run resumes from its own checkpoint by itself; one ckpt_path "
    "would send one run's checkpoint to every run of the campaign",
    "hydra.sweep.dir": "the campaign folder is --out (the runs would go elsewhere and stay "
    "pending); pass --out instead",
    "hydra.sweep.subdir": "each run's folder is table<T>/<row>/<target>/seed<S> under --out",
    "hydra.run.dir": "each run's folder is table<T>/<row>/<target>/seed<S> under --out",
    "paths.output_dir": "each run's folder is table<T>/<row>/<target>/seed<S> under --out",
}


def check_overrides(overrides: list[str]) -> None:
    """Refuse what is not a Hydra override and what a campaign sets per run (ConfigError)."""
    from syndr_lightning.utils.errors import ConfigError

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(
            f"{bad[0]!r} is not a Hydra override; expected KEY=VALUE (e.g. "
            f"paths.data_dir=/datasets trainer=gpu)"
        )
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key in _PER_RUN:
            raise ConfigError(f"{o!r} is refused under `syndr reproduce`: {_PER_RUN[key]}")


def check_campaign_numbers(args: argparse.Namespace) -> None:
    """Range-check the numeric arguments before any work (ConfigError)."""
    import math

    from syndr_lightning.utils.errors import ConfigError

    if not 1 <= args.seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds {args.seeds}: expected a number of seeds in 1..{MAX_SEEDS}")
    minutes = args.epoch_minutes
    if minutes is not None and not (math.isfinite(minutes) and 0 < minutes <= 7 * 24 * 60):
        raise ConfigError(
            f"--epoch-minutes {minutes}: expected GPU minutes per epoch, > 0 and at most a "
            "week (10080)"
        )


def _check_weights_file(item: str, file: Path) -> None:
    """The file must hold a state dict of tensors (read with weights_only=True)."""
    from syndr_lightning.models.backbones import _extract_state_dict, _read_file
    from syndr_lightning.utils.errors import ConfigError

    try:
        _extract_state_dict(_read_file(file), file)
    except ConfigError as exc:
        raise ConfigError(f"--weights {item!r}: {exc}") from None


def _apply_weights(runs: list, weights: list[str]) -> None:
    """Point every run's ``model.weights`` / ``reshape.encoder_weights`` of a backbone at
    the local file given for it (each file checked to hold a state dict first)."""
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
        _check_weights_file(item, Path(files[name]))
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


def _evaluate_released(args: argparse.Namespace, root: Path, tables: list[str]) -> None:
    """``--released DIR``: evaluate the authors' models on the test sets under
    ``paths.data_dir`` (the override, ``$SYNDR_DATA_DIR`` or ``<root>/data``)."""
    import os

    from syndr_lightning.config import default_root
    from syndr_lightning.paper.released import evaluate_released

    data_dir = next(
        (o.split("=", 1)[1] for o in args.overrides if o.lstrip("+").startswith("paths.data_dir=")),
        os.environ.get("SYNDR_DATA_DIR") or str(default_root() / "data"),
    )
    records = evaluate_released(
        args.released, root, data_dir, mapping=args.released_map, tables=tables
    )
    print(
        f"reproduce: evaluated {len(records)} released cells in {root / 'released'}",
        file=sys.stderr,
    )


def _campaign_lock(root: Path) -> Any:
    """The campaign folder's lock (``utils.locking.BuildLock``): one training process per
    ``--out`` at a time."""
    from syndr_lightning.utils.locking import BuildLock

    return BuildLock(root / ".reproduce" / "campaign.lock")


def run(args: argparse.Namespace) -> int:
    """The command: plan, run or report."""
    from syndr_lightning.paper.plan import campaign, epochs_of, format_plan
    from syndr_lightning.paper.report import write_report
    from syndr_lightning.paper.runner import quoted
    from syndr_lightning.paper.tables import parse_tables
    from syndr_lightning.utils.errors import ConfigError, SyndrError
    from syndr_lightning.utils.interrupt import catch_interrupt

    try:
        tables = parse_tables(args.tables)
        check_campaign_numbers(args)
        check_overrides(args.overrides)
        root = Path(args.out or _default_out()).expanduser().resolve()
        quoted(str(root))  # a path Hydra can be given (any characters but quotes/backslashes)
        runs, cells = campaign(tables, args.seeds, args.only)
        if not cells:
            raise ConfigError(f"--only {args.only} keeps no cell of tables {', '.join(tables)}")
        _apply_weights(runs, args.weights)
        if args.plan:
            text = format_plan(
                root, tables, runs, cells, epochs_of(args.overrides), args.epoch_minutes
            )
            from syndr_lightning.paper.plan_protocol import format_differences

            sys.stdout.write(text + format_differences(cells, args.overrides))
            return 0
        if args.released:
            _evaluate_released(args, root, tables)
        elif not args.report:
            lock = _campaign_lock(root)
            with lock.held(wait=False) as got:
                if not got:
                    raise SyndrError(
                        f"another `syndr reproduce` ({lock.holder()}) is training the campaign "
                        f"in {root}; wait for it to end (or pass another --out)"
                    )
                with catch_interrupt() as interrupt:
                    code = _train(root, runs, args.overrides)
            if interrupt.pressed:  # one line; the report waits for the next command
                left = len([r for r in runs if r.status(root) != "done"])
                print(
                    f"reproduce: interrupted (Ctrl-C); {len(runs) - left} of {len(runs)} runs "
                    f"done; the same command resumes",
                    file=sys.stderr,
                )
                return 130
            if code:
                return code
        # every cell of the chosen tables (runs shared with --only's cells included)
        _, report_cells = campaign(tables, args.seeds)
        md, csv, text = write_report(root, tables, report_cells, args.seeds)
        sys.stdout.write(text)
        print(f"wrote {md} and {csv}", file=sys.stderr)
        if args.report or args.released:
            return 0
        left = [r for r in runs if r.status(root) != "done"]
        for r in left:
            print(f"reproduce: {r.folder} is {r.status(root)}", file=sys.stderr)
        if left:
            print(
                f"reproduce: {len(left)} run(s) not done; the same command retries them",
                file=sys.stderr,
            )
        return 1 if left else 0
    except SyndrError as exc:
        return report_error(exc, "syndr reproduce")


def _train(root: Path, runs: list, overrides: list[str]) -> int:
    """Train the campaign's unfinished runs (one multirun); 0, or the exit status that
    ends the command (143 preempted, 2 a configuration error)."""
    from syndr_lightning.paper.runner import launch
    from syndr_lightning.utils.errors import EXIT_PREEMPTED, InputError

    states = {r.id: r.status(root) for r in runs}
    refused = [r for r in runs if states[r.id] == "refused"]
    if refused:
        from syndr_lightning.paper.plan import run_metrics

        more = f" ({len(refused) - 1} more: see --plan)" if len(refused) > 1 else ""
        raise InputError(f"{run_metrics(root, refused[0])[1]}{more}")
    pending = [r for r in runs if states[r.id] != "done"]
    print(
        f"reproduce: {len(runs) - len(pending)} of {len(runs)} runs done; running "
        f"{len(pending)} in {root}",
        file=sys.stderr,
    )
    code = launch(root, pending, overrides)
    if code == EXIT_PREEMPTED:
        print(
            "reproduce: preempted (exit 143); the same command resumes every unfinished run "
            "from its own checkpoint",
            file=sys.stderr,
        )
        return code
    if code == 2:
        print(
            "reproduce: stopped on a configuration error (exit 2); fix it and rerun",
            file=sys.stderr,
        )
        return code
    if code:
        print(
            f"reproduce: the multirun stopped (exit {code}); the same command resumes",
            file=sys.stderr,
        )
    return 0
