"""Benchmarks (not tests): `make bench`. Running `python -m bench.<name>` from the repo root works
without PYTHONPATH: the layer's package (`shared/tailor`) is put on the path here, as the Makefile
and conftest.py do."""

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parents[1] / "shared")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)
