"""Ships the repository's top-level ``conf/`` inside the wheel as ``syndr_lightning/conf``
(and the paper's numbers, ``syndr_lightning/paper/paper_results.json``).

Everything else is in pyproject.toml; setuptools' ``package_dir`` maps the extra package
(the configs stay where Hydra users expect them: ``conf/`` at the repository root).
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["syndr_lightning", "syndr_lightning.*"]),
        "syndr_lightning.conf",
    ],
    package_dir={"syndr_lightning.conf": "conf"},
    package_data={
        "syndr_lightning.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"],
        "syndr_lightning.paper": ["paper_results.json"],  # the paper's numbers
    },
)
