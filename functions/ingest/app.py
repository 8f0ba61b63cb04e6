"""IngestFunction: data and job administration routes, and files uploaded under incoming/."""

from tailor.http import make_handler
from tailor.routes.admin import router
from tailor.services import ingest_service

lambda_handler = make_handler(router, on_records=lambda event: {"ingested": ingest_service().handle_s3_event(event)})
