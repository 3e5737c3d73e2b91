"""Generated data for tests, benchmarks, the default config and notebooks (no downloads).

``fixtures``: tiny datasets in each published dataset's official layout
(``write_fixture``); ``synthetic``: procedurally generated IQA sets and their ``synthetic``
loader; ``features``: KADID-like feature matrices for the reshaping algorithms
(``clustered_features``) and cluster-shaped ones for scale benchmarks; ``kadid``: the
KADID-10k folder layout that fixtures and the demo write.
"""
