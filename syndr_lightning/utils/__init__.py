"""Small shared helpers (I/O, errors, reproducibility)."""
