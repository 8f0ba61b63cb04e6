"""Review sentiment as a service: scoring texts on request, scoring stored reviews in batches,
and the per-item / per-user summaries marketers read.

- Request scoring uses the current model (`ModelCache`, NumPy only).
- Batch scoring: each stored reviews file `datasets/reviews/<batch>.parquet` gets one result
  row per review in `results/sentiment/<batch>.parquet`; after a new model is promoted, every
  file is scored again, so results always come from the current model.
- Summaries (count, mean score, share positive/negative, monthly trend) are recomputed from all
  results and written to the state table under `SENTIMENT#item#<id>` / `SENTIMENT#user#<id>`.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tailor.core.errors import Invalid, NotFound, PayloadTooLarge, Unavailable
from tailor.core.observability import model_served
from tailor.models.cache import ModelCache
from tailor.models.registry import ModelRegistry
from tailor.sentiment.scorer import ARTIFACT_FILES, PriorScorer, SentimentScorer
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore

if TYPE_CHECKING:
    from tailor.privacy.erase import UserErasure

MAX_TEXTS = 100
MAX_TEXT_CHARS = 5_000
RESULTS_PREFIX = keys.SENTIMENT_RESULTS_PREFIX
TREND_MONTHS = 6


def load_scorer(registry: ModelRegistry, version: str) -> SentimentScorer:
    return SentimentScorer.from_files({name: registry.artifact("sentiment", version, name) for name in ARTIFACT_FILES})


def validate_texts(body: object) -> list[str]:
    """`{"text": "..."}` or `{"texts": [...]}` → the list of texts, or a clear 413/422."""
    if not isinstance(body, dict) or ("text" in body) == ("texts" in body):
        raise Invalid('send either {"text": "..."} or {"texts": ["...", ...]} (up to 100 texts)')
    texts = [body["text"]] if "text" in body else body["texts"]
    if not isinstance(texts, list) or not texts:
        raise Invalid('"texts" must be a non-empty list of strings')
    if len(texts) > MAX_TEXTS:
        raise PayloadTooLarge(f"{len(texts)} texts in one call: send at most {MAX_TEXTS} per request")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise Invalid(f"texts[{index}] is {type(text).__name__}: every text must be a string")
        if len(text) > MAX_TEXT_CHARS:
            raise PayloadTooLarge(f"texts[{index}] has {len(text):,} characters: the limit is "
                                  f"{MAX_TEXT_CHARS:,} per text")
    return texts


def validate_neutral_threshold(body: dict) -> float | None:
    """Optional `"neutral_threshold"` in [0, 1]: below this top-class probability the label is
    NEUTRAL (None: the model's own threshold; 0: a 2-class model always answers POSITIVE or
    NEGATIVE)."""
    threshold = body.get("neutral_threshold")
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise Invalid(f'"neutral_threshold" is {threshold!r}: it must be a number from 0 to 1 '
                      "(0: only a 3-class model's neutral class gives NEUTRAL)")
    return float(threshold)


def parse_request(body: object) -> tuple[list[str], float | None]:
    """The body of `POST /v1/sentiment` → (texts, neutral threshold), or a clear 413/422."""
    texts = validate_texts(body)
    return texts, validate_neutral_threshold(body) if isinstance(body, dict) else None  # validate_texts refused the rest


class SentimentService:
    def __init__(self, store: ObjectStore, state: StateTable, models: ModelCache[SentimentScorer] | None):
        # No model cache: a training job's batch scoring with the scorer it just trained.
        self.store, self.state, self._models = store, state, models

    @property
    def models(self) -> ModelCache[SentimentScorer]:
        if self._models is None:
            raise Unavailable("this sentiment service scores batches only: it has no model cache")
        return self._models

    # ---- requests -------------------------------------------------------------------------
    def score(self, texts: list[str], threshold: float | None = None) -> dict:
        """Score `texts` (see `parse_request`); `threshold` is the optional neutral threshold."""
        try:
            scorer, version = self.models.get()
        except Unavailable:
            if self.models.last_error:  # a model exists but cannot be read: say so rather than guess
                raise
            # Nothing trained yet: the lexicon answers (English, Chinese), each result says so.
            return {"results": PriorScorer().score(texts, neutral_threshold=threshold), "note": PriorScorer.NOTE}
        results = scorer.score(texts, neutral_threshold=threshold)
        model_served(version)  # the lexicon above is no version: it records none
        return {"model_version": version, "results": results}

    def item_summary(self, item_id: str) -> dict:
        return self._summary("item", item_id)

    def user_summary(self, user_id: str) -> dict:
        return self._summary("user", user_id)

    def _summary(self, kind: str, key: str) -> dict:
        item = self.state.get(keys.sentiment_pk(kind, key), keys.SUMMARY_SK)
        if not item:
            raise NotFound(f"no scored reviews for {kind} {key!r} (reviews are scored once a sentiment "
                           "model is trained and whenever new reviews are ingested)")
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}

    # ---- batch scoring --------------------------------------------------------------------
    def handle_s3_event(self, event: dict) -> dict:
        from urllib.parse import unquote_plus

        stored = [unquote_plus(r["s3"]["object"]["key"]) for r in event.get("Records", [])]
        stored = [k for k in stored if k.startswith(keys.dataset_prefix("reviews")) and k.endswith(".parquet")]
        try:
            scorer, version = self.models.get()
        except Unavailable:  # no model yet: the first training job scores every stored review
            return {"scored": 0, "note": "no sentiment model yet; reviews will be scored after training"}
        scored = sum(self.score_file(key, scorer, version) for key in stored)
        self.refresh_summaries()
        return {"scored": scored, "model_version": version}

    def score_file(self, key: str, scorer: SentimentScorer, version: str) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(self.store.get(key)))
        texts = [t or "" for t in table.column("text").to_pylist()]
        results = []
        for start in range(0, len(texts), 5_000):
            results.extend(scorer.score(texts[start:start + 5_000]))
        columns = {name: table.column(name) if name in table.column_names else pa.nulls(len(texts), pa.string())
                   for name in ("review_id", "item_id", "user_id")}
        columns["timestamp"] = (table.column("timestamp") if "timestamp" in table.column_names
                                else pa.nulls(len(texts), pa.timestamp("ms", tz="UTC")))
        columns["label"] = pa.array([r["label"] for r in results], pa.string())
        columns["score"] = pa.array([r["score"] for r in results], pa.float64())
        for name in ("positive", "negative", "neutral"):
            columns[f"p_{name}"] = pa.array([r["probabilities"][name] for r in results], pa.float64())
        columns["language"] = pa.array([r["language"] for r in results], pa.string())
        columns["model_version"] = pa.array([version] * len(texts), pa.string())
        sink = io.BytesIO()
        pq.write_table(pa.table(columns), sink, compression="zstd")
        self.store.put(keys.sentiment_results_key(key.rsplit("/", 1)[-1]), sink.getvalue())
        return len(texts)

    def score_all(self, scorer: SentimentScorer, version: str) -> int:
        """Score every stored reviews file with `scorer` (after a model is promoted)."""
        stored = [k for k in self.store.keys(keys.dataset_prefix("reviews")) if k.endswith(".parquet")]
        scored = sum(self.score_file(key, scorer, version) for key in stored)
        self.refresh_summaries()
        return scored

    def refresh_summaries(self) -> int:
        table = read_results(self.store)
        if table is None:
            return 0
        rows = table.select(["item_id", "user_id", "timestamp", "label", "score"]).to_pylist()
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for row in rows:
            for kind in ("item", "user"):
                if row[f"{kind}_id"]:
                    groups[(kind, row[f"{kind}_id"])].append(row)
        self.state.put_many({"pk": keys.sentiment_pk(kind, key), "sk": keys.SUMMARY_SK, f"{kind}_id": key,
                             **summarise(group)} for (kind, key), group in groups.items())
        return len(groups)


def result_keys(store: ObjectStore) -> list[str]:
    return [k for k in store.keys(RESULTS_PREFIX) if k.endswith(".parquet")]


def read_results(store: ObjectStore):
    """Every stored per-review result as one table, or None when there are none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    stored = result_keys(store)
    if not stored:
        return None
    return pa.concat_tables([pq.read_table(io.BytesIO(store.get(k))) for k in stored], promote_options="default")


