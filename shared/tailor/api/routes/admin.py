"""Data and job administration (IngestFunction): batches, uploads, datasets, training, models,
promotions."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from tailor.api.http import json_body
from tailor.api.models import (
    Datasets,
    IngestResult,
    Models,
    Pointer,
    Promotion,
    PromotionDeleted,
    Promotions,
    Report,
    TrainingJob,
    TrainingJobs,
    Upload,
    UploadStatus,
    answers,
    batch_body,
)
from tailor.bootstrap import ingest_service, model_registry, object_store, promotions, training_jobs
from tailor.core.errors import Invalid
from tailor.jobs.service import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT

router = APIGatewayRouter()

BATCH_KEYS = {"events": "events", "items": "items", "users": "users", "reviews": "reviews"}


def _batch(route: str) -> tuple[dict, int]:
    body = json_body(router)
    columns = None
    if isinstance(body, dict):
        records = body.get(route, body.get("records"))
        if records is None:
            raise Invalid(f'expected {{"{route}": [...]}} (a list of up to 500 records)')
        columns = body.get("columns")
    else:
        records = body
    if not isinstance(records, list):
        raise Invalid(f'"{route}" must be a list of records')
    result = ingest_service().ingest_records(route, records, columns).to_dict()
    if result.get("status") == "stored" and result["rows_stored"] == 0:
        # Nothing usable at all: say so with the reasons rather than a cheerful 200.
        raise Invalid("no record in the batch is valid", details=result.get("reject_samples"))
    return result, 200


@router.post("/v1/events", responses=answers(IngestResult), openapi_extensions=batch_body("events"))
def post_events():
    return _batch("events")


@router.post("/v1/items", responses=answers(IngestResult), openapi_extensions=batch_body("items"))
def post_items():
    return _batch("items")


@router.post("/v1/users", responses=answers(IngestResult), openapi_extensions=batch_body("users"))
def post_users():
    return _batch("users")


@router.post("/v1/reviews", responses=answers(IngestResult), openapi_extensions=batch_body("reviews"))
def post_reviews():
    return _batch("reviews")


class UploadRequest(BaseModel):
    dataset: str = Field(description="interactions (or events), items, users or reviews")
    filename: str = Field(min_length=1, max_length=200, description="e.g. ratings.csv, items.jsonl.gz")
    size_bytes: int | None = Field(default=None, ge=0, description="lets the API refuse an oversized file early")
    columns: Any | None = Field(  # checked by records.check_columns (its messages are clearer)
        default=None, description='map the file\'s columns to fields, e.g. {"customer_id": "user_id"}')


@router.post("/v1/uploads", responses=answers(Upload, 201))
def post_uploads(request: UploadRequest):
    return ingest_service().create_upload(request.dataset, request.filename, request.size_bytes,
                                          request.columns), 201


@router.get("/v1/uploads/<upload_id>", responses=answers(UploadStatus))
def get_upload(upload_id: str):
    return ingest_service().upload_status(unquote(upload_id))


@router.get("/v1/datasets", responses=answers(Datasets))
def get_datasets():
    return {"datasets": ingest_service().summary()}


class TrainingRequest(BaseModel):
    models: list[str] | None = Field(default=None, description="recommender, sentiment; omit to train all with data")


@router.post("/v1/training-jobs", responses=answers(TrainingJob, 202))
def post_training_jobs(request: TrainingRequest | None = None):
    models = request.models if request else None
    return training_jobs().start(models), 202


@router.get("/v1/training-jobs", responses=answers(TrainingJobs))
def get_training_jobs(limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="jobs per page, 1-100")]
                      = DEFAULT_LIST_LIMIT, next_token: str | None = None):
    return training_jobs().list(limit, next_token)


@router.get("/v1/training-jobs/<job_id>", responses=answers(TrainingJob))
def get_training_job(job_id: str):
    return training_jobs().get(unquote(job_id))  # API Gateway leaves path parameters encoded


@router.get("/v1/models", responses=answers(Models))
def get_models():
    return {"models": model_registry().overview()}


@router.post("/v1/models/<model>/versions/<version>/promote", responses=answers(Pointer))
def post_promote(model: str, version: str):
    return model_registry().promote(unquote(model), unquote(version),
                                    reason="promoted by request (rollback or roll forward)")


@router.get("/v1/models/<model>/versions/<version>/report", responses=answers(Report))
def get_version_report(model: str, version: str):
    from tailor.models.reports import version_report

    return version_report(object_store(), model_registry(), unquote(model), unquote(version))


# ---- promotions (tailor.promotions): a share of recommendation slots for chosen items --------
class PromotionRequest(BaseModel):
    # A misspelt field ("items", "end") must not silently become an open-ended promotion.
    model_config = ConfigDict(extra="forbid")

    # Bounds, exclusivity and timestamps are checked by tailor.promotions.store (clearer messages).
    name: str = Field(description="shown in each promoted item's reason, at most 100 characters")
    category: str | None = Field(default=None, description="promote this category's items (or item_ids)")
    item_ids: list[str] | None = Field(default=None, description="promote these items, 1-500 (or category)")
    share: float = Field(description="up to ceil(share * k) of k slots: more than 0, at most 1")
    starts_at: str | None = Field(default=None, description="ISO-8601; default now")
    ends_at: str | None = Field(default=None, description="ISO-8601, after starts_at; omit for open-ended")


@router.post("/v1/promotions", responses=answers(Promotion, 201))
def post_promotions(request: PromotionRequest):
    return promotions().create(request.name, request.share, category=request.category, item_ids=request.item_ids,
                               starts_at=request.starts_at, ends_at=request.ends_at), 201


@router.get("/v1/promotions", responses=answers(Promotions))
def get_promotions():
    return promotions().listing()


@router.delete("/v1/promotions/<promotion_id>", responses=answers(PromotionDeleted))
def delete_promotion(promotion_id: str):
    return promotions().delete(unquote(promotion_id))
