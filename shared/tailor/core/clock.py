"""Time and ids: ISO timestamps and sortable version ids."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime, timespec: str = "seconds") -> str:
    """`moment` in UTC as ISO-8601 with a `Z`, e.g. 2026-12-08T04:00:00Z (`timespec` as `isoformat`)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """What `iso` wrote (a `Z` or an offset) back as a datetime; ValueError for anything else."""
    return datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))


def now_iso() -> str:
    return iso(datetime.now(UTC))


def new_version() -> str:
    # Sortable by time; the suffix keeps two trainings within one second apart.
    import secrets

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
