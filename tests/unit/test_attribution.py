"""Attribution on the fakes: the served record and its log line, the subscription delivery, exact
counting of clicks and conversions whatever the order and however often events and deliveries
come, unattributed events, the arm totals the statistics read, and the metrics answer."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.attribution.ledger import ATTRIBUTION_DAYS, AttributionLedger, online_metrics
from tailor.attribution.served import Served, StdoutLog, from_log_event, parse_lines, served_now, unit_hash
from tailor.core.errors import Invalid
from tailor.experiments.statistics import ArmTotals
from tailor.storage import keys
from tests.fakes import FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)

EVENTS = "tests/events/cloudwatch_logs.json"


def served(rec_id: str, items: list[str], *, strategy: str = "personalized", unit: str | None = "u1",
           experiment: str | None = None, arm: str | None = None, at: str = "2030-06-01T12:00:00.000Z") -> Served:
    return Served(recommendation_id=rec_id, served_at=at, surface="user", strategy=strategy, model_version="v1",
                  items=tuple(items), unit=unit, experiment_id=experiment, arm=arm)


def events(rows: list[tuple], ) -> dict[str, list]:
    """(recommendation_id, item_id, event_type, value[, timestamp ms]) rows as ingest's columns."""
    base = int(datetime(2030, 6, 1, 12, 5, tzinfo=UTC).timestamp() * 1000)
    return {"user_id": ["u1"] * len(rows), "recommendation_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows], "value": [r[3] for r in rows],
            "timestamp": [r[4] if len(r) > 4 else base for r in rows]}


def log_event(lines: list[str]) -> dict:
    payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/recommend",
               "logStream": "s", "subscriptionFilters": ["f"],
               "logEvents": [{"id": str(n), "timestamp": 0, "message": line} for n, line in enumerate(lines)]}
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def metrics_group(state, by: str, key: str) -> dict:
    answer = online_metrics(state, "2030-06-01", "2030-06-01", by)
    return next(g for g in answer["groups"] if g["key"] == key)


# ---- the served record ---------------------------------------------------------------------------
@given(st.lists(st.text(min_size=1, max_size=20), max_size=12), st.sampled_from(["popular", "personalized"]),
       st.one_of(st.none(), st.text(min_size=1, max_size=10)))
def test_a_served_line_reads_back_as_the_same_record(items, strategy, arm):
    record = served("r1", items, strategy=strategy, experiment="e1" if arm else None, arm=arm)
    out = io.StringIO()
    StdoutLog(out).write(record)
    assert out.getvalue().count("\n") == 1
    assert parse_lines([out.getvalue().rstrip("\n")]) == ([record], 0)


def test_served_now_takes_the_answer_items_in_order_and_a_sortable_unique_id():
    answer = {"strategy": "popular", "model_version": "v2", "items": [{"item_id": "b"}, {"item_id": "a"}]}
    first, second = served_now("session", answer, unit_hash("session", "s1"), None), served_now("user", answer, None, None)
    assert first.items == ("b", "a") and first.strategy == "popular" and first.unit.startswith("s-")
    assert first.recommendation_id != second.recommendation_id and len(first.recommendation_id) == 28
    assert first.recommendation_id[:12] <= second.recommendation_id[:12]  # time first
    assert unit_hash("user", "u1") != unit_hash("session", "u1")


def test_the_canonical_subscription_event_decodes_and_foreign_lines_are_skipped():
    with open(EVENTS) as handle:
        canonical = json.load(handle)
    records, skipped = from_log_event(canonical)  # sam's sample carries plain log lines, none served
    assert records == [] and skipped >= 1
    line = served("r9", ["x", "y"]).line()
    records, skipped = from_log_event(log_event([line, "START RequestId: 1", '{"_aws": {}}', "2030 INFO " + line]))
    assert [r.recommendation_id for r in records] == ["r9", "r9"] and skipped == 2


