"""Ingest benchmark and acceptance run, over HTTP against the local stack only.

1. MovieLens 100K converted by the importer and uploaded through POST /v1/uploads + PUT:
   the stored counts, and the same file uploaded again.
2. 1,000,000 generated interactions: wall time from the upload request until the rows are
   stored and counted (`GET /v1/datasets`).

    python -m bench.ingest [--data ../shared/data] [--interactions 1000000]

Writes bench/results/ingest.json and bench/results/ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench import save_results
from infra.client import TailorClient
from infra.datagen import PRESETS, generate
from infra.importers.movielens import import_movielens
from infra.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def movielens(client: TailorClient, data: Path, work: Path) -> dict:
    folder = data / "ml-100k"
    if not (folder / "u.data").exists():
        return {"skipped": f"{folder} not found"}
    files = import_movielens(folder, work / "ml-100k")["files"]
    out = {}
    for dataset in ("interactions", "items", "users"):
        key = client.upload(dataset, Path(files[dataset]))
        entry = client.wait_for_ingest(key, dataset)
        out[dataset] = {"rows_stored": client.dataset(dataset)["rows_stored"], "status": entry["status"],
                        "rows_rejected": entry.get("rows_rejected", 0)}
    key = client.upload("interactions", Path(files["interactions"]))
    again = client.wait_for_ingest(key, "interactions")
    out["interactions_after_second_upload"] = {"rows_stored": client.dataset("interactions")["rows_stored"],
                                               "status": again["status"]}
    return out


def million(client: TailorClient, work: Path, interactions: int) -> dict:
    started = time.perf_counter()
    files = generate(work / "large", **{**PRESETS["large"], "interactions": interactions}, seed=7, reviews=0)
    generated = time.perf_counter() - started
    path = Path(files["interactions"])
    before = client.dataset("interactions")["rows_stored"]
    started = time.perf_counter()
    key = client.upload("interactions", path)
    uploaded = time.perf_counter() - started
    entry = client.wait_for_ingest(key, "interactions", timeout=600)
    total = time.perf_counter() - started
    stored = client.dataset("interactions")["rows_stored"] - before
    return {"interactions": interactions, "file_mb": round(path.stat().st_size / 2**20, 1),
            "generate_s": round(generated, 1), "upload_s": round(uploaded, 1), "ingest_total_s": round(total, 1),
            "rows_stored": stored, "rows_rejected": entry.get("rows_rejected", 0),
            "rows_per_s": round(stored / total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TAILOR_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--interactions", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        work = Path(tmp)
        client = TailorClient(stack.url)
        print("MovieLens 100K through the API ...", flush=True)
        ml = movielens(client, Path(args.data), work)
        print(json.dumps(ml, indent=2))
        print(f"{args.interactions:,} generated interactions through the API ...", flush=True)
        big = million(client, work, args.interactions)
        print(json.dumps(big, indent=2))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "movielens_100k": ml, "bulk": big}
    lines = ["| ingest run (local stack, HTTP only) | result |", "|---|---|"]
    if "skipped" not in ml:
        lines += [f"| ml-100k interactions / items / users stored | {ml['interactions']['rows_stored']:,} / "
                  f"{ml['items']['rows_stored']:,} / {ml['users']['rows_stored']:,} |",
                  f"| same ratings file uploaded again | {ml['interactions_after_second_upload']['status']}, "
                  f"still {ml['interactions_after_second_upload']['rows_stored']:,} rows |"]
    lines += [f"| {big['interactions']:,} generated interactions ({big['file_mb']} MB CSV) | "
              f"{big['ingest_total_s']} s from upload request to counted ({big['rows_per_s']:,} rows/s; "
              f"PUT {big['upload_s']} s) |"]
    save_results("ingest", result, "\n".join(lines))


if __name__ == "__main__":
    main()
