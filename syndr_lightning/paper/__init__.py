"""The paper's ten tables: their numbers, the runs behind every cell, and the report.

* ``paper_results.json``: every published number of Tables 1-10 (packaged).
* :mod:`~syndr_lightning.paper.tables`: what each table's rows and columns are, as runs
  (experiment, overrides, targets): the one place the reproduction is defined.
* :mod:`~syndr_lightning.paper.plan`: the campaign's runs for chosen tables and seeds, one
  deterministic folder per run, the cost estimate.
* :mod:`~syndr_lightning.paper.runner`: runs the pending ones through one Hydra multirun
  (local or SLURM), skipping finished runs (a rerun resumes).
* :mod:`~syndr_lightning.paper.report`: every table laid out as in the paper, ours beside
  the paper's number (Markdown + CSV).
* :mod:`~syndr_lightning.paper.compare`: one multirun beside the paper
  (``experiments/compare_paper.py``).

``syndr reproduce`` (``paper/cli.py``) is the command.
"""
