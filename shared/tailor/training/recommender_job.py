"""Training job step for the `recommender` model: stored interactions (+ catalog) → versioned
model, evaluation report with baselines, promotion gate on validation NDCG@10.

- Interactions are every stored event; repeats of a (user, item) pair are merged by the trainer.
  Explicit ratings are the `value` of events whose `event_type` is `rating`: when there are
  any, the rating model (biased MF) is trained too.
- Validation: per user the newest 20% (protocol T1), carved out of the stored data by the
  trainer. Baselines are computed in the same run on the same split: popularity, and EASE
  (closed-form item-item, Steck 2019) when the catalog is small enough for its n×n inverse.
- The gate: validation NDCG@10 must beat popularity's, and not fall more than the margin below
  the current version's.
"""

from __future__ import annotations

import json
import time

import numpy as np

from .. import evaluation
from ..datasets import read_dataset
from .job import Candidate, TrainingContext
from .recommender import Interactions, ItemCatalog, _encode, train_recommender
from .report import json_bytes, markdown_table, png

EASE_MAX_ITEMS = 8_000  # the Gram matrix inverse is n_items² floats
EASE_LAMBDA = 300.0
CATALOG_FILE = "catalog.json"


def load_training_data(store) -> tuple[Interactions, ItemCatalog | None]:
    table = read_dataset(store, "interactions")
    if table is None or table.num_rows == 0:
        raise ValueError("no interactions are stored: upload interactions before training the recommender")
    event_types = table.column("event_type").to_pylist()
    values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    is_rating = np.array([e == "rating" for e in event_types])
    ratings = np.where(is_rating, values, np.nan) if is_rating.any() else None
    import pyarrow as pa

    timestamps = table.column("timestamp").cast(pa.int64()).to_numpy() / 1000.0
    interactions = Interactions(table.column("user_id").to_numpy(zero_copy_only=False),
                                table.column("item_id").to_numpy(zero_copy_only=False), timestamps, ratings)
    items = read_dataset(store, "items")
    catalog = None
    if items is not None and items.num_rows:
        get = lambda name: items.column(name).to_pylist() if name in items.column_names else [None] * items.num_rows
        catalog = ItemCatalog(get("item_id"), get("title"), get("categories"), get("description"))
    return interactions, catalog


def ease_on_validation(interactions: Interactions, fraction: float = 0.2) -> dict | None:
    """EASE on the same temporal split the trainer validates on, for the report and the README."""
    # The trainer's own encoding: one row per (user, item), the latest, so the split is the same.
    data = _encode(interactions, None)
    user_ids, item_ids, users, items = data.user_ids, data.item_ids, data.users, data.items
    if len(item_ids) > EASE_MAX_ITEMS:
        return None
    held = evaluation.temporal_holdout(users, items, data.timestamps, fraction)
    train = np.zeros((len(user_ids), len(item_ids)), dtype=np.float64)
    train[users[~held], items[~held]] = 1.0
    gram = train.T @ train
    gram[np.diag_indices_from(gram)] += EASE_LAMBDA
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    scores = train @ weights
    order = np.argsort(users[~held], kind="stable")
    seen_indices = items[~held][order]
    seen_indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(users[~held], minlength=len(user_ids)), out=seen_indptr[1:])
    top = evaluation.top_k_unseen(scores, seen_indptr, seen_indices, 10)
    relevant = [items[held & (users == u)] for u in range(len(user_ids))]
    return evaluation.ranking_metrics(top, relevant, len(item_ids), 10)


