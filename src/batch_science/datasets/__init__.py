"""Datasets through tensorflow-datasets; built-in builders register on import."""
