"""pytest imports test modules by basename (rootdir-relative, no packages), so two test files with
the same name in different folders stop the whole run at collection. Catch it here with a clear
message instead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique_across_folders():
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
    assert names, "no test files found"
    assert [n for n, c in names.items() if c > 1] == []
