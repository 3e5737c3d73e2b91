"""Lightning callbacks (DRCDown per epoch, figures). Import the submodules directly.

Kept import-light on purpose: configs name callbacks by dotted path
(``syndr_lightning.callbacks.drcdown.DRCDownCallback``), so importing this package must
not pull in heavy optional dependencies.
"""
