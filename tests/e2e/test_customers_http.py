"""Customer profiles, segments, audiences and the privacy erase over HTTP against the local stack."""

import csv
import urllib.request


def _users(files):
    with open(files["interactions"], encoding="utf-8") as handle:
        return list(dict.fromkeys(row["user_id"] for row in csv.DictReader(handle)))


def test_profile_segments_and_audience_export(trained_shop):
    client, user, files = trained_shop
    profile = client.call("GET", f"/v1/users/{user}/profile")
    assert profile["activity"]["events"] > 0 and profile["segment"]["name"] and profile["attributes"]
    segments = client.call("GET", "/v1/segments")
    assert 3 <= len(segments["segments"]) <= 20
    assert sum(s["size"] for s in segments["segments"]) == segments["users"]
    with open(files["items"], encoding="utf-8") as handle:
        category = next(csv.DictReader(handle))["categories"].split("|")[0]
    audience = client.call("POST", "/v1/audiences", {"category": category, "size": 25, "export": True})
    assert len(audience["users"]) == 25
    with urllib.request.urlopen(audience["export_url"], timeout=30) as response:  # the presigned URL works
        lines = response.read().decode().strip().splitlines()
    assert lines[0] == "user_id,score" and len(lines) == 26
    status, error = client.request("POST", "/v1/audiences", {"category": category, "size": 0})
    assert status == 422 and error["error"]["message"]


def test_erase_removes_the_customer_everywhere(trained_shop):
    client, _, files = trained_shop
    user = _users(files)[5]
    assert client.call("GET", f"/v1/users/{user}/profile")["user_id"] == user
    report = client.call("DELETE", f"/v1/users/{user}")
    assert report
    assert client.request("GET", f"/v1/users/{user}/profile")[0] == 404
    assert client.request("DELETE", f"/v1/users/{user}")[0] == 404  # nothing left to erase
    with open(files["items"], encoding="utf-8") as handle:
        category = next(csv.DictReader(handle))["categories"].split("|")[0]
    audience = client.call("POST", "/v1/audiences", {"category": category, "size": 10_000, "include_engaged": True})
    assert user not in {u["user_id"] for u in audience["users"]}
    # Warm RecommendFunction workers re-read the pointer on their next request (the serving stamp),
    # not after MODEL_CACHE_SECONDS: the very first request after the erase is no longer personal.
    body = client.call("GET", f"/v1/users/{user}/recommendations?k=5")
    assert body["strategy"] == "popular"
    with open(files["items"], encoding="utf-8") as handle:
        first_item = next(csv.DictReader(handle))["item_id"]
    ranked = client.call("POST", f"/v1/users/{user}/rankings", {"item_ids": [first_item]})
    assert ranked["strategy"] != "personalized"
