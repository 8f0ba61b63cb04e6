"""Recommendations (RecommendFunction). The recommender model arrives with a later release:
until then every route answers 501 with a clear message, never invented data."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ..errors import NotAvailableYet

router = APIGatewayRouter()
NOT_YET = ("recommendations are not available in this release: the recommender model "
           "(training and serving) arrives with the recommendations release")


@router.get("/v1/users/<user_id>/recommendations")
def get_recommendations(user_id: str):
    raise NotAvailableYet(NOT_YET)


@router.post("/v1/recommendations")
def post_recommendations():
    raise NotAvailableYet(NOT_YET)


@router.get("/v1/items/<item_id>/similar")
def get_similar(item_id: str):
    raise NotAvailableYet(NOT_YET)


@router.post("/v1/users/<user_id>/rankings")
def post_rankings(user_id: str):
    raise NotAvailableYet(NOT_YET)
