"""Domain services against the in-memory storage fakes (tests/fakes): no moto, and no network —
every test here runs with socket connections refused, so a service that reached for AWS fails."""

from __future__ import annotations

import socket

import pytest

from tailor.core.errors import Invalid, NotFound, Unavailable
from tailor.jobs import service as jobs_service
from tailor.jobs.service import TrainingJobs
from tailor.models.cache import ModelCache
from tailor.models.promotion import promotion_decision
from tailor.models.registry import ModelRegistry
from tailor.sentiment.service import SentimentService, parse_request
from tailor.storage import keys
from tests.fakes import FakeInvoker, FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)


def test_the_network_guard_refuses_connections():
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("127.0.0.1", 9))


# ---- training jobs ---------------------------------------------------------------------------
def jobs(datasets=("interactions", "reviews"), invoker=None):
    state = FakeStateTable()
    return TrainingJobs(state, invoker if invoker is not None else FakeInvoker(), lambda name: name in datasets), state


def test_a_job_with_models_omitted_trains_every_model_that_has_data():
    service, _ = jobs(datasets=("reviews",))
    job = service.start(None)
    assert job["models"] == ["sentiment"] and job["status"] == "QUEUED"
    assert service.invoke.payloads == [{"job_id": job["job_id"], "models": ["sentiment"]}]
    both, _ = jobs()
    assert both.start(None)["models"] == ["recommender", "sentiment"]


def test_a_job_is_refused_with_a_reason_for_unknown_models_and_missing_data():
    service, state = jobs(datasets=())
    with pytest.raises(Invalid, match="unknown model"):
        service.start(["ranker"])
    with pytest.raises(Invalid, match="needs data in the interactions dataset"):
        service.start(["recommender"])
    with pytest.raises(Invalid, match="nothing to train"):
        service.start(None)
    assert state.query(keys.JOB_INDEX_PK) == []


def test_a_training_function_that_cannot_start_leaves_a_failed_job():
    def broken(payload):
        raise RuntimeError("throttled")
    service, state = jobs(invoker=broken)
    with pytest.raises(Unavailable):
        service.start(["recommender"])
    [entry] = state.query(keys.JOB_INDEX_PK)
    job = service.get(entry["job_id"])
    assert job["status"] == "FAILED" and "throttled" in job["error"]


def test_jobs_move_queued_running_succeeded_and_list_newest_first_in_pages():
    service, _ = jobs()
    started = [service.start(["recommender"])["job_id"] for _ in range(3)]
    service.mark_running(started[0])
    service.progress(started[0], "epoch 1")
    service.finish(started[0], "SUCCEEDED", results={"recommender": {"promoted": True}})
    done = service.get(started[0])
    assert done["status"] == "SUCCEEDED" and done["progress"][0].endswith("epoch 1") and done["finished_at"]
    page = service.list(limit=2)
    rest = service.list(limit=2, next_token=page["next_token"])
    listed = [j["job_id"] for j in page["jobs"] + rest["jobs"]]
    assert sorted(listed) == sorted(started) and len(set(listed)) == 3 and "next_token" not in rest
    assert all("progress" not in j for j in page["jobs"])
    with pytest.raises(Invalid):
        service.list(next_token="not-a-token")
    with pytest.raises(NotFound):
        service.get("job-missing")


def test_a_job_running_past_the_function_timeout_reads_failed(monkeypatch):
    service, state = jobs()
    job_id = service.start(["recommender"])["job_id"]
    state.update(keys.job_pk(job_id), keys.JOB_SK, set={"status": "RUNNING", "started_at": "2020-01-01T00:00:00Z"})
    assert service.get(job_id)["status"] == "FAILED" and "timed out" in service.get(job_id)["error"]
    monkeypatch.setattr(jobs_service, "RUNNING_LIMIT_SECONDS", 10**10)
    assert service.get(job_id)["status"] == "RUNNING"


# ---- model registry, serving cache, promotion gate ------------------------------------------------
def registry_with(*versions: str) -> ModelRegistry:
    registry = ModelRegistry(FakeObjectStore(), FakeStateTable())
    for version in versions:
        registry.save_version("sentiment", version, {"model.txt": version.encode()}, {"score": 0.8}, {})
    return registry


def load_text(registry: ModelRegistry, version: str) -> str:
    return registry.artifact("sentiment", version, "model.txt").decode()


def test_the_cache_serves_the_promoted_version_and_follows_the_pointer():
    registry = registry_with("v1", "v2")
    now = [0.0]
    cache = ModelCache(registry, "sentiment", load_text, ttl=60, clock=lambda: now[0])
    with pytest.raises(Unavailable, match="no sentiment model"):
        cache.get()
    registry.promote("sentiment", "v1")
    assert cache.get() == ("v1", "v1")  # the first promotion serves at once
    registry.promote("sentiment", "v2")
    assert cache.get() == ("v1", "v1")  # within the TTL the warm container keeps its model
    now[0] = 61.0
    assert cache.get() == ("v2", "v2")


def test_a_cold_container_falls_back_to_the_newest_earlier_version_that_loads():
    registry = registry_with("v1", "v2")
    registry.promote("sentiment", "v1")
    registry.promote("sentiment", "v2")
    registry.store.purge(keys.artifact_key("sentiment", "v2", "model.txt"))
    cache = ModelCache(registry, "sentiment", load_text)
    assert cache.get() == ("v1", "v1") and cache.fallback_from == "v2"


