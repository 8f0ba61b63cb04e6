"""Serving cost at the handler: warm latency of RecommendFunction's handler (API Gateway event in,
response out, model cached in the container) and cold start, set against TensorFlow.

- Warm: `GET /v1/users/{id}/recommendations?k=10` through `functions/recommend/app.py`'s
  handler, against moto, on a synthetic 100,000-item × 64-dim catalog (and any artifact
  folder given with --artifact, e.g. the ml-100k model); every user has 5 events since training,
  so each request also reads them (one Query, moto in-process) and folds them in.
- Recording (what was served, `tailor.attribution.served`): every other request records, in the
  same run; and the recording step alone (build the record, write the line), 5,000 times.
- Cold start (fresh interpreter each time, median of 5): import the handler module and load the
  artifact, against `import tensorflow` plus a Keras scorer of the same shape.

    python -m bench.serving [--artifact DIR]

Writes bench/results/serving.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import save_results
from bench.recommender import synthetic_catalog

ROOT = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}:{ROOT / 'tests' / 'integration'}", "PATH": "/usr/bin:/bin",
       "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}

WARM = r"""
import json, sys, time
from pathlib import Path
import boto3, numpy as np
from harness import BUCKET, LambdaContext, api_event, fresh_account, load_handler

class Env:
    def setenv(self, key, value):
        import os; os.environ[key] = value

folder = Path(sys.argv[1])
with fresh_account(Env()):
    s3 = boto3.client("s3")
    for path in folder.iterdir():
        s3.put_object(Bucket=BUCKET, Key=f"models/recommender/v1/{path.name}", Body=path.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="models/recommender/current.json", Body=json.dumps({"version": "v1"}))
    handler = load_handler("recommend")
    users = json.loads((folder / "users.json").read_text())
    rng = np.random.default_rng(0)
    # Fold-in on every request: each user has 5 events since training (RECENT#, one Query per request).
    from harness import TABLE
    from tailor.recommend.recent import RecentEvents
    from tailor.storage.dynamo import StateTable
    items = json.loads((folder / "items.json").read_text())
    now = int(time.time() * 1000)
    RecentEvents(StateTable(TABLE)).record("interactions", {
        "user_id": [u for u in users for _ in range(5)], "item_id": [str(i) for i in rng.choice(items, 5 * len(users))],
        "timestamp": [now - n for n in range(5 * len(users))]})
    events = [api_event("GET", f"/v1/users/{u}/recommendations", query={"k": "10"},
                        resource="/v1/users/{user_id}/recommendations", path_params={"user_id": u})
              for u in rng.choice(users, 2200)]
    # Recording what was served (one log line on stdout, a pipe as in Lambda) on every other
    # request, interleaved, so both halves see the same machine load.
    from tailor import bootstrap
    from tailor.attribution.served import StdoutLog, served_now
    service = bootstrap.recommend_service()
    times, unrecorded = [], []
    for n, event in enumerate(events):
        service.served_log = StdoutLog() if n % 2 == 0 else None
        began = time.perf_counter()
        response = handler(event, LambdaContext())
        (times if n % 2 == 0 else unrecorded).append((time.perf_counter() - began) * 1000)
        assert response["statusCode"] == 200, response["body"]
    answer = json.loads(response["body"])
    log, costs = StdoutLog(), []
    for _ in range(5000):  # the recording step alone: the record built from the answer, written
        began = time.perf_counter()
        log.write(served_now("user", answer, "0" * 64, None))
        costs.append((time.perf_counter() - began) * 1000)
times, unrecorded = times[50:], unrecorded[50:]  # the first calls load the model
print(json.dumps({"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                  "calls": len(times),
                  "without_recording_p50_ms": float(np.percentile(unrecorded, 50)),
                  "without_recording_p99_ms": float(np.percentile(unrecorded, 99)),
                  "recording_alone_p50_ms": float(np.percentile(costs, 50)),
                  "recording_alone_p99_ms": float(np.percentile(costs, 99))}))
"""

COLD_NUMPY = r"""
import time, sys
began = time.perf_counter()
sys.path.insert(0, sys.argv[2] + "/functions/recommend")
import app
from tailor.recommend.scorer import Recommender
Recommender.load(sys.argv[1])
print(time.perf_counter() - began)
"""

COLD_TF = r"""
import time, sys
began = time.perf_counter()
import numpy as np
import tensorflow as tf
users = tf.Variable(np.load(sys.argv[1] + "/user_vectors.npy"))
items = tf.Variable(np.load(sys.argv[1] + "/item_vectors.npy"))
tf.math.top_k(tf.linalg.matvec(items, users[0]), k=10)
import resource
print(time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def save_artifact(scorer, folder: Path) -> None:
    scorer.artifact.save(folder)
    (folder / "catalog.json").write_text("{}")
    (folder / "users.json").write_text(json.dumps(scorer.user_ids.tolist()[:2000]))
    (folder / "items.json").write_text(json.dumps(list(scorer.item_ids)[:5000]))
    np.save(folder / "user_vectors.npy", scorer.user_matrix)
    np.save(folder / "item_vectors.npy", scorer.item_matrix)


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return done.stdout.strip().splitlines()[-1]


def measure(folder: Path) -> dict:
    warm = json.loads(run(WARM, str(folder)))
    numpy_cold = statistics.median(float(run(COLD_NUMPY, str(folder), str(ROOT))) for _ in range(5))
    tf_runs = [run(COLD_TF, str(folder)).split() for _ in range(5)]
    tf_cold = statistics.median(float(seconds) for seconds, _ in tf_runs)
    tf_rss = statistics.median(float(megabytes) for _, megabytes in tf_runs)  # ru_maxrss is KiB on Linux
    return {**warm, "cold_start_numpy_s": round(numpy_cold, 2), "cold_start_tensorflow_s": round(tf_cold, 2),
            "tensorflow_scorer_peak_rss_mb": round(tf_rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", help="a saved recommender artifact folder (e.g. the ml-100k model)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic"
        save_artifact(synthetic_catalog(), synthetic)
        results["synthetic 100,000 items × 64 dims"] = measure(synthetic)
        if args.artifact:
            from tailor.recommend.scorer import Recommender

            folder = Path(tmp) / "given"
            save_artifact(Recommender.load(args.artifact), folder)
            results[f"artifact {args.artifact}"] = measure(folder)
    lines = ["| RecommendFunction handler, k=10 | warm p50 | warm p99 | cold start (import + load) | "
             "TensorFlow scorer cold start | TensorFlow scorer peak RSS |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['cold_start_numpy_s']} s | "
                     f"{r['cold_start_tensorflow_s']} s | {r['tensorflow_scorer_peak_rss_mb']} MB |")
    lines += ["", "Recording what was served (attribution: one log line per answer), the same run, requests "
              "interleaved with and without it:", "",
              "| | handler p50 | handler p99 | the recording step alone p50 / p99 |", "|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name}: recorded | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                     f"{r['recording_alone_p50_ms'] * 1000:.0f} / {r['recording_alone_p99_ms'] * 1000:.0f} µs |")
        lines.append(f"| {name}: not recorded | {r['without_recording_p50_ms']:.2f} ms | "
                     f"{r['without_recording_p99_ms']:.2f} ms | |")
    save_results("serving", results, "\n".join(lines))


if __name__ == "__main__":
    main()
