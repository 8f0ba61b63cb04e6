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
