"""Datasets: tfds access, in-memory arrays, the paper's preprocessing, streaming; `load` picks the path."""
