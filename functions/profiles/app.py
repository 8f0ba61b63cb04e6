"""ProfilesFunction: customer profiles, segments, audiences (and their exports) and privacy erase."""

from tailor.api.http import make_handler
from tailor.api.routes.profiles import router
from tailor.bootstrap import profile_service

lambda_handler = make_handler(router, on_invoke=lambda event: profile_service().run_export(
    event["audience_export"]["job_id"]))
