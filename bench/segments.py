"""Profiles and segments benchmark: ``tailor.customers.profiles.build_profiles`` on MovieLens 100K, and its
build time on a generated shop of 10,000 users and 1,000,000 interactions.

    python -m bench.segments [--data ../shared/data] [--no-model] [--model-dir DIR] [--skip-large]
    python -m bench.segments --real-shops     # small real-looking shops only (infra.realshop), seconds

- ml-100k goes through the project's importer (``infra/importers/movielens.py``) and then through
  the same validation and Arrow conversion as an upload (``tailor.datasets.files`` + ``tailor.datasets.store``),
  so the tables have exactly the stored dataset's column types.
- User vectors: the recommender is trained on all of ml-100k with ``train_recommender`` (retrieval
  only, ~1 minute) and its user vectors are passed in; ``--no-model`` clusters on behaviour and
  tastes alone. ``--model-dir`` keeps the trained artifact there and reuses it on the next run
  (keep it outside the repository). Both variants are reported when a model is used.
- Large: ``infra.datagen`` (preset ``large`` resized to 10,000 users, 1,000,000 interactions),
  read with pyarrow into the dataset column types; behaviour-only (no model), one run.

The data folder is ``--data``, else ``$TAILOR_SHARED_DATA``, else ``../shared/data`` beside the
repository. Writes ``bench/results/segments.json`` and ``.md``.

``--real-shops``: the segments of four generated small shops like those of issue #11
(``infra.realshop``: shoes, where every listing is in category Shoes; shoes without categories;
kitchen; kitchen without categories or prices, with review labels), built from their uploaded
files with the reviews (no model vectors). Writes ``bench/results/segments_real_shops.json``/``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

# One BLAS thread, as in a Lambda container building profiles. On this shared 2-core machine a
# multi-threaded BLAS makes k-means on small matrices 5-10x slower whenever other jobs are running.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench import save_results  # noqa: E402
from tailor.customers.profiles import build_profiles  # noqa: E402
from tailor.datasets import files
from tailor.datasets import store as datasets  # noqa: E402
from tailor.datasets.schemas import SCHEMAS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def data_folder(argument: str | None) -> Path:
    if argument:
        return Path(argument)
    return Path(os.environ.get("TAILOR_SHARED_DATA") or ROOT.parent / "shared" / "data")


def dataset_tables(csv_files: dict[str, str]) -> dict:
    """Validate the CSV files exactly as an upload would and return the stored tables."""
    tables = {}
    for name in ("interactions", "items", "users"):
        if name not in csv_files:
            continue
        path = Path(csv_files[name])
        _, validated = files.read_file(path.read_bytes(), path.name, SCHEMAS[name],
                                       max_bytes=1 << 30)
        tables[name] = datasets.to_table(validated, int(time.time() * 1000))
    return tables


def movielens_tables(folder: Path, work: Path) -> dict:
    from infra.importers.movielens import import_movielens

    return dataset_tables(import_movielens(folder, work / "ml-100k")["files"])


def train_and_save(folder: str, out_dir: str) -> float:
    """Runs in a spawned interpreter so that TensorFlow never shares a process with the build."""
    from bench.recommender import interactions_of, load_catalog, load_ratings
    from tailor.training.recommender.train import train_recommender

    started = time.perf_counter()
    trained = train_recommender(interactions_of(load_ratings(Path(folder) / "u.data")), load_catalog(Path(folder)),
                                rating=None, progress=lambda message: print(message, flush=True))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    trained.artifact.save(out_dir)
    return time.perf_counter() - started


def model_vectors(folder: Path, model_dir: Path, progress) -> tuple[np.ndarray, np.ndarray, dict]:
    """The ml-100k recommender's user vectors (retrieval model trained on all ratings)."""
    from tailor.recommend.scorer import Recommender

    info: dict = {"trained": False, "loaded_from": str(model_dir)}
    if not (model_dir.is_dir() and any(model_dir.iterdir())):
        progress("training the recommender on all of ml-100k (retrieval only) in a separate process")
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            seconds = pool.submit(train_and_save, str(folder), str(model_dir)).result()
        info = {"trained": True, "train_seconds": round(seconds, 1)}
    scorer = Recommender.load(model_dir)
    return scorer.user_ids, np.asarray(scorer.user_matrix), info


