"""Objects a config names by import path, "package.module:attribute" (a Keras model factory, a
tensorflow-datasets builder class): imported from the config file's folder first, then from
PYTHONPATH and the installed packages.

The folder is the config's `config_dir` (recorded by the pipeline, rules/common.smk, so that every
job, also one started on another node by SLURM, looks in the same place).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path


@contextlib.contextmanager
def _searched_first(search_dir: str | None):
    """sys.path with search_dir in front for the duration (if it is not there already)."""
    added = bool(search_dir) and search_dir not in sys.path
    if added:
        sys.path.insert(0, search_dir)
    try:
        yield
    finally:
        if added:
            sys.path.remove(search_dir)


def import_object(path: str, search_dir: str | None = None):
    """The attribute `path` ("package.module:attribute") names; ValueError saying what is missing."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"'{path}': not an import path 'package.module:attribute'")
    try:
        with _searched_first(search_dir):
            module = importlib.import_module(module_name)
    except ImportError as error:
        where = f"{search_dir} or PYTHONPATH" if search_dir else "PYTHONPATH"
        raise ValueError(f"'{path}': module '{module_name}' not found in {where} ({error})") from None
    if not hasattr(module, attribute):
        raise ValueError(f"'{path}': module '{module_name}' ({module.__file__}) has no '{attribute}'")
    return getattr(module, attribute)


@functools.cache
def source_digest(path: str, search_dir: str | None = None) -> str:
    """A digest of the source file of the module `path` ("package.module:attribute" or a file path
    relative to search_dir), so that results made from it follow its edits; "missing" if not found.
    The module is located, not imported."""
    module_name, colon, _ = path.partition(":")
    if not colon:
        file = Path(search_dir or ".", path)
    else:
        try:
            with _searched_first(search_dir):
                spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        file = Path(spec.origin) if spec and spec.origin and spec.has_location else None
    if file is None or not file.is_file():
        return "missing"
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16]
