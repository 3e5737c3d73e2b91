#!/usr/bin/env python
"""Thin wrapper: the intra-dataset medians now ship as ``syndr sweep intra DIR``."""

from __future__ import annotations

import sys

from syndr_lightning.sweep.intra import *  # noqa: F403  (table, protocol, markdown, main)
from syndr_lightning.sweep.intra import main

if __name__ == "__main__":
    sys.exit(main())
