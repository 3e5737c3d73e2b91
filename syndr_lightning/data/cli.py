"""``syndr data``: ``check NAME ROOT [--json]``, ``split NAME ROOT OUT``, ``list``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from syndr_lightning.data import VAL_FRACTION
from syndr_lightning.utils.cliopts import add_progress_flag
from syndr_lightning.utils.errors import SyndrError, report_error
from syndr_lightning.utils.io import dumps_json


def _parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), VALUE read as JSON when it parses (lists, numbers)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``syndr data ...`` to the top-level parser."""
    parser = subparsers.add_parser("data", help="inspect and verify IQA datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="verify a dataset folder and print a summary",
        description="Verify dataset NAME at ROOT (for 'csv': the CSV file). Exit 0 when "
        "the data are usable, 1 otherwise (reason on stderr), 2 on a usage error.",
    )
    check.add_argument("name", metavar="NAME", help="dataset name, see 'syndr data list'")
    check.add_argument("root", metavar="ROOT", help="dataset folder (the CSV file for csv)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--full",
        action="store_true",
        default=None,
        help="decode every image fully (the default: finds truncated and corrupt files); "
        "given explicitly, the decoding progress is shown",
    )
    check.add_argument(
        "--headers-only",
        dest="full",
        action="store_false",
        help="only read image headers (fast, misses truncated files)",
    )
    check.add_argument(
        "--max-pixels", type=int, default=None, help="largest image (width x height) to accept"
    )
    add_progress_flag(check)
    check.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        type=_parse_option,
        metavar="KEY=VALUE",
        help="loader option, e.g. -o refs=cross74 -o types=livec -o score=MOS_zscore",
    )
    check.set_defaults(func=_check)
    split = sub.add_parser(
        "split",
        help="write a reproducible split file for a dataset",
        description="Split dataset NAME at ROOT (by reference when every image has one, "
        "else by image) and write the split file OUT (JSON, atomically).",
    )
    split.add_argument("name", metavar="NAME")
    split.add_argument("root", metavar="ROOT")
    split.add_argument("out", metavar="OUT", help="split file to write (.json)")
    split.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    split.add_argument("--test-fraction", type=float, default=0.0)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--by", choices=("auto", "reference", "image"), default="auto")
    split.add_argument("-o", "--option", action="append", default=[], type=_parse_option)
    split.add_argument("--json", action="store_true", help="print the split counts as JSON")
    split.set_defaults(func=_split)
    listing = sub.add_parser("list", help="list dataset names and published facts")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(func=_list)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check(args: argparse.Namespace) -> int:
    from syndr_lightning.data.datasets import check_dataset

    try:
        if args.max_pixels is not None:
            from syndr_lightning.utils.images import set_max_image_pixels

            set_max_image_pixels(args.max_pixels)
        report = check_dataset(
            args.name,
            args.root,
            full=args.full is not False,  # decoding is the default; --headers-only skips it
            progress=args.full is True and not args.no_progress,
            **dict(args.option),
        )
    except SyndrError as exc:
        return report_error(exc, "syndr data check")
    if args.json:
        print(dumps_json(report, indent=2))
    else:
        for key, value in report.items():
            if key != "problems":
                print(f"{key:>22}: {value}")
        for problem in report["problems"]:
            print(f"{'problem':>22}: {problem}")
    if not report["usable"]:
        print(f"syndr data check: {report.get('reason', 'not usable')}", file=sys.stderr)
        return 1
    return 0


def _split(args: argparse.Namespace) -> int:
    from syndr_lightning.data import splits
    from syndr_lightning.data.datasets import load_dataset

    try:
        manifest = load_dataset(args.name, args.root, **dict(args.option))
        by = args.by
        if by == "auto":
            by = "reference" if manifest["ref"].notna().all() else "image"
        fn = splits.split_by_reference if by == "reference" else splits.split_by_image
        marked = fn(manifest, args.val_fraction, args.seed, test_fraction=args.test_fraction)
        path = splits.save_split(marked, args.out)
    except SyndrError as exc:
        return report_error(exc, "syndr data split")
    counts = {str(k): int(v) for k, v in marked["split"].value_counts().items()}
    if args.json:
        print(dumps_json({"path": str(path), "by": by, "counts": counts}, indent=2))
        return 0
    print(f"wrote {path} (by {by}): " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


def _list(args: argparse.Namespace) -> int:
    from syndr_lightning.data.datasets import REGISTRY

    if getattr(args, "json", False):
        rows = []
        for name in sorted(REGISTRY):
            info = REGISTRY[name].info
            rows.append(
                {
                    "name": name,
                    "kind": info.kind,
                    "published_images": info.published_images,
                    "published_references": info.published_references,
                    "raw_range": list(info.raw_range) if info.raw_range else None,
                    "higher_is_better_raw": info.higher_is_better_raw,
                    "label_file": info.label_file,
                }
            )
        print(dumps_json(rows, indent=2))
        return 0
    for name in sorted(REGISTRY):
        info = REGISTRY[name].info
        direction = "higher" if info.higher_is_better_raw else "LOWER"
        print(
            f"{name:<10} {info.kind:<11} images={info.published_images} "
            f"refs={info.published_references} raw={info.raw_range} {direction} is better  "
            f"label={info.label_file}"
        )
    return 0
