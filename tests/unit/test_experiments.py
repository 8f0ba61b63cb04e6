"""Experiments on the fakes: validation (422/409/404), stable assignment in the given shares,
serving each arm's strategy and model version with the answer saying which, the ids and the
served records of every recommendation route, results with a verdict, and the admin routes."""

from __future__ import annotations

import io
import time
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor import bootstrap
from tailor.attribution.served import parse_lines, unit_hash
from tailor.core.config import Settings
from tailor.core.errors import Conflict, Invalid, NotFound
from tailor.experiments.store import Arm, Experiment
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)
from tests.fixtures.handlers import call
from tests.fixtures.synthetic import promote_version, recommender_files

USERS = [f"u-{n}" for n in range(40)]
ITEMS = [f"i-{n:02d}" for n in range(30)]
CATEGORIES = {item: ["books" if n % 2 else "games"] for n, item in enumerate(ITEMS)}
AB = [{"name": "control", "share": 0.5, "strategy": "popular"},
      {"name": "treatment", "share": 0.5, "strategy": "personalized"}]


class ListLog:
    def __init__(self) -> None:
        self.out = io.StringIO()

    def write(self, served) -> None:
        self.out.write(served.line() + "\n")

    def records(self):
        return parse_lines(self.out.getvalue().splitlines())[0]


def settings() -> Settings:
    return Settings(stage="test", data_bucket="b", state_table="t", train_function_name=None,
                    export_function_name=None, max_upload_bytes=1 << 20, model_cache_seconds=60)


@pytest.fixture
def built():
    container = bootstrap.build(settings(), store=FakeObjectStore(), state=FakeStateTable(), served_log=ListLog())
    promote_version(container.model_registry, "recommender", "v1", recommender_files(USERS, ITEMS, CATEGORIES))
    return container


# ---- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arms, message", [
    ([{"name": "a", "share": 0.5, "strategy": "popular"}, {"name": "b", "share": 0.4, "strategy": "popular"}],
     "shares must sum to 1, got 0.9"),
    ([{"name": "a", "share": 1.0, "strategy": "popular"}], "must list 2 to 5 arms"),
    ([{"name": "a", "share": 0.5, "strategy": "random"}, {"name": "b", "share": 0.5}], "strategy must be one of"),
    ([{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}], "is used twice"),
    ([{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "model_version": "v9"}],
     "model_version 'v9' is not a trained recommender version"),
    ([{"name": "a", "share": 0}, {"name": "b", "share": 1}], "share must be more than 0 and less than 1"),
    ([{"name": "a/b", "share": 0.5}, {"name": "b", "share": 0.5}], "without"),
    ([{"name": "a", "share": 0.5, "colour": "red"}, {"name": "b", "share": 0.5}], "unknown field"),
])
def test_bad_experiments_are_refused_with_a_clear_message(built, arms, message):
    with pytest.raises(Invalid, match=message):
        built.experiments.create("homepage test", arms)


def test_one_running_experiment_per_surface_then_stop_and_start_again(built):
    first = built.experiments.create("first", AB)
    with pytest.raises(Conflict, match="is already running on recommendations: stop it first"):
        built.experiments.create("second", AB)
    stopped = built.experiments.stop(first["experiment_id"])
    assert stopped["status"] == "stopped" and stopped["results"]["verdict"].startswith("not enough data")
    with pytest.raises(Conflict, match="already stopped"):
        built.experiments.stop(first["experiment_id"])
    with pytest.raises(NotFound):
        built.experiments.result("nope")
    second = built.experiments.create("second", AB + [], "recommendations")
    assert [e["experiment_id"] for e in built.experiments.listing()["experiments"]] == \
        [second["experiment_id"], first["experiment_id"]]


# ---- assignment ----------------------------------------------------------------------------------
@given(st.text(min_size=1, max_size=30))
def test_assignment_is_stable_for_a_unit(unit):
    experiment = Experiment("e1", "x", (Arm("a", 0.3, "popular"), Arm("b", 0.7, "personalized")), "2030-01-01T00:00:00Z")
    assert experiment.arm_for(unit) == experiment.arm_for(unit)


def test_assignment_follows_the_shares_and_differs_between_experiments():
    arms = (Arm("a", 0.2, "popular"), Arm("b", 0.3, "popular"), Arm("c", 0.5, "personalized"))
    first, second = Experiment("e1", "x", arms, "t"), Experiment("e2", "x", arms, "t")
    units = [f"user-{n}" for n in range(20_000)]
    shares = Counter(first.arm_for(u).name for u in units)
    assert all(abs(shares[arm.name] / len(units) - arm.share) < 0.015 for arm in arms), shares
    same = sum(first.arm_for(u).name == second.arm_for(u).name for u in units) / len(units)
    assert same < 0.45  # independent: 0.2² + 0.3² + 0.5² = 0.38 by chance