# ---- exact counting ------------------------------------------------------------------------------
def test_a_click_counts_once_per_recommendation_and_item_in_either_order():
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    ledger.attribute(events([("r1", "a", "click", None)] * 3))  # before the record: waits
    assert online_metrics(state, "2030-06-01", "2030-06-01")["unattributed_events"] == 1
    ledger.record_served([served("r1", ["a", "b"])])
    ledger.record_served([served("r1", ["a", "b"])])  # the subscription delivers at least once
    ledger.attribute(events([("r1", "a", "click", None), ("r1", "b", "view", None)]))
    group = metrics_group(state, "strategy", "personalized")
    assert (group["recommendations"], group["clicks"]) == (1, 2)
    assert online_metrics(state, "2030-06-01", "2030-06-01")["unattributed_events"] == 0
    assert state.get(keys.served_pk("r1"), keys.SERVED_SK)["clicks"] == 2


def test_a_purchase_is_a_click_and_a_conversion_with_its_revenue_once():
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    ledger.record_served([served("r1", ["a", "b"])])
    ledger.attribute(events([("r1", "a", "click", None), ("r1", "a", "purchase", 30.0), ("r1", "a", "purchase", 30.0)]))
    group = metrics_group(state, "day", "2030-06-01")
    assert (group["clicks"], group["conversions"], group["revenue"]) == (1, 1, 30.0)


def test_unknown_unlisted_expired_and_negative_events_are_unattributed_never_counted():
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    ledger.record_served([served("r1", ["a"])])
    late = int(datetime(2030, 6, 1, 12, tzinfo=UTC).timestamp() * 1000) + (ATTRIBUTION_DAYS + 1) * 86400 * 1000
    ledger.attribute(events([("r1", "not-listed", "click", None), ("nope", "a", "click", None),
                             ("r1", "a", "dislike", None)]))
    ledger.attribute(events([("r1", "a", "click", None, late)]))
    group = metrics_group(state, "strategy", "personalized")
    assert group["clicks"] == 0
    assert online_metrics(state, "2030-06-01", "2030-06-01")["unattributed_events"] == 2  # not listed + unknown
    expired_day = datetime.fromtimestamp(late / 1000, UTC).date().isoformat()
    assert online_metrics(state, expired_day, expired_day)["unattributed_events"] == 1


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_counts_are_exact_whatever_the_order_and_repeats(rng: random.Random):
    """Deliveries and events interleaved at random, each sent 1-3 times: the ledger's counts per
    arm and per strategy equal the truth, and the arm totals equal the sums over units."""
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    records, truth_clicks = [], {}
    for n in range(30):
        arm = rng.choice(["control", "treatment"])
        record = served(f"r{n}", [f"i{j}" for j in range(5)], unit=f"unit{rng.randrange(8)}", experiment="e1", arm=arm,
                        strategy="popular" if arm == "control" else "personalized")
        records.append(record)
        truth_clicks[record.recommendation_id] = {f"i{j}" for j in range(5) if rng.random() < 0.3}
    actions = [("served", r) for r in records for _ in range(rng.randint(1, 2))]
    actions += [("event", (r.recommendation_id, item)) for r in records for item in truth_clicks[r.recommendation_id]
                for _ in range(rng.randint(1, 3))]
    rng.shuffle(actions)
    for kind, payload in actions:
        if kind == "served":
            ledger.record_served([payload])
        else:
            ledger.attribute(events([(payload[0], payload[1], "click", None)]))
    for arm in ("control", "treatment"):
        mine = [r for r in records if r.arm == arm]
        totals = ArmTotals.from_item(state.get(keys.experiment_pk("e1"), keys.arm_sk(arm)))
        per_unit: dict[str, list[int]] = {}
        for r in mine:
            n_c = per_unit.setdefault(r.unit, [0, 0])
            n_c[0] += 1
            n_c[1] += len(truth_clicks[r.recommendation_id])
        assert totals.recommendations == len(mine)
        assert totals.clicks == sum(len(truth_clicks[r.recommendation_id]) for r in mine)
        assert totals.units == len(per_unit)
        assert totals.nn == sum(n * n for n, _ in per_unit.values())
        assert totals.cc == sum(c * c for _, c in per_unit.values())
        assert totals.nc == sum(n * c for n, c in per_unit.values())
    assert online_metrics(state, "2030-06-01", "2030-06-01")["unattributed_events"] == 0


