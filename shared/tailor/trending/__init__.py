"""Trending now: the items whose interaction rate rose most in the last hour, 3 hours or day
against the windows before, from time-bucketed counters ingest keeps (no retraining).

- `scoring`: windows, buckets and the score (pure functions, also used at training to measure
  trending against popularity for cold customers on the validation split);
- `counters`: the counters in the state table (`Trending.record` is ingest's hook, `Trending.top`
  what `GET /v1/trending` and the cold-customer fallback read).
"""
