"""Trending now through the handlers (moto): a burst of events posted to IngestFunction is the top
trending item of the last hour on RecommendFunction, before and after a model gives it a title."""

import time

from harness import call

from tailor import bootstrap
from tests.fixtures.synthetic import promote_version, recommender_files

USERS = [f"u-{n}" for n in range(5)]
ITEMS = [f"i-{n}" for n in range(8)]


def trending(**query):
    return call("recommend", "GET", "/v1/trending", query={k: str(v) for k, v in query.items()} or None)


def post_events(rows):
    status, body = call("ingest", "POST", "/v1/events", {"events": rows})
    assert status == 200, body


def test_a_burst_of_events_is_the_top_trending_item_of_the_last_hour(aws):
    now_ms = int(time.time() * 1000)
    hours = 3_600_000
    # Two hours ago a baseline for every item (5 on i-6: 5/3 per hour), now a burst of 12 on i-6 and one click.
    post_events([{"user_id": f"u-{n % 5}", "item_id": f"i-{n % 8}", "timestamp": now_ms - 2 * hours - n * 60_000,
                  "event_type": "view"} for n in range(40)])
    post_events([{"user_id": f"u-{n % 5}", "item_id": "i-6", "timestamp": now_ms - n * 20_000, "event_type": "view"}
                 for n in range(12)] + [{"user_id": "u-1", "item_id": "i-2", "timestamp": now_ms, "event_type": "view"}])
    status, body = trending(window="1h", k=3)
    assert status == 200, body
    assert body["strategy"] == "trending" and body["window"] == "1h" and "model_version" not in body
    assert [i["item_id"] for i in body["items"]] == ["i-6"]  # i-2's one click is not a trend
    assert body["items"][0]["reason"] == "trending: 7.2x more interactions in the last hour"
    assert body["note"].startswith("only 1 of the 3 requested")

    promote_version(bootstrap.model_registry(), "recommender", "v1", recommender_files(USERS, ITEMS))
    bootstrap.reset()  # a new container: the trending cache is per container
    status, body = trending()
    assert status == 200 and body["model_version"] == "v1" and body["items"][0]["title"] == "Item i-6"
    assert trending(window="5m")[0] == 422 and trending(category="nowhere")[0] == 404