def summarise(rows: list[dict]) -> dict:
    """Count, mean score, share positive/negative and the monthly trend of scored reviews."""
    count = len(rows)
    scores = [r["score"] for r in rows]
    labels = [r["label"] for r in rows]
    by_month: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["timestamp"] is not None:
            moment = r["timestamp"] if isinstance(r["timestamp"], datetime) else \
                datetime.fromtimestamp(r["timestamp"] / 1000, tz=UTC)
            by_month[moment.strftime("%Y-%m")].append(r["score"])
    months = sorted(by_month)[-TREND_MONTHS:]
    trend: list[dict[str, Any]] = [
        {"month": m, "count": len(by_month[m]), "mean_score": round(sum(by_month[m]) / len(by_month[m]), 4)}
        for m in months]
    summary = {
        "reviews": count,
        "mean_score": round(sum(scores) / count, 4),
        "share_positive": round(labels.count("POSITIVE") / count, 4),
        "share_negative": round(labels.count("NEGATIVE") / count, 4),
        "share_neutral": round(labels.count("NEUTRAL") / count, 4),
        "trend": trend,
    }
    if len(trend) >= 2:
        # Direction of the newest month against the months before it, in score points.
        earlier = [s for m in months[:-1] for s in by_month[m]]
        delta = trend[-1]["mean_score"] - sum(earlier) / len(earlier)
        summary["recent_change"] = round(delta, 4)
        summary["direction"] = "improving" if delta > 0.1 else "worsening" if delta < -0.1 else "steady"
    return {k: v for k, v in summary.items() if not (isinstance(v, float) and math.isnan(v))}


