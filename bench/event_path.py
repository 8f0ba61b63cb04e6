"""The event path for a website's traffic (issue #13, item 5): one event per `POST /v1/events`,
before (each call its own Parquet object and DynamoDB transaction) and after (the event stream,
Amazon Data Firehose, and compaction; `tailor.datasets.buffer`).

1. Handler level: IngestFunction's handler (API Gateway event in, response out), one event per
   call, on the in-memory fakes (the code's own cost) and on moto in-process (moto's cost apart =
   moto - fakes; moto patched as the local stack runs it, `infra.local.moto_atomic`); median and
   p99, and the median of the first and last 100 calls (does it grow?).
2. A million events: a month of single events delivered as Firehose does (one gzip object per
   EventBufferSeconds = 300 s, 1% of deliveries twice: at-least-once), compacted once a simulated
   day; objects left, rows checked against what was sent (nothing lost or doubled).
3. Training read time of that month through `read_dataset` on moto: before, one object per event
   (measured on --small-files objects and scaled linearly to a million: stated as such); after,
   the compacted files.
4. The local stack over HTTP: --local single events in a row, latency per 1,000 and every status.

    python -m bench.event_path [--calls 800] [--million 1000000] [--small-files 5000] [--local 10000]
                               [--parts handler,million,local]

Writes bench/results/event_path.json and .md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench import RESULTS, save_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import LambdaContext, api_event, fresh_account, load_handler  # noqa: E402

from infra.local.moto_atomic import make_queries_partition_local, make_requests_atomic  # noqa: E402

MONTH_START = 1_761_955_200_000  # 2025-11-01T00:00:00Z: a past month, before any erase
MONTH_MS = 30 * 86_400_000
DELIVERY_MS = 300_000  # EventBufferSeconds' default


class Env:
    def setenv(self, key: str, value: str) -> None:
        os.environ[key] = value


def _event(n: int) -> dict:
    now = int(time.time() * 1000)
    return {"events": [{"user_id": f"u{n % 500}", "item_id": f"i{n % 997}", "timestamp": now - 1000 + n % 1000,
                        "event_type": "view"}]}


def _post_events(calls: int) -> list[float]:
    handler = load_handler("ingest")
    times = []
    for n in range(calls):
        event = api_event("POST", "/v1/events", _event(n))
        began = time.perf_counter()
        response = handler(event, LambdaContext())
        times.append((time.perf_counter() - began) * 1000)
        assert response["statusCode"] == 200, response["body"]
    return times


def _summary(times: list[float]) -> dict:
    return {"median_ms": round(statistics.median(times), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "first_100_median_ms": round(statistics.median(times[:100]), 2),
            "last_100_median_ms": round(statistics.median(times[-100:]), 2), "calls": len(times)}


def handler_latency(calls: int) -> dict:
    from tailor import bootstrap
    from tailor.core.config import Settings
    from tests.fakes import FakeObjectStore, FakeRecordStream, FakeStateTable

    out: dict = {}
    for path in ("before", "after"):
        settings = Settings(stage="bench", data_bucket="b", state_table="t", train_function_name=None,
                            export_function_name=None, max_upload_bytes=2**20, model_cache_seconds=60)
        store = FakeObjectStore()
        bootstrap.use(bootstrap.build(settings, store=store, state=FakeStateTable(),
                                      stream=FakeRecordStream(store) if path == "after" else None))
        out[f"{path}_fakes"] = _summary(_post_events(calls))
        bootstrap.reset()
        with fresh_account(Env()):
            make_requests_atomic()
            make_queries_partition_local()
            if path == "before":
                os.environ.pop("EVENT_STREAM", None)
                bootstrap.reset()
            out[f"{path}_moto"] = _summary(_post_events(calls))
        bootstrap.reset()
    return out


def _deliveries(events: int, seed: int) -> tuple[list[bytes], set]:
    """A month of `events` single events as Firehose delivers them: (gzip objects in arrival
    order, the set of distinct rows sent)."""
    from tailor.datasets import buffer
    from tailor.datasets.schemas import SCHEMAS, validate_records

    rng = np.random.default_rng(seed)
    moments = np.sort(rng.integers(MONTH_START, MONTH_START + MONTH_MS, events))
    users, items = rng.integers(0, 20_000, events), rng.zipf(1.3, events) % 50_000
    sent = set()
    objects, lines, window = [], [], MONTH_START + DELIVERY_MS
    for start in range(0, events, 5_000):
        chunk = [{"user_id": f"u{u}", "item_id": f"i{i}", "timestamp": int(t), "event_type": "view"}
                 for u, i, t in zip(users[start:start + 5_000], items[start:start + 5_000], moments[start:start + 5_000])]
        validated = validate_records(SCHEMAS["interactions"], chunk)
        for row, line in zip(chunk, buffer.encode(validated, 0)):
            while row["timestamp"] >= window:
                if lines:
                    objects.append(gzip.compress(b"".join(lines)))
                lines, window = [], window + DELIVERY_MS
            lines.append(line)
            sent.add((row["user_id"], row["item_id"], row["timestamp"]))
    if lines:
        objects.append(gzip.compress(b"".join(lines)))
    return objects, sent


def a_million(events: int, seed: int = 0) -> tuple[dict, list[bytes]]:
    from tailor.datasets import buffer
    from tailor.datasets import store as datasets
    from tailor.storage import keys
    from tests.fakes import FakeObjectStore, FakeStateTable

    began = time.perf_counter()
    objects, sent = _deliveries(events, seed)
    generated_s = time.perf_counter() - began
    store, state = FakeObjectStore(), FakeStateTable()
    rng = np.random.default_rng(seed + 1)
    per_day = -(-len(objects) // 30)
    compaction_s, delivered = [], 0
    for day in range(30):
        for n, body in enumerate(objects[day * per_day:(day + 1) * per_day]):
            key = f"{keys.buffer_prefix('interactions')}2025/11/{day + 1:02d}/00/tailor-bench-events-{n:06d}.gz"
            store.put(key, body)
            delivered += 1
            if rng.random() < 0.01:  # at-least-once: the same delivery again
                store.put(key.replace(".gz", "-again.gz"), body)
                delivered += 1
        began = time.perf_counter()
        buffer.compact(store, state)
        compaction_s.append(time.perf_counter() - began)
    table = datasets.read_dataset(store, "interactions")
    stored = set(zip(table.column("user_id").to_pylist(), table.column("item_id").to_pylist(),
                     (int(t.timestamp() * 1000) for t in table.column("timestamp").to_pylist())))
    month_files = datasets.dataset_keys(store, "interactions")
    return {"events_sent": events, "distinct_rows_sent": len(sent), "firehose_objects_delivered": delivered,
            "objects_before_one_per_request": events, "objects_after_compaction": len(month_files),
            "buffer_objects_left": len(buffer.buffer_keys(store)), "rows_stored": table.num_rows,
            "lost": len(sent - stored), "doubled": table.num_rows - len(stored), "unexpected": len(stored - sent),
            "compaction_runs": len(compaction_s), "compaction_median_s": round(statistics.median(compaction_s), 2),
            "compaction_max_s": round(max(compaction_s), 2), "generation_s": round(generated_s, 1)}, \
        [store.get(k) for k in month_files]


def read_time(small_files: int, compacted: list[bytes], events: int) -> dict:
    import boto3

    from tailor.datasets import store as datasets
    from tailor.datasets.schemas import SCHEMAS, validate_records
    from tailor.storage import keys
    from tailor.storage.s3 import ObjectStore

    out = {}
    with fresh_account(Env()) as account:
        s3 = boto3.client("s3")
        rows = [{"user_id": f"u{n}", "item_id": f"i{n % 97}", "timestamp": MONTH_START + n, "event_type": "view"}
                for n in range(small_files)]
        for n, row in enumerate(rows):
            body = datasets.parquet_bytes(datasets.to_table(validate_records(SCHEMAS["interactions"], [row]), 0))
            s3.put_object(Bucket=account.bucket, Key=keys.dataset_key("interactions", f"b{n:07d}", "2025-11"), Body=body)
        began = time.perf_counter()
        table = datasets.read_dataset(ObjectStore(account.bucket), "interactions")
        small_s = time.perf_counter() - began
        assert table.num_rows == small_files
    with fresh_account(Env()) as account:
        s3 = boto3.client("s3")
        for n, body in enumerate(compacted):
            s3.put_object(Bucket=account.bucket, Key=keys.dataset_key("interactions", f"compacted-x-{n}", "2025-11"),
                          Body=body)
        began = time.perf_counter()
        table = datasets.read_dataset(ObjectStore(account.bucket), "interactions")
        compacted_s = time.perf_counter() - began
    out.update(before_measured_files=small_files, before_measured_s=round(small_s, 2),
               before_scaled_to_events_s=round(small_s * events / small_files, 1),
               after_files=len(compacted), after_rows=table.num_rows, after_s=round(compacted_s, 2),
               after_mb=round(sum(map(len, compacted)) / 2**20, 1))
    return out


def local_stack(events: int) -> dict:
    from infra.client import ApiError, TailorClient
    from infra.local_stack import LocalStack

    statuses: dict[int, int] = {}
    times: list[float] = []
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        client = TailorClient(stack.url, timeout=60)
        for n in range(events):
            began = time.perf_counter()
            try:
                client.call("POST", "/v1/events", _event(n))
                status = 200
            except ApiError as exc:
                status = exc.status
            times.append((time.perf_counter() - began) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        stored = client.dataset("interactions")["rows_stored"]
        compacted = stack.fire_schedule("CompactSchedule")
        files = client.dataset("interactions").get("files")
    blocks = [round(statistics.median(times[i:i + 1000]), 1) for i in range(0, len(times), 1000)]
    return {"events": events, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "median_ms_per_1000": blocks, "p99_ms": round(float(np.percentile(times, 99)), 1),
            "rows_stored": stored, "compaction": json.loads(compacted.payload or "null") if compacted.ok else compacted.error,
            "dataset_files_counter": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=800)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--small-files", type=int, default=5_000)
    parser.add_argument("--local", type=int, default=10_000)
    parser.add_argument("--parts", default="handler,million,local",
                        help="which parts to run (the others are kept from bench/results/event_path.json)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    previous = RESULTS / "event_path.json"
    out: dict = json.loads(previous.read_text()) if previous.exists() and parts != {"handler", "million", "local"} else {}
    if "handler" in parts:
        out["handler"] = handler_latency(args.calls)
        print(out["handler"], flush=True)
    if "million" in parts:
        out["million"], compacted = a_million(args.million)
        print(out["million"], flush=True)
        out["read"] = read_time(args.small_files, compacted, args.million)
        print(out["read"], flush=True)
        del compacted
    if "local" in parts:
        # make bench runs this part in a process of its own: after the in-process moto of the other
        # parts, this process grew to 24 GB during the 10,000 POSTs and the OOM killer stopped it
        # (alone, the stack's process grows ~0.07 MB per event).
        out["local_stack"] = local_stack(args.local) if args.local else None
    out["calls"] = out["handler"]["before_fakes"]["calls"]
    h, m, r, ls = out["handler"], out["million"], out["read"], out.get("local_stack")

    def row(name: str, key: str) -> str:
        fakes, moto = h[f"{key}_fakes"], h[f"{key}_moto"]
        return (f"| {name} | {fakes['median_ms']} / {fakes['p99_ms']} ms | {moto['median_ms']} / {moto['p99_ms']} ms "
                f"| {moto['first_100_median_ms']} → {moto['last_100_median_ms']} ms |")

    lines = [f"| one-event POST /v1/events, handler, {out['calls']} calls | code alone (fakes) median / p99 "
             "| with moto median / p99 | moto median, first → last 100 calls |", "|---|---|---|---|",
             row("before: Parquet object + transaction per call", "before"),
             row("after: event stream (Firehose)", "after"), "",
             f"| {m['events_sent']:,} single events over a month | objects |", "|---|---|",
             f"| before: one Parquet object per request | {m['objects_before_one_per_request']:,} |",
             f"| Firehose deliveries (300 s buffer, 1% delivered twice) | {m['firehose_objects_delivered']:,} |",
             f"| after daily compaction ({m['compaction_runs']} runs, median {m['compaction_median_s']} s, "
             f"max {m['compaction_max_s']} s) | {m['objects_after_compaction']} |", "",
             f"Rows: {m['rows_stored']:,} stored of {m['distinct_rows_sent']:,} distinct sent; lost {m['lost']}, "
             f"doubled {m['doubled']}, unexpected {m['unexpected']}; buffer objects left {m['buffer_objects_left']}.",
             "",
             "| training read of the month (read_dataset on moto) | files | seconds |", "|---|---|---|",
             f"| before, measured on {r['before_measured_files']:,} one-event files | {r['before_measured_files']:,} "
             f"| {r['before_measured_s']} |",
             f"| before, scaled linearly to {m['events_sent']:,} files (not measured) | {m['events_sent']:,} "
             f"| {r['before_scaled_to_events_s']} |",
             f"| after compaction ({r['after_rows']:,} rows, {r['after_mb']} MB) | {r['after_files']} | {r['after_s']} |"]
    if ls:
        lines += ["", f"Local stack over HTTP, {ls['events']:,} one-event POSTs in a row: statuses {ls['statuses']}; "
                  f"median per 1,000 calls {ls['median_ms_per_1000']} ms; p99 {ls['p99_ms']} ms; "
                  f"rows_stored {ls['rows_stored']:,}; compaction {ls['compaction']}."]
    save_results("event_path", out, "\n".join(lines))


if __name__ == "__main__":
    main()
