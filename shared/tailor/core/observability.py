"""Metrics for every function: one Powertools `Metrics` (CloudWatch embedded metric format).

Each invocation flushes once (`log_metrics` on the handler), as one JSON line in the function's
log that CloudWatch turns into metrics; no API call, no extra permission. Dimensions stay few and
low-cardinality: `service` (POWERTOOLS_SERVICE_NAME), `stage` (STAGE) and, for requests, `route`
(the route template such as `GET /v1/users/{user_id}/recommendations`, never the raw path).
Ids, texts and other customer data never become dimensions; what helps to read a single line
(the model version that answered, the dataset) goes in as metadata, which is not a metric.

Tracing is X-Ray's `Tracing: Active` on every function (template Globals), without the Powertools
Tracer: the layer deliberately has no aws-xray-sdk (see shared/requirements.txt).

The names, in namespace POWERTOOLS_METRICS_NAMESPACE (`Tailor`):
- `Requests` (Count), `Latency` (Milliseconds), `ServerErrors` (Count, 1 for a 5xx answer, else 0)
  per route; S3 event batches and direct invocations count as routes `S3 event` and `invoke`;
- `Fallback` (Count, 1 when a recommendation answer fell back to popular items, else 0: its
  Average is the fallback rate) and `ModelVersionServed` (Count, with `model_version` in metadata);
- `RowsStored`, `RowsRejected` (Count) per ingested batch or file, `dataset` in metadata;
- `TrainingDuration` (Seconds, one value per model trained), `TrainingJobsFailed` (Count, 1 or 0 per job);
- `ColdStart` (Powertools' own, dimension `function_name`);
- `RecommendationsServed`, `RecommendationClicks`, `RecommendationConversions` (Count) and
  `AttributedRevenue` (None) per `strategy` (dimension: a handful of values), counted once each
  by `attribution.ledger` after de-duplication; `UnattributedEvents` (Count): events naming an
  unknown or expired recommendation, or an item it did not list.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

__all__ = ["metrics", "MetricUnit", "NAMESPACE"]

# The template sets the variable; tests and scripts that call services directly get the same name.
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Tailor"

# Powertools shares one metric set between all `Metrics` instances of a process, so the ingest
# and training code add to the same batch that the handler's `log_metrics` flushes.
metrics = Metrics(namespace=NAMESPACE)
if os.environ.get("STAGE"):
    metrics.set_default_dimensions(stage=os.environ["STAGE"])


def model_served(version: str | None, strategy: str | None = None) -> None:
    """Metrics of an answer from a model (recommendations, sentiment): which version answered
    (`ModelVersionServed`, `model_version` in metadata) and, for recommendations, whether it fell
    back to popular items (`Fallback`, 1 or 0: its Average is the fallback rate; `strategy` in
    metadata). The handler flushes them with the request's Requests and Latency."""
    if version:
        metrics.add_metadata("model_version", str(version))
        metrics.add_metric("ModelVersionServed", MetricUnit.Count, 1)
    if strategy:
        metrics.add_metadata("strategy", str(strategy))
        metrics.add_metric("Fallback", MetricUnit.Count, 1 if strategy == "popular" else 0)


def record_attribution(served: dict[str, int], clicks: dict[str, int], conversions: dict[str, int],
                       revenue: dict[str, float], unattributed: int) -> None:
    """What one attribution batch counted, per strategy (each metric its own EMF line, because the
    dimension differs from the invocation's `route`). Dashboard CTR = clicks / served."""
    series = (("RecommendationsServed", MetricUnit.Count, served), ("RecommendationClicks", MetricUnit.Count, clicks),
              ("RecommendationConversions", MetricUnit.Count, conversions),
              ("AttributedRevenue", MetricUnit.NoUnit, revenue))
    for name, unit, per_strategy in series:
        for strategy, value in sorted(per_strategy.items()):
            if value:
                with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE,
                                   default_dimensions=metrics.default_dimensions) as metric:
                    metric.add_dimension("strategy", strategy)
    if unattributed:
        metrics.add_metric("UnattributedEvents", MetricUnit.Count, unattributed)
