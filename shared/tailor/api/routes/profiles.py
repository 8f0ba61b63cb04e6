"""Customer profiles, segments, audiences and privacy erase (ProfilesFunction, NumPy only)."""

from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field, model_validator

from tailor.api.models import Audience, Object, Segments, answers
from tailor.bootstrap import erase_service, profile_service
from tailor.customers.service import MAX_AUDIENCE

router = APIGatewayRouter()


@router.get("/v1/users/<user_id>/profile", responses=answers(Object))
def get_profile(user_id: str):
    return profile_service().profile(unquote(user_id))


@router.delete("/v1/users/<user_id>", responses=answers(Object))
def delete_user(user_id: str):
    report = erase_service().erase(unquote(user_id))
    profile_service().models.expire()  # this container must not keep serving the user's vectors
    return report


@router.get("/v1/segments", responses=answers(Segments))
def get_segments():
    return profile_service().segments()


@router.get("/v1/segments/<segment_id>", responses=answers(Object))
def get_segment(segment_id: str):
    return profile_service().segment(unquote(segment_id))


class AudienceRequest(BaseModel):
    item_id: str | None = Field(default=None, min_length=1, description="users likely to engage with this item")
    category: str | None = Field(default=None, min_length=1, description="... or with this category")
    size: int = Field(default=100, ge=1, le=MAX_AUDIENCE, description=f"how many users, 1-{MAX_AUDIENCE:,}")
    include_engaged: bool = Field(default=False, description="also rank users who already engaged")
    export: bool = Field(default=False, description="also write a CSV under exports/ and return a download URL")

    @model_validator(mode="after")
    def _one_target(self):
        if (self.item_id is None) == (self.category is None):
            raise ValueError('give exactly one of "item_id" or "category"')
        return self


@router.post("/v1/audiences", responses=answers(Audience))
def post_audiences(request: AudienceRequest):
    return profile_service().audience(item_id=request.item_id, category=request.category, size=request.size,
                                      include_engaged=request.include_engaged, export=request.export)


@router.get("/v1/audiences/<job_id>", responses=answers(Object))
def get_audience_export(job_id: str):
    return profile_service().export_status(unquote(job_id))