def test_promotion_needs_the_version_to_exist():
    registry = registry_with("v1")
    with pytest.raises(NotFound):
        registry.promote("sentiment", "v9")
    with pytest.raises(NotFound):
        registry.promote("ranker", "v1")
    overview = {m["model"]: m for m in registry.overview()}
    assert overview["sentiment"]["current_version"] is None and overview["sentiment"]["versions"][0]["version"] == "v1"


def test_the_gate_rejects_a_candidate_below_the_baseline_or_too_far_below_the_current_version():
    current = {"version": "v1", "metrics": {"gate": {"metric": "ndcg@10", "score": 0.30}}}
    promoted, reason = promotion_decision("ndcg@10", 0.20, "EASE", 0.25, None, margin=0.02)
    assert not promoted and "does not beat EASE" in reason
    promoted, reason = promotion_decision("ndcg@10", 0.28, "EASE", 0.25, current, margin=0.02)
    assert not promoted and "below the current version v1" in reason
    assert promotion_decision("ndcg@10", 0.28, "EASE", 0.25, current, margin=0.10)[0]  # PromotionMargin 10%
    promoted, reason = promotion_decision("ndcg@10", 0.29, "EASE", 0.25, current, margin=0.02, current_score=0.31)
    assert not promoted and "on the same validation data" in reason


# ---- sentiment service ------------------------------------------------------------------------------
def test_sentiment_answers_from_the_lexicon_before_any_model_and_reads_summaries():
    registry = registry_with()
    service = SentimentService(registry.store, registry.state, ModelCache(registry, "sentiment", load_text))
    answer = service.score(*parse_request({"texts": ["love it, great quality", "awful, it broke"]}))
    assert [r["label"] for r in answer["results"]] == ["POSITIVE", "NEGATIVE"] and "model_version" not in answer
    with pytest.raises(Invalid):
        parse_request({"text": "a", "texts": ["b"]})
    with pytest.raises(NotFound):
        service.item_summary("i1")
    registry.state.put({"pk": keys.sentiment_pk("item", "i1"), "sk": keys.SUMMARY_SK, "item_id": "i1", "reviews": 2})
    assert service.item_summary("i1") == {"item_id": "i1", "reviews": 2}


# ---- the composition root on fakes ---------------------------------------------------------------
def test_bootstrap_builds_every_service_on_the_fakes_and_use_makes_handlers_see_it():
    from tailor import bootstrap
    from tailor.core.config import Settings

    settings = Settings(stage="test", data_bucket="b", state_table="t", train_function_name=None,
                        export_function_name=None, max_upload_bytes=1024, model_cache_seconds=60)
    invoker = FakeInvoker()
    built = bootstrap.build(settings, store=FakeObjectStore(), state=FakeStateTable(), invoke_training=invoker)
    for name in ("ingest_service", "model_registry", "training_jobs", "sentiment_service", "recommend_service",
                 "profile_service", "erase_service"):
        assert getattr(built, name) is getattr(built, name), name  # built once per container
    assert built.training_jobs.state is built.state_table and built.model_registry.store is built.object_store
    built.object_store.put(keys.dataset_key("reviews", "b1"), b"stored reviews")
    assert built.training_jobs.start(None)["models"] == ["sentiment"] and invoker.payloads
    try:
        bootstrap.use(built)
        assert bootstrap.sentiment_service() is built.sentiment_service
        assert bootstrap.catalog_item("i1") is None
    finally:
        bootstrap.reset()


# ---- scheduled retraining ----------------------------------------------------------------------
def test_a_scheduled_run_trains_what_has_new_data_and_records_why_it_skips_the_rest():
    stored: dict[str, str | None] = {"interactions": "2026-12-01T00:00:00.000Z", "reviews": None}
    state, invoker = FakeStateTable(), FakeInvoker()
    service = TrainingJobs(state, invoker, lambda name: name in ("interactions",), stored_at=stored.get)
    first = service.start_scheduled()
    assert first["status"] == "QUEUED" and first["models"] == ["recommender"] and first["trigger"] == "schedule"
    assert first["skipped"] == {"sentiment": "no reviews data yet"}
    service.finish(first["job_id"], "SUCCEEDED")
    # Nothing stored since that job started: skipped, with the reason, and listed like any job.
    second = service.start_scheduled()
    assert second["status"] == "SKIPPED" and "no interactions rows stored since the last training job" in second["reason"]
    assert len(invoker.payloads) == 1
    assert {job["job_id"] for job in service.list()["jobs"]} == {second["job_id"], first["job_id"]}
    # New rows after the last job: trained again.
    stored["interactions"] = "2999-01-01T00:00:00.000Z"
    third = service.start_scheduled()
    assert third["status"] == "QUEUED" and len(invoker.payloads) == 2


def test_a_scheduled_run_with_no_data_at_all_is_skipped_not_failed():
    service = TrainingJobs(FakeStateTable(), FakeInvoker(), lambda name: False)
    job = service.start_scheduled()
    assert job["status"] == "SKIPPED" and job["models"] == []
    assert job["skipped"] == {"recommender": "no interactions data yet", "sentiment": "no reviews data yet"}
    assert service.invoke.payloads == []
