"""Model artifacts on a local disk: a handful of named files, written and read as one unit.

Stored models live in S3 (`tailor.models.registry`); these helpers serve tests, benchmarks and tools
that keep an artifact in a folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping


def write_files(directory: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


def read_files(directory: str | os.PathLike, names: Iterable[str]) -> dict[str, bytes]:
    files = {}
    for name in names:
        with open(os.path.join(directory, name), "rb") as handle:
            files[name] = handle.read()
    return files
