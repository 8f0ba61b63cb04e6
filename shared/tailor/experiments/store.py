"""A/B experiments on recommendations (`EXPERIMENTS` / `<experiment_id>`): created, read and
stopped by the admin routes (IngestFunction); serving (RecommendFunction) reads the running one
with one Query per container every `RUNNING_CACHE_SECONDS` and assigns each customer (or session,
by its session id) to an arm by a stable hash of the id and the experiment, in the arms' shares.

Results come from the arms' totals that attribution keeps (`attribution.ledger`), compared with
the first arm (the control) by `experiments.statistics`.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tailor.core.clock import iso
from tailor.core.errors import Conflict, Invalid, NotFound
from tailor.experiments import statistics
from tailor.storage import keys
from tailor.storage.cached import CachedPartition
from tailor.storage.ports import StateTablePort

RUNNING_CACHE_SECONDS = 30.0
STRATEGIES = ("personalized", "popular", "trending")
SURFACES = ("recommendations",)  # user and session lists; similar items and rankings are not experimented on
MAX_ARMS = 5
MAX_NAME_LENGTH = 100
MIN_DETECTABLE_LIFT = 0.10
ALPHA = 0.05


@dataclass(frozen=True)
class Arm:
    name: str
    share: float
    strategy: str
    model_version: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "share": self.share, "strategy": self.strategy,
                **({"model_version": self.model_version} if self.model_version else {})}


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    arms: tuple[Arm, ...]
    started_at: str
    surface: str = "recommendations"
    stopped_at: str | None = None

    @property
    def status(self) -> str:
        return "stopped" if self.stopped_at else "running"

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def arm_for(self, unit: str) -> Arm:
        """The unit's arm: sha256 of experiment id and unit, as a number in [0, 1), against the
        cumulative shares. Stable across containers and requests; independent between experiments."""
        digest = hashlib.sha256(f"{self.experiment_id}:{unit}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        cumulative = 0.0
        for arm in self.arms:
            cumulative += arm.share
            if point < cumulative:
                return arm
        return self.arms[-1]  # rounding of the shares' sum

    def to_dict(self) -> dict:
        return {"experiment_id": self.experiment_id, "name": self.name, "surface": self.surface,
                "status": self.status, "started_at": self.started_at, "stopped_at": self.stopped_at,
                "control": self.control.name, "arms": [arm.to_dict() for arm in self.arms]}

    def to_item(self) -> dict:
        item = {k: v for k, v in self.to_dict().items() if v is not None and k not in ("status", "control")}
        return {"pk": keys.EXPERIMENTS_PK, "sk": self.experiment_id, **item}

    @classmethod
    def from_item(cls, item: dict) -> Experiment:
        return cls(experiment_id=str(item["experiment_id"]), name=str(item["name"]),
                   arms=tuple(Arm(str(a["name"]), float(a["share"]), str(a["strategy"]), a.get("model_version"))
                              for a in item["arms"]),
                   started_at=str(item["started_at"]), surface=str(item.get("surface") or "recommendations"),
                   stopped_at=item.get("stopped_at"))


class ExperimentStore:
    """`version_exists(version)` says whether a recommender version was trained (an arm may pin one)."""

    def __init__(self, state: StateTablePort, version_exists: Callable[[str], bool] | None = None, *,
                 ttl: float = RUNNING_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.state, self.version_exists, self.now = state, version_exists, now
        self._partition = CachedPartition(state, keys.EXPERIMENTS_PK, Experiment.from_item, ttl=ttl, clock=clock)

    # ---- admin ------------------------------------------------------------------------------
    def create(self, name: Any, arms: Any, surface: Any = "recommendations") -> dict:
        name = " ".join(str(name or "").split())
        if not name:
            raise Invalid('"name" must not be empty')
        if len(name) > MAX_NAME_LENGTH:
            raise Invalid(f'"name" must be at most {MAX_NAME_LENGTH} characters, got {len(name)}')
        if surface not in SURFACES:
            raise Invalid(f'"surface" must be one of {", ".join(SURFACES)}, got {surface!r}')
        parsed = self._arms(arms)
        running = [e for e in self._partition.read() if e.status == "running" and e.surface == surface]
        if running:
            raise Conflict(f"experiment {running[0].name!r} ({running[0].experiment_id}) is already running on "
                           f"{surface}: stop it first (POST /v1/experiments/{running[0].experiment_id}/stop)")
        now = self.now()
        # Sortable by creation (to the microsecond): the listing is newest first.
        stamp = datetime.now(UTC)
        experiment = Experiment(experiment_id=f"{stamp:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}", name=name,
                                arms=parsed, started_at=iso(now), surface=surface)
        self.state.put(experiment.to_item(), only_if_new=True)
        self._partition.forget()
        return experiment.to_dict()

    def _arms(self, arms: Any) -> tuple[Arm, ...]:
        if not isinstance(arms, list) or not 2 <= len(arms) <= MAX_ARMS:
            raise Invalid(f'"arms" must list 2 to {MAX_ARMS} arms (the first is the control)')
        parsed, names = [], set()
        for index, arm in enumerate(arms):
            where = f"arms[{index}]"
            if not isinstance(arm, dict):
                raise Invalid(f'{where} must be an object with "name", "share" and "strategy"')
            unknown = sorted(set(arm) - {"name", "share", "strategy", "model_version"})
            if unknown:
                raise Invalid(f"{where} has unknown field(s): {', '.join(unknown)}")
            arm = {k: v for k, v in arm.items() if v is not None}
            arm_name = " ".join(str(arm.get("name") or "").split())
            if not arm_name or len(arm_name) > 40 or "/" in arm_name:
                raise Invalid(f'{where}.name must be 1 to 40 characters without "/", got {arm.get("name")!r}')
            if arm_name in names:
                raise Invalid(f"{where}.name {arm_name!r} is used twice: arm names must differ")
            names.add(arm_name)
            share = arm.get("share")
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
                raise Invalid(f"{where}.share must be more than 0 and less than 1, got {share!r}")
            strategy = arm.get("strategy", "personalized")
            if strategy not in STRATEGIES:
                raise Invalid(f"{where}.strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
            version = arm.get("model_version")
            if version is not None and (self.version_exists is None or not self.version_exists(str(version))):
                raise Invalid(f"{where}.model_version {version!r} is not a trained recommender version "
                              "(GET /v1/models lists them)")
            parsed.append(Arm(arm_name, float(share), str(strategy), str(version) if version is not None else None))
        total = sum(a.share for a in parsed)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise Invalid(f"the arms' shares must sum to 1, got {round(total, 6)}")
        return tuple(parsed)  # the same treatment in two arms is an A/A test: allowed on purpose

    def get(self, experiment_id: str) -> Experiment:
        item = self.state.get(keys.EXPERIMENTS_PK, experiment_id)
        if item is None:
            raise NotFound(f"unknown experiment {experiment_id!r}")
        return Experiment.from_item(item)

    def listing(self) -> dict:
        return {"experiments": [e.to_dict() for e in reversed(self._partition.read())]}  # newest first

    def stop(self, experiment_id: str) -> dict:
        experiment = self.get(experiment_id)
        if experiment.stopped_at:
            raise Conflict(f"experiment {experiment_id!r} was already stopped at {experiment.stopped_at}")
        self.state.update(keys.EXPERIMENTS_PK, experiment_id, set={"stopped_at": iso(self.now())})
        self._partition.forget()
        return self.result(experiment_id)

    def result(self, experiment_id: str) -> dict:
        """The experiment with each arm's totals and rates, each treatment against the control
        (always-valid lift interval and p-value, Bonferroni over the treatments) and a verdict."""
        experiment = self.get(experiment_id)
        totals = {str(item["sk"])[len(keys.arm_sk("")):]: statistics.ArmTotals.from_item(item)
                  for item in self.state.query(keys.experiment_pk(experiment_id), consistent=True)}
        arms = []
        for arm in experiment.arms:
            t = totals.get(arm.name, statistics.ArmTotals())
            arms.append({**arm.to_dict(), "customers": t.units, "recommendations": t.recommendations,
                         "clicks": t.clicks, **statistics.rate_fields("ctr", statistics.ctr(t)),
                         "conversions": t.conversions,
                         **statistics.rate_fields("conversion_rate", statistics.conversion_rate(t)),
                         "revenue": round(t.revenue, 2)})
        treatments = experiment.arms[1:]
        alpha = ALPHA / len(treatments)
        control = totals.get(experiment.control.name, statistics.ArmTotals())
        comparisons = [c for c in (statistics.compare(control, totals.get(arm.name, statistics.ArmTotals()),
                                                      control_name=experiment.control.name, arm_name=arm.name,
                                                      alpha=alpha, mde=MIN_DETECTABLE_LIFT)
                                   for arm in treatments) if c is not None]
        return {**experiment.to_dict(), "results": {
            "arms": arms,
            "comparisons": [{"arm": c.arm, "control": c.control, "lift": round(c.lift, 6),
                             "lift_interval": [round(c.lift_low, 6), round(c.lift_high, 6)],
                             "p_value": round(c.p_value, 6), "significant": c.significant,
                             **({"more_recommendations_per_arm": c.more_per_arm} if c.more_per_arm is not None else {})}
                            for c in comparisons],
            "test": statistics.TEST_NAME, "alpha": round(alpha, 6),
            "verdict": statistics.verdict(comparisons, stopped=experiment.status == "stopped")}}

    # ---- serving ----------------------------------------------------------------------------
    def running(self, surface: str = "recommendations") -> Experiment | None:
        """The experiment running on the surface (cached `ttl` seconds; a failed read keeps the last)."""
        return next((e for e in self._partition.cached() if e.status == "running" and e.surface == surface), None)

