"""Recommender benchmark: protocols R1, T1 and A1 on MovieLens 100K, with baselines side by side,
plus training wall time and warm serving latency.

    python -m bench.recommender [--data ../shared/data] [--quick]

- T1: Tailor (``train_recommender`` on the training part: validation split, early stopping,
  final fit; scored through the NumPy ``Recommender`` loaded from its exported files) against
  popularity, EASE (λ=300), PureSVD (50) and implicit ALS (64, reg 0.05, α 20, 20 iterations)
  on the same split. Also Tailor with every item vector rebuilt from content alone (what a new
  item gets) and with the user id embedding dropped (an anonymous session with the same history).
- A1: Tailor's audience scores against EASE item scores, most active users and random users.
- R1: Tailor's rating model per fold u1..u5 (validation = a random 20% of each base file, as
  the test files are random samples; never the test file) and scikit-surprise SVD / SVD++ when
  installed (``--quick``: u1 only, no SVD++).
- Training time: retrieval + rating model on the T1 training part, end to end (the machine is
  shared, so it is one noisy measurement). Latency: warm ``recommend(k=10)`` p50/p99 on the
  ml-100k model and on a synthetic 100k-item × 64-dim catalog.

The data folder is ``--data``, else ``$TAILOR_SHARED_DATA``, else ``../shared/data`` beside the
repository. Writes ``bench/results/recommender.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bench import baselines, save_results
from tailor.recommend import evaluation
from tailor.recommend.scorer import RatingPredictor, Recommender, RecommenderArtifact, pooled_history

ROOT = Path(__file__).resolve().parents[1]


ANCHORS = {
    "T1": {"popularity": 0.116, "EASE λ=300": 0.197, "PureSVD 50": 0.185, "ALS 64": 0.161},
    "R1": {"surprise SVD": 0.938, "surprise SVD++": 0.922},
    "A1": {"random users": 0.060, "most active users": 0.270, "EASE λ=300": 0.346},
}
TARGETS = {"T1_ndcg": 0.200, "R1_rmse": 0.915, "A1_recall": 0.350, "train_seconds": 120.0, "p99_ms": 10.0}


def data_folder(argument: str | None) -> Path:
    if argument:
        return Path(argument)
    return Path(os.environ.get("TAILOR_SHARED_DATA") or ROOT.parent / "shared" / "data")


# --------------------------------------------------------------------------- MovieLens


def load_ratings(path: Path) -> np.ndarray:
    """``(n, 4)`` int64: user, item, rating, unix timestamp."""
    return np.loadtxt(path, dtype=np.int64, ndmin=2)


def load_catalog(folder: Path):
    from tailor.training.recommender.data import ItemCatalog

    genres = [line.split("|")[0] for line in (folder / "u.genre").read_text("latin-1").splitlines() if line.strip()]
    ids, titles, categories = [], [], []
    for line in (folder / "u.item").read_text("latin-1").splitlines():
        fields = line.split("|")
        ids.append(fields[0])
        titles.append(fields[1])
        categories.append([genre for genre, flag in zip(genres, fields[5:24]) if flag == "1"])
    return ItemCatalog(ids, titles, categories)


def interactions_of(rows: np.ndarray):
    from tailor.training.recommender.data import Interactions

    return Interactions(rows[:, 0], rows[:, 1], rows[:, 3], rows[:, 2])


# --------------------------------------------------------------------------- T1 and A1


def _test_lists(test: np.ndarray, n_users: int) -> list[np.ndarray]:
    lists = [[] for _ in range(n_users)]
    for user, item in test[:, :2]:
        lists[user].append(item)
    return [np.array(items, dtype=np.int64) for items in lists]


def topk_t1(folder: Path, progress) -> dict:
    data = load_ratings(folder / "u.data")
    data[:, :2] -= 1  # 0-based user and item indices for the matrix baselines
    n_users, n_items = int(data[:, 0].max() + 1), int(data[:, 1].max() + 1)
    held = evaluation.temporal_holdout(data[:, 0], data[:, 1], data[:, 3], 0.2)
    train, test = data[~held], data[held]
    matrix = sp.csr_matrix((np.ones(len(train)), (train[:, 0], train[:, 1])), shape=(n_users, n_items))
    seen_indptr, seen_indices = matrix.indptr, matrix.indices
    relevant = _test_lists(test, n_users)
    results: dict = {"split": {"train": int(len(train)), "test": int(len(test)), "users": n_users, "items": n_items}}

    # Tailor: ids are the MovieLens ids as strings, exactly what a shop would send.
    started = time.perf_counter()
    from tailor.training.recommender.train import train_recommender

    import_seconds = time.perf_counter() - started
    catalog = load_catalog(folder)
    train_ids = train.copy()
    train_ids[:, :2] += 1
    started, cpu_started = time.perf_counter(), time.process_time()
    trained = train_recommender(interactions_of(train_ids), catalog, progress=progress)
    train_seconds, train_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    files = trained.artifact.to_files()
    started = time.perf_counter()
    scorer = Recommender.from_files(files)
    load_seconds = time.perf_counter() - started

    top = np.full((n_users, 10), -1, dtype=np.int64)
    for user in range(n_users):
        ranked = scorer.recommend(str(user + 1), k=10)
        top[user, : len(ranked)] = [int(item) - 1 for item, _ in ranked]
    table = {"Tailor": evaluation.ranking_metrics(top, relevant, n_items)}

    # Same model, item vectors from content alone (as for items added after training).
    # (the catalog lists MovieLens items 1..n in order, so row i is MovieLens index i)
    content_items = np.stack([scorer.item_vector_from_content(title, names)
                              for title, names in zip(catalog.titles, catalog.categories)])
    user_rows = np.array([scorer.user_row(str(u + 1)) for u in range(n_users)])
    item_rows = np.array([scorer.item_row(str(i + 1)) for i in range(n_items)])
    users = scorer.user_matrix[user_rows]
    table["Tailor, items from content only"] = evaluation.ranking_metrics(
        evaluation.top_k_unseen(users @ content_items.T, seen_indptr, seen_indices, 10), relevant, n_items)
    # Same model, no user id embedding: an anonymous session holding the user's recent history.
    arrays = trained.artifact.arrays
    sessions = pooled_history(arrays["history_embeddings"], arrays["position_weights"], arrays["user_history"])
    sessions = np.hstack([sessions, np.ones((len(sessions), 1), np.float32)])[user_rows]
    table["Tailor, history only (session)"] = evaluation.ranking_metrics(
        evaluation.top_k_unseen(sessions @ scorer.item_matrix[item_rows].T, seen_indptr, seen_indices, 10),
        relevant, n_items)

    baseline_scores = {}
    for name, build in (("popularity", baselines.popularity), ("EASE λ=300", baselines.ease),
                        ("PureSVD 50", baselines.pure_svd), ("ALS 64", baselines.als)):
        started = time.perf_counter()
        scores = build(matrix)
        seconds = time.perf_counter() - started
        table[name] = {**evaluation.ranking_metrics(
            evaluation.top_k_unseen(scores, seen_indptr, seen_indices, 10), relevant, n_items),
            "fit_seconds": round(seconds, 2)}
        baseline_scores[name] = scores
        progress(f"T1 {name}: NDCG@10 {table[name]['ndcg']:.4f}")
    results["T1"] = table

    # A1: who engages with an item. Tailor's rule was chosen on its validation split.
    tailor_audience = scorer.audience_matrix(item_rows)[user_rows]
    rules = {"Tailor": tailor_audience, "EASE λ=300": baseline_scores["EASE λ=300"],
             "most active users": baselines.most_active_users(matrix), "random users": baselines.random_users(matrix)}
    results["A1"] = {name: evaluation.audience_recall(scores, train[:, 0], train[:, 1], test[:, 0], test[:, 1])
                     for name, scores in rules.items()}
    results["A1_rule"] = scorer.audience_rule
    results["training"] = {"seconds": round(train_seconds, 1), "cpu_seconds": round(train_cpu, 1),
                           "tensorflow_import_seconds": round(import_seconds, 1),
                           "load_average_after": [round(x, 2) for x in os.getloadavg()],
                           "artifact_load_seconds": round(load_seconds, 3),
                           "artifact_bytes": {name: len(blob) for name, blob in files.items()},
                           "report": trained.report}
    results.update(serving_latency_in_fresh_process(trained.artifact))
    return results


def serving_latency_in_fresh_process(artifact: RecommenderArtifact) -> dict:
    """Serving runs without TensorFlow and with one BLAS thread (one request at a time per
    container): measure in a fresh interpreter set up that way, as RecommendFunction would be.
    With two BLAS threads on this shared 2-core machine the median is lower but the p99 is
    several times higher, because a matrix-vector product waits for its slowest thread."""
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read when the child imports NumPy
    try:
        with tempfile.TemporaryDirectory() as folder_name:
            artifact.save(folder_name)
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                return pool.submit(serving_latency, folder_name).result()
    finally:
        if previous is None:
            os.environ.pop("OPENBLAS_NUM_THREADS")
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous


# --------------------------------------------------------------------------- R1


def ratings_r1(folder: Path, quick: bool, progress) -> dict:
    from tailor.training.recommender.config import RatingConfig
    from tailor.training.recommender.rating import train_rating_model

    folds = ["u1"] if quick else ["u1", "u2", "u3", "u4", "u5"]
    rows = {}
    for fold in folds:
        base, test = load_ratings(folder / f"{fold}.base"), load_ratings(folder / f"{fold}.test")
        started = time.perf_counter()
        result = train_rating_model(interactions_of(base), RatingConfig(validation="random"))
        seconds = time.perf_counter() - started
        user_index = {user: row for row, user in enumerate(result.arrays["user_ids"].tolist())}
        item_index = {item: row for row, item in enumerate(result.arrays["item_ids"].tolist())}
        predictor = RatingPredictor(result.arrays, result.config, user_index, item_index)
        predicted = predictor.predict(test[:, 0].astype(str), test[:, 1].astype(str))
        row = {"Tailor": {"rmse": evaluation.rmse(predicted, test[:, 2]), "mae": evaluation.mae(predicted, test[:, 2]),
                          "epochs": result.report["epochs"], "validation_rmse": result.report["validation"]["rmse"],
                          "seconds": round(seconds, 1)}}
        for algorithm in ("SVD",) if quick else ("SVD", "SVDpp"):
            started = time.perf_counter()
            measured = baselines.surprise_rmse(algorithm, base[:, :3], test[:, :3])
            if measured is not None:
                row[f"surprise {algorithm.replace('pp', '++')}"] = {**measured,
                                                                    "seconds": round(time.perf_counter() - started, 1)}
        rows[fold] = row
        progress(f"R1 {fold}: " + ", ".join(f"{name} {value['rmse']:.4f}" for name, value in row.items()))
    names = list(rows[folds[0]])
    mean = {name: {metric: float(np.mean([rows[f][name][metric] for f in folds])) for metric in ("rmse", "mae")}
            for name in names}
    return {"folds": rows, "mean": mean}


# --------------------------------------------------------------------------- latency


def latency(scorer: Recommender, users: list[str], calls: int = 2000, k: int = 10, seed: int = 0) -> dict:
    """Warm ``recommend`` latency (seen items excluded): the first calls are not timed."""
    rng = np.random.default_rng(seed)
    picks = [users[i] for i in rng.integers(0, len(users), calls + 50)]
    for user in picks[:50]:
        scorer.recommend(user, k=k)
    times = np.empty(calls)
    for n, user in enumerate(picks[50:]):
        started = time.perf_counter()
        scorer.recommend(user, k=k)
        times[n] = time.perf_counter() - started
    times *= 1000.0
    return {"calls": calls, "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p99_ms": round(float(np.percentile(times, 99)), 3), "max_ms": round(float(times.max()), 3)}


def serving_latency(artifact_folder: str) -> dict:
    """Runs in a spawned interpreter that imports NumPy and ``tailor.recommend.scorer`` only."""
    scorer = Recommender.load(artifact_folder)
    synthetic = synthetic_catalog()
    return {"latency_ml100k": latency(scorer, scorer.user_ids.tolist()),
            "latency_synthetic": latency(synthetic, synthetic.user_ids.tolist()),
            "latency_process_has_tensorflow": any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)}


def synthetic_catalog(n_users: int = 10_000, n_items: int = 100_000, dim: int = 64, history: int = 50,
                      seen_per_user: int = 100, seed: int = 0) -> Recommender:
    """A random artifact of the served shape: 100k items × (64 + bias) float32."""
    rng = np.random.default_rng(seed)
    seen = rng.integers(0, n_items, (n_users, seen_per_user)).astype(np.int32)
    arrays = {
        "user_ids": np.array([f"u{i}" for i in range(n_users)]), "item_ids": np.array([f"i{i}" for i in range(n_items)]),
        "user_embeddings": rng.normal(0, 0.1, (n_users, dim)).astype(np.float32),
        "history_embeddings": rng.normal(0, 0.1, (n_items, dim)).astype(np.float32),
        "position_weights": np.exp(-np.arange(history) / 20).astype(np.float32),
        "user_history": seen[:, :history],
        "seen_indptr": np.arange(0, n_users * seen_per_user + 1, seen_per_user, dtype=np.int64),
        "seen_indices": np.sort(seen, axis=1).ravel(),
        "item_vectors": rng.normal(0, 0.1, (n_items, dim + 1)).astype(np.float32),
        "category_names": np.array(["c0", "c1"]), "category_embeddings": np.zeros((2, dim + 1), np.float32),
        "item_category_indptr": np.arange(n_items + 1, dtype=np.int64),
        "item_category_indices": (np.arange(n_items) % 2).astype(np.int32),
        "token_keys": np.zeros(0, np.uint64), "token_embeddings": np.zeros((0, dim + 1), np.float32),
        "item_popularity": rng.random(n_items).astype(np.float32), "user_activity": np.full(n_users, 100, np.float32),
        "user_log_normalizer": np.zeros(n_users, np.float32),
    }
    config = {"tokenizer": {"word_ngrams": 1, "cjk_ngrams": 2}, "max_tokens": 32}
    return Recommender(RecommenderArtifact(arrays, config))


# --------------------------------------------------------------------------- report


def _f(value: float) -> str:
    return f"{value:.3f}"


def markdown(results: dict) -> str:
    lines = ["# Recommender benchmark (MovieLens 100K)", "",
             f"Machine: {results['machine']}. Protocols: `../shared/protocols.md`. "
             "Anchors are the figures measured earlier and listed there; baselines ran in this run, on the "
             "same split.", "",
             "Tailor's top-K model is a learned two-tower model alone (no item-item blend): user = id embedding "
             "+ recency-weighted mean of the last 50 items' embeddings; item = id embedding + category and "
             "title-token embeddings; next-item softmax over the catalog. Its rating model is biased MF with an "
             "SVD++-style implicit term. Every choice (epochs, audience rule) is made on a validation split "
             "carved from the training data; test files are only scored.", ""]
    t1 = results.get("T1")
    if t1:
        lines += ["## T1 — top-10, temporal split (newest 20% per user), full ranking", "",
                  "| model | P@10 | R@10 | NDCG@10 | coverage | anchor NDCG |", "|---|---|---|---|---|---|"]
        for name, m in t1.items():
            anchor = ANCHORS["T1"].get(name)
            lines.append(f"| {name} | {_f(m['precision'])} | {_f(m['recall'])} | **{_f(m['ndcg'])}** | "
                         f"{_f(m['coverage'])} | {'' if anchor is None else _f(anchor)} |")
        lines.append("")
    a1 = results.get("A1")
    if a1:
        lines += ["## A1 — audiences (items with ≥ 10 test interactions), recall@50", "",
                  "| audience rule | items | recall@50 | anchor |", "|---|---|---|---|"]
        for name, m in a1.items():
            anchor = ANCHORS["A1"].get(name)
            lines.append(f"| {name} | {m['items']} | **{_f(m['recall'])}** | {'' if anchor is None else _f(anchor)} |")
        lines += ["", f"Tailor's audience rule (chosen on its validation split): `{results.get('A1_rule')}`.", ""]
    r1 = results.get("R1")
    if r1:
        folds = list(r1["folds"])
        names = list(r1["mean"])
        lines += ["## R1 — rating prediction, RMSE (clipped to [1, 5])", "",
                  "| model | " + " | ".join(folds) + " | mean RMSE | mean MAE | anchor |",
                  "|---|" + "---|" * (len(folds) + 3)]
        for name in names:
            anchor = ANCHORS["R1"].get(name)
            cells = " | ".join(_f(r1["folds"][f][name]["rmse"]) for f in folds)
            lines.append(f"| {name} | {cells} | **{_f(r1['mean'][name]['rmse'])}** | {_f(r1['mean'][name]['mae'])} | "
                         f"{'' if anchor is None else _f(anchor)} |")
        lines.append("")
    training = results.get("training")
    if training:
        report = training["report"]
        v = report["validation"]
        lines += ["## Training and serving", "",
                  f"- Training both models on the T1 training part, end to end (validation run + final fit, "
                  f"retrieval {report['retrieval']['epochs']} epochs, rating {report.get('rating', {}).get('epochs')} "
                  f"epochs): **{training['seconds']} s** wall, {training['cpu_seconds']} s CPU, on a shared "
                  f"2-core machine (noisy: load average {training['load_average_after'][0]} right after); "
                  f"importing TensorFlow took {training['tensorflow_import_seconds']} s more.",
                  f"- Validation split (inside the training data): Tailor NDCG@10 {_f(v['model']['ndcg'])}, "
                  f"popularity {_f(v['popularity']['ndcg'])}.",
                  "- Artifact: " + ", ".join(f"{n} {b / 1e3:,.1f} kB" for n, b in training["artifact_bytes"].items())
                  + f"; loading it takes {training['artifact_load_seconds'] * 1000:.0f} ms."]
    for key, label in (("latency_ml100k", "ml-100k model (1,682 items)"),
                       ("latency_synthetic", "synthetic catalog, 100,000 items × 64 dims")):
        if key in results:
            m = results[key]
            lines.append(f"- Warm `recommend(k=10)`, {label}: p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms "
                         f"({m['calls']} calls; a process without TensorFlow, one BLAS thread).")
    lines += ["", "Targets: " + ", ".join(f"{k} {v}" for k, v in TARGETS.items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder holding ml-100k/ (default: $TAILOR_SHARED_DATA or ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="R1 on u1 only and no SVD++")
    args = parser.parse_args(argv)
    folder = data_folder(args.data) / "ml-100k"
    if not (folder / "u.data").exists():
        raise SystemExit(f"MovieLens 100K not found at {folder} (use --data or TAILOR_SHARED_DATA)")

    def progress(message: str) -> None:
        print(message, flush=True)

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                     "quick": args.quick}
    results.update(topk_t1(folder, progress))
    results["R1"] = ratings_r1(folder, args.quick, progress)
    save_results("recommender", results, markdown(results))
    return results


if __name__ == "__main__":
    main()
