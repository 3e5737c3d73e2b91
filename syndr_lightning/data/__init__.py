"""Datasets, manifests, splits, caching and the Lightning DataModules."""
