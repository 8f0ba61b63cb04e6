"""IngestFunction: data and job administration routes, the published OpenAPI document, and files
uploaded under incoming/."""

from tailor.api.http import make_handler
from tailor.api.routes.admin import router
from tailor.api.routes.openapi import router as openapi_router
from tailor.bootstrap import ingest_service

lambda_handler = make_handler(router, openapi_router,
                              on_records=lambda event: {"ingested": ingest_service().handle_s3_event(event)})
