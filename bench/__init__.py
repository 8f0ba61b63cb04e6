"""Benchmarks (not tests): `make bench`. Running `python -m bench.<name>` from the repo root works
without PYTHONPATH: the layer's package (`shared/tailor`) is put on the path here, as the Makefile
and conftest.py do."""

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parents[1] / "shared")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)

RESULTS = Path(__file__).resolve().parent / "results"


def save_results(name: str, results: dict, markdown: str, folder: Path = RESULTS) -> None:
    """Write ``<folder>/<name>.json`` and ``<name>.md`` (default ``bench/results``: what the
    README quotes) and print the Markdown."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (folder / f"{name}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    print(markdown, flush=True)
