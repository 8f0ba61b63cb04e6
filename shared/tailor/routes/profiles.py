"""Customer profiles, segments, audiences and privacy erase (ProfilesFunction). They build on
the recommender and arrive with a later release: until then every route answers 501."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ..errors import NotAvailableYet

router = APIGatewayRouter()
NOT_YET = ("customer profiles, segments and audiences are not available in this release; "
           "they arrive with the profiles release")


@router.get("/v1/users/<user_id>/profile")
def get_profile(user_id: str):
    raise NotAvailableYet(NOT_YET)


@router.delete("/v1/users/<user_id>")
def delete_user(user_id: str):
    raise NotAvailableYet(NOT_YET + " (privacy erase comes with them)")


@router.get("/v1/segments")
def get_segments():
    raise NotAvailableYet(NOT_YET)


@router.get("/v1/segments/<segment_id>")
def get_segment(segment_id: str):
    raise NotAvailableYet(NOT_YET)


@router.post("/v1/audiences")
def post_audiences():
    raise NotAvailableYet(NOT_YET)
