"""Every column of fits.csv is documented in docs/fits.md, and the document names no column that is not written."""

import re
from pathlib import Path

from batch_science.analysis.fit import fit_workloads
from synthetic import synthetic_trials

DOC = Path(__file__).parents[2] / "docs" / "fits.md"


def documented_columns() -> set[str]:
    """The backticked names in the first cell of each table row of docs/fits.md."""
    names = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_fits_csv_column_is_documented():
    fits, _ = fit_workloads(synthetic_trials(3, batch_sizes=[8, 64, 512, 4096]), n_bootstrap=3)
    assert set(fits.columns) == documented_columns()
