"""Durable table I/O: nothing already computed is lost or half-written by a killed job."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd


def atomic_write(path: str | Path, write) -> None:
    """Call write(tmp_path), fsync it, then rename over `path`: readers see all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync(path: str | Path) -> None:
    """Flush a file, or a folder's entries (new names, renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# pandas reads this schema-metadata key back as DataFrame.attrs (pd.read_parquet(path).attrs).
PANDAS_ATTRS_KEY = "PANDAS_ATTRS"


def write_parquet(frame: pd.DataFrame, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Atomic parquet write with provenance key/values in the file's schema metadata, and the same
    provenance as the frame's attrs when pandas reads it (JSON values decoded: config, versions, seed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        attrs = json.dumps({k: _decoded(str(v)) for k, v in metadata.items()}, sort_keys=True)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}, PANDAS_ATTRS_KEY: attrs}
        )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _decoded(value: str):
    try:
        return json.loads(value)
    except ValueError:  # a plain string such as the config hash
        return value


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def read_parquet_metadata(path: str | Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    skip = (b"pandas", PANDAS_ATTRS_KEY.encode())  # pandas' own keys, and the attrs copy of these
    return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(skip)}


def why_unreadable(path: str | Path) -> str | None:
    """Why an existing parquet or CSV table cannot be a result (cut short, not a table), else None.

    Cheap: a parquet file's footer, a CSV's end (written whole by write_csv, so ending a line)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        return None
    try:
        if path.suffix == ".parquet":
            pq.read_metadata(path)
            return None
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return "empty"
            f.seek(-1, os.SEEK_END)
            return None if f.read(1) == b"\n" else "cut short: no line end at its end"
    except Exception as error:  # pyarrow's errors vary by damage: any failure to read is damage
        return " ".join(str(error).split())[:120]


def remove_unreadable(paths) -> list[tuple[str, str]]:
    """Delete each table that why_unreadable finds damaged; return (path, why) of each removed."""
    removed = []
    for path in paths:
        why = why_unreadable(path)
        if why:
            Path(path).unlink()
            removed.append((str(path), why))
    return removed
