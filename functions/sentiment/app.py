"""SentimentFunction: score review texts (NumPy only, never TensorFlow) and batch-score stored reviews."""

from tailor.http import make_handler
from tailor.routes.sentiment import router
from tailor.services import sentiment_service

lambda_handler = make_handler(router, on_records=lambda event: sentiment_service().handle_s3_event(event))
