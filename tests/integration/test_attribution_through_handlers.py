"""The closed loop through the handlers on moto: RecommendFunction prints what it served, the
subscription delivery (the canonical `sam local generate-event cloudwatch logs` event carrying
those lines) reaches IngestFunction, click events come through POST /v1/events and the
experiment's results and the metrics count each exactly once, in either order."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import random
import time

from harness import EVENTS, LambdaContext, call, load_handler

from tailor import bootstrap
from tests.fixtures.synthetic import promote_version, recommender_files

USERS = [f"u{i}" for i in range(30)]
ITEMS = [f"i{i}" for i in range(12)]
CATEGORIES = {item: ["books"] for item in ITEMS}


def recommendations(user: str) -> dict:
    status, body = call("recommend", "GET", f"/v1/users/{user}/recommendations",
                        resource="/v1/users/{user_id}/recommendations", path_params={"user_id": user},
                        query={"k": "3"})
    assert status == 200, body
    return body


def deliver(lines: list[str]) -> dict:
    """The canonical subscription event with `lines` as its log events, to IngestFunction."""
    event = copy.deepcopy(json.loads((EVENTS / "cloudwatch_logs.json").read_text()))
    payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    payload["logEvents"] = [{"id": str(n), "timestamp": int(time.time() * 1000), "message": line + "\n"}
                            for n, line in enumerate(lines)]
    event["awslogs"]["data"] = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return load_handler("ingest")(event, LambdaContext())


def test_served_clicked_attributed_and_counted_once(aws, capsys):
    promote_version(bootstrap.model_registry(), "recommender", "v1", recommender_files(USERS, ITEMS, CATEGORIES))
    status, experiment = call("ingest", "POST", "/v1/experiments", {"name": "home", "arms": [
        {"name": "control", "share": 0.5, "strategy": "popular"}, {"name": "treatment", "share": 0.5}]})
    assert status == 201, experiment
    capsys.readouterr()
    answers = [recommendations(user) for user in USERS]
    served_lines = [line for line in capsys.readouterr().out.splitlines() if '"record":"recommendation"' in line]
    assert len(served_lines) == len(USERS)
    assert all(a["experiment"]["experiment_id"] == experiment["experiment_id"] for a in answers)

    # Half the clicks arrive before their recommendation is recorded, half after; each twice, shuffled.
    now = int(time.time() * 1000)
    clicks = [{"user_id": user, "item_id": answer["items"][0]["item_id"], "timestamp": now, "event_type": "click",
               "recommendation_id": answer["recommendation_id"]} for user, answer in zip(USERS, answers)]
    early, late = clicks[::2] * 2, clicks[1::2] * 2
    random.Random(1).shuffle(early)
    status, stored = call("ingest", "POST", "/v1/events", {"events": early})
    assert status == 200 and stored["rows_stored"] == len(early)
    assert deliver(served_lines)["recommendations_recorded"] == len(USERS)
    assert deliver(served_lines[:5])["deliveries_repeated"] == 5  # delivered again: not counted again
    for event in late:  # one request each: duplicates do not meet in one batch
        assert call("ingest", "POST", "/v1/events", {"events": [event]})[0] == 200
    unknown = {"user_id": "u1", "item_id": "i1", "timestamp": now, "event_type": "click", "recommendation_id": "gone"}
    status, stored = call("ingest", "POST", "/v1/events", {"events": [unknown]})
    assert status == 200 and stored["rows_stored"] == 1  # stored as an ordinary event, never refused

    status, result = call("ingest", "GET", f"/v1/experiments/{experiment['experiment_id']}",
                          resource="/v1/experiments/{experiment_id}")
    assert status == 200, result
    arms = {arm["name"]: arm for arm in result["results"]["arms"]}
    expected = {name: sum(a["experiment"]["arm"] == name for a in answers) for name in ("control", "treatment")}
    assert {name: (arm["recommendations"], arm["clicks"]) for name, arm in arms.items()} == \
        {name: (count, count) for name, count in expected.items()}
    status, metrics = call("ingest", "GET", "/v1/metrics/recommendations", query={"by": "arm"})
    assert status == 200 and sum(g["recommendations"] for g in metrics["groups"]) == len(USERS)
    assert all(g["ctr"] == 1.0 for g in metrics["groups"]) and metrics["unattributed_events"] == 1
