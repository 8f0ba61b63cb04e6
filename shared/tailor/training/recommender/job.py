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

from tailor.datasets.store import read_dataset
from tailor.recommend import evaluation
from tailor.training.recommender.data import Interactions, ItemCatalog, encode
from tailor.training.recommender.train import train_recommender
from tailor.training.report import json_bytes, markdown_table, png
from tailor.training.runner import Candidate, TrainingContext

EASE_MAX_ITEMS = 8_000  # evaluated up to here: the Gram matrix inverse is n_items² floats
# Served up to here: its n_items² float32 weights (3,000 items: 36 MB) are loaded by every
# RecommendFunction container; above it the two towers (n_items × 65 floats) are what scales.
EASE_SERVE_MAX_ITEMS = 3_000
EASE_LAMBDAS = (30.0, 100.0, 300.0, 1000.0)  # chosen on validation: small shops want less shrinkage
CANDIDATE_NAMES = {"two_tower": "the two-tower model", "ease": "EASE", "popularity": "popularity"}
CATALOG_FILE = "catalog.json"


def load_training_data(store, erased: dict[str, int] | None = None) -> tuple[Interactions, ItemCatalog | None]:
    """The stored interactions and catalog; `erased` (tombstones) leaves out what Firehose delivered
    of erased customers after their erase (`read_dataset`)."""
    table = read_dataset(store, "interactions", erased=erased)
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
        catalog = ItemCatalog(get("item_id"), get("title"), get("categories"), get("description"))  # type: ignore[arg-type]  # stored ids are never null
    return interactions, catalog


def ease_weights(train: np.ndarray, lam: float) -> np.ndarray:
    """EASE (Steck, WWW 2019): closed-form item-item weights with a zero diagonal; scores = X B."""
    gram = train.T @ train
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_on_validation(interactions: Interactions, fraction: float = 0.2, groups: dict | None = None) -> dict | None:
    """EASE on the same temporal split the trainer validates on, its λ the best of EASE_LAMBDAS:
    a candidate to serve, and the baseline the learned model must beat."""
    # The trainer's own encoding: one row per (user, item), the latest, so the split is the same.
    data = encode(interactions, None)
    user_ids, item_ids, users, items = data.user_ids, data.item_ids, data.users, data.items
    if len(item_ids) > EASE_MAX_ITEMS:
        return None
    held = evaluation.temporal_holdout(users, items, data.timestamps, fraction)
    train = np.zeros((len(user_ids), len(item_ids)), dtype=np.float64)
    train[users[~held], items[~held]] = 1.0
    order = np.argsort(users[~held], kind="stable")
    seen_indices = items[~held][order]
    seen_indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(users[~held], minlength=len(user_ids)), out=seen_indptr[1:])
    relevant = [items[held & (users == u)] for u in range(len(user_ids))]
    best: dict | None = None
    best_top = None
    for lam in EASE_LAMBDAS:
        top = evaluation.top_k_unseen(train @ ease_weights(train, lam), seen_indptr, seen_indices, 30)
        metrics = {**evaluation.ranking_metrics(top, relevant, len(item_ids), 10), "lambda": lam}
        if best is None or metrics["ndcg"] > best["ndcg"]:
            best, best_top = metrics, top
    assert best is not None  # EASE_LAMBDAS is not empty
    families = product_families(train, item_ids, groups or {})
    if families["families"] < len(item_ids):  # variants exist: the honest figure counts a family once
        popular = evaluation.top_k_unseen(np.broadcast_to(train.sum(axis=0), train.shape).copy(),
                                          seen_indptr, seen_indices, 30)
        by_family = lambda top: evaluation.family_metrics(top, relevant, seen_indptr, seen_indices,
                                                          families["family_of"], 10)["ndcg"]
        families["validation_ndcg_per_family"] = {"ease": by_family(best_top), "popularity": by_family(popular)}
    best["families"] = {k: v for k, v in families.items() if k != "family_of"}
    return best


def product_families(train: np.ndarray, item_ids: np.ndarray, groups: dict) -> dict:
    """Which listings are variants of one product: the catalog's `group_id` where given, else
    near-identical items detected from their customers (evaluation.near_duplicate_families)."""
    if groups:
        labels = [groups.get(str(i)) or f"item:{i}" for i in item_ids]
        family_of = np.unique(labels, return_inverse=True)[1]
        source = "group_id"
    else:
        family_of = evaluation.near_duplicate_families(train)
        source = "detected: items sharing at least 80% of their customers (3 or more)"
    sizes = np.bincount(family_of)
    examples = [[str(item_ids[i]) for i in np.flatnonzero(family_of == f)][:8]
                for f in np.argsort(-sizes, kind="stable")[:3] if sizes[f] > 1]
    return {"source": source, "families": int(len(sizes)), "listings_in_shared_families": int(sizes[sizes > 1].sum()),
            "examples": examples, "family_of": family_of}


