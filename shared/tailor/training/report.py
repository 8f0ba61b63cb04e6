"""Evaluation reports: JSON for machines, Markdown for people, PNG charts where a picture helps."""

from __future__ import annotations

import io
import json


def json_bytes(value) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def png(draw) -> bytes:
    """Render `draw(figure)` with matplotlib's file-only backend and return PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=100, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
