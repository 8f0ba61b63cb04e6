"""Configuration from the environment variables declared in template.yaml, checked once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class ConfigurationError(RuntimeError):
    pass


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set; it is declared in template.yaml "
            "(run the function through `sam` or `make local`, or export it for tests)"
        )
    return value


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    stage: str
    data_bucket: str
    state_table: str
    train_function_name: str | None
    export_function_name: str | None
    max_upload_bytes: int
    model_cache_seconds: float
    event_stream: str | None = None  # the Firehose delivery stream of API events (datasets.buffer)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            stage=os.environ.get("STAGE", "dev"),
            data_bucket=_required("DATA_BUCKET"),
            state_table=_required("STATE_TABLE"),
            train_function_name=os.environ.get("TRAIN_FUNCTION_NAME") or None,
            export_function_name=os.environ.get("EXPORT_FUNCTION_NAME") or None,
            max_upload_bytes=int(_number("MAX_UPLOAD_MB", 200) * 1024 * 1024),
            model_cache_seconds=_number("MODEL_CACHE_SECONDS", 60),
            event_stream=os.environ.get("EVENT_STREAM") or None,
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
