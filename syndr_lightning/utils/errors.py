"""Errors a user can act on. Each message says what was expected, what was found, what to do."""

from __future__ import annotations


class SyndrError(Exception):
    """Base class of every user-facing error of syndr_lightning."""


class ConfigError(SyndrError, ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class DatasetError(SyndrError, ValueError):
    """A dataset on disk is missing or malformed; the message names the file and the fix."""


class InputError(SyndrError, ValueError):
    """Arrays or files handed to an algorithm or CLI are unusable (shape, NaN, empty...)."""