def choose_served(validation: dict, n_items: int) -> tuple[str, dict[str, float], str]:
    """The candidate to serve: the best validation NDCG@10 of those computed (ties keep the
    learned model, then EASE). Returns its name, every candidate's score, and the sentence that
    names the comparison."""
    scores = {"two_tower": validation["model"]["ndcg"]}
    if validation.get("ease") is not None and n_items <= EASE_SERVE_MAX_ITEMS:
        scores["ease"] = validation["ease"]["ndcg"]
    scores["popularity"] = validation["popularity"]["ndcg"]
    served = max(scores, key=lambda name: (scores[name], -list(scores).index(name)))
    others = sorted((n for n in scores if n != served), key=lambda n: -scores[n])
    name = CANDIDATE_NAMES[served]
    sentence = (f"{name[0].upper()}{name[1:]} {scores[served]:.3f} beats "
                + " and ".join(f"{CANDIDATE_NAMES[n]} {scores[n]:.3f}" for n in others)
                + f" (validation NDCG@10): serving {name}")
    if validation.get("ease") is not None and "ease" not in scores:
        sentence += (f"; EASE {validation['ease']['ndcg']:.3f} is a baseline only above "
                     f"{EASE_SERVE_MAX_ITEMS:,} items")
    return served, scores, sentence


def serve_with(artifact, served: str, lam: float | None):
    """The artifact scored by the chosen candidate: EASE refit on every stored interaction."""
    from tailor.recommend.scorer import RecommenderArtifact

    config = {**artifact.config, "scorer": served}
    arrays = dict(artifact.arrays)
    if served == "ease":
        if lam is None:
            raise ValueError("serving EASE needs the lambda chosen on validation")
        indptr, indices = arrays["seen_indptr"], arrays["seen_indices"]
        n_users, n_items = len(indptr) - 1, len(arrays["item_ids"])
        matrix = np.zeros((n_users, n_items), dtype=np.float64)
        matrix[np.repeat(np.arange(n_users), np.diff(indptr)), indices] = 1.0
        arrays["ease_weights"] = ease_weights(matrix, lam).astype(np.float32)
        config["ease_lambda"] = lam
    return RecommenderArtifact(arrays, config)


def train(ctx: TrainingContext) -> Candidate:
    from tailor.privacy.erase import tombstones, users_erased_since

    loaded_at_ms = int(time.time() * 1000)
    interactions, catalog = load_training_data(ctx.store, tombstones(ctx.state))
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
    items_table = read_dataset(ctx.store, "items")
    groups = ({str(i): g for i, g in zip(items_table.column("item_id").to_pylist(), items_table.column("group_id").to_pylist())
               if g} if items_table is not None and "group_id" in items_table.column_names else {})
    ease = ease_on_validation(interactions, groups=groups)
    if ease is not None:
        validation["ease"] = ease
        ctx.progress(f"EASE (λ={ease['lambda']:g}) on the same split: NDCG@10 {ease['ndcg']:.4f}")
    n_items = len(trained.artifact.arrays["item_ids"])
    served, candidates, selection = choose_served(validation, n_items)
    ctx.progress(selection)
    trained.artifact = with_reason_history(serve_with(trained.artifact, served, (ease or {}).get("lambda")),
                                           disliked_pairs(interactions, read_dataset(ctx.store, "reviews")))
    artifacts = trained.artifact.to_files()
    artifacts[CATALOG_FILE] = _catalog_json(trained.artifact.arrays["item_ids"], catalog)
    served_metrics = {"two_tower": validation["model"], "ease": ease, "popularity": validation["popularity"]}[served]
    metrics = {"ndcg@10": served_metrics["ndcg"], "precision@10": served_metrics["precision"],
               "recall@10": served_metrics["recall"], "coverage": served_metrics["coverage"],
               "served": {"candidate": served, "name": CANDIDATE_NAMES[served], "why": selection,
                          "candidates": candidates},
               "two_tower": validation["model"],
               "baselines": {"popularity": validation["popularity"], **({"ease": ease} if ease else {})},
               "rating_rmse": (report.get("rating") or {}).get("validation", {}).get("rmse"),
               "report": report}
    files = {"report.json": json_bytes(metrics), "report.md": _markdown(ctx.version, metrics).encode(),
             "metrics.png": png(lambda figure: _chart(figure, metrics))}
    def refresh_profiles(promoted: bool) -> None:
        # Profiles and segments follow the model that serves: the new one, or the current one
        # when the gate kept it (their activity statistics are refreshed either way).
        from tailor.customers.service import build_and_save
        from tailor.models.registry import ModelRegistry
        from tailor.recommend.scorer import Recommender
        from tailor.recommend.service import load_model

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

    # The gate then holds the served candidate against the best of the others (it beats them by
    # construction; equal scores keep the current model) and against the current version.
    others = {CANDIDATE_NAMES[n]: v for n, v in candidates.items() if n != served}
    best_other = max(others, key=lambda name: others[name]) if others else None
    return Candidate(artifacts=artifacts, metrics=metrics, report=files, gate_metric="ndcg@10",
                     score=metrics["ndcg@10"], baseline_name=best_other,
                     baseline=others[best_other] if best_other else None, on_decided=refresh_profiles, selection=selection)


