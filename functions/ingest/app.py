"""IngestFunction: data and job administration routes, the published OpenAPI document, files
uploaded under incoming/, the RetrainSchedule's `{"scheduled_training": true}` and the
CompactSchedule's `{"compact_events": true}` and the served recommendations that
ServedRecommendationsFilter delivers from RecommendFunction's log (`{"awslogs": ...}`)."""

from tailor.api.http import make_handler
from tailor.api.routes.admin import router
from tailor.api.routes.experiments import router as experiments_router
from tailor.api.routes.openapi import router as openapi_router
from tailor.bootstrap import compact_events, ingest_service, record_served, training_jobs

lambda_handler = make_handler(router, experiments_router, openapi_router,
                              on_records=lambda event: {"ingested": ingest_service().handle_s3_event(event)},
                              on_invoke=lambda event: _scheduled(event))


def _scheduled(event: dict) -> dict:
    if "awslogs" in event:  # served recommendations from RecommendFunction's log (attribution)
        return record_served(event)
    if event.get("compact_events") is True:
        return compact_events()
    if event.get("scheduled_training") is not True:
        raise ValueError(f"IngestFunction does not know this invocation: {sorted(event)[:5]}")
    return training_jobs().start_scheduled()
