from syndr_lightning.distort.generator import generate  # noqa: F401
