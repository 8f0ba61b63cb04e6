"""The list surgery of promotions: pure, so its rules are tested without a model or a table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Scored = list[tuple[str, float]]


@dataclass(frozen=True)
class Listed:
    """One slot of the answer; `promotion` names the promotion that placed it (None: organic)."""

    item_id: str
    score: float
    reason: str
    promotion: str | None = None


def slots(share: float, k: int) -> int:
    """`ceil(share * k)`, at most k. Rounded first: 0.1 * 30 is 3.0000000000000004 in floats,
    which must stay 3 slots, not become 4."""
    return min(k, math.ceil(round(share * k, 9)))


def reason(name: str) -> str:
    return f"promoted: {name}"


def inject(organic: Sequence[tuple[str, float, str]], offers: Sequence[tuple[str, float, Scored]], k: int
           ) -> list[Listed]:
    """The answer's slots: `organic` (item, score, reason; best first) with promoted items in.

    `offers` holds, per active promotion and oldest first, `(name, share, candidates)`: the
    promotion's matching items with their scores, already restricted to what the request may
    list (not seen, not excluded, inside the requested category). Each promotion takes up to
    `slots(share, k)` of its best-scoring candidates that are not in the list yet (an organic
    item that matches stays organic) and that no earlier promotion took; together they never
    take more than k slots. Promoted items replace the lowest-ranked organic ones, so the
    answer is the organic list's head, in its order, then the promoted items, promotion by
    promotion, best first; it is never longer than k (nor than the organic list plus what
    was promoted)."""
    kept = [Listed(item, score, why) for item, score, why in organic][:k]
    taken = {entry.item_id for entry in kept}
    promoted: list[Listed] = []
    for name, share, candidates in offers:
        quota = min(slots(share, k), k - len(promoted))
        picked = 0
        for item, score in sorted(candidates, key=lambda candidate: -candidate[1]):  # stable: ties keep their order
            if picked >= quota:
                break
            if item in taken:
                continue
            taken.add(item)
            promoted.append(Listed(item, score, reason(name), name))
            picked += 1
    return kept[:max(0, min(len(kept), k - len(promoted)))] + promoted
