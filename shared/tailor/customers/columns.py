"""Small helpers the customer modules share: pyarrow columns read as NumPy arrays (codes, positions,
plain strings), and the rounding that keeps profiles and segments JSON as they are (no NaN)."""

from __future__ import annotations

import math

import numpy as np


def rounded(value: float, digits: int = 4) -> float | None:
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def strings(column) -> np.ndarray:
    """A pyarrow column as a NumPy array of str (nulls → "")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.fill_null(pc.cast(column, pa.string()), "")
    return np.asarray(column.to_numpy(zero_copy_only=False)).astype(str)


def index_in(values, value_set: np.ndarray) -> np.ndarray:
    """Position of each value in value_set (-1 when absent), computed by pyarrow's hash join."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(value_set) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    found = pc.index_in(pc.cast(values, pa.string()), value_set=pa.array(value_set, type=pa.string()))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def encode(column) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values as str) of a column; nulls get code -1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pc.cast(column, pa.string())
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    encoded = array.dictionary_encode()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    values = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False)).astype(str)
    return codes, values
