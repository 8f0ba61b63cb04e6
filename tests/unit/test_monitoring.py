"""template.yaml's alarms, dashboard and sizing: what an operator relies on when something breaks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.template import load_template

ROOT = Path(__file__).resolve().parents[2]
# Every metric the code emits (shared/tailor/core/observability.py lists them with their meaning).
EMITTED = {"Requests", "Latency", "ServerErrors", "Fallback", "ModelVersionServed", "RowsStored", "RowsRejected",
           "TrainingDuration", "TrainingJobsFailed", "ColdStart", "RecommendationsServed", "RecommendationClicks",
           "RecommendationConversions", "AttributedRevenue", "UnattributedEvents"}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def _resources(template: dict, kind: str) -> dict:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == kind}


def _dashboard(template: dict) -> dict:
    (body,) = [d["DashboardBody"]["Fn::Sub"] for d in _resources(template, "AWS::CloudWatch::Dashboard").values()]
    # What CloudFormation does with ${...}: a value without quotes or backslashes keeps the JSON valid.
    return json.loads(re.sub(r"\$\{[A-Za-z0-9:.]+\}", "x", body))


def test_every_emitted_metric_is_documented_and_emitted_by_the_code():
    source = "\n".join(p.read_text() for p in (ROOT / "shared" / "tailor").rglob("*.py")) \
        + (ROOT / "functions" / "train" / "app.py").read_text()
    documented = (ROOT / "shared" / "tailor" / "core" / "observability.py").read_text()
    for name in EMITTED - {"ColdStart"}:
        assert f'"{name}"' in source, f"no code emits {name}"
        assert f"`{name}`" in documented, f"{name} is not described in observability.py"


def test_alarms_cover_5xx_dead_letters_and_failed_training_and_notify_the_topic(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched = set()
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], f"{name} notifies nobody"
        assert alarm["TreatMissingData"] == "notBreaching", f"{name} would alarm on a quiet night"
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        stats.append({"Namespace": alarm.get("Namespace"), "MetricName": alarm.get("MetricName")})
        watched |= {(s["Namespace"], s["MetricName"]) for s in stats if s["MetricName"]}
    assert {("AWS/ApiGateway", "5XXError"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("Tailor", "TrainingJobsFailed")} <= watched
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == "Tailor", "the training alarm and the dashboard read the Tailor namespace"


def test_email_subscription_only_when_an_address_is_given(template):
    (subscription,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


def test_dashboard_is_valid_json_and_shows_what_the_issue_asks_for(template):
    widgets = _dashboard(template)["widgets"]
    text = json.dumps(widgets)
    for name in ("Requests", "Latency", "Fallback", "RowsStored", "RowsRejected", "TrainingDuration",
                 "5XXError", "ApproximateNumberOfMessagesVisible", "model_version", "RecommendationsServed",
                 "RecommendationClicks", "RecommendationConversions", "AttributedRevenue"):
        assert name in text, f"the dashboard does not show {name}"
    assert "'p50'" in text and "'p99'" in text
    referenced = set(re.findall(r'MetricName=\\"(\w+)\\"', text)) | {
        m[1] for w in widgets for m in w["properties"].get("metrics", []) if isinstance(m[0], str) and m[0] == "Tailor"}
    assert referenced <= EMITTED, f"the dashboard reads metrics nobody emits: {referenced - EMITTED}"
    for widget in widgets:  # CloudWatch rejects a metric widget without a region
        assert widget["type"] != "metric" or widget["properties"].get("region")


def test_training_runs_one_at_a_time_by_default(template):
    assert template["Parameters"]["TrainReservedConcurrency"]["Default"] == 1
    train = template["Resources"]["TrainFunction"]["Properties"]
    assert train["ReservedConcurrentExecutions"]["Fn::If"][1] == {"Ref": "TrainReservedConcurrency"}

