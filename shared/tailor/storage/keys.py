"""Every storage key and prefix Tailor uses: the one owner of the layout of the data bucket and the
state table. Stores build keys here and nowhere else, so a reader finds the whole layout in one
page and the privacy erase can name every place a customer's data lives.

State table (pk / sk):
- `JOB#<job_id>` / `JOB`: a training job; `JOBS` / `<created_at>#<job_id>`: the newest-first index;
- `UPLOAD#<upload_id>` / `UPLOAD`: a presigned upload; `BATCH#<batch_id>` / `BATCH`: a stored batch
  (duplicate detection); `INGEST#<dataset>` / `<at>#<suffix>`: ingest results, newest first;
- `MODEL#<model>` / `VERSION#<version>`: a model version's metrics and decision;
  `SERVING#<model>` / `STAMP`: tells warm containers to re-read the pointer;
- `PROFILE#<user_id>` / `PROFILE`: a customer profile; `SEGMENTS` / `<segment_id>` and `#META`;
- `AUDIENCE#<job_id>` / `EXPORT`: an asynchronous audience export;
- `SENTIMENT#item#<id>` and `SENTIMENT#user#<id>` / `SUMMARY`: review sentiment summaries;
- `RECENT#<user_id>` / `<timestamp ms, 15 digits>#<item_id>`: a customer's recent events (fold-in);
- `PROMOTIONS` / `<promotion_id>` (`<created, to the microsecond>Z-<hex>`, oldest first): promotions (business rules);
- `TRENDING#<window>#<bucket start, epoch s, 10 digits>` / `<item_id>`: interactions per item in
  one time bucket (`n`, added by ingest; "trending now");
- `ERASED` / `<sha256(user_id)>`: erase tombstones;
- `SERVED#<recommendation_id>` / `SERVED`: a served recommendation (its items, strategy, model
  version, experiment arm; `attribution.ledger`), and in the same partition `click#<item_id>` /
  `conversion#<item_id>`: the events attributed to it, once each (TTL `expires_at`);
- `METRICS#<YYYY-MM-DD>` / `<by>#<value>` (`strategy`, `model_version`, `arm`, `day`): counters of
  the recommendations served that day and the clicks, conversions and revenue they earned;
  `METRICS#<day>` / `unattributed`: events whose recommendation id was unknown, expired or did not list the item;
- `EXPERIMENTS` / `<experiment_id>`: A/B experiments; `EXPERIMENT#<experiment_id>` / `ARM#<arm>`: an
  arm's totals over its customers (the sums the statistics need); `UNIT#<experiment_id>#<arm>#<unit>` /
  `UNIT`: one customer's (or session's) recommendations, clicks and conversions in it.

Data bucket:
- `incoming/<dataset>/<upload_id>/<file>`: uploads waiting to be ingested;
- `datasets/<dataset>/...parquet` (interactions by `month=YYYY-MM/`): validated rows;
- `buffer/interactions/YYYY/MM/DD/HH/<stream>-...`: single events from `POST /v1/events` as Amazon
  Data Firehose delivered them (JSON lines, gzip on AWS), until compaction merges them into
  `datasets/interactions/month=YYYY-MM/compacted-<hash>.parquet`;
- `rejects/<dataset>/<batch>.jsonl`: rejected rows with their reasons;
- `models/<model>/<version>/<file>` and `models/<model>/current.json` (the pointer);
- `reports/<model>/<version>/`: evaluation reports;
- `results/sentiment/<batch>.parquet`: scored reviews; `exports/audiences/<id>.csv`: audiences.
"""

from __future__ import annotations

# ---- state table -------------------------------------------------------------------------------
JOB_SK = "JOB"
JOB_INDEX_PK = "JOBS"
UPLOAD_SK = "UPLOAD"
BATCH_SK = "BATCH"
STAMP_SK = "STAMP"
PROFILE_SK = "PROFILE"
SEGMENTS_PK = "SEGMENTS"
SEGMENTS_META_SK = "#META"
EXPORT_SK = "EXPORT"
SUMMARY_SK = "SUMMARY"
ERASED_PK = "ERASED"
PROMOTIONS_PK = "PROMOTIONS"
EXPERIMENTS_PK = "EXPERIMENTS"
SERVED_SK = "SERVED"
UNIT_SK = "UNIT"
UNATTRIBUTED_SK = "unattributed"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def upload_pk(upload_id: str) -> str:
    return f"UPLOAD#{upload_id}"


def batch_pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def ingest_pk(dataset: str) -> str:
    return f"INGEST#{dataset}"


def model_pk(model: str) -> str:
    return f"MODEL#{model}"


