"""The composition root: `build(settings, **overrides)` wires every service of one container from
its storage adapters; each Lambda container builds one `Container` on first use (lazily, so
importing a handler stays cheap) and routes reach it through the accessors below.

Tests build their own: `build(settings, store=FakeObjectStore(), state=FakeStateTable(),
invoke_training=FakeInvoker())` runs the same wiring on the in-memory fakes, and `use(container)`
makes it the one the handlers see. `reset()` forgets the current container (a test that changed
the environment).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from tailor.core import config
from tailor.core.config import Settings
from tailor.storage.ports import InvokerPort, ObjectStorePort, RecordStreamPort, StateTablePort


class Container:
    """The services of one process, each built once on first use, all sharing the same adapters."""

    def __init__(self, settings: Settings, *, store: ObjectStorePort | None = None,
                 state: StateTablePort | None = None, invoke_training: InvokerPort | None = None,
                 invoke_export: InvokerPort | None = None, stream: RecordStreamPort | None = None,
                 served_log: Any = None):
        self.settings = settings
        self._store, self._state, self._stream, self._served_log = store, state, stream, served_log
        self._invoke_training, self._invoke_export = invoke_training, invoke_export
        self._catalog: dict[str, Any] = {"keys": None, "items": {}}

    # ---- adapters ---------------------------------------------------------------------------
    @cached_property
    def object_store(self) -> Any:
        if self._store is not None:
            return self._store
        from tailor.storage.s3 import ObjectStore

        return ObjectStore(self.settings.data_bucket)

    @cached_property
    def state_table(self) -> Any:
        if self._state is not None:
            return self._state
        from tailor.storage.dynamo import StateTable

        return StateTable(self.settings.state_table)

    @cached_property
    def event_stream(self) -> RecordStreamPort | None:
        """Where API events go (None: straight to Parquet, as files do)."""
        if self._stream is not None or not self.settings.event_stream:
            return self._stream
        from tailor.storage.stream import RecordStream

        return RecordStream(self.settings.event_stream)

    def _invoker(self, given: InvokerPort | None, function_name: str | None) -> InvokerPort | None:
        if given is not None:
            return given
        from tailor.storage.invoke import LambdaInvoker

        return LambdaInvoker(function_name) if function_name else None

    # ---- services ---------------------------------------------------------------------------
    @cached_property
    def ingest_service(self) -> Any:
        from tailor.customers.service import ProfileStore
        from tailor.datasets.ingest import IngestService
        from tailor.recommend.recent import RecentEvents

        # Stored events and attributes update the customers' profiles and recent events at once
        # (not only at training): the next recommendation already reflects them.
        profiles, recent = ProfileStore(self.state_table), RecentEvents(self.state_table)

        def on_stored(dataset: str, columns: dict[str, list]) -> None:
            profiles.record(dataset, columns)
            recent.record(dataset, columns)
            self.trending.record(dataset, columns)
            if dataset == "interactions":
                self.attribution.attribute(columns)

        return IngestService(self.object_store, self.state_table, max_upload_bytes=self.settings.max_upload_bytes,
                             on_stored=on_stored, stream=self.event_stream)

    @cached_property
    def model_registry(self) -> Any:
        from tailor.models.registry import ModelRegistry

        return ModelRegistry(self.object_store, self.state_table)

    @cached_property
    def training_jobs(self) -> Any:
        from tailor.datasets.ingest import stored_at
        from tailor.datasets.store import has_rows
        from tailor.jobs.service import TrainingJobs

        return TrainingJobs(self.state_table, self._invoker(self._invoke_training, self.settings.train_function_name),
                            has_data=lambda dataset: has_rows(self.object_store, dataset),
                            stored_at=lambda dataset: stored_at(self.state_table, dataset))

    def _model_cache(self, model: str, loader: Any) -> Any:
        from tailor.models.cache import ModelCache

        return ModelCache(self.model_registry, model, loader, ttl=self.settings.model_cache_seconds)

    @cached_property
    def sentiment_service(self) -> Any:
        from tailor.sentiment.service import SentimentService, load_scorer

        return SentimentService(self.object_store, self.state_table, self._model_cache("sentiment", load_scorer))

    @cached_property
    def recommend_service(self) -> Any:
        from tailor.recommend.recent import RecentEvents
        from tailor.recommend.service import RecommendService, load_model

        return RecommendService(self._model_cache("recommender", load_model), new_items=self.catalog_item,
                                recent=RecentEvents(self.state_table).latest, trending=self.trending,
                                promotions=self.promotions.active, served_log=self.served_log,
                                experiment=self.experiments.running)

    @cached_property
    def served_log(self) -> Any:
        """Where serving records each answer: stdout, i.e. the function's log (attribution.served)."""
        if self._served_log is not None:
            return self._served_log
        from tailor.attribution.served import StdoutLog

        return StdoutLog()

    @cached_property
    def attribution(self) -> Any:
        from tailor.attribution.ledger import AttributionLedger

        return AttributionLedger(self.state_table)

    @cached_property
    def experiments(self) -> Any:
        """The experiments store: one per container, so serving's ~30 s cache of the running one is shared."""
        from tailor.experiments.store import ExperimentStore

        return ExperimentStore(self.state_table,
                               version_exists=lambda v: self.model_registry.version("recommender", v) is not None)

    @cached_property
    def promotions(self) -> Any:
        """The promotions store: one per container, so serving's ~30 s cache of the active ones is
        shared. Its model cache loads the recommender only to check a new promotion's items."""
        from tailor.promotions.store import PromotionStore
        from tailor.recommend.service import load_model

        return PromotionStore(self.state_table, self._model_cache("recommender", load_model), self.catalog_items)

    @cached_property
    def trending(self) -> Any:
        """The trending counters: one per container, so its ~30 s cache of the answers is shared."""
        from tailor.trending.counters import Trending

        return Trending(self.state_table)

    @cached_property
    def profile_service(self) -> Any:
        from tailor.customers.service import ProfileService, ProfileStore
        from tailor.recommend.service import load_model

        return ProfileService(ProfileStore(self.state_table), self._model_cache("recommender", load_model),
                              self.object_store, self.state_table,
                              invoke_export=self._invoker(self._invoke_export, self.settings.export_function_name),
                              new_items=self.catalog_item)

    @cached_property
    def erase_service(self) -> Any:
        from tailor.privacy.erase import EraseService

        return EraseService(self.object_store, self.state_table, self.model_registry)

    def catalog_item(self, item_id: str) -> dict | None:
        """An item of the stored catalog, or None. The catalog is re-read only when the set of
        stored items files changed (one S3 listing per lookup of an item the model lacks)."""
        from tailor.datasets.store import dataset_keys, read_dataset

        stored = dataset_keys(self.object_store, "items")
        if stored != self._catalog["keys"]:
            table = read_dataset(self.object_store, "items")
            rows = table.to_pylist() if table is not None else []
            self._catalog.update(keys=stored, items={row["item_id"]: row for row in rows})
        return self._catalog["items"].get(item_id)

    def catalog_items(self, item_ids: Any) -> set[str]:
        """Which of the ids the stored catalog holds, from one refresh (see `catalog_item`)."""
        self.catalog_item("")  # re-reads the catalog if its files changed
        return {item for item in map(str, item_ids) if item in self._catalog["items"]}


