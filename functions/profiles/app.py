"""ProfilesFunction: customer profiles, segments, audiences and privacy erase."""

from tailor.http import make_handler
from tailor.routes.profiles import router

lambda_handler = make_handler(router)