# ---- serving -------------------------------------------------------------------------------------
def test_every_recommendation_route_answers_with_an_id_and_records_what_it_served(built):
    service, log = built.recommend_service, built.served_log
    answers = [service.for_user("u-1"), service.for_session(["i-01", "i-02"]), service.similar("i-03"),
               service.rank("u-1", ["i-04", "i-05"])]
    records = log.records()
    assert [r.surface for r in records] == ["user", "session", "similar", "rankings"]
    for answer, record in zip(answers, records):
        assert answer["recommendation_id"] == record.recommendation_id
        assert list(record.items) == [item["item_id"] for item in answer["items"]]
        assert record.strategy == answer["strategy"] and record.model_version == "v1"
        assert "experiment" not in answer
    assert records[0].unit == unit_hash("user", "u-1") and records[1].unit is None
    assert len({r.recommendation_id for r in records}) == 4


def test_a_running_experiment_serves_each_arm_its_strategy(built):
    experiment = built.experiments.create("home", AB)
    service, log = built.recommend_service, built.served_log
    popular = [item["item_id"] for item in built.recommend_service._popular(
        *built.recommend_service._model(), 10, [], None, None, None)["items"]]
    seen_arms = set()
    for user in USERS:
        answer = service.for_user(user)
        arm = answer["experiment"]["arm"]
        seen_arms.add(arm)
        assert answer["experiment"]["experiment_id"] == experiment["experiment_id"]
        assert answer["strategy"] == ("popular" if arm == "control" else "personalized")
        if arm == "control":  # popular items the customer has not chosen yet
            seen = set(built.recommend_service._model()[0].recommender.seen_items(user))
            assert [i["item_id"] for i in answer["items"]] == [i for i in popular + ITEMS if i not in seen][:10] or \
                not set(i["item_id"] for i in answer["items"]) & seen
    assert seen_arms == {"control", "treatment"}
    # Sessions take part by their session id, always in the same arm; without one they do not.
    first = service.for_session(["i-01"], session_id="s-1")
    assert service.for_session(["i-02"], session_id="s-1")["experiment"] == first["experiment"]
    assert "experiment" not in service.for_session(["i-01"])
    assert {r.arm for r in log.records() if r.experiment_id} == {"control", "treatment"}


def test_an_arm_can_pin_a_model_version(built):
    promote_version(built.model_registry, "recommender", "v2", recommender_files(USERS, ITEMS, CATEGORIES))
    built.experiments.create("new model", [{"name": "old", "share": 0.5, "model_version": "v1"},
                                            {"name": "new", "share": 0.5}])
    versions = {built.recommend_service.for_user(u)["experiment"]["arm"]: built.recommend_service.for_user(u)["model_version"]
                for u in USERS}
    assert versions == {"old": "v1", "new": "v2"}


# ---- results through the ledger and the routes ---------------------------------------------------
def test_results_count_what_was_served_and_clicked_and_compare_against_the_control(built):
    experiment = built.experiments.create("home", AB)
    service = built.recommend_service
    clicks = {"user_id": [], "item_id": [], "timestamp": [], "event_type": [], "value": [], "recommendation_id": []}
    for user in USERS:
        answer = service.for_user(user)
        # the personalized arm earns a click on its first item, the popular arm on none
        if answer["experiment"]["arm"] == "treatment":
            for column, value in zip(clicks, (user, answer["items"][0]["item_id"], int(time.time() * 1000), "click", None,
                                              answer["recommendation_id"])):
                clicks[column].append(value)
    built.attribution.record_served(built.served_log.records())
    built.attribution.attribute(clicks)
    result = built.experiments.result(experiment["experiment_id"])["results"]
    arms = {arm["name"]: arm for arm in result["arms"]}
    assert arms["control"]["recommendations"] + arms["treatment"]["recommendations"] == len(USERS)
    assert arms["treatment"]["clicks"] == arms["treatment"]["recommendations"] and arms["control"]["clicks"] == 0
    assert result["comparisons"] == []  # the control has no click: nothing to compare yet
    assert result["verdict"].startswith("not enough data yet")


def test_the_admin_routes_create_read_stop_and_report_metrics(built):
    bootstrap.use(built)
    try:
        status, created = call("ingest", "POST", "/v1/experiments", {"name": "home", "arms": AB})
        assert status == 201 and created["status"] == "running" and created["control"] == "control"
        status, body = call("ingest", "POST", "/v1/experiments", {"name": "again", "arms": AB})
        assert status == 409 and "already running" in body["error"]["message"]
        status, body = call("ingest", "POST", "/v1/experiments", {"name": "x", "arms": AB, "colour": 1})
        assert status == 422
        experiment_id = created["experiment_id"]
        status, got = call("ingest", "GET", f"/v1/experiments/{experiment_id}",
                           resource="/v1/experiments/{experiment_id}")
        assert status == 200 and got["results"]["test"].startswith("mSPRT")
        status, stopped = call("ingest", "POST", f"/v1/experiments/{experiment_id}/stop",
                               resource="/v1/experiments/{experiment_id}/stop")
        assert status == 200 and stopped["status"] == "stopped"
        status, listed = call("ingest", "GET", "/v1/experiments")
        assert status == 200 and listed["experiments"][0]["experiment_id"] == experiment_id
        status, metrics = call("ingest", "GET", "/v1/metrics/recommendations", query={"by": "day"})
        assert status == 200 and metrics["by"] == "day" and metrics["groups"] == []
        status, body = call("ingest", "GET", "/v1/metrics/recommendations", query={"by": "colour"})
        assert status == 422 and "by must be one of" in body["error"]["message"]
    finally:
        bootstrap.reset()
