"""Promotions (business rules): a share of the recommendation slots goes to chosen items.

A promotion names a set of items — one category, or a list of item ids — and a `share` in
(0, 1]. While it is active (`starts_at` ≤ now < `ends_at`; no `ends_at`: until deleted), each
user and session recommendation of `k` items (personalized, session and their popular fallbacks;
never similar items or rankings) gives up to `ceil(share * k)` of its slots to the best-scoring
matching items for that customer or session:

- best-scoring means under the same score as the organic list (the user's folded-in vector, the
  session vector, or popularity for the fallback);
- only items the request could have listed anyway: not seen (unless `include_seen`), not
  excluded, inside the requested category, and not already in the list — an item that is in the
  organic list and matches a promotion simply stays organic;
- they replace the lowest-ranked organic items at the end of the list: the length stays `k`, the
  organic items keep their order, and promoted items carry `"promoted": true`,
  `"promotion": <name>` and the reason `"promoted: <name>"`;
- several active promotions apply oldest first, and together never take more than `k` slots.

`store` validates and keeps promotions in the state table (admin routes, IngestFunction);
`inject` is the pure list surgery RecommendFunction applies. Serving reads the promotions with
one Query per container every `ACTIVE_CACHE_SECONDS`, not per request.
"""
