"""An A/B experiment over HTTP against the local stack: every answer carries its recommendation id
and arm, and the experiment's results count each answer and each (recommendation, item) click
exactly once, however often and in whatever order the clicks are sent.

Serving reads the running experiment at most every 30 s per container
(tailor.experiments.store.RUNNING_CACHE_SECONDS), so answers are asked until they carry the new
experiment, and after the stop until they no longer do (the next tests expect no experiment).
"""

import csv
import random
import secrets
import time
from collections import defaultdict
from datetime import UTC, datetime

CACHE_SECONDS = 40  # serving's 30 s cache of the running experiment, and some
ARMS = [{"name": "control", "share": 0.5, "strategy": "popular"},
        {"name": "treatment", "share": 0.5, "strategy": "personalized"}]


def _users(files):
    with open(files["interactions"], encoding="utf-8") as handle:
        return list(dict.fromkeys(row["user_id"] for row in csv.DictReader(handle)))


def _stop_running(client):
    for experiment in client.call("GET", "/v1/experiments")["experiments"]:
        if experiment["status"] == "running":
            client.call("POST", f"/v1/experiments/{experiment['experiment_id']}/stop")


def _ask(client, user, experiment_id, exclude):
    """The user's top 10 once it carries the experiment (serving's cache may still lack it)."""
    deadline = time.monotonic() + CACHE_SECONDS
    query = f"&exclude={','.join(exclude)}" if exclude else ""
    while True:
        body = client.call("GET", f"/v1/users/{user}/recommendations?k=10{query}")
        assert body["recommendation_id"]
        if (body.get("experiment") or {}).get("experiment_id") == experiment_id:
            return body
        assert time.monotonic() < deadline, f"serving did not pick {experiment_id} up: {body.get('experiment')}"
        time.sleep(0.5)


def _unattributed(client, day):
    return client.call("GET", f"/v1/metrics/recommendations?from={day}&to={day}&by=strategy")["unattributed_events"]


def test_an_experiment_counts_every_answer_and_click_exactly_once(trained_shop):
    client, _, files = trained_shop
    _stop_running(client)
    status, error = client.request("POST", "/v1/experiments", {"name": "bad shares", "arms": [
        {"name": "control", "share": 0.5, "strategy": "popular"},
        {"name": "treatment", "share": 0.3, "strategy": "personalized"}]})
    assert status == 422 and "sum to 1" in error["error"]["message"]
    experiment = client.call("POST", "/v1/experiments", {"name": "e2e popular vs personalized", "arms": ARMS},
                             expect=(201,))
    experiment_id = experiment["experiment_id"]
    try:
        assert experiment["status"] == "running"
        status, error = client.request("POST", "/v1/experiments", {"name": "second", "arms": ARMS})
        assert status == 409 and experiment_id in error["error"]["message"]

        # A few dozen customers of the trained shop (not the one the customer tests erase).
        counts = defaultdict(lambda: {"recommendations": 0, "clicks": 0})
        events = []
        now = int(time.time() * 1000)
        # Each answer without the items clicked before it: every click is on another item, so the
        # clicks make no item trend (test_recommend_http expects its own burst to lead).
        for user in _users(files)[10:46]:
            body = _ask(client, user, experiment_id, [e["item_id"] for e in events])
            arm = body["experiment"]["arm"]
            assert arm in ("control", "treatment") and body["items"]
            assert body["strategy"] == ("popular" if arm == "control" else "personalized")
            counts[arm]["recommendations"] += 1
            counts[arm]["clicks"] += 1
            events.append({"user_id": user, "item_id": body["items"][0]["item_id"], "timestamp": now,
                           "event_type": "click", "recommendation_id": body["recommendation_id"]})
        assert set(counts) == {"control", "treatment"}
        assert len({e["item_id"] for e in events}) == len(events)
        events = events + [dict(e) for e in events]
        random.Random(0).shuffle(events)
        answer = client.call("POST", "/v1/events", {"events": events})
        assert answer["rows_rejected"] == 0, answer

        # Served answers reach IngestFunction through the log subscription, asynchronously: poll.
        deadline = time.monotonic() + 30
        while True:
            result = client.call("GET", f"/v1/experiments/{experiment_id}")
            arms = {a["name"]: a for a in result["results"]["arms"]}
            got = {name: {"recommendations": a["recommendations"], "clicks": a["clicks"]} for name, a in arms.items()}
            if got == dict(counts) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert got == dict(counts)
        for name, arm in arms.items():
            assert arm["customers"] == counts[name]["recommendations"]  # one visit per customer
            assert arm["ctr"] == 1.0 and arm["conversions"] == 0
        assert result["results"]["test"].startswith("mSPRT") and result["results"]["verdict"]

        # A click naming a recommendation that was never served is stored, and shown as unattributed.
        day = datetime.fromtimestamp(now / 1000, UTC).date().isoformat()
        before = _unattributed(client, day)
        unknown = f"{now:012x}{secrets.token_hex(8)}"
        stored = client.call("POST", "/v1/events", {"events": [
            {"user_id": _users(files)[10], "item_id": events[0]["item_id"], "timestamp": now,
             "event_type": "click", "recommendation_id": unknown}]})
        assert stored["rows_stored"] == 1
        assert _unattributed(client, day) == before + 1
        assert client.call("GET", f"/v1/experiments/{experiment_id}")["results"]["arms"] == result["results"]["arms"]
    finally:
        stopped = client.call("POST", f"/v1/experiments/{experiment_id}/stop")
    assert stopped["status"] == "stopped" and stopped["stopped_at"]
    # Within serving's cache period the answers stop carrying the experiment.
    deadline = time.monotonic() + CACHE_SECONDS
    while "experiment" in client.call("GET", f"/v1/users/{_users(files)[10]}/recommendations?k=10"):
        assert time.monotonic() < deadline, "serving still assigns customers to the stopped experiment"
        time.sleep(0.5)
