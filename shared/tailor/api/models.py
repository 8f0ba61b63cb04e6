"""What the routes answer (design §4), as Pydantic models the routes declare.

Each route says `responses=answers(Model, status)`: Powertools generates the OpenAPI document from
that (`tailor.api.routes.openapi`), with the success status of the route and the error shape
every route answers with (`tailor.api.http.error_response`). The models describe, they do not
filter: they are not return annotations, so Powertools' response validation never re-serializes
an answer, and every model allows extra fields (answers may carry more than is documented).

Request bodies that routes read themselves (batches of loosely typed rows, sentiment texts) are
described by `batch_body` (the field lists of `tailor.datasets.schemas`) and `SentimentRequest`.
This module imports no service: describing the API loads no model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema

from tailor.datasets.schemas import SCHEMAS, dataset_name


class Answer(BaseModel):
    """Any documented answer: more fields than listed are welcome."""

    model_config = ConfigDict(extra="allow")


class Object(Answer):
    """A JSON object (routes whose answer has no fixed shape yet)."""


# --- errors -----------------------------------------------------------------------------------

class ErrorDetail(Answer):
    code: str
    message: str
    details: Any = None


class Error(Answer):
    """`{"error": {"code", "message", "details"?}}`, the answer of every failed request."""

    error: ErrorDetail


# No route answers 409 (there is no conflicting state a client could cause: duplicates are
# answered 200 with status "duplicate"), so it is not listed.
ERROR_STATUSES = {400: "Malformed request (e.g. the body is not JSON)", 404: "Unknown id, item, category or route",
                  413: "Request or file too large",
                  422: "Invalid request: the message and `details` say which field and why",
                  503: "Not ready yet (e.g. no model trained yet)"}


def answers(model: type[BaseModel], status: int = 200, description: str = "Successful Response") -> dict:
    """A route's `responses`: its success status and model, and the error shape for the rest."""
    responses: dict[int, Any] = {status: {"description": description,
                                          "content": {"application/json": {"model": model}}}}
    for code, text in ERROR_STATUSES.items():
        responses[code] = {"description": text, "content": {"application/json": {"model": Error}}}
    return responses


# --- ingest and administration ----------------------------------------------------------------

class IngestResult(Answer):
    rows_stored: int
    rows_rejected: int
    status: str | None = None
    warnings: dict[str, int] | None = None


class Upload(Answer):
    upload_id: str
    upload_url: str
    key: str
    expires_in: int
    headers: dict[str, Any] | None = None
    status_url: str | None = None
    columns: dict[str, Any] | None = None


class UploadStatus(Answer):
    upload_id: str
    status: Literal["waiting", "ingested", "duplicate", "refused"]
    dataset: str | None = None
    rows_stored: int | None = None
    rows_rejected: int | None = None
    message: str | None = None
    note: str | None = None
    warnings: dict[str, int] | None = None
    reject_samples: list[dict[str, Any]] | None = None


class DatasetSummary(Answer):
    name: str
    rows_stored: int
    rows_rejected: int


class Datasets(Answer):
    datasets: list[DatasetSummary]


class TrainingJob(Answer):
    job_id: str
    status: Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED"]  # SKIPPED: a scheduled run without new data


class TrainingJobs(Answer):
    jobs: list[TrainingJob]
    next_token: str | None = None


class ModelOverview(Answer):
    model: str
    current_version: str | None
    versions: list[dict[str, Any]]


class Models(Answer):
    models: list[ModelOverview]


class Promotion(Answer):
    """A promotion (tailor.promotions): exactly one of `category` and `item_ids`; `ends_at` null
    means open-ended; `status` is computed at request time."""

    promotion_id: str
    name: str
    category: str | None = None
    item_ids: list[str] | None = None
    share: float
    starts_at: str
    ends_at: str | None = None
    created_at: str
    status: Literal["active", "scheduled", "ended"]


class Promotions(Answer):
    promotions: list[Promotion]


class PromotionDeleted(Answer):
    promotion_id: str
    deleted: bool


class ExperimentArm(Answer):
    name: str
    share: float
    strategy: Literal["personalized", "popular", "trending"]
    model_version: str | None = None


class Experiment(Answer):
    """An A/B experiment (tailor.experiments); the first arm is the control."""

    experiment_id: str
    name: str
    surface: Literal["recommendations"]
    status: Literal["running", "stopped"]
    started_at: str
    stopped_at: str | None = None
    control: str
    arms: list[ExperimentArm]


class Experiments(Answer):
    experiments: list[Experiment]


class Earned(Answer):
    """What recommendations earned: rates per recommendation served, null before any."""

    recommendations: int
    clicks: int
    ctr: float | None = Field(description="clicks per recommendation served")
    ctr_interval: list[float] | None = Field(description="95% interval")
    conversions: int
    conversion_rate: float | None
    conversion_rate_interval: list[float] | None
    revenue: float


