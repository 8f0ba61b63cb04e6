"""SentimentFunction: score review texts (NumPy only, never TensorFlow) and batch-score stored reviews."""

from tailor.api.http import make_handler
from tailor.api.routes.sentiment import router
from tailor.bootstrap import sentiment_service

lambda_handler = make_handler(router, on_records=lambda event: sentiment_service().handle_s3_event(event))
