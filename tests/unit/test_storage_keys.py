"""One owner for every storage key: no state-table key or bucket prefix is spelled outside
shared/tailor/storage/keys.py, and the keys it builds keep the layout stored data already has."""

from __future__ import annotations

import re
from pathlib import Path

from tailor.storage import keys

TAILOR = Path(__file__).resolve().parents[2] / "shared" / "tailor"
# A key literal: `"JOB#`, f"MODEL#..., a sort key such as "SUMMARY", or a bucket prefix "models/".
LITERAL = re.compile(r"""f?["'](?:[A-Z_]+#|(?:JOB|JOBS|UPLOAD|BATCH|STAMP|PROFILE|SEGMENTS|#META|EXPORT|SUMMARY|ERASED)["']"""
                     r"""|(?:incoming|datasets|rejects|models|reports|results|exports)/)""")


def test_no_key_or_prefix_literal_outside_storage_keys():
    found = [f"{path.relative_to(TAILOR)}:{number}: {line.strip()}"
             for path in TAILOR.rglob("*.py") if path != TAILOR / "storage" / "keys.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if LITERAL.search(line) and not line.lstrip().startswith("#")]
    assert not found, "\n".join(found)


def test_the_literal_check_can_fail():
    assert LITERAL.search('state.get(f"JOB#{job_id}", "JOB")') and LITERAL.search('store.keys("models/")')
    assert not LITERAL.search('raise Invalid("a model needs data")')


def test_keys_keep_the_stored_layout():
    assert keys.dataset_key("interactions", "b1", "2024-05") == "datasets/interactions/month=2024-05/b1.parquet"
    assert keys.dataset_key("reviews", "b1") == "datasets/reviews/b1.parquet"
    assert keys.dataset_month(keys.dataset_key("interactions", "b1", "2024-05")) == "2024-05"
    assert keys.artifact_key("recommender", "v1", "weights.npz") == "models/recommender/v1/weights.npz"
    assert keys.pointer_key("sentiment") == "models/sentiment/current.json"
    assert keys.report_prefix("recommender", "v1") == "reports/recommender/v1/"
    assert (keys.job_pk("j1"), keys.JOB_SK) == ("JOB#j1", "JOB")
    assert (keys.model_pk("recommender"), keys.version_sk("v1")) == ("MODEL#recommender", "VERSION#v1")
    assert keys.sentiment_pk("item", "i1") == "SENTIMENT#item#i1"
    assert keys.incoming_key("items", "u1", "a.csv") == "incoming/items/u1/a.csv"
    assert keys.rejects_key("items", "b1") == "rejects/items/b1.jsonl"
    assert keys.audience_export_key("aud-1") == "exports/audiences/aud-1.csv"