LOW_RATING = 2.0  # on the 1-5 scale: a 1- or 2-star item is never cited as a reason


def disliked_pairs(interactions: Interactions, reviews) -> set[tuple[str, str]]:
    """(user, item) pairs the customer rated low (a rating event or a review's stars at most
    LOW_RATING) or reviewed negatively (label `negative`)."""
    pairs: set[tuple[str, str]] = set()
    if interactions.ratings is not None:
        low = interactions.ratings <= LOW_RATING  # NaN (no rating) compares False
        pairs.update(zip(interactions.user_ids[low].tolist(), interactions.item_ids[low].tolist()))
    if reviews is not None and reviews.num_rows and {"user_id", "item_id"} <= set(reviews.column_names):
        get = lambda name: reviews.column(name).to_pylist() if name in reviews.column_names else [None] * reviews.num_rows
        for user, item, rating, label in zip(get("user_id"), get("item_id"), get("rating"), get("label")):
            try:
                rated_low = rating is not None and float(rating) <= LOW_RATING
            except (TypeError, ValueError):
                rated_low = False
            if user and item and (rated_low or str(label or "").lower() == "negative"):
                pairs.add((str(user), str(item)))
    return pairs


def with_reason_history(artifact, disliked: set[tuple[str, str]]):
    """Adds ``reason_history``: each user's recent items (``user_history``) without the disliked ones."""
    from tailor.recommend.scorer import RecommenderArtifact

    arrays = dict(artifact.arrays)
    history = arrays["user_history"]
    reasons = np.full_like(history, -1)
    item_ids = arrays["item_ids"].astype(str)
    for row, user in enumerate(arrays["user_ids"].astype(str).tolist()):
        kept = [i for i in history[row] if i >= 0 and (user, item_ids[i]) not in disliked]
        reasons[row, :len(kept)] = kept
    arrays["reason_history"] = reasons
    return RecommenderArtifact(arrays, dict(artifact.config))


def _catalog_json(item_ids, catalog: ItemCatalog | None) -> bytes:
    """Titles and categories of the model's items: what reasons and filters show people."""
    known = {}
    if catalog is not None:
        known = {i: {"title": t, "categories": c} for i, t, c in
                 zip(catalog.item_ids, catalog.titles, catalog.categories)}
    return json.dumps({str(i): known.get(str(i), {}) for i in item_ids}, ensure_ascii=False).encode()


def _markdown(version: str, m: dict) -> str:
    tower = m.get("two_tower") or {"precision": m["precision@10"], "recall": m["recall@10"], "ndcg": m["ndcg@10"],
                                   "coverage": m["coverage"]}
    rows = [["Tailor (two towers)", tower["precision"], tower["recall"], tower["ndcg"], tower["coverage"]]]
    for name, b in m["baselines"].items():
        rows.append([name, b["precision"], b["recall"], b["ndcg"], b["coverage"]])
    parts = [f"# Recommender {version}",
             "Validation: per user the newest 20% of interactions held out (protocol T1), full ranking, k = 10.",
             markdown_table(["model", "P@10", "R@10", "NDCG@10", "coverage"], rows)]
    if m.get("served"):
        parts.append(f"Served: **{m['served']['name']}**. {m['served']['why']}.")
    families = (m["baselines"].get("ease") or {}).get("families")
    if families and families["listings_in_shared_families"]:
        line = (f"Duplicates: {families['listings_in_shared_families']} listings are variants in "
                f"{families['families']} product families ({families['source']}; e.g. "
                f"{', '.join(families['examples'][0])}).")
        per_family = families.get("validation_ndcg_per_family")
        if per_family:
            line += (" Counting a family once (and not a family the customer already has), validation NDCG@10 "
                     f"reads EASE {per_family['ease']:.3f}, popularity {per_family['popularity']:.3f}.")
        parts.append(line)
    if m.get("rating_rmse") is not None:
        parts.append(f"Rating model validation RMSE: {m['rating_rmse']:.4f}")
    parts += ["![metrics](metrics.png)", ""]
    return "\n\n".join(parts)


def _chart(figure, m: dict) -> None:
    left, right = figure.subplots(1, 2)
    names = ["Tailor"] + list(m["baselines"])
    values = [(m.get("two_tower") or {}).get("ndcg", m["ndcg@10"])] + [b["ndcg"] for b in m["baselines"].values()]
    left.bar(names, values, color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    left.set(title="Validation NDCG@10", ylim=(0, max(values) * 1.2 or 1))
    history = m["report"]["retrieval"]["history"]
    epochs = [h["epoch"] for h in history if "ndcg" in h]
    right.plot(epochs, [h["ndcg"] for h in history if "ndcg" in h], marker="o")
    right.set(title="Validation NDCG@10 per epoch", xlabel="epoch")
