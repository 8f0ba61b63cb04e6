"""Online metrics and A/B experiments (IngestFunction, IAM): what recommendations earned, and
which strategy or model earns more (tailor.attribution, tailor.experiments)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from tailor.api.models import Experiment, ExperimentResult, Experiments, RecommendationMetrics, answers
from tailor.attribution.ledger import GROUPS, online_metrics
from tailor.bootstrap import experiments, state_table

router = APIGatewayRouter()


@router.get("/v1/metrics/recommendations", responses=answers(RecommendationMetrics))
def get_recommendation_metrics(
        from_: Annotated[str | None, Query(alias="from", description="first day, YYYY-MM-DD (default: 6 days before to)")] = None,
        to: Annotated[str | None, Query(description="last day, YYYY-MM-DD (default: today, UTC)")] = None,
        by: Annotated[str, Query(description=f"one of {', '.join(GROUPS)}")] = "strategy"):
    # `by` is a plain string checked by the ledger: its 422 names the allowed values.
    return online_metrics(state_table(), from_, to, by)


class ArmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounds and names are checked by tailor.experiments.store (clearer messages).
    name: Any = Field(description="1-40 characters; the first arm is the control")
    share: Any = Field(description="the share of customers, more than 0; the shares sum to 1")
    strategy: Any = Field(default="personalized", description="personalized, popular or trending")
    model_version: Any = Field(default=None, description="a trained recommender version (default: the current one)")


class ExperimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Any = Field(description="at most 100 characters")
    arms: list[ArmRequest] = Field(description="2-5 arms; the first is the control")
    surface: Any = Field(default="recommendations", description="recommendations: user and session lists")


@router.post("/v1/experiments", responses=answers(Experiment, 201))
def post_experiments(request: ExperimentRequest):
    return experiments().create(request.name, [arm.model_dump() for arm in request.arms], request.surface), 201


@router.get("/v1/experiments", responses=answers(Experiments))
def get_experiments():
    return experiments().listing()


@router.get("/v1/experiments/<experiment_id>", responses=answers(ExperimentResult))
def get_experiment(experiment_id: str):
    return experiments().result(unquote(experiment_id))


@router.post("/v1/experiments/<experiment_id>/stop", responses=answers(ExperimentResult))
def stop_experiment(experiment_id: str):
    return experiments().stop(unquote(experiment_id))
