"""``syndr umap``: UMAP maps of a checkpoint's features on one or more datasets.

    syndr umap --ckpt run/checkpoints/last.ckpt --data kadid10k data/kadid10k --out figs/
    syndr umap --ckpt last.ckpt --data kadid10k data/kadid10k --data livec data/livec --out figs/

One map per dataset, coloured by label, prediction, reference and distortion type (the
paper's Fig. 1); with several datasets also a joint map coloured by dataset (Fig. 3).
With ``--candidates DIR --upsampled DDCUP_DIR`` (a folder ``<cache>/ddcup/<key>`` built
by DDCUp) also the training references vs the selected / rejected candidates (Fig. 9).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from syndr_lightning.utils.cliopts import add_progress_flag
from syndr_lightning.utils.errors import ConfigError, InputError, SyndrError, report_error
from syndr_lightning.utils.io import dumps_json

__all__ = ["register", "run"]


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _selection_figure(args: argparse.Namespace, name: str, root: str, out: Path) -> Path:
    """Fig. 9 from a DDCUp build folder (meta.json) and the candidate folder."""
    from syndr_lightning.data.datasets import get_loader
    from syndr_lightning.data.upsample import UpsampleSpec, list_images
    from syndr_lightning.viz.maps import reference_selection_map

    meta_file = Path(args.upsampled) / "meta.json"
    if not meta_file.is_file():
        raise InputError(
            f"--upsampled {args.upsampled!r} has no meta.json; pass a folder "
            "<upsample_cache_dir>/ddcup/<key> written by DDCUp"
        )
    meta = json.loads(meta_file.read_text())
    spec = UpsampleSpec.from_flat(meta.get("spec") or {})
    loader = get_loader(name)(root, **dict(args.option or []))
    references = getattr(loader, "references", None)
    if references is None:
        raise InputError(f"dataset {name!r} has no reference images; Fig. 9 needs kadid10k")
    refs = [p for _, p in sorted(references().items())]
    cands = list_images(args.candidates)
    selected = set(meta.get("selected") or [])
    names = sorted(cands)
    return reference_selection_map(
        refs,
        [cands[n] for n in names],
        [n in selected for n in names],
        spec,
        out / "ddcup_reference_selection.png",
        seed=args.seed,
        n_epochs=args.n_epochs,
    )


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr umap``; returns the exit code."""
    from syndr_lightning.data.datasets import load_dataset
    from syndr_lightning.inference.api import load_model
    from syndr_lightning.viz.maps import feature_maps

    out = Path(args.out)
    try:
        if bool(args.candidates) != bool(args.upsampled):
            raise ConfigError("--candidates and --upsampled go together (both or neither)")
        options = dict(args.option or [])
        manifests = {}
        for name, root in args.data:
            label = name if name not in manifests else f"{name}_{len(manifests)}"
            manifests[label] = load_dataset(name, root, **options)
        scorer = load_model(
            args.ckpt,
            crops=args.crops,
            crop_mode="center" if args.crops == 1 else "random",
            crop_size=args.crop_size,
            device=args.device,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        figures = feature_maps(
            scorer,
            manifests,
            out,
            max_samples=args.max_images,
            seed=args.seed,
            n_epochs=args.n_epochs,
            progress=not args.no_progress,
        )
        if args.upsampled:
            name, root = args.data[0]
            figures["ddcup/reference_selection"] = _selection_figure(args, name, root, out)
    except SyndrError as exc:
        return report_error(exc, "syndr umap")
    if args.json:
        print(dumps_json({key: str(path) for key, path in figures.items()}, indent=2))
        return 0
    for key, path in figures.items():
        print(f"{key}: {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``umap`` subcommand."""
    p = subparsers.add_parser(
        "umap",
        help="UMAP figures of a checkpoint's features (paper Figs. 1, 3, 9)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) written by training")
    p.add_argument(
        "--data",
        nargs=2,
        action="append",
        required=True,
        metavar=("NAME", "ROOT"),
        help="dataset loader name and root (as load_dataset); repeat for a joint map",
    )
    p.add_argument("--out", required=True, help="folder for the PNGs and the embedding CSV")
    p.add_argument(
        "--option",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="loader option for every --data (e.g. types=[1,3,10] refs=cross74)",
    )
    p.add_argument("--max-images", type=int, default=2000, help="seeded subsample per dataset")
    p.add_argument("--crops", type=int, default=1, help="1 = centre crop; >1 random crops")
    p.add_argument("--crop-size", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--n-epochs", type=int, default=None, help="UMAP epochs (default: UMAP's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--candidates", default=None, help="DDCUp candidate folder (Fig. 9)")
    p.add_argument("--upsampled", default=None, help="DDCUp build folder with meta.json")
    p.add_argument("--json", action="store_true", help="print the figure paths as JSON")
    add_progress_flag(p)
    p.set_defaults(func=run)
