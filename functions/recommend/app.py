"""RecommendFunction: recommendations, similar items and re-ranking (NumPy only, never TensorFlow)."""

from tailor.api.http import make_handler
from tailor.api.routes.recommend import router

lambda_handler = make_handler(router)
