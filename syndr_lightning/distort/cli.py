"""``syndr distort``: generate a distorted set, or preview every type on one image."""

from __future__ import annotations

import argparse
from pathlib import Path

from syndr_lightning.utils.cliopts import add_progress_flag
from syndr_lightning.utils.errors import ConfigError, InputError, SyndrError, report_error
from syndr_lightning.utils.io import dumps_json


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,5, got {text!r}"
        ) from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distort`` subcommand."""
    p = subparsers.add_parser(
        "distort",
        help="apply KADID-10k's 25 distortion types x 5 levels (GenDist)",
        description=(
            "Write <ref>_<TT>_<LL>.png for every reference, type and level plus manifest.csv "
            "(resumable), or with --preview a labelled contact sheet of one image."
        ),
    )
    p.add_argument(
        "--refs", required=True, help="folder of reference images (or one image with --preview)"
    )
    p.add_argument("--out", help="output folder (generation mode)")
    p.add_argument(
        "--preview", metavar="OUT.png", help="write a contact sheet of --refs IMAGE instead"
    )
    p.add_argument(
        "--types", type=_int_list, default=None, help="types 1..25, e.g. 1,3,10 (default: all)"
    )
    p.add_argument(
        "--levels", type=_int_list, default=None, help="levels 1..5, e.g. 1,3,5 (default: all)"
    )
    p.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="CPU worker processes, 0 = in-process (default: one per usable core)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="torch device for the batched types (default: cuda if present)",
    )
    p.add_argument(
        "--dncnn", default=None, help="DnCNN state-dict file for type 15 (default: non-local means)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_progress_flag(p)
    p.set_defaults(func=run)


def _list_images(folder: Path) -> list[Path]:
    from syndr_lightning.utils.images import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise InputError(f"--refs must be a folder of images, got {folder} (not a folder)")
    files = sorted(
        f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def run(args: argparse.Namespace) -> int:
    """Execute ``syndr distort``; errors print one line on stderr (exit 2 usage, 1 input)."""
    from syndr_lightning.distort.spec import ALL_LEVELS, ALL_TYPES

    types = args.types or list(ALL_TYPES)
    levels = args.levels or list(ALL_LEVELS)
    try:
        bad = [t for t in types if t not in ALL_TYPES] + [v for v in levels if v not in ALL_LEVELS]
        if bad:
            raise ConfigError(
                f"--types must be 1..25 and --levels 1..5 (KADID numbering); got {bad}"
            )
        if args.preview:
            from syndr_lightning.distort.generator import load_rgb
            from syndr_lightning.distort.preview import render_preview

            ref = Path(args.refs)
            if not ref.is_file():
                raise InputError(f"--preview needs --refs to be one image file, got {ref}")
            render_preview(
                load_rgb(ref),
                args.preview,
                types=types,
                levels=levels,
                seed=args.seed,
                image_id=ref.stem,
            )
            print(f"wrote {args.preview}")
            return 0
        if not args.out:
            raise ConfigError("--out is required unless --preview is given")
        if Path(args.out).resolve() == Path(args.refs).resolve():
            raise ConfigError(
                f"--out {args.out} is the --refs folder; the distorted images and their "
                "manifest would be mixed with (and later read as) references - choose "
                "another --out folder"
            )
        from syndr_lightning.distort.generator import MANIFEST_NAME, default_workers, generate_rows

        rows = generate_rows(
            _list_images(Path(args.refs)),
            args.out,
            types=types,
            levels=levels,
            seed=args.seed,
            workers=default_workers() if args.workers is None else args.workers,
            progress=not args.no_progress,
            denoiser=args.dncnn,
            device=args.device,
        )
        manifest = Path(args.out) / MANIFEST_NAME
        if args.json:
            print(
                dumps_json({"images": len(rows), "out": str(args.out), "manifest": str(manifest)})
            )
        else:
            print(f"{len(rows)} images in {args.out} (manifest: {manifest})")
        return 0
    except SyndrError as exc:
        return report_error(exc, "syndr distort")
