"""Promotions through the handlers (moto): created on IngestFunction, applied by RecommendFunction
from the PROMOTIONS partition of the real table layout, deleted again."""

from __future__ import annotations

from harness import call

from tailor import bootstrap
from tests.fixtures.synthetic import promote_version, recommender_files

USERS = [f"u{i}" for i in range(8)]
ITEMS = [f"i{i}" for i in range(12)]
CATEGORIES = {item: ["toys"] if n % 3 == 0 else ["books"] for n, item in enumerate(ITEMS)}


def recommendations(user: str, **query) -> tuple[int, dict]:
    return call("recommend", "GET", f"/v1/users/{user}/recommendations", resource="/v1/users/{user_id}/recommendations",
                path_params={"user_id": user}, query={k: str(v) for k, v in query.items()} or None)


def test_a_promotion_is_created_served_and_deleted(aws):
    promote_version(bootstrap.model_registry(), "recommender", "v1", recommender_files(USERS, ITEMS, CATEGORIES))
    status, body = call("ingest", "POST", "/v1/promotions", {"name": "Toy week", "category": "toys", "share": 0.5})
    assert status == 201, body
    promotion_id = body["promotion_id"]
    status, body = call("ingest", "POST", "/v1/promotions", {"name": "Ghost", "item_ids": ["nope"], "share": 0.5})
    assert status == 404 and "nope" in body["error"]["message"]

    status, body = recommendations("u1", k=4)
    assert status == 200, body
    marked = [item for item in body["items"] if item.get("promoted")]
    assert len(body["items"]) == 4 and 1 <= len(marked) <= 2
    assert all(item["reason"] == "promoted: Toy week" and CATEGORIES[item["item_id"]] == ["toys"] for item in marked)
    status, listed = call("ingest", "GET", "/v1/promotions")
    assert status == 200 and [p["status"] for p in listed["promotions"]] == ["active"]

    status, body = call("ingest", "DELETE", f"/v1/promotions/{promotion_id}", resource="/v1/promotions/{promotion_id}",
                        path_params={"promotion_id": promotion_id})
    assert status == 200 and body["deleted"] is True
    bootstrap.reset()  # a new container: the ~30 s cache of the active promotions starts empty
    status, body = recommendations("u1", k=4)
    assert status == 200 and not [item for item in body["items"] if item.get("promoted")]
