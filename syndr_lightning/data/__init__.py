"""Datasets, manifests, splits, caching and the Lightning DataModules."""

#: Fraction of the training references held out for validation when a config says
#: nothing (``data.val_fraction``); the one place this default is written in Python.
VAL_FRACTION = 0.2
