"""Customer profiles, audience exports and review summaries on the in-memory fakes (no moto, no
network): live profile updates from uploaded files and their customer cut-off, the profile's
sentiment field, failing asynchronous exports, and the monthly sentiment trend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tailor.core.errors import Unavailable
from tailor.customers import service as customers
from tailor.customers.service import ProfileService, ProfileStore
from tailor.datasets.ingest import IngestService
from tailor.sentiment.service import summarise
from tailor.storage import keys
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)


def upload(service: IngestService, store: FakeObjectStore, name: str, text: str) -> dict:
    key = f"{keys.INCOMING_PREFIX}interactions/{name}"
    store.put(key, text.encode(), "text/csv")
    [result] = service.handle_s3_event({"Records": [{"s3": {"object": {"key": key, "size": len(text)}}}]})
    return result


def ingest_on_fakes():
    store, state = FakeObjectStore(), FakeStateTable()
    profiles = ProfileStore(state)
    return IngestService(store, state, max_upload_bytes=10 * 2**20, on_stored=profiles.record), store, profiles


def test_an_uploaded_file_updates_the_profiles_of_its_customers_before_training():
    service, store, profiles = ingest_on_fakes()
    rows = ("user_id,item_id,timestamp,event_type\n"
            "ann,i1,2030-01-01T10:00:00Z,view\nann,i2,2030-01-03T10:00:00Z,purchase\nbob,i1,2030-01-02T09:00:00Z,view\n")
    assert upload(service, store, "week.csv", rows)["status"] == "stored"
    ann = profiles.get("ann")
    assert ann is not None and ann["activity"]["events"] == 2
    assert ann["activity"]["by_event_type"] == {"view": 1, "purchase": 1}
    assert ann["activity"]["last_seen"] == "2030-01-03T10:00:00Z"
    assert profiles.get("bob")["activity"]["events"] == 1


def test_a_file_of_more_customers_than_the_live_cut_off_waits_for_training(monkeypatch):
    monkeypatch.setattr(customers, "LIVE_MAX_USERS", 2)
    service, store, profiles = ingest_on_fakes()
    three = "user_id,item_id,timestamp\n" + "".join(f"u{n},i1,2030-01-01T00:00:0{n}Z\n" for n in range(3))
    assert upload(service, store, "bulk.csv", three)["rows_stored"] == 3  # the rows are stored all the same
    assert all(profiles.get(f"u{n}") is None for n in range(3)), "a bulk import wrote one profile per customer"
    two = "user_id,item_id,timestamp\nv0,i1,2030-01-01T00:00:00Z\nv1,i2,2030-01-01T00:00:01Z\n"
    assert upload(service, store, "small.csv", two)["rows_stored"] == 2
    assert all(profiles.get(user)["activity"]["events"] == 1 for user in ("v0", "v1"))


class NoModel:
    last_error = None

    def get(self):
        raise Unavailable("no recommender trained yet")


def profile_service(state: FakeStateTable, invoke_export=None) -> ProfileService:
    return ProfileService(ProfileStore(state), NoModel(), FakeObjectStore(), state, invoke_export=invoke_export)  # type: ignore[arg-type]


def test_the_profile_carries_the_customers_review_sentiment_or_none():
    state = FakeStateTable()
    ProfileStore(state).record("interactions", {"user_id": ["ann", "bob"], "item_id": ["i1", "i1"],
                                                "timestamp": [1_900_000_000_000] * 2})
    state.put({"pk": keys.sentiment_pk("user", "ann"), "sk": keys.SUMMARY_SK, "reviews": 3, "mean_score": 0.8})
    service = profile_service(state)
    assert service.profile("ann")["sentiment"] == {"reviews": 3, "mean_score": 0.8}
    assert service.profile("bob")["sentiment"] is None


def test_an_export_that_cannot_start_is_recorded_failed_and_answers_503():
    state = FakeStateTable()

    def broken(payload):
        raise RuntimeError("function not found")

    service = profile_service(state, invoke_export=broken)
    with pytest.raises(Unavailable, match="could not be started"):
        service._start_export({"category": "shoes", "size": 50_000})
    [job] = [item for (pk, sk), item in state._items.items() if sk == keys.EXPORT_SK]
    assert job["status"] == "FAILED" and "function not found" in job["error"]
    assert service.export_status(job["job_id"])["status"] == "FAILED"


def test_an_export_whose_run_fails_says_failed_with_the_reason_and_no_download():
    state = FakeStateTable()
    sent: list[dict] = []
    service = profile_service(state, invoke_export=sent.append)
    job = service._start_export({"category": "shoes", "size": 50_000})
    assert job["status"] == "QUEUED" and sent == [{"audience_export": {"job_id": job["job_id"]}}]
    assert service.run_export(job["job_id"]) == {"job_id": job["job_id"], "status": "FAILED"}
    status = service.export_status(job["job_id"])
    assert status["status"] == "FAILED" and "no recommender trained yet" in status["error"]
    assert "export_url" not in status


def scored(month: int, day: int, score: float, label: str) -> dict:
    return {"score": score, "label": label, "timestamp": datetime(2026, month, day, tzinfo=UTC)}


def test_the_review_summary_has_a_monthly_trend_and_its_direction():
    rows = [scored(1, 5, -0.5, "NEGATIVE"), scored(1, 20, -0.3, "NEGATIVE"), scored(2, 1, 0.1, "NEUTRAL"),
            scored(3, 3, 0.9, "POSITIVE"), scored(3, 9, 0.7, "POSITIVE")]
    summary = summarise(rows)
    assert [(m["month"], m["count"]) for m in summary["trend"]] == [("2026-01", 2), ("2026-02", 1), ("2026-03", 2)]
    assert summary["trend"][0]["mean_score"] == pytest.approx(-0.4)
    # March (0.8) against the months before it (mean of -0.5, -0.3, 0.1 = -0.233): improving.
    assert summary["recent_change"] == pytest.approx(0.8 - (-0.7 / 3), abs=1e-4)
    assert summary["direction"] == "improving"
    assert summary["share_positive"] == 0.4 and summary["reviews"] == 5
    worse = summarise([scored(1, 1, 0.9, "POSITIVE"), scored(2, 1, -0.9, "NEGATIVE")])
    assert worse["direction"] == "worsening"
    single = summarise([scored(1, 1, 0.9, "POSITIVE")])
    assert "direction" not in single and len(single["trend"]) == 1