# ---- the metrics answer --------------------------------------------------------------------------
def test_metrics_group_by_strategy_with_intervals_and_default_to_the_last_seven_days():
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    ledger.record_served([served(f"p{n}", ["a", "b"], strategy="popular") for n in range(40)]
                         + [served(f"q{n}", ["a", "b"]) for n in range(40)])
    ledger.attribute(events([(f"q{n}", "a", "click", None) for n in range(20)] + [("p0", "b", "click", None)]))
    answer = online_metrics(state, by="strategy", today=date(2030, 6, 3))
    assert (answer["from"], answer["to"]) == ("2030-05-28", "2030-06-03")
    groups = {g["key"]: g for g in answer["groups"]}
    assert groups["personalized"]["ctr"] == 0.5 and groups["popular"]["ctr"] == 0.025
    low, high = groups["personalized"]["ctr_interval"]
    assert low < 0.5 < high and high - low < 0.4
    assert online_metrics(state, "2030-06-02", "2030-06-03")["groups"] == []


@pytest.mark.parametrize("start, end, by, message", [
    ("2030-06-01", "2030-06-01", "country", "by must be one of strategy, model_version, arm, day"),
    ("June", None, "strategy", "from must be a date"),
    ("2030-06-02", "2030-06-01", "strategy", "must not be after to"),
    ("2029-01-01", "2030-06-01", "strategy", "at most 366 days"),
])
def test_bad_metrics_queries_get_a_clear_422(start, end, by, message):
    with pytest.raises(Invalid, match=message):
        online_metrics(FakeStateTable(), start, end, by)


def test_a_delivery_that_fails_midway_and_is_retried_counts_every_recommendation_once():
    class Flaky(FakeStateTable):
        failures = 1

        def put(self, item, *, only_if_new=False):
            if item["sk"] == keys.SERVED_SK and item["recommendation_id"] == "r5" and self.failures:
                self.failures -= 1
                raise ConnectionError("throttled")
            super().put(item, only_if_new=only_if_new)

    state = Flaky()
    ledger = AttributionLedger(state)
    batch = [served(f"r{n}", ["a"]) for n in range(10)]
    with pytest.raises(ConnectionError):
        ledger.record_served(batch)
    assert metrics_group(state, "day", "2030-06-01")["recommendations"] == 9  # all but r5, applied despite it
    assert ledger.record_served(batch) == {"recommendations_recorded": 1, "deliveries_repeated": 9}
    assert metrics_group(state, "day", "2030-06-01")["recommendations"] == 10


def test_an_event_dated_before_its_recommendation_is_not_attributed_to_it():
    state = FakeStateTable()
    ledger = AttributionLedger(state)
    ledger.record_served([served("r1", ["a", "b"])])
    served_ms = int(datetime(2030, 6, 1, 12, tzinfo=UTC).timestamp() * 1000)
    ledger.attribute(events([("r1", "a", "click", None, served_ms - 86400 * 1000),  # the day before: not its own
                             ("r1", "b", "click", None, served_ms - 60 * 1000)]))  # a minute early: clock slack
    assert metrics_group(state, "day", "2030-06-01")["clicks"] == 1


def test_what_is_served_after_the_experiment_stopped_is_recorded_but_not_counted_in_it():
    state = FakeStateTable()
    state.put({"pk": keys.EXPERIMENTS_PK, "sk": "e1", "stopped_at": "2030-06-01T12:00:00Z"})
    ledger = AttributionLedger(state)
    before = served("r1", ["a"], experiment="e1", arm="control", at="2030-06-01T11:59:59.000Z")
    after = served("r2", ["a"], experiment="e1", arm="control", at="2030-06-01T12:00:30.000Z")
    ledger.attribute(events([("r2", "a", "click", None)]))
    ledger.record_served([before, after])
    ledger.attribute(events([("r1", "a", "click", None)]))
    totals = ArmTotals.from_item(state.get(keys.experiment_pk("e1"), keys.arm_sk("control")))
    assert (totals.recommendations, totals.clicks) == (1, 1)
    assert metrics_group(state, "day", "2030-06-01")["recommendations"] == 2  # both were served
    assert [g["key"] for g in online_metrics(state, "2030-06-01", "2030-06-01", "arm")["groups"]] == ["e1/control"]
    assert metrics_group(state, "arm", "e1/control")["recommendations"] == 1
