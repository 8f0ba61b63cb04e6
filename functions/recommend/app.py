"""RecommendFunction: recommendations, similar items and re-ranking (NumPy only, never TensorFlow)."""

from tailor.http import make_handler
from tailor.routes.recommend import router

lambda_handler = make_handler(router)
