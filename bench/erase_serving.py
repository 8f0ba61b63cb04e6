"""Erase on the next request, on the local stack: what the serving stamp costs and that it works.

1. Starts the local stack (template.yaml, moto, handlers in worker processes), uploads a
   generated small shop (``infra.realshop``, kitchen), trains the recommender.
2. Warm: sequential ``GET /v1/users/{id}/recommendations`` and ``POST .../rankings``; the
   handlers' own ``Latency`` metric (EMF) gives handler p50/p99 *with* the per-request stamp read.
3. The stamp read alone: the same consistent DynamoDB GetItem the handler makes
   (``SERVING#recommender`` / ``STAMP``), timed against the stack's moto server from here.
4. Erase: every test user is asked once (all workers warm), one user is erased through
   ``DELETE /v1/users/{id}``, and that user's very next recommendation and ranking requests are
   recorded (strategy, seconds after the erase answered).

    python -m bench.erase_serving [--requests 300]

Writes bench/results/erase_serving.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import save_results
from bench.load import EmfCollector

ROOT = Path(__file__).resolve().parents[1]


def _percentiles(values: list[float]) -> dict:
    ms = np.array(values)
    return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.erase_serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="warm requests per route (default 300)")
    args = parser.parse_args(argv)

    import boto3

    from infra import realshop
    from infra.client import TailorClient
    from infra.local_stack import LocalStack

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    collector = EmfCollector()
    log = logging.getLogger("infra.local.RecommendFunction")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(collector)

    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack, tempfile.TemporaryDirectory() as tmp:
        client = TailorClient(stack.url, timeout=120)
        files = realshop.generate(Path(tmp), domain="kitchen", seed=0)
        for name in ("items", "interactions"):
            client.wait_for_ingest(client.upload(name, files[name]), name)
        job = client.wait_for_job(client.call("POST", "/v1/training-jobs", {"models": ["recommender"]})["job_id"],
                                  timeout=1800)
        if job["status"] != "SUCCEEDED":
            raise SystemExit(f"training failed: {job.get('error')}")
        if not client.call("GET", "/v1/models")["models"][0].get("current_version"):
            raise SystemExit(f"no recommender promoted: {job['results']['recommender']['decision']}")
        with open(files["interactions"], encoding="utf-8") as handle:
            users = sorted({r["user_id"] for r in csv.DictReader(handle)})
        items = [r["item_id"] for r in csv.DictReader(open(files["items"], encoding="utf-8"))][:5]

        for user in users[:20]:  # warm the workers
            client.call("GET", f"/v1/users/{user}/recommendations?k=10")
        collector.capture = True
        for n in range(args.requests):
            user = users[n % len(users)]
            client.call("GET", f"/v1/users/{user}/recommendations?k=10")
            client.call("POST", f"/v1/users/{user}/rankings", {"item_ids": items})
        time.sleep(0.5)
        collector.capture = False
        handler = collector.summary()

        health = client.call("GET", "/__local/health")
        table = boto3.resource("dynamodb", endpoint_url=health["moto_url"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing"
                               ).Table(next(iter(health["tables"].values())))
        reads = []
        for _ in range(args.requests):
            began = time.perf_counter()
            table.get_item(Key={"pk": "SERVING#recommender", "sk": "STAMP"}, ConsistentRead=True)
            reads.append((time.perf_counter() - began) * 1000)

        target = users[len(users) // 2]
        before = client.call("GET", f"/v1/users/{target}/recommendations?k=10")["strategy"]
        for user in users[:40]:  # every worker has the model loaded
            client.call("GET", f"/v1/users/{user}/recommendations?k=10")
        report = client.call("DELETE", f"/v1/users/{target}")
        erased = time.perf_counter()
        after = client.call("GET", f"/v1/users/{target}/recommendations?k=10")["strategy"]
        after_seconds = time.perf_counter() - erased
        ranked = client.call("POST", f"/v1/users/{target}/rankings", {"item_ids": items})["strategy"]

    result = {"shop": {"generator": "infra.realshop", "domain": "kitchen", "seed": 0, "users": len(users)},
              "handler_with_stamp_check": handler, "stamp_read_from_client": _percentiles(reads),
              "erase": {"strategy_before": before, "pointer_revision": report["models"]["pointer_revision"],
                        "next_recommendation_strategy": after, "seconds_after_erase": round(after_seconds, 3),
                        "next_ranking_strategy": ranked}}
    lines = ["# Erase on the next request (local stack)", "",
             f"Shop: infra.realshop kitchen, seed 0, {len(users)} customers; recommender trained through the API.", "",
             "| handler (own Latency metric, stamp read included) | invocations | p50 | p99 |", "|---|---|---|---|"]
    for route, h in handler.items():
        lines.append(f"| {route} | {h['invocations']} | {h['p50_ms']} ms | {h['p99_ms']} ms |")
    s = result["stamp_read_from_client"]
    e = result["erase"]
    lines += ["", f"The stamp read alone (consistent GetItem against the stack's moto, {s['n']} reads): "
                  f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms.", "",
              f"Erase: before `{e['strategy_before']}`; DELETE bumped the pointer to revision {e['pointer_revision']}; "
              f"the next recommendation request ({e['seconds_after_erase']} s later) "
             f"answered `{e['next_recommendation_strategy']}`, "
              f"the next ranking `{e['next_ranking_strategy']}`."]
    save_results("erase_serving", result, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
