"""Recommendations as a service (RecommendFunction, NumPy only): top-k for a user, anonymous
sessions, similar items, re-ranking — each item with a reason a person can read.

Strategies (the `strategy` field of every answer):
- `personalized`: a known user, scored by the current model with their events since training
  folded in (`recommend.recent`); a customer new since training with events on known items too;
- `session`: an anonymous visitor, from the items of the session (fold-in of recent items);
- `popular`: a user or session the model knows nothing about gets the most popular items
  (in the requested category when one is given);
- `trending`: `GET /v1/trending`, and the user or session the model knows nothing about when
  trending beat popularity for such customers on the validation split (the model's
  `cold_start` config) and there are live trends (filled up with popular items);
- `content`: similar items for an item added after the model was trained, from its content.

Active promotions (`tailor.promotions`) take the last slots of personalized, session, popular
and cold-start trending lists (never similar items or rankings), marked `"promoted": true`.

Every answer carries a `recommendation_id` and is recorded (`tailor.attribution.served`: one log
line, no network call). While an experiment runs (`tailor.experiments`), a customer, or a session
that names its `session_id`, gets the list of their arm's strategy (and model version), and the
answer says which: `"experiment": {"experiment_id", "arm"}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tailor.attribution.served import ServedLogPort, served_now, unit_hash
from tailor.core.errors import Invalid, NotFound, Unavailable
from tailor.core.observability import model_served
from tailor.experiments.store import Arm, Experiment
from tailor.models.cache import ModelCache
from tailor.models.registry import ModelRegistry
from tailor.promotions.inject import inject
from tailor.promotions.inject import slots as promotion_slots
from tailor.promotions.store import Promotion
from tailor.recommend.recent import RecentEvent
from tailor.recommend.scorer import ARTIFACT_FILES, FoldedUser, Recommender
from tailor.trending.counters import Trending
from tailor.trending.scoring import MIN_TREND_COUNT, Trend, window_named

CATALOG_FILE = "catalog.json"
MAX_K = 100
MAX_CANDIDATES = 500
REASON_HISTORY = 20  # the reason names the most similar of the user's latest items
PINNED_VERSIONS = 2  # model versions an experiment's arms pin, kept loaded besides the current one
FILLER_REASON = "recommended for you"  # no history item to cite, or a score below the floor


@dataclass
class ServedModel:
    recommender: Recommender
    catalog: dict  # item_id -> {"title", "categories"}

    def title(self, item_id: str) -> str:
        return (self.catalog.get(item_id) or {}).get("title") or item_id


def load_model(registry: ModelRegistry, version: str) -> ServedModel:
    files = {name: registry.artifact("recommender", version, name) for name in ARTIFACT_FILES}
    catalog = json.loads(registry.artifact("recommender", version, CATALOG_FILE))
    return ServedModel(Recommender.from_files(files), catalog)


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise Invalid(f"k must be between 1 and {MAX_K}, got {k}")
    return k


class RecommendService:
    def __init__(self, models: ModelCache[ServedModel], new_items=None,
                 recent: Callable[[str], list[RecentEvent]] | None = None, trending: Trending | None = None,
                 promotions: Callable[[], list[Promotion]] | None = None,
                 served_log: ServedLogPort | None = None, experiment: Callable[[], Experiment | None] | None = None):
        self.models = models
        self.served_log = served_log  # where each answer is recorded (attribution), or None
        self.experiment = experiment  # callable() -> the experiment running on recommendations, or None
        self._pinned: dict[str, ServedModel] = {}
        # callable() -> the promotions active now, oldest first (cached by tailor.promotions.store)
        self.promotions = promotions
        self._not_in_catalog: tuple[ServedModel | None, set[str]] = (None, set())  # promoted ids nowhere to be found
        self.trending_counters = trending  # the live trends (ingest's counters), or None
        self.new_items = new_items  # callable(model) -> items added after training, or None
        # callable(user_id) -> the customer's events since training, newest first (one state read)
        self.recent = recent

    def _model(self, version: str | None = None) -> tuple[ServedModel, str]:
        """The current model, or the version an experiment arm pins (loaded once per container)."""
        current = self.models.get()
        if version is None or version == current[1]:
            return current
        if version not in self._pinned:
            if len(self._pinned) >= PINNED_VERSIONS:
                self._pinned.pop(next(iter(self._pinned)))
            self._pinned[version] = load_model(self.models.registry, version)
        return self._pinned[version], version

    def _assignment(self, unit: str | None) -> tuple[Experiment | None, Arm | None]:
        if self.experiment is None or unit is None:
            return None, None
        running = self.experiment()
        return (running, running.arm_for(unit)) if running is not None else (None, None)

    def _record(self, surface: str, answer: dict, unit: str | None = None,
                experiment: Experiment | None = None, arm: Arm | None = None) -> dict:
        """Give the answer its id (and experiment arm) and record what was served."""
        assigned = {"experiment_id": experiment.experiment_id, "arm": arm.name} if experiment and arm else None
        served = served_now(surface, answer, unit, assigned)
        answer = {"recommendation_id": served.recommendation_id, **answer,
                  **({"experiment": assigned} if assigned else {})}
        if self.served_log is not None:
            try:
                self.served_log.write(served)
            except Exception:  # noqa: BLE001 - a full log pipe must not fail the customer's request
                pass
        return answer

    # ---- routes ---------------------------------------------------------------------------
    def for_user(self, user_id: str, k: int = 10, category: str | None = None, exclude: Sequence[str] = (),
                 include_seen: bool = False) -> dict:
        check_k(k)
        unit = unit_hash("user", user_id)
        experiment, arm = self._assignment(unit)
        model, version = self._model(arm.model_version if arm else None)
        answer = self._user_list(model, version, user_id, k, category, exclude, include_seen,
                                 arm.strategy if arm else "personalized")
        return self._record("user", answer, unit, experiment, arm)

    def _user_list(self, model: ServedModel, version: str, user_id: str, k: int, category: str | None,
                   exclude: Sequence[str], include_seen: bool, strategy: str) -> dict:
        rec = model.recommender
        categories = [category] if category else None
        self._check_category(model, category)
        folded = self._fold_in(rec, user_id)
        if strategy != "personalized":  # an experiment arm: the same list a cold customer could get
            seen = [rec.item_id(int(row)) for row in folded.seen_rows] if folded is not None and not include_seen else []
            return self._cold(model, version, k, list(exclude) + seen, categories, category,
                              note=f"experiment arm: {strategy} items", force=strategy)
        if folded is None:
            return self._cold(model, version, k, exclude, categories, category,
                              note=f"user {user_id!r} has no history in the current model")
        scored, floor = rec.recommend_folded_with_floor(folded, k, exclude_seen=not include_seen, exclude=exclude,
                                                        categories=categories)
        reasons = self._because(model, folded.reason_rows[:REASON_HISTORY], scored, floor)
        notes = [None if folded.known else
                 f"user {user_id!r} is newer than the model: the vector was folded in from their recent events",
                 self._short(scored, k, category, "not already seen")]
        scored, reasons, promoted = self._promote(
            model, k, exclude, categories, scored, reasons,
            lambda n, skip, allowed, within: rec.recommend_folded(folded, n, exclude_seen=not include_seen, exclude=skip,
                                                                  allowed_items=allowed, categories=within))
        return self._answer("personalized", version, model, scored, reasons,
                            note="; ".join(n for n in notes if n) or None, promoted=promoted)

    def for_session(self, recent_items: list[str], k: int = 10, category: str | None = None,
                    exclude: Sequence[str] = (), session_id: str | None = None) -> dict:
        check_k(k)
        unit = unit_hash("session", session_id) if session_id else None
        experiment, arm = self._assignment(unit)
        model, version = self._model(arm.model_version if arm else None)
        answer = self._session_list(model, version, recent_items, k, category, exclude,
                                    arm.strategy if arm else "personalized")
        return self._record("session", answer, unit, experiment, arm)

    def _session_list(self, model: ServedModel, version: str, recent_items: list[str], k: int,
                      category: str | None, exclude: Sequence[str], strategy: str) -> dict:
        rec = model.recommender
        self._check_category(model, category)
        categories = [category] if category else None
        known = [i for i in recent_items if rec.has_item(i)]
        if strategy != "personalized":
            return self._cold(model, version, k, list(exclude) + list(recent_items), categories, category,
                              note=f"experiment arm: {strategy} items", force=strategy)
        if not known:
            return self._cold(model, version, k, list(exclude) + list(recent_items), categories, category,
                              note="none of the recent items is known to the current model")
        scored = rec.from_recent_items(known, k, exclude=exclude, categories=categories)
        rows = np.array([rec.item_row(i) for i in reversed(known)][:REASON_HISTORY])
        note = self._short(scored, k, category, "not in the session")
        scored, reasons, promoted = self._promote(
            model, k, exclude, categories, scored, self._because(model, rows, scored),
            lambda n, skip, allowed, within: rec.from_recent_items(known, n, exclude=skip, allowed_items=allowed,
                                                                   categories=within))
        return self._answer("session", version, model, scored, reasons, note=note, promoted=promoted)

    def similar(self, item_id: str, k: int = 10, category: str | None = None) -> dict:
        check_k(k)
        model, version = self._model()
        rec = model.recommender
        self._check_category(model, category)
        new = not rec.has_item(item_id)
        if new and not self._add_new_item(model, item_id):
            raise NotFound(f"unknown item {item_id!r}: it is neither in the model nor in the catalog")
        scored = rec.similar_items(item_id, k, categories=[category] if category else None)
        reasons = [f"similar to {model.title(item_id)}"] * len(scored)
        notes = ["item is newer than the model: its vector comes from its content" if new else None,
                 self._short(scored, k, category, "other than this one")]
        return self._record("similar", self._answer("content" if new else "similar", version, model, scored, reasons,
                                                    note="; ".join(n for n in notes if n) or None))

    def rank(self, user_id: str, item_ids: list[str]) -> dict:
        if not item_ids:
            raise Invalid('"item_ids" must list at least one item')
        if len(item_ids) > MAX_CANDIDATES:
            raise Invalid(f"at most {MAX_CANDIDATES} item_ids per request, got {len(item_ids)}")
        model, version = self._model()
        rec = model.recommender
        unknown = [i for i in item_ids if not rec.has_item(i)]
        if unknown:
            raise NotFound(f"unknown item(s): {', '.join(unknown[:10])}", details={"unknown_items": unknown})
        folded = self._fold_in(rec, user_id)
        if folded is not None:
            scored = sorted(rec.score_items_folded(folded, item_ids), key=lambda pair: -pair[1])
            reasons = self._because(model, folded.reason_rows[:REASON_HISTORY], scored, rec.folded_floor(folded))
            answer = self._answer("personalized", version, model, scored, reasons)
        else:
            popularity = {item: score for item, score in rec.popular(rec.n_items)}
            scored = sorted(((i, popularity.get(i, 0.0)) for i in item_ids), key=lambda pair: -pair[1])
            answer = self._answer("popular", version, model, scored, ["popular right now"] * len(scored),
                                  note=f"user {user_id!r} has no history in the current model")
        return self._record("rankings", answer, unit_hash("user", user_id))

    def trending(self, window: str = "1h", k: int = 10, category: str | None = None) -> dict:
        """The items trending in the window (see `tailor.trending`), best first; titles and
        categories come from the current model's catalog (without a model: no category filter)."""
        check_k(k)
        span = window_named(window)
        if self.trending_counters is None:
            raise Unavailable("trending is not available: this service has no trending counters")
        try:
            model, version = self._model()
        except Unavailable:
            if category:
                raise
            model, version = None, None
        allowed = None
        if model is not None and category:
            self._check_category(model, category)
            allowed = self._category_items(model, [category])
        found = self.trending_counters.top(window, k, allowed=allowed)
        answer: dict = {"strategy": "trending", "window": window,
                        **({"model_version": version} if version is not None else {}),
                        "items": [{"item_id": t.item_id, "score": round(t.score, 6),
                                   "title": model.title(t.item_id) if model is not None else t.item_id,
                                   "reason": t.reason(span)} for t in found]}
        if len(found) < k:
            where = f" in category {category!r}" if category else ""
            answer["note"] = (f"only {len(found)} of the {k} requested: no other item{where} had at least "
                              f"{MIN_TREND_COUNT} interactions in the {span.words} and a higher rate than before")
        model_served(version)  # no strategy: a trending list is asked for, not a fallback
        return self._record("trending", answer)

    # ---- helpers --------------------------------------------------------------------------
    @staticmethod
    def _category_items(model: ServedModel, categories: list[str]) -> set[str]:
        rec = model.recommender
        return {rec.item_id(int(row)) for row in rec.items_in_categories(categories)}

    def _live_trends(self, model: ServedModel, window: str, k: int, exclude: Sequence[str],
                     categories: list[str] | None) -> list[Trend]:
        if self.trending_counters is None:
            return []
        allowed = self._category_items(model, categories) if categories else None
        skip = set(exclude)
        return [t for t in self.trending_counters.top(window, k + len(skip), allowed=allowed)
                if t.item_id not in skip][:k]

    def _cold(self, model, version, k, exclude, categories, category, note, force: str | None = None) -> dict:
        """A customer the model knows nothing about: trending when it beat popularity for such
        customers on the validation split and something trends now, else popular. `force`
        ("popular" or "trending": an experiment arm's strategy) decides instead of the validation."""
        cold = model.recommender.config.get("cold_start") or {}
        use_trends = cold.get("strategy") == "trending" if force is None else force == "trending"
        found = self._live_trends(model, cold.get("window", "1h"), k, exclude, categories) if use_trends else []
        if not found:
            return self._popular(model, version, k, exclude, categories, category, note)
        span = window_named(cold.get("window", "1h"))
        fill = model.recommender.popular(k - len(found), exclude=list(exclude) + [t.item_id for t in found],
                                         categories=categories) if len(found) < k else []
        popular_reason = f"popular in {category}" if category else "popular right now"
        scored = [(t.item_id, t.score) for t in found] + fill
        reasons = [t.reason(span) for t in found] + [popular_reason] * len(fill)
        why = None if force else (
            f"trending in the {span.words} beat popularity for customers new to the model on the validation "
            f"split (HR@10 {cold.get('trending_hr10', 0):.3f} vs {cold.get('popular_hr10', 0):.3f})")
        short = self._short(scored, k, category, "left after the exclusions")
        scored, reasons, promoted = self._promote(model, k, exclude, categories, scored, reasons,
                                                  self._popular_candidates(model))
        return self._answer("trending", version, model, scored, reasons,
                            note="; ".join(n for n in (note, why, short) if n), promoted=promoted)

    def _fold_in(self, rec: Recommender, user_id: str) -> FoldedUser | None:
        """The customer with their events since training, or None when the model can say nothing
        about them (unknown, and no recent event on an item it knows)."""
        events = self.recent(user_id) if self.recent is not None else []
        if not events and not rec.has_user(user_id):
            return None
        try:
            return rec.fold_in(user_id, [e.item_id for e in events], [e.item_id for e in events if e.disliked])
        except NotFound:
            return None

    def _popular(self, model, version, k, exclude, categories, category, note) -> dict:
        scored = model.recommender.popular(k, exclude=exclude, categories=categories)
        reason = f"popular in {category}" if category else "popular right now"
        short = self._short(scored, k, category, "left after the exclusions")
        scored, reasons, promoted = self._promote(model, k, exclude, categories, scored, [reason] * len(scored),
                                                  self._popular_candidates(model))
        return self._answer("popular", version, model, scored, reasons,
                            note="; ".join(n for n in (note, short) if n), promoted=promoted)

    @staticmethod
    def _popular_candidates(model: ServedModel) -> Callable:
        rec = model.recommender
        return lambda n, skip, allowed, within: rec.popular(n, exclude=skip, allowed_items=allowed, categories=within)

    def _promote(self, model: ServedModel, k: int, exclude: Sequence[str], categories: list[str] | None,
                 scored, reasons: list[str], candidates: Callable) -> tuple[list, list[str], dict[str, str]]:
        """The list with the active promotions' items in (`tailor.promotions`): the scored items,
        their reasons, and each promoted item's promotion name.

        `candidates(n, exclude, allowed_items, categories)` scores items the way the list was
        scored (same vector, seen items left out unless asked for) and best first; it is called
        with the request's exclusions plus the listed items, so what comes back may be listed."""
        active = self.promotions() if self.promotions is not None else []
        if not active:
            return scored, reasons, {}
        skip = [*exclude, *(item for item, _ in scored)]
        offers = []
        for promotion in active:
            allowed, within = self._promotion_filter(model, promotion, categories)
            if allowed is not None and not allowed:
                continue
            # k more than its slots: earlier promotions may already have taken up to k of them.
            offers.append((promotion.name, promotion.share,
                           candidates(promotion_slots(promotion.share, k) + k, skip, allowed, within)))
        entries = inject([(item, score, why) for (item, score), why in zip(scored, reasons)], offers, k)
        return ([(e.item_id, e.score) for e in entries], [e.reason for e in entries],
                {e.item_id: e.promotion for e in entries if e.promotion})

    def _promotion_filter(self, model: ServedModel, promotion: Promotion, categories: list[str] | None
                          ) -> tuple[list[str] | None, list[str] | None]:
        """(allowed_items, categories) of a promotion's candidates inside the requested category."""
        rec = model.recommender
        if promotion.category is not None:
            if not categories:
                return None, [promotion.category]
            return [rec.item_id(int(row)) for row in rec.items_in_categories([promotion.category])], categories
        if self._not_in_catalog[0] is not model:
            self._not_in_catalog = (model, set())
        missing = self._not_in_catalog[1]
        allowed = []
        for item in promotion.item_ids or ():
            # An item stored after training joins the model from its content, as for similar items;
            # one found nowhere is not looked up again while this model serves.
            if rec.has_item(item) or (item not in missing and self._add_new_item(model, item)):
                allowed.append(item)
            else:
                missing.add(item)
        return allowed, categories

    @staticmethod
    def _short(scored, k: int, category: str | None, which: str) -> str | None:
        """A note when fewer than k items come back, saying why."""
        if len(scored) >= k:
            return None
        where = f" in category {category!r}" if category else " in the catalog"
        return f"only {len(scored)} of the {k} requested: that is every item{where} {which}"

    def _because(self, model: ServedModel, history_rows: np.ndarray, scored, floor: float = -np.inf) -> list[str]:
        """For each recommended item, the history item whose vector is closest to it.

        ``history_rows`` are the items a reason may cite (never one the customer rated low or
        reviewed negatively); an item scored at or below ``floor`` (the customer's median score,
        see ``Recommender.score_floor``) is filler, not a match, and cites nothing."""
        rec = model.recommender
        if not len(history_rows) or not scored:
            return [FILLER_REASON] * len(scored)
        unit = rec.unit_item_matrix
        rows = np.array([rec.item_row(item) for item, _ in scored])
        closest = np.asarray(history_rows)[np.argmax(unit[rows] @ unit[np.asarray(history_rows)].T, axis=1)]
        return [f"because you chose {model.title(rec.item_id(h))}" if score > floor else FILLER_REASON
                for h, (_, score) in zip(closest, scored)]

    @staticmethod
    def _answer(strategy, version, model, scored, reasons, note=None, promoted: dict[str, str] | None = None) -> dict:
        answer = {"strategy": strategy, "model_version": version,
                  "items": [{"item_id": item, "score": round(score, 6), "title": model.title(item), "reason": why}
                            for (item, score), why in zip(scored, reasons)]}
        for entry in answer["items"] if promoted else []:
            name = (promoted or {}).get(entry["item_id"])
            if name:
                entry.update(promoted=True, promotion=name)
        if note:
            answer["note"] = note
        model_served(version, strategy)
        return answer

    @staticmethod
    def _check_category(model: ServedModel, category: str | None) -> None:
        if category and not len(model.recommender.items_in_categories([category])):
            raise NotFound(f"unknown category {category!r}")

    def _add_new_item(self, model: ServedModel, item_id: str) -> bool:
        if self.new_items is None:
            return False
        item = self.new_items(item_id)
        if item is None:
            return False
        model.recommender.add_item(item_id, item.get("title"), item.get("categories"), item.get("description"))
        model.catalog[item_id] = {"title": item.get("title"), "categories": item.get("categories")}
        return True