def train(ctx: TrainingContext) -> Candidate:
    from ..privacy import users_erased_since

    loaded_at_ms = int(time.time() * 1000)
    interactions, catalog = load_training_data(ctx.store)
    ctx.progress(f"{len(interactions):,} interactions, {len(np.unique(interactions.user_ids)):,} users, "
                 f"{len(np.unique(interactions.item_ids)):,} items; catalog: "
                 f"{'none' if catalog is None else f'{len(catalog.item_ids):,} items'}")
    trained = train_recommender(interactions, catalog, seed=int(ctx.options.get("seed", 0)),
                                model_version=ctx.version, progress=ctx.progress)
    # A user erased while this job trained was in the data it read: their rows leave the model
    # before it is saved (the erase itself only rewrites versions that already exist).
    erased = users_erased_since(ctx.state, trained.artifact.arrays["user_ids"], loaded_at_ms)
    if erased:
        trained.artifact = trained.artifact.without_users(erased)
        ctx.progress(f"{len(erased)} user(s) erased during training removed from the model")
    report = trained.report
    validation = report["validation"]
    ease = ease_on_validation(interactions)
    if ease is not None:
        validation["ease"] = ease
        ctx.progress(f"EASE baseline on the same split: NDCG@10 {ease['ndcg']:.4f}")
    artifacts = trained.artifact.to_files()
    artifacts[CATALOG_FILE] = _catalog_json(trained.artifact.arrays["item_ids"], catalog)
    metrics = {"ndcg@10": validation["model"]["ndcg"], "precision@10": validation["model"]["precision"],
               "recall@10": validation["model"]["recall"], "coverage": validation["model"]["coverage"],
               "baselines": {"popularity": validation["popularity"], **({"ease": ease} if ease else {})},
               "rating_rmse": (report.get("rating") or {}).get("validation", {}).get("rmse"),
               "report": report}
    files = {"report.json": json_bytes(metrics), "report.md": _markdown(ctx.version, metrics).encode(),
             "metrics.png": png(lambda figure: _chart(figure, metrics))}
    def refresh_profiles(promoted: bool) -> None:
        # Profiles and segments follow the model that serves: the new one, or the current one
        # when the gate kept it (their activity statistics are refreshed either way).
        from ..profile_service import build_and_save
        from ..recommend_service import load_model
        from ..recommender import Recommender
        from ..registry import ModelRegistry

        registry = ModelRegistry(ctx.store, ctx.state)
        current = registry.current("recommender")
        if promoted:
            recommender, version = Recommender(trained.artifact), ctx.version
        elif current:
            version = current["version"]
            recommender = load_model(registry, version).recommender
        else:  # no model serves yet: segments from behaviour and attributes alone
            recommender, version = None, None
        build_and_save(ctx.store, ctx.state, recommender, version, ctx.progress)

    return Candidate(artifacts=artifacts, metrics=metrics, report=files, gate_metric="ndcg@10",
                     score=metrics["ndcg@10"], baseline_name="popularity",
                     baseline=validation["popularity"]["ndcg"], on_decided=refresh_profiles)


def _catalog_json(item_ids, catalog: ItemCatalog | None) -> bytes:
    """Titles and categories of the model's items: what reasons and filters show people."""
    known = {}
    if catalog is not None:
        known = {i: {"title": t, "categories": c} for i, t, c in
                 zip(catalog.item_ids, catalog.titles, catalog.categories)}
    return json.dumps({str(i): known.get(str(i), {}) for i in item_ids}, ensure_ascii=False).encode()


def _markdown(version: str, m: dict) -> str:
    rows = [["Tailor (two towers)", m["precision@10"], m["recall@10"], m["ndcg@10"], m["coverage"]]]
    for name, b in m["baselines"].items():
        rows.append([name, b["precision"], b["recall"], b["ndcg"], b["coverage"]])
    parts = [f"# Recommender {version}",
             "Validation: per user the newest 20% of interactions held out (protocol T1), full ranking, k = 10.",
             markdown_table(["model", "P@10", "R@10", "NDCG@10", "coverage"], rows)]
    if m.get("rating_rmse") is not None:
        parts.append(f"Rating model validation RMSE: {m['rating_rmse']:.4f}")
    parts += ["![metrics](metrics.png)", ""]
    return "\n\n".join(parts)


def _chart(figure, m: dict) -> None:
    left, right = figure.subplots(1, 2)
    names = ["Tailor"] + list(m["baselines"])
    values = [m["ndcg@10"]] + [b["ndcg"] for b in m["baselines"].values()]
    left.bar(names, values, color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    left.set(title="Validation NDCG@10", ylim=(0, max(values) * 1.2 or 1))
    history = m["report"]["retrieval"]["history"]
    epochs = [h["epoch"] for h in history if "ndcg" in h]
    right.plot(epochs, [h["ndcg"] for h in history if "ndcg" in h], marker="o")
    right.set(title="Validation NDCG@10 per epoch", xlabel="epoch")
