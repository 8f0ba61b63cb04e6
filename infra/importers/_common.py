"""What every importer shares: decoding line by line, rejected rows, writing the output."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

REJECTS_FILE = "rejects.csv"


@dataclass(frozen=True)
class Reject:
    """A source row that was not imported, and why."""

    source: str  # file name
    line: int  # 1-based physical line in the source file
    reason: str
    raw: str  # the row as read (possibly cut short), so a person can fix it

    def __str__(self) -> str:
        return f"{self.source} line {self.line}: {self.reason}"


def decoded_lines(path: Path, encoding: str, rejects: list[Reject]) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without its line ending) for every line that decodes.

    A line that does not decode becomes a Reject instead of stopping the whole import.
    The empty string after a final newline is not a line.
    """
    raw_lines = path.read_bytes().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            yield number, raw.decode(encoding)
        except UnicodeDecodeError as error:
            rejects.append(Reject(path.name, number, f"not valid {encoding}: {error.reason} at byte {error.start}",
                                  raw.decode(encoding, errors="replace")[:200]))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path


def write_rejects(out_dir: Path, rejects: list[Reject]) -> Path | None:
    """Write rejects.csv beside the output, or remove a stale one when nothing was rejected."""
    path = out_dir / REJECTS_FILE
    if not rejects:
        path.unlink(missing_ok=True)
        return None
    return write_csv(pd.DataFrame([asdict(reject) for reject in rejects], columns=["source", "line", "reason", "raw"]),
                     path)


def result(kind: str, out_dir: Path, tables: dict[str, pd.DataFrame], rejects: list[Reject]) -> dict:
    """Write the tables and return what was written, in one shape for every importer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rejects = sorted(rejects, key=lambda reject: (reject.source, reject.line))
    files = {name: write_csv(frame, out_dir / f"{name}.csv") for name, frame in tables.items()}
    return {
        "format": kind,
        "out_dir": out_dir,
        "files": files,
        "counts": {name: len(frame) for name, frame in tables.items()},
        "rejected": len(rejects),
        "rejects": rejects,
        "rejects_file": write_rejects(out_dir, rejects),
    }
