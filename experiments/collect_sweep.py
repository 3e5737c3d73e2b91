#!/usr/bin/env python
"""Thin wrapper: the sweep table now ships as ``syndr sweep collect DIR``."""

from __future__ import annotations

import sys

from syndr_lightning.sweep.collect import headline_metrics, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
