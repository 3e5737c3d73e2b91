#!/usr/bin/env python
"""How far the authors' label scaling moves KADID-10k labels and DRCDown's T_q band.

    python experiments/label_scaling.py /datasets/kadid10k          # the real dmos.csv
    python experiments/label_scaling.py --fixture                    # the 81-ref test fixture

For every DGQA subset (livec, koniq10k, bid, pipal1..6, all) compares the two scalings of
``data.label_scaling``: ``dataset`` (DMOS min-max scaled to 0..10 over the whole
dmos.csv) and ``authors`` (over the 81 references x the subset's types, as the reference
code does). Prints the DMOS width of the ``T_q`` band under each (``T_q`` is a label gap
on the 0..10 scale), their ratio, and the mean / max change of the subset's 0..10 labels.
The per-epoch rescaling over DRCDown's kept subset is not simulated here: it changes the
labels only when thinning removes one of the subset's extreme DMOS values.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.paper_protocol import label_scaling_report
from syndr_lightning.data.splits import DGQA_SUBSETS
from syndr_lightning.utils.errors import SyndrError

SUBSETS = ("livec", "koniq10k", "bid", *(f"pipal{i}" for i in range(1, 7)), "all")


def report(root: str | Path, T_q: float = 1.0) -> pd.DataFrame:
    """One row per DGQA subset (see the module docstring)."""
    every = load_dataset("kadid10k", str(root))
    rows = []
    for name in SUBSETS:
        rows.append({"subset": name, **label_scaling_report(every, DGQA_SUBSETS[name], T_q)})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table for a KADID-10k root (or the fixture); return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", help="a KADID-10k folder (dmos.csv + images/)")
    parser.add_argument("--fixture", action="store_true", help="measure the 81-ref fixture")
    parser.add_argument("--T_q", type=float, default=1.0, help="DRCDown's label gap (1.0)")
    args = parser.parse_args(argv)
    if not args.root and not args.fixture:
        parser.error("give a KADID-10k root or --fixture")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = args.root
            if args.fixture:
                from syndr_lightning.fakedata.fixtures import write_fixture

                root = write_fixture("kadid10k", Path(tmp) / "kadid", ref_ids=range(81), distinct=1)
            table = report(root, args.T_q)
    except SyndrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cols = ["subset", "raw_min_subset", "raw_max_subset", "T_q_dmos_dataset", "T_q_dmos_authors",
            "T_q_band_ratio", "label_shift_mean", "label_shift_max"]  # fmt: skip
    print(f"whole dmos.csv: DMOS {table['raw_min_file'][0]:.4f}..{table['raw_max_file'][0]:.4f}")
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
