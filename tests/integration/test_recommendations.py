"""Recommender through the handlers (moto): train from stored data, serve with reasons, fall back."""

import csv

import pytest
from harness import LambdaContext, call, fresh_account, load_handler

from infra.datagen import PRESETS, generate
from tailor import bootstrap
from tailor.customers import service as profile_service
from tailor.recommend.recent import RecentEvents


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained model for the whole module: training is the slow part."""
    with pytest.MonkeyPatch.context() as monkeypatch, fresh_account(monkeypatch):
        sent = []
        monkeypatch.setattr(bootstrap.training_jobs(), "invoke", sent.append)
        # Live profile counters (tested in test_customers.py) cost ~500 moto DynamoDB updates per
        # batch here, 9 of this fixture's 10 minutes; this module is about recommendations.
        monkeypatch.setattr(profile_service, "LIVE_MAX_USERS", 0)
        files = generate(tmp_path_factory.mktemp("shop"), seed=0, **PRESETS["demo"])  # small shops are all popularity
        # The history's recent events too: each batch's moto transaction deep-copies the table, so
        # thousands of RECENT# items make the loading quadratic. They predate training anyway; the
        # fold-in tests below send their own events.
        with pytest.MonkeyPatch.context() as history_only:
            history_only.setattr(RecentEvents, "record", lambda self, dataset, columns: None)
            for dataset in ("items", "interactions"):
                with open(files[dataset], encoding="utf-8") as handle:
                    rows = list(csv.DictReader(handle))
                for start in range(0, len(rows), 500):
                    status, body = call("ingest", "POST", f"/v1/{'events' if dataset == 'interactions' else dataset}",
                                        {"events" if dataset == "interactions" else dataset: rows[start:start + 500]})
                    assert status == 200, body
        status, queued = call("ingest", "POST", "/v1/training-jobs", {"models": ["recommender"]})
        assert status == 202
        assert load_handler("train")(sent[0], LambdaContext())["status"] == "SUCCEEDED"
        with open(files["interactions"], encoding="utf-8") as handle:
            interactions = list(csv.DictReader(handle))
        with open(files["items"], encoding="utf-8") as handle:
            items = list(csv.DictReader(handle))
        yield queued["job_id"], interactions, items


def recs(user_id, **query):
    return call("recommend", "GET", f"/v1/users/{user_id}/recommendations",
                resource="/v1/users/{user_id}/recommendations", path_params={"user_id": user_id},
                query={k: str(v) for k, v in query.items()} or None)


def test_job_report_and_personalized_recommendations_with_reasons(trained):
    job_id, interactions, items = trained
    job = call("ingest", "GET", f"/v1/training-jobs/{job_id}", resource="/v1/training-jobs/{job_id}",
               path_params={"job_id": job_id})[1]
    result = job["results"]["recommender"]
    assert result["promoted"], result["decision"]
    assert set(result["metrics"]["baselines"]) == {"popularity", "ease"}
    user = interactions[0]["user_id"]
    status, body = recs(user, k=5)
    assert status == 200 and body["strategy"] == "personalized" and len(body["items"]) == 5
    assert body["model_version"] == result["version"]
    seen = {r["item_id"] for r in interactions if r["user_id"] == user}
    assert not seen & {i["item_id"] for i in body["items"]}
    titles = {i["title"] for i in items}
    for item in body["items"]:
        assert item["reason"].startswith("because you chose ") and item["reason"][18:] in titles
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_fallback_and_bad_input(trained):
    _, interactions, items = trained
    user = interactions[0]["user_id"]
    category = items[0]["categories"].split("|")[0]
    status, body = recs(user, k=3, category=category)
    assert status == 200
    by_id = {i["item_id"]: i for i in items}
    assert all(category in by_id[i["item_id"]]["categories"].split("|") for i in body["items"])
    status, body = recs("someone-new", k=3)
    assert status == 200 and body["strategy"] == "popular" and body["items"][0]["reason"] == "popular right now"
    for k in (0, 1000):
        assert recs(user, k=k)[0] == 422
    assert recs(user, category="No Such Category")[0] == 404


def test_similar_items_rankings_and_sessions(trained):
    _, interactions, items = trained
    item = items[0]["item_id"]
    status, body = call("recommend", "GET", f"/v1/items/{item}/similar", resource="/v1/items/{item_id}/similar",
                        path_params={"item_id": item}, query={"k": "4"})
    assert status == 200 and len(body["items"]) == 4 and item not in {i["item_id"] for i in body["items"]}
    assert body["items"][0]["reason"] == f"similar to {items[0]['title']}"
    assert call("recommend", "GET", "/v1/items/nope/similar", resource="/v1/items/{item_id}/similar",
                path_params={"item_id": "nope"})[0] == 404
    candidates = [i["item_id"] for i in items[:6]]
    user = interactions[0]["user_id"]
    status, body = call("recommend", "POST", f"/v1/users/{user}/rankings", {"item_ids": candidates},
                        resource="/v1/users/{user_id}/rankings", path_params={"user_id": user})
    assert status == 200 and sorted(i["item_id"] for i in body["items"]) == sorted(candidates)
    status, body = call("recommend", "POST", "/v1/recommendations", {"recent_items": candidates[:2], "k": 3})
    assert status == 200 and body["strategy"] == "session" and len(body["items"]) == 3


def test_new_item_gets_similar_items_from_its_content(trained):
    _, _, items = trained
    template = items[1]
    new = {"item_id": "brand-new-item", "title": template["title"] + " II", "categories": template["categories"]}
    assert call("ingest", "POST", "/v1/items", {"items": [new]})[0] == 200
    status, body = call("recommend", "GET", "/v1/items/brand-new-item/similar", resource="/v1/items/{item_id}/similar",
                        path_params={"item_id": "brand-new-item"}, query={"k": "3"})
    assert status == 200 and body["strategy"] == "content" and len(body["items"]) == 3


def test_include_seen_and_exclude_change_what_a_user_is_offered(trained):
    _, interactions, _ = trained
    user = interactions[0]["user_id"]
    seen = {r["item_id"] for r in interactions if r["user_id"] == user}
    status, fresh = recs(user, k=10)
    assert status == 200 and not seen & {i["item_id"] for i in fresh["items"]}
    # include_seen: items the customer already chose may come back (this user's best-scored ones do).
    status, again = recs(user, k=50, include_seen="true")
    assert status == 200 and seen & {i["item_id"] for i in again["items"]}, "include_seen kept every seen item out"
    # exclude, repeated or comma-separated: the named items never appear, the rest keeps its order.
    dropped = [i["item_id"] for i in fresh["items"][:2]]
    event_query = {"k": "10", "exclude": ",".join(dropped)}
    status, body = recs(user, **event_query)
    assert status == 200 and not set(dropped) & {i["item_id"] for i in body["items"]}
    assert [i["item_id"] for i in body["items"]][:8] == [i["item_id"] for i in fresh["items"][2:10]]


def test_category_filters_session_and_similar_item_answers(trained):
    _, _, items = trained
    category = items[0]["categories"].split("|")[0]
    members = {i["item_id"] for i in items if category in i["categories"].split("|")}
    assert 3 < len(members) < len(items), "the generated shop needs a category that is neither tiny nor everything"
    others = [i["item_id"] for i in items if i["item_id"] not in members][:2]
    status, body = call("recommend", "POST", "/v1/recommendations", {"recent_items": others, "k": 3, "category": category})
    assert status == 200 and body["items"] and {i["item_id"] for i in body["items"]} <= members
    item = items[0]["item_id"]
    status, body = call("recommend", "GET", f"/v1/items/{item}/similar", resource="/v1/items/{item_id}/similar",
                        path_params={"item_id": item}, query={"k": "3", "category": category})
    assert status == 200 and body["items"] and {i["item_id"] for i in body["items"]} <= members - {item}
    assert call("recommend", "POST", "/v1/recommendations",
                {"recent_items": others, "category": "No Such Category"})[0] == 404


def test_rankings_come_best_first_and_take_at_most_500_candidates(trained):
    _, interactions, items = trained
    user = interactions[0]["user_id"]
    candidates = [i["item_id"] for i in items[:40]]
    path = {"resource": "/v1/users/{user_id}/rankings", "path_params": {"user_id": user}}
    status, body = call("recommend", "POST", f"/v1/users/{user}/rankings", {"item_ids": candidates[::-1]}, **path)
    assert status == 200 and body["strategy"] == "personalized"
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    # The order is the model's, not the request's: the same candidates in the other order rank the same.
    again = call("recommend", "POST", f"/v1/users/{user}/rankings", {"item_ids": candidates}, **path)[1]
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in body["items"]]
    many = [i["item_id"] for i in items] * (501 // len(items) + 1)
    status, body = call("recommend", "POST", f"/v1/users/{user}/rankings", {"item_ids": many[:501]}, **path)
    assert status == 422 and "item_ids" in body["error"]["message"], body


def test_an_event_changes_the_next_recommendation_at_once(trained):
    """Fold-in through the handlers: POST /v1/events, then the very next request reflects it."""
    _, interactions, items = trained
    title = {i["item_id"]: i["title"] for i in items}
    user = interactions[1]["user_id"]
    before = recs(user, k=10)[1]
    clicked = before["items"][0]["item_id"]
    status, body = call("ingest", "POST", "/v1/events",
                        {"events": [{"user_id": user, "item_id": clicked, "timestamp": "2030-01-01T00:00:00Z"}]})
    assert status == 200 and body["rows_stored"] == 1
    status, after = recs(user, k=10)
    assert status == 200 and after["strategy"] == "personalized"
    assert clicked not in [i["item_id"] for i in after["items"]]
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"][1:]]
    reasons = {i["reason"] for i in after["items"]}
    assert reasons <= {f"because you chose {t}" for t in title.values()} | {"recommended for you"}


def test_a_customer_created_after_training_with_three_events_is_personalized(trained):
    _, interactions, _ = trained
    popular = [i["item_id"] for i in recs("brand-new-customer", k=10)[1]["items"]]
    chosen = [r["item_id"] for r in interactions[:40] if r["item_id"] not in popular[:3]][:3]
    status, _ = call("ingest", "POST", "/v1/events", {"events": [
        {"user_id": "brand-new-customer", "item_id": item, "timestamp": f"2030-01-0{n + 1}T00:00:00Z"}
        for n, item in enumerate(chosen)]})
    assert status == 200
    status, body = recs("brand-new-customer", k=10)
    assert status == 200 and body["strategy"] == "personalized" and "folded in" in body["note"]
    listed = [i["item_id"] for i in body["items"]]
    assert listed != [i for i in popular if i not in chosen][:10]
    assert not set(chosen) & set(listed)
