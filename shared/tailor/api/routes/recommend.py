"""Recommendations (RecommendFunction): NumPy scoring of the current model, never TensorFlow."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from tailor.api.models import Recommendations, Trending, answers
from tailor.bootstrap import recommend_service
from tailor.recommend.service import MAX_CANDIDATES, MAX_K
from tailor.trending.scoring import DEFAULT_WINDOW, WINDOWS

router = APIGatewayRouter()

K = Annotated[int, Query(ge=1, le=MAX_K, description="how many items, 1-100")]


def _exclude() -> list[str]:
    """`exclude` as repeated query parameters or one comma-separated value."""
    values = router.current_event.multi_value_query_string_parameters or {}
    return [item.strip() for value in values.get("exclude", []) for item in value.split(",") if item.strip()]


@router.get("/v1/users/<user_id>/recommendations", responses=answers(Recommendations))
def get_recommendations(user_id: str, k: K = 10, category: str | None = None, include_seen: bool = False):
    return recommend_service().for_user(unquote(user_id), k, category, _exclude(), include_seen)


class SessionRequest(BaseModel):
    recent_items: list[str] = Field(min_length=1, max_length=200, description="the session's items, oldest first")
    k: int = Field(default=10, ge=1, le=MAX_K)
    category: str | None = None
    exclude: list[str] = Field(default_factory=list, max_length=MAX_CANDIDATES)
    session_id: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="the visitor's session: a running experiment assigns it to an arm")


@router.post("/v1/recommendations", responses=answers(Recommendations))
def post_recommendations(request: SessionRequest):
    return recommend_service().for_session(request.recent_items, request.k, request.category, request.exclude,
                                           session_id=request.session_id)


@router.get("/v1/trending", responses=answers(Trending))
def get_trending(window: Annotated[str, Query(description=f"one of {', '.join(WINDOWS)}")] = DEFAULT_WINDOW,
                 k: K = 10, category: str | None = None):
    # `window` is a plain string checked by the service: its 422 names the allowed values.
    return recommend_service().trending(window, k, category)


@router.get("/v1/items/<item_id>/similar", responses=answers(Recommendations))
def get_similar(item_id: str, k: K = 10, category: str | None = None):
    return recommend_service().similar(unquote(item_id), k, category)


class RankingRequest(BaseModel):
    item_ids: list[str] = Field(min_length=1, max_length=MAX_CANDIDATES)


@router.post("/v1/users/<user_id>/rankings", responses=answers(Recommendations))
def post_rankings(user_id: str, request: RankingRequest):
    return recommend_service().rank(unquote(user_id), request.item_ids)
