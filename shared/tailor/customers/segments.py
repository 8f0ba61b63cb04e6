"""The segments as stored: one per k-means cluster of active customers (tailor.customers.clustering)
plus one for the customers known only from the users table, largest first with ids s1..sN, each
with its name and description (tailor.customers.describe), statistics and a sample of members.
"""

from __future__ import annotations

import math

import numpy as np

from tailor.customers.activity import Activity
from tailor.customers.affinity import Categories
from tailor.customers.attributes import Attribute
from tailor.customers.columns import rounded
from tailor.customers.describe import (
    attribute_highlights,
    describe_behaviour,
    describe_inactive,
    distinguishing_categories,
    events_phrase,
    make_distinct,
    name_and_description,
)

SAMPLE_MEMBERS = 20


def build_segments(universe: np.ndarray, segment_of: np.ndarray, act: Activity, cats: Categories,
                   attributes: list[Attribute], vector_row: np.ndarray,
                   rating_mean: np.ndarray | None = None) -> tuple[list[dict], np.ndarray]:
    """Segment dicts (largest first, ids s1..sN) and each user's position in that list."""
    n = len(universe)
    groups = [np.flatnonzero(segment_of == s) for s in range(int(segment_of.max(initial=-1)) + 1)]
    groups.append(np.flatnonzero(act.events == 0))  # known from the users table only
    groups = [g for g in groups if len(g)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))  # ties: the first member's id, for a stable order
    segment_index = np.full(n, -1)
    for s, members in enumerate(groups):
        segment_index[members] = s

    active = act.events > 0
    base_events = float(np.median(act.events[active])) if active.any() else 0.0
    base_recency = float(np.median(act.recency_days[active])) if active.any() else 0.0
    base_counts = [(np.bincount(a.codes[a.codes >= 0], minlength=len(a.labels)), int((a.codes >= 0).sum()))
                   for a in attributes]
    seg_cat = np.zeros((len(groups), len(cats.names)))
    if len(cats.user):
        np.add.at(seg_cat, (segment_index[cats.user], cats.category), cats.weight)

    # No ratings at all reads as NaN everywhere: nobody rated.
    user_rating = rating_mean if rating_mean is not None else np.full(n, np.nan)
    rated = np.isfinite(user_rating)
    base_rating = float(user_rating[rated].mean()) if rated.any() else math.nan
    segments, facts = [], []
    for s, members in enumerate(groups):
        segment_id = f"s{s + 1}"
        highlights = attribute_highlights(members, attributes, base_counts)
        is_inactive = act.events[members[0]] == 0
        events = act.events[members]
        if is_inactive:
            taste: list[dict] = []
            behaviour = {"label": "no activity", "basis": "events", "median_events": 0.0,
                         "base_median_events": rounded(base_events, 1)}
            name, description = describe_inactive(len(members), n, highlights)
        else:
            taste = distinguishing_categories(seg_cat[s], cats.base_share, cats.names)
            behaviour = describe_behaviour(events, act.recency_days[members], base_events, base_recency)
            seg_rated = members[rated[members]]
            rating = (float(user_rating[seg_rated].mean()), base_rating) if len(seg_rated) else None
            name, description, _ = name_and_description(
                len(members), n, taste, highlights, behaviour, bool(len(cats.names)), rating)
        fact = {"events": f"median {events_phrase(float(np.median(events)))}"}
        if not is_inactive:
            if rated[members].any():
                fact["rating"] = f"mean rating {float(user_rating[members[rated[members]]].mean()):.1f}★"
            fact["recency"] = f"last active a median {float(np.median(act.recency_days[members])):.0f} days ago"
            fact["frequency"] = f"{float(act.frequency[members].mean()):.1f} events a month"
        facts.append(fact)
        total = seg_cat[s].sum()
        by_share = np.argsort(-seg_cat[s], kind="stable")[:5] if total > 0 else np.zeros(0, dtype=np.int64)
        statistics = {
            "share_of_users": rounded(len(members) / n),
            "mean_events": rounded(events.mean(), 2),
            "median_events": rounded(np.median(events), 1),
            "median_recency_days": None if is_inactive else rounded(np.median(act.recency_days[members]), 1),
            "mean_frequency_per_month": rounded(act.frequency[members].mean(), 2),
            "top_categories": [{"category": cats.names[c], "share": rounded(seg_cat[s, c] / total),
                                "lift": rounded(seg_cat[s, c] / total / cats.base_share[c], 3)}
                               for c in by_share if seg_cat[s, c] > 0],
            "distinguishing_categories": taste,
            "attribute_highlights": highlights[:5],
            "behaviour": behaviour,
            "with_model_vector": int((vector_row[members] >= 0).sum()),
        }
        ratings, values = act.rating_count[members].sum(), act.value_count[members].sum()
        if ratings:
            statistics["rating_mean"] = rounded(act.rating_sum[members].sum() / ratings, 3)
        if values:
            statistics["value_mean"] = rounded(act.value_sum[members].sum() / values, 2)
        segments.append({"segment_id": segment_id, "name": name, "description": description,
                         "size": int(len(members)), "kind": "no_activity" if is_inactive else "cluster",
                         "statistics": statistics,
                         "sample_members": [str(u) for u in universe[members[:SAMPLE_MEMBERS]]]})
    make_distinct(segments, facts)
    return segments, segment_index