def version_sk(version: str) -> str:
    return f"VERSION#{version}"


def serving_pk(model: str) -> str:
    return f"SERVING#{model}"


def profile_pk(user_id: str) -> str:
    return f"PROFILE#{user_id}"


def audience_pk(job_id: str) -> str:
    return f"AUDIENCE#{job_id}"


def recent_pk(user_id: str) -> str:
    return f"RECENT#{user_id}"


def recent_sk(timestamp_ms: int, item_id: str) -> str:
    """Time order within the partition (zero-padded), then the item: a re-sent event has the same key."""
    return f"{max(int(timestamp_ms), 0):015d}#{item_id}"


def trending_pk(window: str, bucket_start_s: int) -> str:
    """One time bucket of one trending window; its items are the sort keys (`trending_sk`)."""
    return f"TRENDING#{window}#{max(int(bucket_start_s), 0):010d}"


def trending_sk(item_id: str) -> str:
    return item_id


def served_pk(recommendation_id: str) -> str:
    return f"SERVED#{recommendation_id}"


def attributed_sk(kind: str, item_id: str) -> str:
    """`kind` is "click" or "conversion": each is counted once per recommendation and item."""
    return f"{kind}#{item_id}"


def metrics_pk(day: str) -> str:
    """`day` is YYYY-MM-DD (UTC), the day the recommendations were served."""
    return f"METRICS#{day}"


def metrics_sk(by: str, value: str) -> str:
    return f"{by}#{value}"


def experiment_pk(experiment_id: str) -> str:
    return f"EXPERIMENT#{experiment_id}"


def arm_sk(arm: str) -> str:
    return f"ARM#{arm}"


def unit_pk(experiment_id: str, arm: str, unit: str) -> str:
    """One partition per unit (customer or session) and arm: the writes of a busy experiment spread out."""
    return f"UNIT#{experiment_id}#{arm}#{unit}"


def sentiment_pk(kind: str, key: str) -> str:
    """`kind` is "item" or "user"."""
    return f"SENTIMENT#{kind}#{key}"


# ---- data bucket -------------------------------------------------------------------------------
# Per dataset (sk = its name): rows stored and rejected, the last ingest.
DATASET_STATS_PK = "DATASET"

INCOMING_PREFIX = "incoming/"
DATASETS_PREFIX = "datasets/"
BUFFER_PREFIX = "buffer/"
COMPACTED_PREFIX = "compacted-"  # the batch id of a compaction's output (datasets/interactions)
REJECTS_PREFIX = "rejects/"
MODELS_PREFIX = "models/"
REPORTS_PREFIX = "reports/"
EXPORTS_PREFIX = "exports/"
AUDIENCE_EXPORTS_PREFIX = "exports/audiences/"
SENTIMENT_RESULTS_PREFIX = "results/sentiment/"


def incoming_key(dataset: str, upload_id: str, filename: str) -> str:
    return f"{INCOMING_PREFIX}{dataset}/{upload_id}/{filename}"


def dataset_prefix(dataset: str) -> str:
    return f"{DATASETS_PREFIX}{dataset}/"


def dataset_key(dataset: str, batch_id: str, month: str | None = None) -> str:
    """A stored batch; interactions are partitioned by the month of their timestamp."""
    partition = f"month={month}/" if month else ""
    return f"{dataset_prefix(dataset)}{partition}{batch_id}.parquet"


def buffer_prefix(dataset: str) -> str:
    """Where the event stream delivers `dataset`'s rows (the delivery stream's S3 prefix)."""
    return f"{BUFFER_PREFIX}{dataset}/"


def rejects_key(dataset: str, batch_id: str) -> str:
    return f"{REJECTS_PREFIX}{dataset}/{batch_id}.jsonl"


def model_prefix(model: str, version: str | None = None) -> str:
    return f"{MODELS_PREFIX}{model}/" + (f"{version}/" if version else "")


def artifact_key(model: str, version: str, name: str) -> str:
    return f"{model_prefix(model, version)}{name}"


def pointer_key(model: str) -> str:
    return f"{model_prefix(model)}current.json"


def report_prefix(model: str, version: str) -> str:
    return f"{REPORTS_PREFIX}{model}/{version}/"


def sentiment_results_key(batch_file: str) -> str:
    return f"{SENTIMENT_RESULTS_PREFIX}{batch_file}"


def audience_export_key(export_id: str) -> str:
    return f"{AUDIENCE_EXPORTS_PREFIX}{export_id}.csv"


def dataset_month(key: str) -> str:
    """`YYYY-MM` of an interactions key written by :func:`dataset_key` with a month."""
    return key.split("month=")[1][:7]
