"""Sentiment through the public API only (protocol S2 over HTTP, on the local stack).

SST-2 `train.tsv`, converted by the importer, is uploaded as labelled reviews
(POST /v1/uploads + PUT), the sentiment model is trained with POST /v1/training-jobs, and the
872 `dev.tsv` sentences are scored with POST /v1/sentiment in batches of 100, each batch twice:
with the model's default NEUTRAL threshold and with `"neutral_threshold"` set in the request
(`--neutral-threshold`, default 0: a 2-class model then always answers POSITIVE or NEGATIVE).
Accuracy is reported by `label` for both (a NEUTRAL answer counts as wrong) and by the sign of
`score`.

    python -m bench.sentiment_api [--data ../shared/data] [--neutral-threshold 0]

Writes bench/results/sentiment_api.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench import save_results
from infra.client import TailorClient
from infra.importers.sentences import import_sentences
from infra.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TAILOR_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--neutral-threshold", type=float, default=0.0,
                        help='the request option "neutral_threshold" for the second scoring pass (default 0)')
    args = parser.parse_args()
    sst2 = Path(args.data) / "sst2"
    if not (sst2 / "train.tsv").exists():
        raise SystemExit(f"{sst2}/train.tsv not found: pass --data")
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        client = TailorClient(stack.url, timeout=120)
        train = import_sentences("sst2", sst2 / "train.tsv", Path(tmp) / "train")["files"]["reviews"]
        dev = import_sentences("sst2", sst2 / "dev.tsv", Path(tmp) / "dev")["files"]["reviews"]
        entry = client.wait_for_ingest(client.upload("reviews", train), "reviews")
        print(f"uploaded SST-2 train: {entry['rows_stored']:,} reviews stored, {entry.get('rows_rejected', 0)} rejected")
        started = time.perf_counter()
        job = client.call("POST", "/v1/training-jobs", {"models": ["sentiment"]})
        job = client.wait_for_job(job["job_id"], timeout=1800, on_progress=lambda line: print("  " + line, flush=True))
        train_seconds = time.perf_counter() - started
        if job["status"] != "SUCCEEDED":
            raise SystemExit(f"training failed: {job.get('error')}")
        with open(dev, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        by_label = by_sign = by_label_option = neutral = 0
        latencies = []
        for start in range(0, len(rows), 100):
            batch = rows[start:start + 100]
            began = time.perf_counter()
            results = client.call("POST", "/v1/sentiment", {"texts": [r["text"] for r in batch]})["results"]
            latencies.append((time.perf_counter() - began) * 1000)
            chosen = client.call("POST", "/v1/sentiment", {"texts": [r["text"] for r in batch],
                                                            "neutral_threshold": args.neutral_threshold})["results"]
            for row, result, option in zip(batch, results, chosen):
                by_label += result["label"].lower() == row["label"]
                neutral += result["label"] == "NEUTRAL"
                by_sign += ("positive" if result["score"] > 0 else "negative") == row["label"]
                by_label_option += option["label"].lower() == row["label"]
    metrics = job["results"]["sentiment"]["metrics"]
    out = {"protocol": "S2 through the public API (local stack)", "dev_sentences": len(rows),
           "accuracy_by_label": round(by_label / len(rows), 4), "neutral_share": round(neutral / len(rows), 4),
           "default_neutral_threshold": 0.6,
           "request_neutral_threshold": args.neutral_threshold,
           "accuracy_by_label_with_request_threshold": round(by_label_option / len(rows), 4),
           "accuracy_by_score_sign": round(by_sign / len(rows), 4), "train_reviews": entry["rows_stored"],
           "training_job_seconds": round(train_seconds, 1), "validation_accuracy": metrics["accuracy"],
           "http_latency_ms_per_100_texts_median": round(statistics.median(latencies), 1)}
    table = "\n".join([
        "| S2 through the API (train uploaded, 872 dev sentences scored over HTTP) | value |", "|---|---|",
        f"| accuracy by `label`, request `\"neutral_threshold\": {args.neutral_threshold:g}` | "
        f"{out['accuracy_by_label_with_request_threshold']:.3f} |",
        f"| accuracy by `label`, default threshold 0.6 (NEUTRAL counts as wrong; {out['neutral_share']:.1%} NEUTRAL) | "
        f"{out['accuracy_by_label']:.3f} |",
        f"| accuracy by sign of `score` | {out['accuracy_by_score_sign']:.3f} |",
        f"| training job, {out['train_reviews']:,} reviews (queued → succeeded) | {out['training_job_seconds']} s |",
        f"| POST /v1/sentiment, 100 texts, median over HTTP | {out['http_latency_ms_per_100_texts_median']} ms |"])
    save_results("sentiment_api", out, table)


if __name__ == "__main__":
    main()
