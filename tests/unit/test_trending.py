"""Trending now on the fakes: the score (smoothed ratio, minimum count, reasons, ties), counters
bucketed by the events' own time, a burst topping the 1h window, category filters, errors, the
container cache, the route, and the cold-customer choice made at training."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor import bootstrap
from tailor.core.config import Settings
from tailor.core.errors import Invalid, NotFound
from tailor.recommend.scorer import Recommender
from tailor.recommend.service import RecommendService, ServedModel
from tailor.storage import keys
from tailor.training.recommender.data import Encoded
from tailor.training.recommender.validation import choose_cold_start
from tailor.trending.counters import FUTURE_SLACK_SECONDS, TRENDING_MAX_EVENTS, Trending
from tailor.trending.scoring import (
    BUCKETS_READ,
    MIN_TREND_COUNT,
    WINDOWS,
    Trend,
    bucket_start,
    buckets_read,
    trends,
    window_named,
)
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)
from tests.fixtures.handlers import call
from tests.fixtures.synthetic import promote_version, recommender_files

NOW = 1_700_000_000.0  # epoch seconds, mid-bucket for every window
USERS = [f"u-{n}" for n in range(10)]
ITEMS = [f"i-{n:02d}" for n in range(30)]
CATEGORIES = {item: ["books" if n % 2 else "games"] for n, item in enumerate(ITEMS)}


class Clock:
    def __init__(self, now: float = NOW):
        self.now, self.mono = now, 0.0

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def events(items, at_s, user="u-1"):
    """An interactions batch as ingest hands it to on_stored (timestamps in epoch ms)."""
    items = list(items)
    moments = at_s if isinstance(at_s, list) else [at_s] * len(items)
    return {"user_id": [user] * len(items), "item_id": items, "timestamp": [int(m * 1000) for m in moments],
            "event_type": ["view"] * len(items), "value": [None] * len(items)}


@pytest.fixture
def counters():
    clock = Clock()
    return Trending(FakeStateTable(), clock=clock, monotonic=clock.monotonic), clock


class _Cache:
    def __init__(self, cold_start=None):
        rec = Recommender.from_files(recommender_files(USERS, ITEMS, CATEGORIES))
        if cold_start is not None:
            rec.config["cold_start"] = cold_start
        self.model = ServedModel(rec, {item: {"title": f"Title {item}", "categories": CATEGORIES[item]}
                                       for item in ITEMS})

    def get(self):
        return self.model, "v1"


def service(counters, cold_start=None) -> RecommendService:
    return RecommendService(_Cache(cold_start), trending=counters)  # type: ignore[arg-type]


# ---- scoring -------------------------------------------------------------------------------------
def test_the_score_is_the_smoothed_ratio_of_the_window_to_the_mean_window_before():
    # 12 in the window; 3 windows before with 9 in all: a baseline of 3 per window.
    [trend] = trends({"a": [3] + [0] * 8 + [6] + [0] * 7 + [0] * 5 + [12]})
    assert (trend.current, trend.baseline) == (12, 3.0)
    assert trend.score == pytest.approx(13 / 4)
    assert trend.reason(WINDOWS["1h"]) == "trending: 4x more interactions in the last hour"
    assert Trend("b", 5, 2.0).reason(WINDOWS["3h"]) == "trending: 2.5x more interactions in the last 3 hours"
    assert Trend("c", 60, 2.0).reason(WINDOWS["1d"]) == "trending: 30x more interactions in the last day"


def test_one_click_is_not_a_trend_and_neither_is_a_steady_or_falling_rate():
    assert trends({"once": [1]}) == [] and trends({"twice": [0] * 23 + [MIN_TREND_COUNT - 1]}) == []
    steady = [1] * BUCKETS_READ  # 6 per window, before as now
    falling = [3] * 18 + [0] * 6
    assert trends({"steady": steady, "falling": falling}) == []
    assert [t.item_id for t in trends({"new": [0] * 23 + [MIN_TREND_COUNT]})] == ["new"]


def test_a_baseline_of_zero_says_none_before():
    [trend] = trends({"a": [12]})
    assert trend.reason(WINDOWS["1h"]) == "trending: 12 interactions in the last hour, none before"


def test_ties_are_broken_by_the_count_then_the_id():
    # Same smoothed ratio 4: 3 from 0 and 7 from (3 before in all = 1 per window).
    ranked = trends({"small": [3], "big": [3] + [0] * 17 + [7], "also-small": [3]})
    assert [t.item_id for t in ranked] == ["big", "also-small", "small"]
    assert ranked[0].score == ranked[1].score


def test_an_unknown_window_is_a_422_naming_the_allowed_values():
    with pytest.raises(Invalid, match="1h, 3h, 1d"):
        window_named("2h")


@given(st.floats(min_value=1e6, max_value=4e9, allow_nan=False), st.sampled_from(sorted(WINDOWS)))
def test_buckets_cover_the_window_and_baseline_ending_with_the_bucket_of_now(now, name):
    window = WINDOWS[name]
    starts = buckets_read(now, window)
    assert len(starts) == BUCKETS_READ and starts[-1] == bucket_start(now, window)
    assert starts[-1] <= now < starts[-1] + window.bucket_seconds
    assert all(b - a == window.bucket_seconds for a, b in zip(starts, starts[1:]))
    assert keys.trending_pk(name, starts[0]) < keys.trending_pk(name, starts[-1])  # padded: time order


# ---- counters ------------------------------------------------------------------------------------
def test_events_count_in_the_buckets_of_their_own_time_with_one_add_per_counter(counters):
    trending, _ = counters
    an_hour_ago = NOW - 3_600
    calls = []
    real = trending.state.update_many
    trending.state.update_many = lambda updates, workers=8: (calls.append(updates), real(updates))
    trending.record("interactions", events(["a", "a", "a", "b"], [NOW, NOW - 1, an_hour_ago, NOW]))
    [updates] = calls
    # (a now, a an hour ago, b now) in the 1h and 3h windows; the 1d window's 4-hour bucket holds both a's.
    assert len(updates) == 3 + 3 + 2
    assert trending.state.get(keys.trending_pk("1d", bucket_start(NOW, WINDOWS["1d"])), "a")["n"] == 3
    counts = trending.counts(WINDOWS["1h"], NOW)
    assert counts["a"][-1] == 2 and counts["a"][-7] == 1 and sum(counts["b"]) == 1
    row = trending.state.get(keys.trending_pk("1h", bucket_start(NOW, WINDOWS["1h"])), "a")
    assert row["n"] == 2 and row["expires_at"] > NOW + WINDOWS["1h"].read_seconds - WINDOWS["1h"].bucket_seconds


def test_events_too_old_to_read_from_the_future_or_in_a_history_import_are_not_counted(counters):
    trending, _ = counters
    stale = NOW - WINDOWS["1d"].read_seconds - 1  # older than any score can read
    ahead = NOW + FUTURE_SLACK_SECONDS + 60
    trending.record("interactions", events(["old", "future"], [stale, ahead]))
    trending.record("items", {"item_id": ["x"], "timestamp": [int(NOW * 1000)]})
    trending.record("interactions", events(["bulk"] * (TRENDING_MAX_EVENTS + 1), NOW))
    assert trending.state.query(keys.trending_pk("1h", bucket_start(NOW, WINDOWS["1h"]))) == []
    assert all(not trending.counts(w, NOW) for w in WINDOWS.values())
    # An event a day old still counts in the 1d window's baseline, not in the 1h window.
    trending.record("interactions", events(["yesterday"], NOW - 86_400))
    assert "yesterday" in trending.counts(WINDOWS["1d"], NOW) and not trending.counts(WINDOWS["1h"], NOW)


def test_a_batch_is_counted_once_per_record_call(counters):
    # A re-sent batch is stopped upstream by the ingest ledger (BATCH# items): record runs once
    # per stored batch, and each call adds exactly its events.
    trending, _ = counters
    batch = events(["a"] * 3, NOW)
    trending.record("interactions", batch)
    trending.record("interactions", batch)
    assert trending.counts(WINDOWS["1h"], NOW)["a"][-1] == 6


def test_a_burst_makes_an_item_the_top_trend_of_the_last_hour(counters):
    trending, _ = counters
    # Steady background: every item a few times per hour over the last 4 hours.
    steady = [item for item in ITEMS[:10] for _ in range(8)]
    trending.record("interactions", events(steady, [NOW - 60 - 1_700 * (n % 8) for n in range(len(steady))]))
    trending.record("interactions", events(["i-07"] * 15, [NOW - 30 * n for n in range(15)]))
    top = service(trending).trending("1h", k=3)
    assert top["strategy"] == "trending" and top["window"] == "1h"
    first = top["items"][0]
    assert first["item_id"] == "i-07" and first["title"] == "Title i-07"
    assert first["reason"].startswith("trending: ") and first["reason"].endswith("in the last hour")


def test_fewer_trends_than_k_answer_only_those_with_a_note(counters):
    trending, _ = counters
    trending.record("interactions", events(["i-01"] * 4 + ["i-02"] * 2, NOW))
    answer = service(trending).trending("1h", k=5)
    assert [i["item_id"] for i in answer["items"]] == ["i-01"]
    assert answer["note"].startswith("only 1 of the 5 requested") and "at least 3 interactions" in answer["note"]


def test_a_category_keeps_its_trends_and_an_unknown_one_or_window_is_refused(counters):
    trending, _ = counters
    trending.record("interactions", events(["i-01"] * 5 + ["i-02"] * 4, NOW))  # i-01 books, i-02 games
    recommend = service(trending)
    assert [i["item_id"] for i in recommend.trending("1h", 10, "games")["items"]] == ["i-02"]
    with pytest.raises(NotFound, match="unknown category"):
        recommend.trending("1h", 10, "garden")
    with pytest.raises(Invalid, match="window must be one of 1h, 3h, 1d"):
        recommend.trending("7d", 10)
    with pytest.raises(Invalid, match="k must be"):
        recommend.trending("1h", 0)


def test_answers_are_cached_per_window_for_a_while(counters):
    trending, clock = counters
    trending.record("interactions", events(["a"] * 3, NOW))
    assert [t.item_id for t in trending.top("1h", 10)] == ["a"]
    trending.record("interactions", events(["b"] * 9, NOW))
    queries = []
    real = trending.state.query
    trending.state.query = lambda pk, **kw: (queries.append(pk), real(pk, **kw))[1]
    assert [t.item_id for t in trending.top("1h", 10)] == ["a"] and not queries  # cached
    assert [t.item_id for t in trending.top("3h", 10)] == ["b", "a"] and len(queries) == BUCKETS_READ
    clock.mono += 31
    assert [t.item_id for t in trending.top("1h", 10)] == ["b", "a"]


# ---- cold customers --------------------------------------------------------------------------------
COLD = {"strategy": "trending", "window": "1h", "trending_hr10": 0.31, "popular_hr10": 0.22}


def test_a_cold_customer_gets_trending_filled_with_popular_when_the_model_chose_it(counters):
    trending, _ = counters
    trending.record("interactions", events(["i-05"] * 6 + ["i-06"] * 4, NOW))
    answer = service(trending, COLD).for_user("stranger", k=5)
    assert answer["strategy"] == "trending"
    assert [i["item_id"] for i in answer["items"][:2]] == ["i-05", "i-06"]
    assert [i["reason"] for i in answer["items"][2:]] == ["popular right now"] * 3
    assert "HR@10 0.310 vs 0.220" in answer["note"] and "no history" in answer["note"]
    session = service(trending, COLD).for_session(["not-in-model"], k=3, exclude=["i-05"])
    assert session["strategy"] == "trending" and "i-05" not in [i["item_id"] for i in session["items"]]


def test_a_cold_customer_gets_popular_without_live_trends_an_old_model_or_popular_winning(counters):
    trending, _ = counters
    assert service(trending, COLD).for_user("stranger", k=5)["strategy"] == "popular"  # nothing trends
    trending.record("interactions", events(["i-05"] * 6, NOW))
    assert service(trending).for_user("stranger", k=5)["strategy"] == "popular"  # model without cold_start
    assert service(trending, {**COLD, "strategy": "popular"}).for_user("stranger", k=5)["strategy"] == "popular"
    assert service(trending, COLD).for_user("u-1", k=5)["strategy"] == "personalized"


def _encoded(rows):
    users, items, times = (np.array(column) for column in zip(*rows))
    return Encoded(np.array(sorted({f"u{u}" for u in users})), np.array([f"i{i}" for i in range(10)]),
                   users.astype(np.int64), items.astype(np.int64), times.astype(np.float64), None)


def test_training_serves_trending_to_new_customers_only_when_it_wins_on_validation():
    # Item 0 is popular over the months; item 9 bursts in the hour before each held-out event.
    start = NOW - 90 * 86_400
    fit_rows = [(u, 0, start + u * 100) for u in range(20)] + [(u, 1, start + u * 200) for u in range(15)]
    fit_rows += [(20 + n, 9, NOW - 600 - 60 * n) for n in range(5)]
    held = [(u, 9, NOW + u) for u in range(10)]
    fit = _encoded(fit_rows)
    users, items, times = (np.array(c) for c in zip(*held))
    chosen = choose_cold_start(fit, users, items, times.astype(np.float64), max_users=100, seed=0, k=1)
    assert chosen["strategy"] == "trending" and chosen["window"] == "1h"
    assert (chosen["trending_hr10"], chosen["popular_hr10"]) == (1.0, 0.0)
    # Held-out events on the popular item instead: popularity wins (a tie would too).
    held_popular = np.zeros(len(users), np.int64)
    chosen = choose_cold_start(fit, users, held_popular, times.astype(np.float64), max_users=100, seed=0, k=1)
    assert chosen["strategy"] == "popular" and chosen["popular_hr10"] == 1.0


# ---- wiring and the route ------------------------------------------------------------------------
def _get(path: str, query: dict) -> tuple[int, dict]:
    return call("recommend", "GET", path, query=query)


def test_events_posted_through_ingest_trend_on_the_route():
    settings = Settings(stage="test", data_bucket="b", state_table="t", train_function_name=None,
                        export_function_name=None, max_upload_bytes=1024, model_cache_seconds=60)
    built = bootstrap.build(settings, store=FakeObjectStore(), state=FakeStateTable())
    promote_version(built.model_registry, "recommender", "v1", recommender_files(USERS, ITEMS, CATEGORIES))
    try:
        bootstrap.use(built)
        now_ms = int(time.time() * 1000)
        burst = [{"user_id": f"u-{n}", "item_id": "i-03", "timestamp": now_ms - 1000 * n, "event_type": "view"}
                 for n in range(5)]
        built.ingest_service.ingest_records("events", burst)
        status, body = _get("/v1/trending", {"window": "1h", "k": "3"})
        assert status == 200, body
        assert body["items"][0]["item_id"] == "i-03" and body["model_version"] == "v1"
        assert body["items"][0]["reason"] == "trending: 5 interactions in the last hour, none before"
        status, body = _get("/v1/trending", {"window": "2h"})
        assert status == 422 and "1h, 3h, 1d" in body["error"]["message"]
        status, body = _get("/v1/trending", {"category": "garden"})
        assert status == 404
    finally:
        bootstrap.reset()
