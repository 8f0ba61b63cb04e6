"""Attribution: which events a served recommendation earned, counted exactly once.

Two deliveries meet here, in either order:
- `record_served` (IngestFunction, from the served-recommendations subscription, at least once):
  writes `SERVED#<id>` / `SERVED` if new and counts the recommendation;
- `attribute` (every stored interaction with a `recommendation_id`, API or file): writes the fact
  `SERVED#<id>` / `click#<item>` (and `conversion#<item>` for a purchase) if new, so a click sent
  twice is one click.
A fact is counted when both exist, by whichever side comes second: the fact side writes the fact
then reads the record; the record side writes the record then reads the facts (strongly
consistent reads, so at least one of them sees the other), and the count itself is a conditional
update of the fact's `counted` flag, so never both. A fact whose recommendation is not known yet
waits (`waiting`, shown as unattributed); one whose recommendation is known but did not list the
item, or was served more than ATTRIBUTION_DAYS before the event, is unattributed for good.

What is counted (all additive, so concurrent batches add up exactly):
- per served day and group (`strategy`, `model_version`, experiment `arm`, the `day` itself):
  recommendations, clicks, conversions, revenue, and the sums of squares of each
  recommendation's clicks and conversions (the metrics' intervals);
- per experiment arm: the sums over its units (customers or sessions) that the statistics need
  (`experiments.statistics.ArmTotals`), from each unit's own counters (`UNIT#...`), whose
  updates return the unit's new totals: the change to Σn², Σn·c, ... follows from them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tailor.attribution.served import Served
from tailor.core.clock import from_iso
from tailor.core.errors import Invalid
from tailor.core.observability import record_attribution
from tailor.experiments.statistics import per_recommendation_rate
from tailor.experiments.statistics import rate_fields as _rate
from tailor.storage import keys
from tailor.storage.dynamo import ConditionFailed
from tailor.storage.ports import StateTablePort

ATTRIBUTION_DAYS = 30  # an event more than this after the recommendation is not attributed to it
CLOCK_SLACK_MS = 5 * 60 * 1000  # an event dated this much before its recommendation is still its own
GROUPS = ("strategy", "model_version", "arm", "day")
PURCHASE = "purchase"
NEGATIVE_EVENTS = frozenset({"dislike", "not_interested", "hide", "return", "refund"})  # never a click


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _expires(ms: int) -> int:
    return int(ms / 1000) + ATTRIBUTION_DAYS * 86400 + 86400


def _moment(iso: str | None) -> datetime | None:
    return from_iso(iso) if iso else None


def _counted_as(served: Served, after_stop: bool) -> Served:
    """The record as the counters see it: served after its experiment stopped, it counts outside it."""
    return dataclasses.replace(served, experiment_id=None, arm=None) if after_stop else served


def group_values(served: Served) -> dict[str, str]:
    values = {"strategy": served.strategy, "day": served.day}
    if served.model_version:
        values["model_version"] = str(served.model_version)
    if served.experiment_id and served.arm:
        values["arm"] = f"{served.experiment_id}/{served.arm}"
    return values


@dataclass
class _Deltas:
    """ADDs to apply at the end of a batch: one update per counter item, however many events."""

    adds: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    served: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # strategy -> new recommendations
    clicks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conversions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    revenue: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    unattributed: int = 0

    def add(self, pk: str, sk: str, **values: float) -> None:
        target = self.adds[(pk, sk)]
        for name, value in values.items():
            target[name] += value

    def groups(self, served: Served, **values: float) -> None:
        for by, value in group_values(served).items():
            self.add(keys.metrics_pk(served.day), keys.metrics_sk(by, value), **values)

    def merge(self, other: _Deltas) -> None:
        for (pk, sk), values in other.adds.items():
            self.add(pk, sk, **values)
        for mine, theirs in ((self.served, other.served), (self.clicks, other.clicks),
                             (self.conversions, other.conversions)):
            for strategy, count in theirs.items():
                mine[strategy] += count
        for strategy, amount in other.revenue.items():
            self.revenue[strategy] += amount
        self.unattributed += other.unattributed


class AttributionLedger:
    """Records and events are handled several at a time (`StateTablePort.run_many`: worker
    threads, each with its own table): each takes a few conditional writes and reads one after
    another, and a batch of 500 clicks one by one took 12 s on the local stack."""

    def __init__(self, state: StateTablePort):
        self.state = state

    def _each(self, work: Callable[[StateTablePort, Any, _Deltas], Any], items: list) -> list:
        """`work(table, item, deltas)` for every item; every item's counts (also those of an item
        that failed midway) are applied once at the end, even when one failed: a retried delivery
        skips what was written, so what was counted must not be lost."""
        merged, lock = _Deltas(), threading.Lock()

        def one(table: StateTablePort, item: Any) -> Any:
            deltas = _Deltas()
            try:
                return work(table, item, deltas)
            finally:
                with lock:
                    merged.merge(deltas)

        try:
            return self.state.run_many(one, items)
        finally:
            self._apply(merged)

    # ---- served recommendations --------------------------------------------------------------
    def record_served(self, records: Iterable[Served]) -> dict:
        batch = list(records)
        # Serving learns of a stop within its cache time (30 s): what it served under the experiment
        # after the stop is recorded but not counted in it, so a stopped result stays as it was.
        stopped = {}
        for experiment_id in {r.experiment_id for r in batch if r.experiment_id}:
            item = self.state.get(keys.EXPERIMENTS_PK, experiment_id)
            stopped[experiment_id] = _moment((item or {}).get("stopped_at"))
        outcomes = self._each(lambda state, served, deltas: self._record_one(state, served, deltas, stopped), batch)
        return {"recommendations_recorded": outcomes.count(True), "deliveries_repeated": outcomes.count(False)}

    def _record_one(self, state: StateTablePort, served: Served, deltas: _Deltas,
                    stopped: dict[str, datetime | None]) -> bool:
        """True when recorded now, False when it was delivered before (counted the first time)."""
        stop = stopped.get(served.experiment_id or "")
        after_stop = stop is not None and _moment(served.served_at) > stop  # type: ignore[operator]
        try:
            state.put({**self._served_item(served), **({"after_stop": True} if after_stop else {})}, only_if_new=True)
        except ConditionFailed:
            return False
        served = _counted_as(served, after_stop)
        if served.experiment_id and served.arm:
            n, c, v = self._unit(state, served, n=1)
            deltas.add(keys.experiment_pk(served.experiment_id), keys.arm_sk(served.arm),
                       units=1 if n == 1 else 0, recommendations=1, nn=2 * n - 1, nc=c, nv=v)
        deltas.groups(served, recommendations=1)
        deltas.served[served.strategy] += 1
        for fact in state.query(keys.served_pk(served.recommendation_id), consistent=True):
            if fact["sk"] != keys.SERVED_SK and fact.get("counted") is False:
                self._count(state, served, fact, deltas, waited=True)
        return True

    @staticmethod
    def _served_item(served: Served) -> dict:
        item = {"pk": keys.served_pk(served.recommendation_id), "sk": keys.SERVED_SK,
                "recommendation_id": served.recommendation_id, "served_at": served.served_at,
                "surface": served.surface, "strategy": served.strategy, "items": list(served.items),
                "clicks": 0, "conversions": 0, "expires_at": _expires(served.served_ms)}
        for name in ("model_version", "unit", "experiment_id", "arm"):
            if getattr(served, name) is not None:
                item[name] = getattr(served, name)
        return item

    # ---- events -------------------------------------------------------------------------------
    def attribute(self, columns: dict[str, list]) -> dict:
        """Attribute the stored interactions that name a recommendation (ingest's on_stored hook)."""
        ids = columns.get("recommendation_id")
        if not ids or not any(ids):
            return {"attributed_events": 0}
        values = columns.get("value") or [None] * len(ids)
        kinds = columns.get("event_type") or [None] * len(ids)
        events = [(str(rec_id), str(item), int(moment), str(kind or "").lower(), value)
                  for rec_id, item, moment, kind, value in zip(ids, columns["item_id"], columns["timestamp"], kinds, values)
                  if rec_id and str(kind or "").lower() not in NEGATIVE_EVENTS]
        self._each(self._attribute_event, events)
        return {"attributed_events": len(events)}

    def _attribute_event(self, state: StateTablePort, event: tuple, deltas: _Deltas) -> None:
        rec_id, item, moment_ms, kind, value = event
        facts = [("click", None)] + ([("conversion", float(value) if value is not None else 0.0)]
                                     if kind == PURCHASE else [])
        written = []
        for fact_kind, revenue in facts:
            fact = {"pk": keys.served_pk(rec_id), "sk": keys.attributed_sk(fact_kind, item), "counted": False,
                    "event_day": _day(moment_ms), "event_ms": moment_ms, "expires_at": _expires(moment_ms)}
            if revenue is not None:
                fact["revenue"] = revenue
            try:
                state.put(fact, only_if_new=True)
                written.append(fact)
            except ConditionFailed:  # this click (or purchase) of this item was already sent
                continue
        if not written:
            return
        record = state.get(keys.served_pk(rec_id), keys.SERVED_SK)
        if record is None:
            # Not known yet (its delivery may still come) or never served: waits, shown as unattributed.
            if any(str(f["sk"]).startswith(keys.attributed_sk("click", "")) for f in written):
                deltas.add(keys.metrics_pk(_day(moment_ms)), keys.UNATTRIBUTED_SK, waiting=1)
            return
        served = _counted_as(Served.from_dict(record), bool(record.get("after_stop")))
        for fact in written:
            self._count(state, served, fact, deltas, waited=False)

    def _count(self, state: StateTablePort, served: Served, fact: dict, deltas: _Deltas, *, waited: bool) -> None:
        kind, _, item = str(fact["sk"]).partition("#")
        listed = item in served.items
        # Not before the recommendation (a few minutes' slack for the website's clock), not after the window.
        since = int(fact.get("event_ms", 0)) - served.served_ms
        in_time = -CLOCK_SLACK_MS <= since <= ATTRIBUTION_DAYS * 86400 * 1000
        try:
            state.update(fact["pk"], fact["sk"], set={"counted": "yes" if listed and in_time else "no"},
                         only_if={"counted": False})
        except ConditionFailed:  # the other side counted it
            return
        event_day_pk = keys.metrics_pk(str(fact.get("event_day") or served.day))
        if waited and kind == "click":
            deltas.add(event_day_pk, keys.UNATTRIBUTED_SK, waiting=-1)
        if not (listed and in_time):
            if kind == "click":
                deltas.add(event_day_pk, keys.UNATTRIBUTED_SK, events=1)
                deltas.unattributed += 1
            return
        counter = "clicks" if kind == "click" else "conversions"
        per_recommendation = int(state.update(keys.served_pk(served.recommendation_id), keys.SERVED_SK,
                                              add={counter: 1})[counter])
        revenue = float(fact.get("revenue") or 0.0)
        square = "cc" if kind == "click" else "vv"
        extra = {"revenue": revenue} if kind == "conversion" else {}
        deltas.groups(served, **{counter: 1, square: 2 * per_recommendation - 1}, **extra)
        if kind == "click":
            deltas.clicks[served.strategy] += 1
        else:
            deltas.conversions[served.strategy] += 1
            deltas.revenue[served.strategy] += revenue
        if served.experiment_id and served.arm:
            n, c, v = self._unit(state, served, **({"c": 1} if kind == "click" else {"v": 1}))
            arm = (keys.experiment_pk(served.experiment_id), keys.arm_sk(served.arm))
            if kind == "click":
                deltas.add(*arm, clicks=1, cc=2 * c - 1, nc=n)
            else:
                deltas.add(*arm, conversions=1, vv=2 * v - 1, nv=n, revenue=revenue)

    @staticmethod
    def _unit(state: StateTablePort, served: Served, **add: int) -> tuple[int, int, int]:
        """Add to the unit's own counters; its totals after the update (n, c, v)."""
        unit = state.update(keys.unit_pk(str(served.experiment_id), str(served.arm),
                                         str(served.unit or served.recommendation_id)),
                            keys.UNIT_SK, add=add, set={"expires_at": _expires(served.served_ms) + 365 * 86400})
        return int(unit.get("n", 0)), int(unit.get("c", 0)), int(unit.get("v", 0))

    def _apply(self, deltas: _Deltas) -> None:
        updates = [{"pk": pk, "sk": sk, "add": {k: v for k, v in values.items() if v}}
                   for (pk, sk), values in deltas.adds.items()]
        updates = [u for u in updates if u["add"]]
        if updates:
            self.state.update_many(updates)
        record_attribution(deltas.served, deltas.clicks, deltas.conversions, deltas.revenue, deltas.unattributed)


MAX_DAYS = 366


def _date(value: str | None, name: str, default: date) -> date:
    if value is None or not str(value).strip():
        return default
    try:
        return from_iso(str(value)).date()
    except ValueError:
        raise Invalid(f"{name} must be a date such as 2026-12-01 (or an ISO-8601 timestamp), got {value!r}",
                      details=[{"field": name, "problem": "not a date"}]) from None


def online_metrics(state: StateTablePort, start: str | None = None, end: str | None = None,
                   by: str = "strategy", today: date | None = None) -> dict:
    """`GET /v1/metrics/recommendations`: per group, the recommendations served on the days from
    `start` to `end` (inclusive, UTC; default the last 7 days) and what they earned. `ctr` and
    `conversion_rate` are per recommendation served, with a 95% normal interval that treats each
    recommendation as one observation (`experiments.statistics.per_recommendation_rate`; an
    experiment's result uses its customers as units instead). One Query per day."""
    if by not in GROUPS:
        raise Invalid(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
    today = today or datetime.now(UTC).date()
    last = _date(end, "to", today)
    first = _date(start, "from", last - timedelta(days=6))
    if first > last:
        raise Invalid(f"from ({first}) must not be after to ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"at most {MAX_DAYS} days per request, got {(last - first).days + 1}")
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    unattributed = 0
    prefix = keys.metrics_sk(by, "")
    for offset in range((last - first).days + 1):
        for item in state.query(keys.metrics_pk((first + timedelta(days=offset)).isoformat())):
            sk = str(item["sk"])
            if sk == keys.UNATTRIBUTED_SK:
                unattributed += int(item.get("events", 0)) + int(item.get("waiting", 0))
            elif sk.startswith(prefix):
                for name, value in item.items():
                    if name not in ("pk", "sk") and isinstance(value, int | float):
                        totals[sk[len(prefix):]][name] += value
    groups = []
    for key in sorted(totals, key=lambda k: (-totals[k]["recommendations"], k)):
        t = totals[key]
        n = int(t["recommendations"])
        groups.append({"key": key, "recommendations": n, "clicks": int(t["clicks"]),
                       **_rate("ctr", per_recommendation_rate(n, t["clicks"], t["cc"])),
                       "conversions": int(t["conversions"]),
                       **_rate("conversion_rate", per_recommendation_rate(n, t["conversions"], t["vv"])),
                       "revenue": round(t["revenue"], 2)})
    return {"from": first.isoformat(), "to": last.isoformat(), "by": by, "groups": groups,
            "unattributed_events": unattributed}
