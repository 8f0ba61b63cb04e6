"""A/B experiments on recommendations: per-arm sufficient statistics and the sequential test (`statistics`)."""