def erase_user(erasure: UserErasure, state: StateTable) -> None:
    """A privacy erase of what sentiment keeps: the user's rows in the per-review results, their
    own summary, and the summaries of the items they reviewed, recomputed without them."""
    from tailor.datasets.store import parquet_bytes

    store, reviewed_items = erasure.store, set[str]()
    for key in result_keys(store):
        rest, removed = erasure.without_user_rows(key)
        if rest is None:
            continue
        if "item_id" in removed.column_names:
            reviewed_items.update(i for i in removed.column("item_id").to_pylist() if i)
        erasure.rewrite(key, parquet_bytes(rest) if rest.num_rows else None)
    own = keys.sentiment_pk("user", erasure.user_id)
    if state.get(own, keys.SUMMARY_SK) is not None:
        state.delete(own, keys.SUMMARY_SK)
        erasure.report["items"]["deleted"] += 1
    if not reviewed_items:
        return
    rows: dict[str, list[dict]] = defaultdict(list)
    table = read_results(store)  # without the user's rows now
    if table is not None:
        for row in table.select(["item_id", "timestamp", "label", "score"]).to_pylist():
            if row["item_id"] in reviewed_items:
                rows[row["item_id"]].append(row)
    for item_id in reviewed_items:
        pk = keys.sentiment_pk("item", item_id)
        if rows.get(item_id):
            state.put({"pk": pk, "sk": keys.SUMMARY_SK, "item_id": item_id, **summarise(rows[item_id])})
            erasure.report["items"]["updated"] += 1
        elif state.get(pk, keys.SUMMARY_SK) is not None:
            state.delete(pk, keys.SUMMARY_SK)
            erasure.report["items"]["deleted"] += 1
