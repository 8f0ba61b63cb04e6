"""Benchmarks (not tests): `make bench`, or `python -m bench.<name>` from the repo root in the
project's venv (`tailor` is installed there from `shared/`, editable)."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save_results(name: str, results: dict, markdown: str, folder: Path = RESULTS) -> None:
    """Write ``<folder>/<name>.json`` and ``<name>.md`` (default ``bench/results``: what the
    README quotes) and print the Markdown."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (folder / f"{name}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    print(markdown, flush=True)