def run(tables: dict, now_ms: int, user_ids=None, user_vectors=None, seed: int = 0) -> dict:
    started = time.perf_counter()
    build = build_profiles(tables["interactions"], tables.get("items"), tables.get("users"), user_ids, user_vectors,
                           now_ms=now_ms, seed=seed)
    seconds = time.perf_counter() - started
    sizes = [s["size"] for s in build.segments]
    json.dumps(build.profiles)  # the profiles must be JSON as they are
    return {"build_seconds": round(seconds, 2), "stats": build.stats, "criterion": build.criterion,
            "users_profiled": len(build.profiles), "sizes_sum": int(sum(sizes)),
            "sizes_sum_ok": sum(sizes) == len(build.profiles),
            "segments": [{k: s[k] for k in ("segment_id", "name", "size", "description", "statistics")}
                         for s in build.segments],
            # the shape of a profile, not its values: no data from the data folder enters the repository
            "profile_keys": _shape(build.profiles[sorted(build.profiles)[0]])}


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def large_tables(work: Path, users: int, interactions: int) -> dict:
    """A generated shop read with pyarrow into the dataset column types (no per-row validation,
    which would dominate the time and is not what is measured here)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from infra.datagen import PRESETS, generate

    sizes = dict(PRESETS["large"], users=users, interactions=interactions)
    generate(work / "large", seed=0, **sizes)
    tables = {}
    for name in ("interactions", "items", "users"):
        path = work / "large" / f"{name}.csv"
        if not path.exists():
            continue
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            column_types={c: pa.string() for c in ("user_id", "item_id", "event_type", "categories", "title")}))
        if name == "interactions":
            ts = table.column("timestamp")
            if pa.types.is_string(ts.type):
                ts = pc.strptime(ts, format="%Y-%m-%dT%H:%M:%SZ", unit="ms")
            elif not pa.types.is_timestamp(ts.type):
                ts = pc.cast(pc.multiply(pc.cast(ts, pa.int64()), 1000), pa.timestamp("ms"))
            table = table.set_column(table.column_names.index("timestamp"), "timestamp",
                                     pc.cast(ts, pa.timestamp("ms", tz="UTC")))
            table = table.set_column(table.column_names.index("value"), "value",
                                     pc.cast(table.column("value"), pa.float64()))
        if name == "users":  # metadata columns are stored as strings
            table = pa.table({c: pc.cast(table.column(c), pa.string()) for c in table.column_names})
        tables[name] = table
    return tables


def markdown(results: dict) -> str:
    lines = ["# Profiles and segments benchmark", "",
             f"Machine: {results['machine']}. `tailor.customers.profiles.build_profiles` (NumPy + pyarrow, one process).", ""]
    for key, title in (("ml100k_model", "MovieLens 100K — model user vectors + behaviour + tastes"),
                       ("ml100k_behaviour", "MovieLens 100K — behaviour + tastes only (no model)")):
        r = results.get(key)
        if not r:
            continue
        c = r["criterion"]
        model = results.get("model") if key == "ml100k_model" else None
        lines += [f"## {title}", ""]
        if model:
            lines.append("- User vectors: the retrieval model trained on all ml-100k ratings "
                         + (f"({model['train_seconds']} s in a separate process)." if model.get("trained")
                            else f"(reused from {model['loaded_from']})."))
        lines += [
                  f"- Users profiled: {r['users_profiled']}; segment sizes sum to {r['sizes_sum']} "
                  f"({'ok' if r['sizes_sum_ok'] else 'MISMATCH'}); build time **{r['build_seconds']} s** "
                  f"(clustering {r['stats']['seconds']['clustering']} s); features: {', '.join(c.get('features', []))}.",
                  f"- Criterion: {c.get('definition', c['name'])}. Chosen k = **{c['chosen_k']}**.", "",
                  "| k | " + " | ".join(c["values"]) + " |", "|---|" + "---|" * len(c["values"]),
                  "| silhouette | " + " | ".join(f"{v:.4f}" for v in c["values"].values()) + " |",
                  "| Calinski–Harabasz | " + " | ".join(f"{v:.1f}" for v in c.get("calinski_harabasz", {}).values())
                  + " |", "",
                  "| id | name | size | description |", "|---|---|---|---|"]
        for s in r["segments"]:
            lines.append(f"| {s['segment_id']} | {s['name']} | {s['size']} | {s['description']} |")
        lines.append("")
    large = results.get("large")
    if large:
        lines += ["## Scale: generated shop", "",
                  f"- {large['stats']['interactions']:,} interactions, {large['users_profiled']:,} users, "
                  f"{large['stats']['categories']} categories: build **{large['build_seconds']} s** "
                  f"(activity {large['stats']['seconds']['activity']} s, categories "
                  f"{large['stats']['seconds']['categories']} s, clustering {large['stats']['seconds']['clustering']} s); "
                  f"chosen k = {large['criterion']['chosen_k']}; sizes sum ok: {large['sizes_sum_ok']}.", ""]
    return "\n".join(lines)


REAL_SHOPS = (("shoes", {}), ("shoes", {"categories": False}), ("kitchen", {}),
              ("kitchen", {"categories": False, "price": False, "labels": True}))


def real_shops() -> dict:
    from infra import realshop

    runs = []
    with tempfile.TemporaryDirectory() as work_name:
        for n, (domain, options) in enumerate(REAL_SHOPS):
            folder = Path(work_name) / f"{domain}-{n}"
            paths = realshop.generate(folder, domain=domain, seed=0, **options)
            tables = dataset_tables({name: str(path) for name, path in paths.items()})
            reviews_path = paths["reviews"]
            _, validated = files.read_file(reviews_path.read_bytes(), reviews_path.name, SCHEMAS["reviews"],
                                           max_bytes=1 << 30)
            reviews = datasets.to_table(validated, 0)
            import pyarrow.compute as pc

            now_ms = int(pc.max(pc.cast(tables["interactions"].column("timestamp"), "int64")).as_py()) + 86_400_000
            started = time.perf_counter()
            build = build_profiles(tables["interactions"], tables["items"], tables.get("users"), now_ms=now_ms,
                                   reviews=reviews)
            runs.append({"shop": f"realshop {domain} seed 0 {options or ''}".strip(),
                         "facts": realshop.describe(folder), "build_seconds": round(time.perf_counter() - started, 3),
                         "criterion": build.criterion,
                         "segments": [{k: s[k] for k in ("segment_id", "name", "size", "description")}
                                      for s in build.segments]})
    lines = ["# Segments of small real-looking shops (`python -m bench.segments --real-shops`)", ""]
    for run_ in runs:
        c = run_["criterion"]
        lines += [f"## {run_['shop']}", "",
                  f"{run_['facts']['customers']} customers, {run_['facts']['listings']} listings; "
                  f"k tried {c.get('k_range')}, too small {c.get('too_small', [])}, chosen k = **{c['chosen_k']}**; "
                  f"features {c.get('features')}; build {run_['build_seconds']} s.", "",
                  "| id | name | size | description |", "|---|---|---|---|"]
        lines += [f"| {s['segment_id']} | {s['name']} | {s['size']} | {s['description']} |" for s in run_["segments"]]
        lines.append("")
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "runs": runs}
    save_results("segments_real_shops", result, "\n".join(lines))
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder holding ml-100k/ (default: $TAILOR_SHARED_DATA or ../shared/data)")
    parser.add_argument("--no-model", action="store_true", help="behaviour and tastes only (no recommender training)")
    parser.add_argument("--model-dir", type=Path, help="keep/reuse the trained ml-100k artifact here (outside the repo)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 1M-interaction timing")
    parser.add_argument("--large-users", type=int, default=10_000)
    parser.add_argument("--large-interactions", type=int, default=1_000_000)
    parser.add_argument("--real-shops", action="store_true", help="only the small generated real-looking shops")
    args = parser.parse_args(argv)
    if args.real_shops:
        return real_shops()
    folder = data_folder(args.data) / "ml-100k"
    if not (folder / "u.data").exists():
        raise SystemExit(f"MovieLens 100K not found at {folder} (use --data or TAILOR_SHARED_DATA)")

    def progress(message: str) -> None:
        print(message, flush=True)

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        started = time.perf_counter()
        tables = movielens_tables(folder, work)
        progress(f"ml-100k imported and validated in {time.perf_counter() - started:.1f} s: "
                 + ", ".join(f"{k} {v.num_rows}" for k, v in tables.items()))
        import pyarrow.compute as pc

        # "now" = one day after the last rating, so recency reads as it would have then
        now_ms = int(pc.max(pc.cast(tables["interactions"].column("timestamp"), "int64")).as_py()) + 86_400_000
        results["ml100k_behaviour"] = run(tables, now_ms)
        progress(f"behaviour-only build: {results['ml100k_behaviour']['build_seconds']} s, "
                 f"k={results['ml100k_behaviour']['criterion']['chosen_k']}")
        if not args.no_model:
            user_ids, vectors, model = model_vectors(folder, args.model_dir or work / "model", progress)
            results["model"] = model
            results["ml100k_model"] = run(tables, now_ms, user_ids, vectors)
            progress(f"model build: {results['ml100k_model']['build_seconds']} s, "
                     f"k={results['ml100k_model']['criterion']['chosen_k']}")
        if not args.skip_large:
            started = time.perf_counter()
            large = large_tables(work, args.large_users, args.large_interactions)
            progress(f"generated shop in {time.perf_counter() - started:.1f} s")
            now_ms = int(pc.max(pc.cast(large["interactions"].column("timestamp"), "int64")).as_py()) + 86_400_000
            results["large"] = run(large, now_ms)
            progress(f"large build: {results['large']['build_seconds']} s")
    save_results("segments", results, markdown(results))
    return results


if __name__ == "__main__":
    main()
