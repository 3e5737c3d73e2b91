"""The offline demo: a proxy dataset from shipped photographs and the run_demo task."""
