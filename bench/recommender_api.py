"""Protocol T1 through the public API only, on the local stack, with baselines side by side.

MovieLens 100K is split as T1 (per user the newest ceil(0.2 n) ratings by (timestamp, item id)
are the test set); the training part and the catalog are uploaded (POST /v1/uploads + PUT),
the recommender is trained (POST /v1/training-jobs), and every user's top 10 is asked over
HTTP (GET /v1/users/{id}/recommendations?k=10, seen items excluded by the API), then scored
here, independently of the service. Popularity and EASE run on the same split in the same run.

    python -m bench.recommender_api [--data ../shared/data]

Writes bench/results/recommender_api.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bench.baselines import ease, popularity
from infra.client import TailorClient
from infra.importers.movielens import import_movielens
from infra.local_stack import LocalStack
from tailor.recommend import evaluation

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def split(ratings_csv: Path, out: Path) -> tuple[list[dict], list[dict]]:
    with open(ratings_csv, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    users = np.array([r["user_id"] for r in rows])
    items = np.array([int(r["item_id"]) for r in rows])
    held = evaluation.temporal_holdout(users, items, np.array([float(r["timestamp"]) for r in rows]), 0.2)
    train = [r for r, h in zip(rows, held) if not h]
    test = [r for r, h in zip(rows, held) if h]
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(train)
    return train, test


def train_t1(stack, folder: Path, tmp: Path) -> tuple[TailorClient, list[dict], list[dict], dict, float]:
    """ml-100k's T1 training part and catalog uploaded to the running local stack and the
    recommender trained through the API: (client, train rows, test rows, the SUCCEEDED job,
    the training job's seconds). Shared by the benches that need a model behind the API."""
    files = import_movielens(folder, tmp / "ml")["files"]
    train_csv = tmp / "t1-train.csv"
    train, test = split(Path(files["interactions"]), train_csv)
    client = TailorClient(stack.url, timeout=120)
    client.wait_for_ingest(client.upload("items", files["items"]), "items")
    entry = client.wait_for_ingest(client.upload("interactions", train_csv), "interactions")
    print(f"uploaded the T1 training part: {entry['rows_stored']:,} interactions", flush=True)
    started = time.perf_counter()
    job = client.call("POST", "/v1/training-jobs", {"models": ["recommender"]})
    job = client.wait_for_job(job["job_id"], timeout=1800, on_progress=lambda line: print("  " + line, flush=True))
    if job["status"] != "SUCCEEDED":
        raise SystemExit(f"training failed: {job.get('error')}")
    return client, train, test, job, time.perf_counter() - started


def baselines(train: list[dict], test: list[dict]) -> dict:
    user_ids = sorted({r["user_id"] for r in train + test})
    item_ids = sorted({r["item_id"] for r in train + test})
    u = {x: i for i, x in enumerate(user_ids)}
    it = {x: i for i, x in enumerate(item_ids)}
    rows = np.array([u[r["user_id"]] for r in train])
    cols = np.array([it[r["item_id"]] for r in train])
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    relevant = [[] for _ in user_ids]
    for r in test:
        relevant[u[r["user_id"]]].append(it[r["item_id"]])
    out = {}
    for name, scores in (("popularity", popularity(matrix)), ("EASE λ=300", ease(matrix, 300.0))):
        top = evaluation.top_k_unseen(np.asarray(scores, dtype=np.float64), matrix.indptr, matrix.indices, 10)
        out[name] = evaluation.ranking_metrics(top, [np.array(r) for r in relevant], len(item_ids), 10)
    return out, u, it, relevant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TAILOR_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()
    folder = Path(args.data) / "ml-100k"
    if not (folder / "u.data").exists():
        raise SystemExit(f"{folder} not found: pass --data")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        client, train, test, job, train_seconds = train_t1(stack, folder, Path(tmp))
        base, users, items, relevant = baselines(train, test)
        top = np.full((len(users), 10), -1, dtype=np.int64)
        latencies, strategies = [], {}
        for user, row in users.items():
            began = time.perf_counter()
            body = client.call("GET", f"/v1/users/{user}/recommendations?k=10")
            latencies.append((time.perf_counter() - began) * 1000)
            strategies[body["strategy"]] = strategies.get(body["strategy"], 0) + 1
            top[row, : len(body["items"])] = [items[i["item_id"]] for i in body["items"]]
    tailor = evaluation.ranking_metrics(top, [np.array(r) for r in relevant], len(items), 10)
    result = job["results"]["recommender"]
    out = {"protocol": "T1 through the public API (local stack)", "tailor": tailor, "baselines": base,
           "strategies": strategies, "promoted": result["promoted"], "decision": result["decision"],
           "training_job_seconds": round(train_seconds, 1),
           "http_latency_ms_median": round(statistics.median(latencies), 2),
           "http_latency_ms_p99": round(float(np.percentile(latencies, 99)), 2)}
    (RESULTS / "recommender_api.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| T1 through the API (ml-100k, every user's top 10 over HTTP) | P@10 | R@10 | NDCG@10 | coverage |",
             "|---|---|---|---|---|"]
    for name, m in [("Tailor", tailor)] + list(base.items()):
        lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['ndcg']:.3f} | {m['coverage']:.3f} |")
    lines.append(f"\nTraining job (upload done → SUCCEEDED, both models): {out['training_job_seconds']} s; "
                 f"GET recommendations over HTTP: median {out['http_latency_ms_median']} ms, "
                 f"p99 {out['http_latency_ms_p99']} ms; strategies {strategies}.")
    (RESULTS / "recommender_api.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
