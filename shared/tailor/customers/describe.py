"""What a segment is called and how it is described: only what sets it apart from the whole base.

A category is named when the segment holds it at ``MIN_LIFT`` (1.2) times its base share or more
(and it has at least 3% of the segment's weight); an attribute value or band when at least 20% of
the members hold it, at 1.2x the base share or more. Besides declared attributes (a numeric one such
as age is banded at quantiles), bands are derived from what the shop has (tailor.customers.attributes):
mean rating (critical <= 2.5 stars, lukewarm, happy >= 4), review sentiment (the sentiment results,
else the reviews' labels: mostly negative, mixed, mostly positive) and the mean ``price`` (an items
metadata column, "$1,299.00" and "12,50 €" read) of the customer's items at the catalog's price
tertiles (budget, mid-range, premium). Behaviour is heavy/light (median events) or recent/lapsed
(median recency) against the base medians, else typical. A shop without categories gets names from
its two strongest other traits ("Critical raters, unhappy reviewers"); nothing distinguishing gives
"Typical customers". Names are distinct: segments sharing a name get the first fact that tells them
apart (mean rating, median events, recency, frequency), else a group number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tailor.customers.attributes import Attribute, display
from tailor.customers.columns import rounded

MIN_TASTE_SHARE = 0.03
MIN_ATTRIBUTE_SHARE = 0.20
# A category, attribute or band is named in a segment only when the segment holds it at least
# this many times as often as the whole base: a "lean" of about 1.0x says nothing.
MIN_LIFT = 1.2
NO_ACTIVITY_NAME = "New customers, no activity yet"


def _pct(x: float) -> str:
    return "under 1%" if 0 < x < 0.005 else f"{100 * x:.0f}%"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def distinguishing_categories(seg_weight: np.ndarray, base_share: np.ndarray, cat_names: list[str]) -> list[dict]:
    """The categories that set a segment apart (its "taste"), highest lift first, at most five."""
    total = seg_weight.sum()
    if total <= 0:
        return []
    share = seg_weight / total
    lift = np.where(base_share > 0, share / np.maximum(base_share, 1e-12), 0.0)
    # only categories the segment holds at MIN_LIFT x the base share or more distinguish it
    candidates = np.flatnonzero((share >= MIN_TASTE_SHARE) & (lift >= MIN_LIFT - 1e-9))
    order = candidates[np.lexsort((candidates, -lift[candidates]))]
    return [{"category": cat_names[c], "share": rounded(share[c]), "base_share": rounded(base_share[c]),
             "lift": rounded(lift[c], 3)} for c in order[:5]]


def attribute_highlights(members: np.ndarray, attributes: list[Attribute],
                         base_counts: list[tuple[np.ndarray, int]]) -> list[dict]:
    found: list[dict[str, Any]] = []
    for position, attr in enumerate(attributes):
        base, base_known = base_counts[position]
        codes = attr.codes[members]
        codes = codes[codes >= 0]
        if not len(codes) or not base_known:
            continue
        seg = np.bincount(codes, minlength=len(attr.labels))
        share, base_share = seg / len(codes), base / base_known
        lift = np.where(base_share > 0, share / np.maximum(base_share, 1e-12), 0.0)
        for code in np.flatnonzero((share >= MIN_ATTRIBUTE_SHARE) & (lift >= MIN_LIFT - 1e-9) & (seg >= 2)):
            found.append({"attribute": attr.name,
                          "value": attr.labels[code] if attr.phrases else attr.labels[code][len(display(attr.name)) + 1:],
                          "label": attr.labels[code], "kind": attr.kind, "share": rounded(share[code]),
                          "base_share": rounded(base_share[code]), "lift": rounded(lift[code], 3)})
            if attr.phrases:
                found[-1]["phrase"] = attr.phrases[code]
    found.sort(key=lambda h: (-h["lift"], -h["share"], h["label"]))
    return found


def describe_behaviour(events: np.ndarray, recency: np.ndarray, base_events: float, base_recency: float) -> dict:
    med_events, med_recency = float(np.median(events)), float(np.median(recency))
    events_ratio = med_events / max(base_events, 1e-9)
    recency_ratio = (med_recency + 1) / (base_recency + 1)
    options = []
    if events_ratio >= 1.5:
        options.append((math.log(events_ratio), "heavy users", "events"))
    elif events_ratio <= 1 / 1.5:
        options.append((-math.log(max(events_ratio, 1e-9)), "light users", "events"))
    if recency_ratio <= 0.5:
        options.append((-math.log(recency_ratio), "recently active", "recency"))
    elif recency_ratio >= 2:
        options.append((math.log(recency_ratio), "lapsed", "recency"))
    label, basis = (max(options)[1], max(options)[2]) if options else ("typical activity", "events")
    return {"label": label, "basis": basis, "median_events": rounded(med_events, 1),
            "base_median_events": rounded(base_events, 1), "median_recency_days": rounded(med_recency, 1),
            "base_median_recency_days": rounded(base_recency, 1)}


def _highlight_part(h: dict) -> str:
    if h.get("phrase"):
        return h["phrase"]
    return ("mostly " if h["share"] > 0.5 else "often ") + h["label"]


def _highlight_sentence(h: dict) -> str:
    if h.get("phrase"):
        return (f"{h['phrase']} ({h['label']}) are over-represented ({_pct(h['share'])} vs "
                f"{_pct(h['base_share'])} overall, {h['lift']:.1f}×)")
    return f"{h['label']} is over-represented ({_pct(h['share'])} vs {_pct(h['base_share'])} overall)"


def name_and_description(size: int, n_total: int, taste: list[dict], highlights: list[dict],
                         behaviour: dict, has_categories: bool = True,
                         rating: tuple[float, float] | None = None) -> tuple[str, str, list[str]]:
    """(name, description, further name parts to tell it from a segment of the same name).

    Only what sets the segment apart is named: categories and attribute or band values held at
    MIN_LIFT x the base share or more, and non-typical activity. Without category data a segment
    is named by its two strongest other traits."""
    tastes = [t["category"] for t in taste[:2]]  # distinguishing_categories keeps only lifts >= MIN_LIFT
    parts = [f"{' and '.join(tastes)} fans"] if tastes else []
    # one trait per attribute: "critical raters, lukewarm raters" would say the same thing twice
    seen: set[str] = set()
    traits = []
    for h in highlights:
        if h["attribute"] not in seen:
            seen.add(h["attribute"])
            traits.append(_highlight_part(h))
    parts += traits[:1]
    if behaviour["label"] != "typical activity":
        parts.append(behaviour["label"])
    used = 1
    if not tastes and len(parts) < 2 and len(traits) > 1:
        parts.append(traits[1])
        used = 2
    alternates = traits[used:]
    if not parts:
        parts = ["Typical customers"]
    name = ", ".join(parts)
    name = name[0].upper() + name[1:]

    sentences = []
    head = f"{size} customers ({_pct(size / n_total)} of the base)"
    if taste:
        lifts = [f"{t['category']} ({t['lift']:.1f}× the base share)" for t in taste[:len(tastes)]]
        sentences.append(f"{head} who lean towards {_join(lifts)}.")
    elif has_categories:
        sentences.append(f"{head}; their categories follow the base's (none at {MIN_LIFT:g}× its base share or more).")
    else:
        sentences.append(f"{head}; the shop's items have no categories, so activity, ratings, reviews, prices "
                         f"and attributes describe them.")
    rest = []
    b = behaviour
    if b["basis"] == "recency" and b["label"] != "typical activity":
        detail = (f"last active a median {b['median_recency_days']:g} days ago vs "
                  f"{b['base_median_recency_days']:g} overall")
    else:
        detail = f"a median {events_phrase(b['median_events'])} vs {b['base_median_events']:g} overall"
    rest.append(f"{'They show ' if b['label'] == 'typical activity' else 'They are '}{b['label']} ({detail})")
    rest += [_highlight_sentence(h) for h in highlights[:2]]
    if rating is not None and all(math.isfinite(r) for r in rating):
        rest.append(f"mean rating {rating[0]:.1f}★ vs {rating[1]:.1f}★ overall")
    sentences.append("; ".join(rest) + ".")
    return name, " ".join(sentences), alternates


def describe_inactive(size: int, n_total: int, highlights: list[dict]) -> tuple[str, str]:
    """(name, description) of the customers known only from the users table: no events, no taste."""
    attr_text = (f"; {highlights[0]['label']} is over-represented ({_pct(highlights[0]['share'])} vs "
                 f"{_pct(highlights[0]['base_share'])} overall)" if highlights else "")
    description = (f"{size} customers ({_pct(size / n_total)} of the base) known only from "
                   f"their declared attributes: no events yet, so no taste is known{attr_text}.")
    return NO_ACTIVITY_NAME, description


def events_phrase(count: float) -> str:
    return f"{count:g} event" + ("" if count == 1 else "s")


def make_distinct(segments: list[dict], facts: list[dict[str, str]]) -> None:
    """Names shared by several segments get, on every one of them, the first fact (mean rating,
    median events, recency, frequency) that tells them all apart; failing that, a group number."""
    by_name: dict[str, list[int]] = {}
    for i, segment in enumerate(segments):
        by_name.setdefault(segment["name"], []).append(i)
    taken = set(by_name)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        for kind in ("rating", "events", "recency", "frequency"):
            texts = [facts[i].get(kind) for i in group]
            if all(texts) and len(set(texts)) == len(texts) and not {f"{name}, {t}" for t in texts} & taken:
                for i, text in zip(group, texts):
                    segments[i]["name"] = f"{name}, {text}"
                break
        else:
            for n, i in enumerate(group, 1):
                segments[i]["name"] = f"{name} (group {n})"
        taken.update(segments[i]["name"] for i in group)
