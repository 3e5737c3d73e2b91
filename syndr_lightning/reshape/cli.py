"""``syndr reshape down|up``: DRCDown and DDCUp on precomputed feature arrays (.npy)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndr_lightning.reshape.params import BACKENDS, RULES, WEIGHTS, DDCUpParams, DRCDownParams
from syndr_lightning.utils.errors import ConfigError, SyndrError, report_error
from syndr_lightning.utils.io import atomic_open, dumps_json, read_npy

if TYPE_CHECKING:  # numpy is imported when a command runs: `--help` stays instant
    import numpy as np


def _load(path: str, what: str) -> np.ndarray:
    import numpy as np

    from syndr_lightning.utils.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what}: file {p} not found; pass an existing .npy file")
    arr = read_npy(p, what)
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{what}: {p} holds an .npz archive, expected a single .npy array")
    return arr


def _check_out(path: str) -> Path:
    from syndr_lightning.utils.errors import ConfigError

    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out: {out} is a directory; pass a file path ending in .npz")
    if out.suffix != ".npz":
        raise ConfigError(f"--out: expected a path ending in .npz, found {out}")
    return out


def _check_label_range(labels: np.ndarray, what: str) -> None:
    """Labels must be on the 0..10 scale: T_q and DDCUp's labels assume it."""
    import numpy as np

    from syndr_lightning.utils.errors import InputError
    from syndr_lightning.utils.labels import check_labels

    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.number) or arr.size == 0:
        return  # the algorithms explain wrong dtypes and shapes themselves
    check_labels(arr, what, error=InputError)  # all-NaN, infinite, constant, unrankable
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < -1e-6 or finite.max() > 10 + 1e-6):
        raise InputError(
            f"{what}: labels span {finite.min():.4g}..{finite.max():.4g} but must lie in 0..10 "
            "(the scale T_q and the pseudo-labels assume, higher = better); rescale them, "
            "e.g. 10 * (y - y.min()) / (y.max() - y.min())"
        )


def _save(out: Path, **arrays: Any) -> None:
    import numpy as np

    with atomic_open(out, "wb") as fh:
        np.savez(fh, **arrays)


def _run_down(args: argparse.Namespace) -> int:
    import numpy as np

    from syndr_lightning.reshape.drcdown import drcdown

    out = _check_out(args.out)
    feats = _load(args.features, "--features")
    labels = _load(args.labels, "--labels")
    _check_label_range(labels, "--labels")
    try:
        params = DRCDownParams(
            T_f=args.t_f, T_q=args.t_q, T_u=args.t_u, rule=args.rule, backend=args.backend
        )
    except ConfigError as exc:  # name the flags of this command, not the config keys
        text = str(exc)
        for key in ("T_f", "T_q", "T_u"):
            text = text.replace(f"reshape.{key}=", f"--{key.lower().replace('_', '-')}=")
        raise ConfigError(text) from None
    res = drcdown(feats, labels, params, seed=args.seed, epoch=args.epoch, precision=args.precision)
    _save(out, kept=res.kept.astype(np.int64), cluster=res.cluster.astype(np.int64))
    print(dumps_json({"out": str(out), **res.summary()}, indent=2))
    return 0


def _run_up(args: argparse.Namespace) -> int:
    import numpy as np

    from syndr_lightning.reshape.ddcup import ddcup_pseudo_labels, ddcup_select

    out = _check_out(args.out)
    train = _load(args.train_refs, "--train-refs")
    cands = _load(args.candidates, "--candidates")
    labels = _load(args.labels, "--labels")
    _check_label_range(labels, "--labels")
    k: int | str = "all" if args.k == "all" else _int_or_error(args.k)
    try:  # ranges checked as the config's are (exit 2), before any work
        DDCUpParams(k=k, T_ref=args.t_ref, weights=args.weights, temperature=args.temperature)
    except ConfigError as exc:  # name the flags of this command, not the config keys
        text = str(exc)
        for key, flag in (("k", "k"), ("T_ref", "t-ref"), ("temperature", "temperature")):
            text = text.replace(f"reshape.{key}=", f"--{flag}=")
        raise ConfigError(text) from None
    selected = ddcup_select(train, cands)
    if selected.size:
        new_labels = ddcup_pseudo_labels(
            train,
            cands[selected],
            labels,
            k=k,
            t_ref=args.t_ref,
            weights=args.weights,
            temperature=args.temperature,
        )
    else:
        # Validate the labels and arguments even when nothing is selected.
        ddcup_pseudo_labels(train, cands[:1], labels, k, args.t_ref, args.weights, args.temperature)
        new_labels = np.zeros((0, *labels.shape[1:]), dtype=np.float32)
    _save(out, selected=selected.astype(np.int64), labels=new_labels.astype(np.float32))
    print(
        dumps_json(
            {"out": str(out), "n_candidates": int(cands.shape[0]), "n_selected": int(selected.size)}
        )
    )
    return 0


def _int_or_error(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--k: expected a positive integer or 'all', found {text!r}") from None


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except SyndrError as exc:
            return report_error(exc, "syndr reshape")

    return run


def register(subparsers: Any) -> None:
    """Add ``reshape down`` and ``reshape up`` to the ``syndr`` console script."""
    p = subparsers.add_parser("reshape", help="DDCUp / DRCDown on precomputed features")
    sub = p.add_subparsers(dest="reshape_command", metavar="{down,up}", required=True)

    down = sub.add_parser("down", help="DRCDown: thin dense clusters of redundant samples")
    down.add_argument("--features", required=True, help="[N, d] features .npy")
    down.add_argument("--labels", required=True, help="[N] labels .npy (0..10 scale)")
    down.add_argument("--out", required=True, help="output .npz with kept and cluster")
    d = DRCDownParams
    down.add_argument("--t-f", type=float, default=d.T_f, help="cosine-distance threshold T_f")
    down.add_argument("--t-q", type=float, default=d.T_q, help="label-difference threshold T_q")
    down.add_argument("--t-u", type=int, default=d.T_u, help="cluster-size threshold T_u")
    down.add_argument("--rule", choices=RULES, default=d.rule)
    down.add_argument("--seed", type=int, default=0)
    down.add_argument("--epoch", type=int, default=0)
    down.add_argument("--backend", choices=BACKENDS, default="auto")
    down.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="screening precision (speed only; pairs are decided in float64)",
    )
    down.set_defaults(func=_guard(_run_down))

    up = sub.add_parser("up", help="DDCUp: select new references and pseudo-label them")
    up.add_argument("--train-refs", required=True, help="[n_ref, d] training-ref features .npy")
    up.add_argument("--candidates", required=True, help="[n_cand, d] candidate features .npy")
    up.add_argument("--labels", required=True, help="[n_ref, n_type, n_level] labels .npy")
    up.add_argument("--out", required=True, help="output .npz with selected and labels")
    u = DDCUpParams
    up.add_argument("--k", default=str(u.k), help="neighbours per new ref (int or 'all')")
    up.add_argument("--t-ref", type=float, default=u.T_ref, help="relative distance window T_ref")
    up.add_argument("--weights", choices=WEIGHTS, default=u.weights)
    up.add_argument("--temperature", type=float, default=u.temperature, help="softmin temperature")
    up.set_defaults(func=_guard(_run_up))