def build(settings: Settings | None = None, **overrides: Any) -> Container:
    """A container for `settings` (default: the environment's), with adapters replaced by
    `overrides` (store, state, invoke_training, invoke_export, stream)."""
    return Container(settings or config.settings(), **overrides)


_current: Container | None = None


def container() -> Container:
    global _current
    if _current is None:
        _current = build()
    return _current


def use(built: Container) -> Container:
    """Make `built` the container the handlers see (tests)."""
    global _current
    _current = built
    return built


def reset() -> None:
    """Forget the current container and the cached settings (tests that change the environment)."""
    global _current
    config.settings.cache_clear()
    _current = None


# What handlers and routes call: the current container's services.
def object_store() -> Any:
    return container().object_store


def state_table() -> Any:
    return container().state_table


def ingest_service() -> Any:
    return container().ingest_service


def model_registry() -> Any:
    return container().model_registry


def training_jobs() -> Any:
    return container().training_jobs


def sentiment_service() -> Any:
    return container().sentiment_service


def recommend_service() -> Any:
    return container().recommend_service


def profile_service() -> Any:
    return container().profile_service


def trending() -> Any:
    return container().trending


def erase_service() -> Any:
    return container().erase_service


def compact_events() -> dict:
    """Merge the event buffer into the month files (CompactSchedule; `datasets.buffer.compact`)."""
    from tailor.datasets.buffer import compact

    return compact(object_store(), state_table())


def record_served(event: dict) -> dict:
    """A CloudWatch Logs delivery of served recommendations (ServedRecommendationsFilter)."""
    from tailor.attribution.served import from_log_event

    records, skipped = from_log_event(event)
    return {**container().attribution.record_served(records), "log_events_skipped": skipped}


def experiments() -> Any:
    return container().experiments


def attribution() -> Any:
    return container().attribution


def catalog_item(item_id: str) -> dict | None:
    return container().catalog_item(item_id)


def promotions() -> Any:
    return container().promotions