class ArmResult(ExperimentArm, Earned):
    """An arm's intervals take its customers as units (delta method)."""

    customers: int = Field(description="customers (and sessions) that were served at least once")


class Comparison(Answer):
    arm: str
    control: str
    lift: float = Field(description="ctr of the arm / ctr of the control - 1")
    lift_interval: list[float] = Field(description="always-valid 95% interval (Bonferroni over the treatments)")
    p_value: float = Field(description="always-valid: stays valid however often the result is looked at")
    significant: bool
    more_recommendations_per_arm: int | None = None


class ExperimentResults(Answer):
    arms: list[ArmResult]
    comparisons: list[Comparison]
    test: str
    alpha: float
    verdict: str


class ExperimentResult(Experiment):
    results: ExperimentResults


class MetricsGroup(Earned):
    """A group's intervals take each recommendation as one observation."""

    key: str


class RecommendationMetrics(Answer):
    """`GET /v1/metrics/recommendations`: groups by the day the recommendations were served."""

    from_: str = Field(alias="from")
    to: str
    by: Literal["strategy", "model_version", "arm", "day"]
    groups: list[MetricsGroup]
    unattributed_events: int = Field(description="events naming an unknown or expired recommendation, "
                                                  "or an item it did not list")


class Pointer(Answer):
    model: str
    version: str


class Plot(Answer):
    name: str
    url: str


class Report(Answer):
    model: str
    version: str
    plots: list[Plot]
    report: Any = None
    markdown: str | None = None


# --- recommendations, profiles, sentiment -----------------------------------------------------

class RecommendedItem(Answer):
    item_id: str
    score: float
    reason: str
    promoted: bool | None = Field(default=None, description="true when an active promotion placed the item")
    promotion: str | None = Field(default=None, description="the name of that promotion")


class Assignment(Answer):
    experiment_id: str
    arm: str


RECOMMENDATION_ID = Field(description="send it back with the events this answer leads to (attribution)")


class Recommendations(Answer):
    recommendation_id: str = RECOMMENDATION_ID
    strategy: Literal["personalized", "session", "popular", "content", "similar", "trending"]
    model_version: str
    items: list[RecommendedItem]
    note: str | None = None
    experiment: Assignment | None = Field(default=None, description="the experiment arm that chose the list")


class Trending(Answer):
    """`GET /v1/trending`: `model_version` is the model whose catalog gave titles and categories
    (absent before any model is trained); `note` says why fewer than k items came back."""

    recommendation_id: str = RECOMMENDATION_ID
    strategy: Literal["trending"]
    window: Literal["1h", "3h", "1d"]
    items: list[RecommendedItem]
    model_version: str | None = None
    note: str | None = None


class Segment(Answer):
    segment_id: str
    name: str
    description: str
    size: int


class Segments(Answer):
    segments: list[Segment]


class AudienceMember(Answer):
    user_id: str
    score: float


class Audience(Answer):
    users: list[AudienceMember] | None = None


class SentimentResult(Answer):
    label: str
    score: float
    probabilities: dict[str, Any]
    language: str | None = None
    source: Literal["model", "blend", "prior"] | None = None
    note: str | None = None


class SentimentResults(Answer):
    results: list[SentimentResult]
    model_version: str | None = None
    note: str | None = None


# --- request bodies the routes read themselves ------------------------------------------------

class _Described(GenerateJsonSchema):
    """Request schemas as clients should send them: an optional field is left out, not null."""

    def nullable_schema(self, schema):
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema):
        return self.generate_inner(schema["schema"])


class SentimentRequest(BaseModel):
    """`POST /v1/sentiment`, checked by tailor.sentiment.service (its messages are clearer)."""

    text: str | None = None
    texts: list[str] | None = Field(default=None, min_length=1, max_length=100)
    neutral_threshold: float | None = Field(default=None, ge=0, le=1)


def request_body(model: type[BaseModel]) -> dict:
    """`openapi_extensions` of a route that parses its body itself, described by `model`."""
    return _required_json_body(model.model_json_schema(schema_generator=_Described))


def _required_json_body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


MAX_BATCH = 500


def batch_body(route: str) -> dict:
    """`openapi_extensions` of a batch route (`{"<route>": [rows], "columns"?}`): any JSON per field
    (rows are parsed leniently; the fuzzing tries mixed types), fields from the dataset's schema."""
    record = {"type": "object", "properties": {name: {} for name in SCHEMAS[dataset_name(route)].field_names}}
    schema = {"type": "object", "required": [route],
              "properties": {route: {"type": "array", "maxItems": MAX_BATCH, "items": record},
                             "columns": {"type": "object", "additionalProperties": {"type": "string"},
                                         "description": "source column → field, e.g. {\"customer_id\": \"user_id\"}"}}}
    return _required_json_body(schema)
