"""The promotion policy: whether a newly trained version replaces the one serving."""

from __future__ import annotations


def promotion_decision(metric: str, score: float, baseline_name: str | None, baseline: float | None,
                       current: dict | None, margin: float, current_score: float | None = None) -> tuple[bool, str]:
    """The promotion gate: beat the baseline on validation, and do not fall more than `margin`
    (relative) below the current version: its score on this candidate's own validation data when
    the trainer measured it (`current_score`), else the score it was promoted with."""
    if baseline is not None and not score > baseline:
        return False, (f"kept, not promoted: validation {metric} {score:.4f} does not beat "
                       f"{baseline_name} ({baseline:.4f})")
    gate = (current or {}).get("metrics", {}).get("gate") or {}
    if current is not None and current_score is not None:
        gate = {"metric": metric, "score": current_score}
        if score < current_score * (1 - margin):
            return False, (f"kept, not promoted: validation {metric} {score:.4f} is more than {margin:.0%} below "
                           f"the current version {current['version']} on the same validation data ({current_score:.4f})")
        return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} ({baseline:.4f}), and the "
                      f"current version {current['version']} reads {current_score:.4f} on the same validation data"
                      if baseline is not None else
                      f"promoted: validation {metric} {score:.4f}; the current version reads {current_score:.4f} on it")
    if current is not None and gate.get("metric") == metric and gate.get("score") is not None:
        floor = gate["score"] * (1 - margin)
        if score < floor:
            return False, (f"kept, not promoted: validation {metric} {score:.4f} is more than "
                           f"{margin:.0%} below the current version {current['version']} ({gate['score']:.4f})")
        return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} "
                      f"({baseline:.4f}) and is within {margin:.0%} of the current version ({gate['score']:.4f})"
                      if baseline is not None else f"promoted: validation {metric} {score:.4f}")
    return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} ({baseline:.4f}); "
                  "there was no current version" if baseline is not None else
                  f"promoted: validation {metric} {score:.4f}; there was no current version")
