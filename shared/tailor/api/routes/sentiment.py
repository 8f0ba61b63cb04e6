"""Review sentiment (SentimentFunction): score texts, and what reviewers say about an item."""

from __future__ import annotations

from urllib.parse import unquote

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from tailor.api.http import json_body
from tailor.api.models import Object, SentimentRequest, SentimentResults, answers, request_body
from tailor.bootstrap import sentiment_service
from tailor.sentiment.service import parse_request

router = APIGatewayRouter()


@router.post("/v1/sentiment", responses=answers(SentimentResults), openapi_extensions=request_body(SentimentRequest))
def post_sentiment():
    return sentiment_service().score(*parse_request(json_body(router)))


@router.get("/v1/items/<item_id>/sentiment", responses=answers(Object))
def get_item_sentiment(item_id: str):
    return sentiment_service().item_summary(unquote(item_id))  # API Gateway leaves path params encoded
