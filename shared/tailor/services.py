"""Services built once per container (lazily, so importing a handler stays cheap)."""

from __future__ import annotations

from functools import lru_cache

from .config import settings
from .storage import ObjectStore, StateTable


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    return ObjectStore(settings().data_bucket)


@lru_cache(maxsize=1)
def state_table() -> StateTable:
    return StateTable(settings().state_table)


@lru_cache(maxsize=1)
def ingest_service():
    from .ingest import IngestService

    return IngestService(object_store(), state_table(), max_upload_bytes=settings().max_upload_bytes)


@lru_cache(maxsize=1)
def model_registry():
    from .registry import ModelRegistry

    return ModelRegistry(object_store(), state_table())


@lru_cache(maxsize=1)
def training_jobs():
    from .datasets import dataset_keys
    from .jobs import LambdaInvoker, TrainingJobs

    name = settings().train_function_name
    return TrainingJobs(state_table(), LambdaInvoker(name) if name else None,
                        has_data=lambda dataset: bool(dataset_keys(object_store(), dataset)))


def reset() -> None:
    """Forget cached services (tests that change the environment between cases)."""
    from . import config

    config.settings.cache_clear()
    for fn in (object_store, state_table, ingest_service, model_registry, training_jobs, sentiment_service):
        fn.cache_clear()


@lru_cache(maxsize=1)
def sentiment_service():
    from .registry import ModelCache
    from .sentiment_service import SentimentService, load_scorer

    cache = ModelCache(model_registry(), "sentiment", load_scorer, ttl=settings().model_cache_seconds)
    return SentimentService(object_store(), state_table(), cache)
