"""IngestFunction: data and job administration routes, the published OpenAPI document, and files
uploaded under incoming/."""

from tailor.http import make_handler
from tailor.routes.admin import router
from tailor.routes.openapi import router as openapi_router
from tailor.services import ingest_service

lambda_handler = make_handler(router, openapi_router, on_records=lambda event: {"ingested": ingest_service().handle_s3_event(event)})
