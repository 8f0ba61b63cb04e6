"""Promotions in the state table (`PROMOTIONS` / `<promotion_id>`): validated and written by
the admin routes (IngestFunction), read by serving (RecommendFunction) with one Query per
container every `ACTIVE_CACHE_SECONDS`."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tailor.core.clock import iso
from tailor.core.errors import Invalid, NotFound
from tailor.storage import keys
from tailor.storage.cached import CachedPartition
from tailor.storage.ports import StateTablePort

ACTIVE_CACHE_SECONDS = 30.0
MAX_NAME_LENGTH = 100
MAX_ITEMS = 500


def parse_time(value: Any, field: str) -> datetime:
    """An ISO-8601 timestamp (a date alone means its midnight; no offset means UTC), to the second."""
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(f"{field} must be an ISO-8601 timestamp such as 2025-06-01T00:00:00Z, got {value!r}",
                      details=[{"field": field, "problem": "not an ISO-8601 timestamp"}]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Promotion:
    promotion_id: str
    name: str
    share: float
    starts_at: datetime
    ends_at: datetime | None  # None: open-ended, until deleted
    created_at: str
    category: str | None = None
    item_ids: tuple[str, ...] | None = None

    def status(self, now: datetime) -> str:
        if now < self.starts_at:
            return "scheduled"
        if self.ends_at is not None and now >= self.ends_at:
            return "ended"
        return "active"

    def active(self, now: datetime) -> bool:
        return self.status(now) == "active"

    def to_dict(self, now: datetime) -> dict:
        answer: dict[str, Any] = {"promotion_id": self.promotion_id, "name": self.name}
        if self.category is not None:
            answer["category"] = self.category
        else:
            answer["item_ids"] = list(self.item_ids or ())
        answer.update(share=self.share, starts_at=iso(self.starts_at),
                      ends_at=iso(self.ends_at) if self.ends_at else None, created_at=self.created_at,
                      status=self.status(now))
        return answer

    def to_item(self) -> dict:
        item = {k: v for k, v in self.to_dict(self.starts_at).items() if v is not None and k != "status"}
        return {"pk": keys.PROMOTIONS_PK, "sk": self.promotion_id, **item}

    @classmethod
    def from_item(cls, item: dict) -> Promotion:
        ends = item.get("ends_at")
        ids = item.get("item_ids")
        return cls(promotion_id=str(item["promotion_id"]), name=str(item["name"]), share=float(item["share"]),
                   starts_at=parse_time(item["starts_at"], "starts_at"),
                   ends_at=parse_time(ends, "ends_at") if ends else None, created_at=str(item.get("created_at", "")),
                   category=item.get("category"), item_ids=tuple(map(str, ids)) if ids is not None else None)


class PromotionStore:
    """Create, list and delete promotions; `active()` is what serving applies.

    `models` is the recommender's model cache (`get()` → (ServedModel, version); it raises the
    503 "no recommender model has been trained yet" itself) and `catalog_items(ids)` says which
    ids the stored items dataset holds: an item is known if either has it, so an item added
    after the last training can be promoted (serving adds it to the model from its content)."""

    def __init__(self, state: StateTablePort, models: Any = None,
                 catalog_items: Callable[[Iterable[str]], set[str]] | None = None, *,
                 ttl: float = ACTIVE_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.state, self.models, self.catalog_items = state, models, catalog_items
        self.now = now
        self._partition = CachedPartition(state, keys.PROMOTIONS_PK, Promotion.from_item, ttl=ttl, clock=clock)

    # ---- admin ------------------------------------------------------------------------------
    def create(self, name: str, share: Any, category: str | None = None, item_ids: list[str] | None = None,
               starts_at: str | None = None, ends_at: str | None = None) -> dict:
        now = self.now().astimezone(UTC).replace(microsecond=0)
        name = " ".join(str(name or "").split())
        if not name:
            raise Invalid('"name" must not be empty')
        if len(name) > MAX_NAME_LENGTH:
            raise Invalid(f'"name" must be at most {MAX_NAME_LENGTH} characters, got {len(name)}')
        category = category.strip() if isinstance(category, str) else category
        if (category is None or category == "") == (item_ids is None):
            raise Invalid('a promotion needs exactly one of "category" or "item_ids"')
        if item_ids is not None:
            ids = [str(item) for item in item_ids]
            if not 1 <= len(ids) <= MAX_ITEMS:
                raise Invalid(f'"item_ids" must list 1 to {MAX_ITEMS} items, got {len(ids)}')
            repeated = sorted(item for item, count in Counter(ids).items() if count > 1)
            if repeated:
                raise Invalid(f'"item_ids" lists items more than once: {", ".join(repeated[:10])}',
                              details={"repeated_items": repeated})
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise Invalid(f"share must be more than 0 and at most 1, got {share}")
        starts = parse_time(starts_at, "starts_at") if starts_at is not None else now
        ends = parse_time(ends_at, "ends_at") if ends_at is not None else None
        if ends is not None and ends <= starts:
            raise Invalid(f"ends_at ({iso(ends)}) must be after starts_at ({iso(starts)})")
        if ends is not None and ends <= now:
            raise Invalid(f"ends_at ({iso(ends)}) is in the past: a promotion must end in the future")
        self._check_known(category, item_ids)
        stamp = datetime.now(UTC)
        promotion = Promotion(
            # Sortable by creation (to the microsecond): serving applies promotions oldest first.
            promotion_id=f"{stamp:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}",
            name=name, share=float(share), starts_at=starts, ends_at=ends, created_at=iso(now),
            category=category if item_ids is None else None,
            item_ids=tuple(map(str, item_ids)) if item_ids is not None else None)
        self.state.put(promotion.to_item(), only_if_new=True)
        self._partition.forget()
        return promotion.to_dict(now)

    def listing(self) -> dict:
        now = self.now()
        return {"promotions": [p.to_dict(now) for p in self._partition.read()]}

    def delete(self, promotion_id: str) -> dict:
        if self.state.get(keys.PROMOTIONS_PK, promotion_id) is None:
            raise NotFound(f"unknown promotion {promotion_id!r}")
        self.state.delete(keys.PROMOTIONS_PK, promotion_id)
        self._partition.forget()
        return {"promotion_id": promotion_id, "deleted": True}

    def _check_known(self, category: str | None, item_ids: list[str] | None) -> None:
        if self.models is None:
            return
        model, _ = self.models.get()  # no model yet: its 503, which says how to train one
        rec = model.recommender
        if item_ids is None:
            if not len(rec.items_in_categories([category])):
                raise NotFound(f"unknown category {category!r}: no item of the current model has it")
            return
        missing = [item for item in map(str, item_ids) if not rec.has_item(item)]
        stored = self.catalog_items(missing) if missing and self.catalog_items is not None else set()
        unknown = [item for item in missing if item not in stored]
        if unknown:
            raise NotFound(f"unknown item(s): {', '.join(unknown[:10])}" + (" …" if len(unknown) > 10 else "")
                           + ": neither in the current model nor in the stored items",
                           details={"unknown_items": unknown})

    # ---- serving ----------------------------------------------------------------------------
    def active(self) -> list[Promotion]:
        """The promotions active now, oldest first. The table is queried at most every `ttl`
        seconds; which of the cached promotions are active is decided on every call, so one
        starts and ends on time. A failed read keeps the last list (recommendations go on)."""
        now = self.now()
        return [p for p in self._partition.cached() if p.active(now)]
