"""Services built once per container (lazily, so importing a handler stays cheap)."""

from __future__ import annotations

from functools import lru_cache

from tailor.core.config import settings
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    return ObjectStore(settings().data_bucket)


@lru_cache(maxsize=1)
def state_table() -> StateTable:
    return StateTable(settings().state_table)


@lru_cache(maxsize=1)
def ingest_service():
    from tailor.customers.service import ProfileStore
    from tailor.datasets.ingest import IngestService

    # Stored events and attributes update the customers' profiles at once (not only at training).
    return IngestService(object_store(), state_table(), max_upload_bytes=settings().max_upload_bytes,
                         on_stored=ProfileStore(state_table()).record)


@lru_cache(maxsize=1)
def model_registry():
    from tailor.models.registry import ModelRegistry

    return ModelRegistry(object_store(), state_table())


@lru_cache(maxsize=1)
def training_jobs():
    from tailor.datasets.store import dataset_keys
    from tailor.jobs.service import TrainingJobs
    from tailor.storage.invoke import LambdaInvoker

    name = settings().train_function_name
    return TrainingJobs(state_table(), LambdaInvoker(name) if name else None,
                        has_data=lambda dataset: bool(dataset_keys(object_store(), dataset)))


def reset() -> None:
    """Forget cached services (tests that change the environment between cases)."""
    from tailor.core import config

    config.settings.cache_clear()
    for fn in (object_store, state_table, ingest_service, model_registry, training_jobs, sentiment_service,
               recommend_service, profile_service, erase_service):
        fn.cache_clear()
    _catalog.update(keys=None, items={})


@lru_cache(maxsize=1)
def sentiment_service():
    from tailor.models.cache import ModelCache
    from tailor.sentiment.service import SentimentService, load_scorer

    cache = ModelCache(model_registry(), "sentiment", load_scorer, ttl=settings().model_cache_seconds)
    return SentimentService(object_store(), state_table(), cache)


@lru_cache(maxsize=1)
def recommend_service():
    from tailor.models.cache import ModelCache
    from tailor.recommend.service import RecommendService, load_model

    cache = ModelCache(model_registry(), "recommender", load_model, ttl=settings().model_cache_seconds)
    return RecommendService(cache, new_items=catalog_item)


@lru_cache(maxsize=1)
def profile_service():
    from tailor.customers.service import ProfileService, ProfileStore
    from tailor.models.cache import ModelCache
    from tailor.recommend.service import load_model
    from tailor.storage.invoke import LambdaInvoker

    cache = ModelCache(model_registry(), "recommender", load_model, ttl=settings().model_cache_seconds)
    name = settings().export_function_name
    return ProfileService(ProfileStore(state_table()), cache, object_store(), state_table(),
                          invoke_export=LambdaInvoker(name) if name else None, new_items=catalog_item)


@lru_cache(maxsize=1)
def erase_service():
    from tailor.privacy.erase import EraseService

    return EraseService(object_store(), state_table(), model_registry())


_catalog: dict = {"keys": None, "items": {}}


def catalog_item(item_id: str) -> dict | None:
    """An item of the stored catalog, or None. The catalog is re-read only when the set of
    stored items files changed (one S3 listing per lookup of an item the model lacks)."""
    from tailor.datasets.store import dataset_keys, read_dataset

    keys = dataset_keys(object_store(), "items")
    if keys != _catalog["keys"]:
        table = read_dataset(object_store(), "items")
        rows = table.to_pylist() if table is not None else []
        _catalog.update(keys=keys, items={row["item_id"]: row for row in rows})
    return _catalog["items"].get(item_id)
