#!/usr/bin/env python
"""Put one multirun's results beside the paper's published numbers (Markdown + CSV).

    python experiments/compare_paper.py logs/syn2auth/multiruns/<date>_<time> [--out DIR]

A thin wrapper of ``syndr_lightning.paper.compare`` (the paper's numbers ship in the package:
``syndr_lightning/paper/paper_results.json``). Every table at once, planned, run, resumed
and reported: ``syndr reproduce`` (README, "Reproducing each table").
"""

from __future__ import annotations

import sys

from syndr_lightning.paper.compare import *  # noqa: F403
from syndr_lightning.paper.compare import main

if __name__ == "__main__":
    sys.exit(main())
