"""Sweep tools shipped with the package: ``syndr sweep collect`` (paper-style tables of a
multirun) and ``syndr sweep intra`` (intra-dataset medians)."""
