"""`make demo` narration (infra/demo.py) keeps working when answers gain or lose optional fields:
reasons that are null, notes, sentiment sources, new metric names, missing calibration."""

from __future__ import annotations

import csv

from infra import demo


class FakeClient:
    def __init__(self, answers: dict):
        self.answers = answers

    def _answer(self, method: str, path: str):
        for (m, prefix), body in self.answers.items():
            if m == method and path.startswith(prefix):
                return body
        raise AssertionError(f"unexpected {method} {path}")

    def call(self, method, path, body=None):
        return self._answer(method, path)

    def request(self, method, path, body=None, raw=None):
        return 422, {"error": {"message": "k must be between 1 and 100"}}

    def wait_for_job(self, job_id, on_progress=None):
        return self._answer("JOB", job_id)


def files(tmp_path):
    paths = {}
    for name, header, row in (("interactions", ["user_id", "item_id"], ["u1", "i1"]),
                              ("items", ["item_id", "title", "categories"], ["i1", "Boot", "Shoes|Boots"]),
                              ("reviews", ["item_id", "text"], ["i1", "ok"])):
        paths[name] = tmp_path / f"{name}.csv"
        with open(paths[name], "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([header, row])
    return paths


def test_demo_survives_new_missing_and_null_fields(tmp_path, capsys):
    shop = files(tmp_path)
    client = FakeClient({
        ("POST", "/v1/training-jobs"): {"job_id": "j1", "models": ["recommender", "sentiment"], "status": "QUEUED"},
        ("JOB", "j1"): {"status": "SUCCEEDED", "results": {
            "recommender": {"version": "v1", "decision": "EASE 0.785 beats the two-tower model 0.659: serving EASE",
                            "served": "ease", "metrics": {"ndcg": 0.7, "baselines": {"EASE": {"ndcg@10": 0.785}}}},
            "sentiment": {"version": "v2", "decision": "promoted", "metrics": {"balanced_accuracy": 0.8}}}},
        ("GET", "/v1/users/a-new-visitor"): {"strategy": "popular", "items": [{"item_id": "i1", "reason": None}]},
        ("GET", "/v1/users/u1/recommendations"): {"strategy": "personalized", "note": "only 1 item qualifies",
                                                  "items": [{"item_id": "i1", "score": -0.3, "reason": None}]},
        ("GET", "/v1/items/i1/similar"): {"items": [{"item_id": "i2", "title": "Sandal", "score": 0.4}]},
        ("GET", "/v1/users/u1/profile"): {"activity": {"events": 2, "first_seen": "2024-01-01T00:00:00Z",
                                                       "recency_days": 3, "frequency_per_month": 1.0},
                                          "top_categories": [], "attributes": {}, "sentiment": None,
                                          "segment": {"name": "Critical raters, unhappy reviewers"}},
        ("GET", "/v1/segments"): {"users": 1, "criterion": {"name": "silhouette", "size_rule": "rule"},
                                  "segments": [{"segment_id": "s1", "size": 1, "name": "Typical customers",
                                                "description": "1 customers (100% of the base)."}]},
        ("POST", "/v1/audiences"): {"users": [{"user_id": "u1", "score": 0.1}], "export_key": "k", "expires_in": 3600},
        ("POST", "/v1/sentiment"): {"results": [{"label": "NEGATIVE", "score": -0.8, "language": "zh",
                                                 "source": "prior", "note": "no Chinese training data"}] * 6},
        ("POST", "/v1/events"): {"rows_stored": 1, "rows_rejected": 0, "status": "stored"},
        ("GET", "/v1/users/visitor-1"): {"strategy": "personalized", "items": [{"item_id": "i2", "reason": None}]},
        ("GET", "/v1/trending"): {"strategy": "trending", "window": "1h", "items": [
            {"item_id": "i1", "title": "Boot", "reason": "trending: 6 interactions in the last hour, none before"}]},
        ("POST", "/v1/promotions"): {"promotion_id": "p1", "status": "active"},
        ("DELETE", "/v1/promotions/p1"): {"promotion_id": "p1", "deleted": True},
    })
    demo.train_models(client)
    demo.recommendations(client, shop)
    demo.live(client, shop)
    demo.customers(client, shop)
    demo.score_texts(client)
    out = capsys.readouterr().out
    assert "serving EASE" in out and "0.785" in out and "n/a" in out
    assert "only 1 item qualifies" in out and "None" not in out.replace("none known", "")
    assert "Critical raters, unhappy reviewers" in out and "prior" in out and "no Chinese training data" in out
    assert "trending: 6 interactions in the last hour" in out and "20% of the slots for Shoes" in out
