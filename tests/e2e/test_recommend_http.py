"""Recommendations over HTTP against the local stack: upload, train asynchronously, ask."""


def test_recommendations_for_a_known_user(trained_shop):
    client, user, _ = trained_shop
    body = client.call("GET", f"/v1/users/{user}/recommendations?k=10")
    assert body["strategy"] == "personalized" and len(body["items"]) == 10
    assert all(item["reason"].startswith("because you chose") for item in body["items"])


def test_unknown_user_gets_popular_fallback_and_bad_k_is_422(trained_shop):
    client, user, _ = trained_shop
    body = client.call("GET", "/v1/users/never-seen/recommendations?k=5")
    assert body["strategy"] == "popular" and len(body["items"]) == 5
    for k in (0, 1000):
        assert client.request("GET", f"/v1/users/{user}/recommendations?k={k}")[0] == 422
    assert client.request("GET", "/v1/items/no-such-item/similar")[0] == 404


def test_a_burst_of_events_makes_an_item_trend_and_a_promotion_takes_its_share(trained_shop):
    import csv
    import time

    client, user, files = trained_shop
    with open(files["items"], encoding="utf-8") as handle:
        items = list(csv.DictReader(handle))
    burst, category = items[-1]["item_id"], items[0]["categories"].split("|")[0]
    now = int(time.time() * 1000)
    for n in range(12):  # one event per request, as a website sends them
        client.call("POST", "/v1/events", {"events": [
            {"user_id": f"shopper-{n}", "item_id": burst, "timestamp": now - n * 1000, "event_type": "view"}]})
    trending = client.call("GET", "/v1/trending?window=1h&k=5")
    assert trending["strategy"] == "trending" and trending["items"][0]["item_id"] == burst
    assert trending["items"][0]["reason"].startswith("trending: ") and "in the last hour" in trending["items"][0]["reason"]
    assert client.request("GET", "/v1/trending?window=2h")[0] == 422

    promotion = client.call("POST", "/v1/promotions", {"name": "House picks", "category": category, "share": 0.3})
    try:
        assert client.request("POST", "/v1/promotions", {"name": "x", "category": category, "share": 1.5})[0] == 422
        assert client.request("POST", "/v1/promotions", {"name": "x", "category": "no-such", "share": 0.1})[0] == 404
        listed = client.call("GET", "/v1/promotions")["promotions"]
        assert [p["promotion_id"] for p in listed] == [promotion["promotion_id"]]
        deadline = time.time() + 60  # serving re-reads promotions at most every 30 s
        while True:
            body = client.call("GET", f"/v1/users/{user}/recommendations?k=10")
            promoted = [i for i in body["items"] if i.get("promoted")]
            if promoted or time.time() > deadline:
                break
            time.sleep(2)
        assert 1 <= len(promoted) <= 3 and len(body["items"]) == 10
        assert all(i["promotion"] == "House picks" and i["reason"] == "promoted: House picks" for i in promoted)
    finally:
        client.call("DELETE", f"/v1/promotions/{promotion['promotion_id']}")
    assert client.call("GET", "/v1/promotions")["promotions"] == []
