"""Prediction (``load_model(path).score(image)``, ``syndr predict``) and export."""

from syndr_lightning.inference.api import Scorer, collect_images, load_model, to_rgb_array

__all__ = ["Scorer", "collect_images", "load_model", "to_rgb_array"]
