"""Training jobs through the handlers: asynchronous start, status records, promotion gate."""

from unittest import mock

from harness import call


def test_unknown_job_is_404(aws):
    status, body = call("ingest", "GET", "/v1/training-jobs/job-nope", resource="/v1/training-jobs/{job_id}",
                        path_params={"job_id": "job-nope"})
    assert status == 404, body
