"""Test-wide setup: the layer (`shared/`) and the repo root are importable, as on Lambda."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
for path in (ROOT / "shared", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
