"""What an error may put in the logs: its type and where it happened, never its message.

Exception messages quote data: pyarrow and pydantic name the value that failed to convert, a
KeyError names the key, a parser shows the offending line - a review, an attribute, an e-mail.
CloudWatch logs are kept for LogRetentionDays and read by operators, so they carry ids, counts
and code locations only; the message itself goes to the caller or the job record that needs it.
"""

from __future__ import annotations

import traceback
from pathlib import Path

MAX_FRAMES = 15


def exception_summary(exc: BaseException) -> dict:
    """`{"error_type", "stack"}`: the exception's class (and its causes'), and the frames it came
    through as `file.py:line in function` (innermost last). No message, no local values."""
    types, stack = [], []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the chain, outermost first
        seen.add(id(current))
        types.append(type(current).__name__)
        current = current.__cause__ or current.__context__
    for frame in traceback.extract_tb(exc.__traceback__)[-MAX_FRAMES:]:
        stack.append(f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}")
    return {"error_type": " <- ".join(types), "stack": stack}
