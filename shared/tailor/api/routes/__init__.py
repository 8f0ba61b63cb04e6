"""HTTP routes, one module per function; each exposes `router` (Powertools Router)."""
