"""Customer profiles, segments and audiences on MovieLens 100K, at the handler.

MovieLens 100K (ratings, movies with genres, and `u.user` attributes: age, gender, occupation,
zip) is imported, stored through the ingest service (the S3-event path) in an in-process moto
account, and the recommender training job runs — which builds the profiles and segments. Then:

- segments: the quality criterion for every k tried, the chosen k, sizes (they must sum to the
  number of users), names and descriptions;
- warm handler latency (API Gateway event in, response out, model cached in the container):
  `GET /v1/users/{id}/profile` and `POST /v1/audiences` for 1,000 users (an item, and a
  category), with p50/p99.

Protocol A1 (audience recall@50 with its baselines) is measured on the T1 split by
`python -m bench.recommender`; its rows are quoted here from bench/results/recommender.json.

    python -m bench.customers [--data ../shared/data]

Writes bench/results/customers.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from harness import BUCKET, LambdaContext, api_event, fresh_account, load_handler  # noqa: E402

from bench import RESULTS, save_results  # noqa: E402
from infra.importers.movielens import import_movielens  # noqa: E402

TARGETS = {"profile_p99_ms": 20.0, "audience_p99_ms": 200.0, "A1_recall": 0.350}


class _Env:
    def setenv(self, key, value):
        os.environ[key] = value


def _latency(handler, events: list[dict], warmup: int = 20) -> dict:
    times = []
    for event in events:
        began = time.perf_counter()
        response = handler(event, LambdaContext())
        times.append((time.perf_counter() - began) * 1000)
        assert response["statusCode"] == 200, response["body"]
    times = times[warmup:]
    return {"calls": len(times), "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2)}


def run(data: Path) -> dict:
    from tailor import bootstrap

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp, fresh_account(_Env()):
        files = import_movielens(data / "ml-100k", Path(tmp))["files"]
        s3 = boto3.client("s3")
        started = time.perf_counter()
        for dataset in ("items", "users", "interactions"):
            key = f"incoming/{dataset}/{Path(files[dataset]).name}"
            s3.upload_file(str(files[dataset]), BUCKET, key)
            outcome = bootstrap.ingest_service().ingest_object(key)
            print(f"{dataset}: {outcome.rows_stored:,} rows stored, {outcome.rows_rejected} rejected", flush=True)
        results["ingest_seconds"] = round(time.perf_counter() - started, 1)
        job = bootstrap.training_jobs()
        job.invoke = lambda payload: None
        queued = job.start(["recommender"])
        started = time.perf_counter()
        outcome = load_handler("train")({"job_id": queued["job_id"], "models": ["recommender"]}, LambdaContext())
        results["training_seconds"] = round(time.perf_counter() - started, 1)
        assert outcome["status"] == "SUCCEEDED", bootstrap.training_jobs().get(queued["job_id"])

        profiles = load_handler("profiles")
        segments = json.loads(profiles(api_event("GET", "/v1/segments"), LambdaContext())["body"])
        details = []
        for s in segments["segments"]:
            event = api_event("GET", f"/v1/segments/{s['segment_id']}", resource="/v1/segments/{segment_id}",
                              path_params={"segment_id": s["segment_id"]})
            details.append(json.loads(profiles(event, LambdaContext())["body"]))
        results["segments"] = {"users": segments["users"], "criterion": segments["criterion"],
                               "sizes_sum": sum(s["size"] for s in segments["segments"]),
                               "segments": segments["segments"],
                               "statistics": {d["segment_id"]: d.get("statistics") for d in details}}

        rng = np.random.default_rng(0)
        import csv

        with open(files["interactions"], encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        users = sorted({r["user_id"] for r in rows})
        items = sorted({r["item_id"] for r in rows})
        profile_events = [api_event("GET", f"/v1/users/{u}/profile", resource="/v1/users/{user_id}/profile",
                                    path_params={"user_id": u}) for u in rng.choice(users, 520)]
        results["profile_latency"] = _latency(profiles, profile_events)
        audience_events = [api_event("POST", "/v1/audiences", {"item_id": str(i), "size": 1000, "include_engaged": True})
                           for i in rng.choice(items, 220)]
        results["audience_item_latency"] = _latency(profiles, audience_events)
        sizes = [len(json.loads(profiles(e, LambdaContext())["body"])["users"]) for e in audience_events[:3]]
        results["audience_users_returned"] = sizes
        genres = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Sci-Fi", "Horror", "Children's"]
        category_events = [api_event("POST", "/v1/audiences", {"category": g, "size": 1000, "include_engaged": True})
                           for g in rng.choice(genres, 220)]
        results["audience_category_latency"] = _latency(profiles, category_events)

    recommender_results = RESULTS / "recommender.json"
    if recommender_results.exists():
        results["A1"] = json.loads(recommender_results.read_text()).get("A1")
    return results


def markdown(r: dict) -> str:
    seg = r["segments"]
    crit = seg["criterion"]
    lines = ["# Customers: profiles, segments and audiences (MovieLens 100K)", "",
             f"Ingest {r['ingest_seconds']} s; recommender training incl. profiles and segments "
             f"{r['training_seconds']} s (2 shared cores).", "",
             "## Segments", "",
             f"{len(seg['segments'])} segments of {seg['users']:,} users (sizes sum to {seg['sizes_sum']:,}); "
             f"k chosen by **{crit.get('name')}**: " + json.dumps(crit, ensure_ascii=False)[:600], "",
             "| segment | size | name | description |", "|---|---|---|---|"]
    for s in seg["segments"]:
        lines.append(f"| {s['segment_id']} | {s['size']} | {s['name']} | {s['description']} |")
    lines += ["", "## Handler latency (warm, API Gateway event → response, moto for DynamoDB)", "",
              "| request | calls | p50 ms | p99 ms | target p99 |", "|---|---|---|---|---|",
              f"| GET /v1/users/{{id}}/profile | {r['profile_latency']['calls']} | {r['profile_latency']['p50_ms']} "
              f"| **{r['profile_latency']['p99_ms']}** | ≤ {TARGETS['profile_p99_ms']:.0f} |",
              f"| POST /v1/audiences item, size 1,000 | {r['audience_item_latency']['calls']} | "
              f"{r['audience_item_latency']['p50_ms']} | **{r['audience_item_latency']['p99_ms']}** | "
              f"≤ {TARGETS['audience_p99_ms']:.0f} |",
              f"| POST /v1/audiences category, size 1,000 | {r['audience_category_latency']['calls']} | "
              f"{r['audience_category_latency']['p50_ms']} | **{r['audience_category_latency']['p99_ms']}** | "
              f"≤ {TARGETS['audience_p99_ms']:.0f} |", "",
              f"(ml-100k has 943 users: a 1,000-user audience returns all of them, "
              f"{r['audience_users_returned'][0]} here.)", ""]
    if r.get("A1"):
        lines += ["## A1 — audiences, recall@50 (from `python -m bench.recommender`)", "",
                  "| audience rule | recall@50 |", "|---|---|"]
        lines += [f"| {name} | {value['recall']:.3f} |" for name, value in r["A1"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="folder holding ml-100k/")
    args = parser.parse_args()
    results = run(Path(args.data))
    save_results("customers", results, markdown(results))


if __name__ == "__main__":
    main()
