"""`make demo`: Tailor end to end on the local stack, with data it generates itself.

Starts the local stack (moto for S3 and DynamoDB, the real handlers behind
http://127.0.0.1:3000), generates a shop's data, sends it through the public API, and narrates
what happens. No AWS account, no Docker.
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import socket
import sys
import time
from pathlib import Path

from infra.client import TailorClient
from infra.datagen import PRESETS, generate
from infra.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def say(text: str = "") -> None:
    print(f"   {text}", flush=True)


def num(value, spec: str = ".3f") -> str:
    """A metric as text, "n/a" when a training result does not carry it (fields evolve)."""
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "n/a"


def metric(metrics: dict, *names: str):
    """The first of several spellings of a metric that is present (e.g. "ndcg@10" or "ndcg")."""
    for name in names:
        if isinstance(metrics, dict) and metrics.get(name) is not None:
            return metrics[name]
    return None


def free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def ingest_files(client: TailorClient, files: dict) -> None:
    step("Bulk upload: POST /v1/uploads for a presigned URL, PUT the file, S3 event -> IngestFunction")
    for dataset in ("items", "users", "interactions", "reviews"):
        path = Path(files[dataset])
        started = time.perf_counter()
        key = client.upload(dataset, path)
        entry = client.wait_for_ingest(key, dataset)
        say(f"{dataset:<12} {path.name:<17} {path.stat().st_size / 1024:8.0f} KB -> {entry['status']}: "
            f"{entry.get('rows_stored', 0):,} rows stored, {entry.get('rows_rejected', 0)} rejected "
            f"({time.perf_counter() - started:.1f} s)")


def realtime_and_bad_input(client: TailorClient) -> None:
    step("Real-time events: POST /v1/events (a batch with one broken record)")
    events = [{"user_id": "u00001", "item_id": "i0001", "timestamp": "2026-11-28T09:00:00Z", "event_type": "view"},
              {"user_id": "u00002", "item_id": "i0002", "timestamp": 1795856400, "event_type": "purchase", "value": 19.9},
              {"user_id": "u00003", "timestamp": "yesterday"}]
    status, body = client.request("POST", "/v1/events", {"events": events})
    say(f"HTTP {status}: {body['rows_stored']} stored, {body['rows_rejected']} rejected")
    for reject in body.get("reject_samples", []):
        say(f"  rejected record {reject['row']}: {reject['reason']}")
    status, body = client.request("POST", "/v1/events", {"events": events})
    say(f"the same batch again -> HTTP {status}, {body['status']}: {body.get('message')}")
    status, body = client.request("POST", "/v1/events", raw=b"{oops")
    say(f"malformed JSON -> HTTP {status}: {body['error']['message'][:70]}")


def summary(client: TailorClient) -> None:
    step("GET /v1/datasets")
    for d in client.call("GET", "/v1/datasets")["datasets"]:
        say(f"{d['name']:<12} {d['rows_stored']:>8,} rows stored {d['rows_rejected']:>4} rejected   "
            f"last ingest {d['last_ingest']}")


def train_models(client: TailorClient) -> None:
    step("Training both models: POST /v1/training-jobs (no body = every model with data; asynchronous)")
    job = client.call("POST", "/v1/training-jobs", {})
    say(f"HTTP 202, job {job['job_id']} ({', '.join(job['models'])}) is {job['status']}; "
        f"following GET /v1/training-jobs/{job['job_id']}")
    started = time.perf_counter()
    job = client.wait_for_job(job["job_id"], on_progress=lambda line: say("  " + line.split(" ", 1)[1]))
    say(f"job {job['status']} in {time.perf_counter() - started:.0f} s")
    if job["status"] != "SUCCEEDED":
        raise SystemExit(f"training failed: {job.get('error')}")
    results = job.get("results") or {}
    rec = results.get("recommender")
    if rec:
        m = rec.get("metrics") or {}
        step(f"Recommender {rec.get('version')}: {rec.get('decision')}")
        if rec.get("served") or m.get("served"):
            say(f"serving: {rec.get('served') or m.get('served')}")
        say(f"{'validation (newest 20% per user)':<34} {'P@10':>6} {'R@10':>6} {'NDCG@10':>8}")
        say(f"{'Tailor (two towers)':<34} {num(metric(m, 'precision@10', 'precision')):>6} "
            f"{num(metric(m, 'recall@10', 'recall')):>6} {num(metric(m, 'ndcg@10', 'ndcg')):>8}")
        for name, b in (m.get("baselines") or {}).items():
            if isinstance(b, dict):
                say(f"{name:<34} {num(metric(b, 'precision', 'precision@10')):>6} "
                    f"{num(metric(b, 'recall', 'recall@10')):>6} {num(metric(b, 'ndcg', 'ndcg@10')):>8}")
        if rec.get("report"):
            say(f"report: s3://<data bucket>/{rec['report']}report.md (+ metrics.png)")
    sent = results.get("sentiment")
    if sent:
        m = sent.get("metrics") or {}
        step(f"Sentiment {sent.get('version')}: {sent.get('decision')}")
        calibration = (m.get("calibration") or {}).get("expected_calibration_error")
        say(f"validation accuracy {num(m.get('accuracy'))} (majority class {num(m.get('majority_baseline_accuracy'))}), "
            f"balanced accuracy {num(m.get('balanced_accuracy'))}, macro-F1 {num(m.get('macro_f1'))}, "
            f"calibration error {num(calibration)}")
        if sent.get("report"):
            say(f"report: s3://<data bucket>/{sent['report']}report.md (+ calibration.png)")


def first_users(files: dict, count: int = 3) -> list[str]:
    """The first customers of the generated interactions file (the demo shows these)."""
    with open(files["interactions"], encoding="utf-8") as handle:
        return list(dict.fromkeys(row["user_id"] for row in csv.DictReader(handle)))[:count]


def recommendations(client: TailorClient, files: dict) -> None:
    users = first_users(files)
    for user in users:
        step(f"GET /v1/users/{user}/recommendations?k=5")
        body = client.call("GET", f"/v1/users/{user}/recommendations?k=5")
        for item in body["items"]:
            say(f"{str(item.get('title') or item['item_id'])[:38]:<38} {num(item.get('score'), '7.2f')}  "
                f"{str(item.get('reason') or '')[:60]}")
        if body.get("note"):
            say(f"note: {body['note']}")
    step("GET /v1/users/a-new-visitor/recommendations?k=3 (unknown user)")
    body = client.call("GET", "/v1/users/a-new-visitor/recommendations?k=3")
    say(f"strategy: {body['strategy']}" + (f" ({body['note']})" if body.get("note") else ""))
    for item in body["items"]:
        say(f"{str(item.get('title') or item['item_id'])[:38]:<38} {item.get('reason') or ''}")
    with open(files["items"], encoding="utf-8") as handle:
        item = next(csv.DictReader(handle))
    step(f"GET /v1/items/{item['item_id']}/similar?k=5  ({item['title']})")
    for similar in client.call("GET", f"/v1/items/{item['item_id']}/similar?k=5")["items"]:
        say(f"{str(similar.get('title') or similar['item_id'])[:50]:<50} {num(similar.get('score'), '.2f')}")
    status, body = client.request("GET", f"/v1/users/{users[0]}/recommendations?k=0")
    say(f"k=0 -> HTTP {status}: {body['error']['message'][:70]}")


def live(client: TailorClient, files: dict) -> None:
    """What a website's events change at once: a new visitor's recommendations, trending, and a
    promotion (no retraining)."""
    with open(files["items"], encoding="utf-8") as handle:
        items = list(csv.DictReader(handle))
    now = int(time.time() * 1000)
    step("A visitor new since training clicks 3 items, one POST /v1/events each")
    for n, item in enumerate(items[5:8]):
        client.call("POST", "/v1/events", {"events": [
            {"user_id": "visitor-1", "item_id": item["item_id"], "timestamp": now - (3 - n) * 1000, "event_type": "view"}]})
        say(f"clicked {item['title'][:50]}")
    body = client.call("GET", "/v1/users/visitor-1/recommendations?k=3")
    say(f"strategy: {body['strategy']}" + (f" ({body['note']})" if body.get("note") else ""))
    for item in body["items"]:
        say(f"{str(item.get('title') or item['item_id'])[:38]:<38} {item.get('reason') or ''}")
    burst = items[-1]
    step(f"A burst of 6 events on {burst['title'][:40]}, then GET /v1/trending?window=1h&k=3")
    for n in range(6):
        client.call("POST", "/v1/events", {"events": [
            {"user_id": f"shopper-{n}", "item_id": burst["item_id"], "timestamp": now - n * 500, "event_type": "view"}]})
    for item in client.call("GET", "/v1/trending?window=1h&k=3")["items"]:
        say(f"{str(item.get('title') or item['item_id'])[:38]:<38} {item.get('reason') or ''}")
    category = (items[0].get("categories") or "").split("|")[0]
    if not category:
        return
    step(f"POST /v1/promotions: 20% of the slots for {category} (serving picks it up within 30 s)")
    promotion = client.call("POST", "/v1/promotions", {"name": f"{category} week", "category": category, "share": 0.2})
    say(f"HTTP 201, {promotion['promotion_id']} is {promotion['status']}")
    status, body = client.request("POST", "/v1/promotions", {"name": "x", "category": category, "share": 1.5})
    say(f"share 1.5 -> HTTP {status}: {body['error']['message'][:70]}")
    client.call("DELETE", f"/v1/promotions/{promotion['promotion_id']}")


def experiment(client: TailorClient, stack, files: dict) -> None:
    """An A/B experiment with simulated shoppers: bestsellers (control) against the model. A
    shopper clicks a listed item of the category they chose most often (their history), the item
    first and then once more (a resent event), and buys one in five clicked items."""
    with open(files["items"], encoding="utf-8") as handle:
        category_of = {row["item_id"]: (row.get("categories") or "").split("|")[0] for row in csv.DictReader(handle)}
    favourite: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with open(files["interactions"], encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            favourite[row["user_id"]][category_of.get(row["item_id"], "")] += 1
    shoppers = sorted(u for u, counts in favourite.items() if counts)[:300]
    step("An A/B experiment: POST /v1/experiments, bestsellers (control) against the model, 50/50")
    running = [e for e in client.call("GET", "/v1/experiments")["experiments"] if e["status"] == "running"]
    for old in running:
        client.call("POST", f"/v1/experiments/{old['experiment_id']}/stop")
    created = client.call("POST", "/v1/experiments", {"name": "Homepage", "arms": [
        {"name": "bestsellers", "share": 0.5, "strategy": "popular"}, {"name": "model", "share": 0.5}]})
    status, body = client.request("POST", "/v1/experiments", {"name": "again", "arms": [
        {"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}]})
    say(f"HTTP 201, {created['experiment_id']}; shares 0.5 + 0.4 -> HTTP {status}: {body['error']['message'][:60]}")
    time.sleep(31)  # serving reads the running experiment once per container every 30 s
    rng, events, now = random.Random(0), [], int(time.time() * 1000)
    for user in shoppers:
        answer = client.call("GET", f"/v1/users/{user}/recommendations?k=5")
        liked = favourite[user].most_common(1)[0][0]
        for item in answer["items"]:
            if category_of.get(item["item_id"]) == liked and rng.random() < 0.5:
                click = {"user_id": user, "item_id": item["item_id"], "timestamp": now, "event_type": "click",
                         "recommendation_id": answer["recommendation_id"]}
                events += [click, click]
                if rng.random() < 0.2:
                    events.append({**click, "event_type": "purchase", "value": 20.0})
    rng.shuffle(events)
    for start in range(0, len(events), 500):
        client.call("POST", "/v1/events", {"events": events[start:start + 500]})
    stack.drain_logs()
    say(f"{len(shoppers)} shoppers asked for 5 items; {len(events)} events sent (each click twice, shuffled)")
    result = client.call("GET", f"/v1/experiments/{created['experiment_id']}")["results"]
    for arm in result["arms"]:
        low, high = arm["ctr_interval"] or (0, 0)
        say(f"{arm['name']:<12} {arm['customers']:>4} customers {arm['recommendations']:>4} recommendations "
            f"{arm['clicks']:>4} clicks  CTR {num(arm['ctr'])} ({num(low)}-{num(high)})  "
            f"{arm['conversions']} conversions, revenue {arm['revenue']}")
    say(f"verdict ({result['test'].split(' (')[0]}): {result['verdict']}")
    client.call("POST", f"/v1/experiments/{created['experiment_id']}/stop")
    by_strategy = client.call("GET", "/v1/metrics/recommendations?by=strategy")
    say("GET /v1/metrics/recommendations?by=strategy: " + ", ".join(
        f"{g['key']} {g['recommendations']} served, CTR {num(g['ctr'])}" for g in by_strategy["groups"]))


def score_texts(client: TailorClient) -> None:
    step("Scoring texts: POST /v1/sentiment")
    texts = ["Absolutely love it, great quality and fast delivery!",
             "Broke after two days. Waste of money.",
             "质量很好，物流也很快，非常满意",
             "太失望了，质量很差",
             "It arrived on Tuesday.",
             "   "]
    body = client.call("POST", "/v1/sentiment", {"texts": texts})
    for text, r in zip(texts, body["results"]):
        note = f"  ({r['note']})" if r.get("note") else ""
        source = f" {r['source']}" if r.get("source") else ""
        say(f"{r['label']:<8} {num(r.get('score'), '+.2f')} [{r.get('language')}{source}]  "
            f"{text.strip()[:50]!r}{note}")
    status, error = client.request("POST", "/v1/sentiment", {"texts": ["x"] * 101})
    say(f"101 texts -> HTTP {status}: {error['error']['message']}")


def item_sentiment(client: TailorClient, files: dict) -> None:
    from collections import Counter

    with open(files["reviews"], encoding="utf-8") as handle:
        item_id = Counter(row["item_id"] for row in csv.DictReader(handle)).most_common(1)[0][0]
    step(f"What reviewers say about the most reviewed product: GET /v1/items/{item_id}/sentiment")
    s = client.call("GET", f"/v1/items/{item_id}/sentiment")
    say(f"{s.get('reviews')} reviews, mean score {num(s.get('mean_score'), '+.2f')}, "
        f"{num(s.get('share_positive'), '.0%')} positive, {num(s.get('share_negative'), '.0%')} negative, "
        f"trend: {s.get('direction', 'n/a')}")
    for month in s.get("trend") or []:
        say(f"  {month['month']}  {month['count']:>3} reviews  mean {num(month.get('mean_score'), '+.2f')}")


def customers(client: TailorClient, files: dict) -> None:
    users = first_users(files)
    for user in users:
        step(f"GET /v1/users/{user}/profile")
        p = client.call("GET", f"/v1/users/{user}/profile")
        a = p["activity"]
        tastes = ", ".join(f"{c['category']} ({num(c.get('affinity'), '.1f')}x)" for c in p.get("top_categories", [])[:3])
        declared = ", ".join(f"{k} {v}" for k, v in (p.get("attributes") or {}).items())
        say(f"{a.get('events')} events since {str(a.get('first_seen'))[:10]}, last seen "
            f"{num(a.get('recency_days'), '.0f')} days ago; {num(a.get('frequency_per_month'), '.1f')} per month")
        say(f"tastes: {tastes or 'none known'}")
        say(f"declared: {declared or 'nothing'}")
        if p.get("sentiment"):
            say(f"reviews: {p['sentiment'].get('reviews')}, mean score {num(p['sentiment'].get('mean_score'), '+.2f')}")
        say(f"segment: {(p.get('segment') or {}).get('name')}")
    step("GET /v1/segments")
    body = client.call("GET", "/v1/segments")
    criterion = body["criterion"]
    say(f"{len(body['segments'])} segments of {body['users']:,} customers, chosen by {criterion.get('name')}"
        + (f"; {criterion['size_rule']}" if criterion.get("size_rule") else ""))
    for s in body["segments"]:
        say(f"{s['segment_id']:<4} {s['size']:>5}  {s['name'][:90]}")
    if body["segments"]:
        say(f"{body['segments'][0]['segment_id']}: {body['segments'][0]['description']}")
    with open(files["items"], encoding="utf-8") as handle:
        category = next(csv.DictReader(handle))["categories"].split("|")[0]
    step(f'POST /v1/audiences {{"category": "{category}", "size": 5, "export": true}}')
    body = client.call("POST", "/v1/audiences", {"category": category, "size": 5, "export": True})
    for u in body["users"]:
        say(f"{u['user_id']:<10} {num(u.get('score'))}")
    say(f"CSV export: {body['export_key']} (download URL valid {body['expires_in'] // 60} minutes)")


def main() -> int:
    parser = argparse.ArgumentParser(description="Tailor end to end on the local stack")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--out", default=str(ROOT / "demo-data"))
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()

    step(f"Generating a shop's data (preset '{args.preset}', seed 0) into {args.out}")
    started = time.perf_counter()
    files = generate(Path(args.out), seed=0, **PRESETS[args.preset])
    for name, path in sorted(files.items()):
        lines = sum(1 for _ in open(path, encoding="utf-8")) - 1
        say(f"{name:<12} {lines:>7,} rows  {path}")
    say(f"({time.perf_counter() - started:.1f} s)")

    port = args.port if free(args.port) else 0
    step("Starting the local stack (moto S3 + DynamoDB, handlers from template.yaml)")
    with LocalStack(ROOT / "template.yaml", port=port, moto_port=0) as stack:
        say(f"API on {stack.url}")
        client = TailorClient(stack.url)
        ingest_files(client, files)
        realtime_and_bad_input(client)
        summary(client)
        train_models(client)
        recommendations(client, files)
        live(client, files)
        experiment(client, stack, files)
        customers(client, files)
        score_texts(client)
        item_sentiment(client, files)
        step("Done")
        say("Explore it yourself: `make local`, then e.g. curl http://127.0.0.1:3000/v1/datasets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
