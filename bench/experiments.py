"""Protocol O1 (../shared/protocols.md): an online A/B experiment with simulated shoppers over
HTTP on the local stack, MovieLens 100K, and repeated A/A runs for the false positive rate.

The T1 training part and the catalog are uploaded and the recommender trained through the API
(as bench.freshness). Every user with T1 test items is a shopper whose hidden preferences are
those test items. A visit is `GET /v1/users/{user}/recommendations?k=10`; an item at rank r
(1-based) is clicked with probability 0.6/log2(r+1) if it is a hidden preference (then it is
found: removed from them, and bought, `purchase` with value 10.0, with probability 0.2), else
with probability 0.01/log2(r+1). Every click and purchase event names the answer's
`recommendation_id`, and is sent twice, shuffled, in `POST /v1/events` batches of at most 500.
The simulator counts per arm what it was served and clicked; the service's experiment results
must equal those counts exactly.

`--click-model protocol` (the default, protocol O1 as written): every listed hidden preference is
clicked and nothing else, one visit per shopper; results in bench/results/experiments.*.
`--click-model graded` (the rule above, 3 visits): bench/results/experiments_graded.*.

- A/B: control `popular` against treatment `personalized` (50/50), `--visits` rounds of one visit
  per shopper; the experiment is read after every round (peeking: the test is an mSPRT, valid
  at any look).
- A/A: `--aa-runs` experiments with two arms of the same strategy (`--aa-strategy`, protocol O1:
  `personalized`), each with its own click seed, one visit per shopper of a seeded sample of
  `--aa-users`, all with their original hidden preferences and `include_seen=true` (a replay of
  the same shoppers: see the comment in main); events are sent and the experiment read after every
  `--aa-look-every` visits. Reported: how often a run is significant at its end and at any look,
  with 95% Wilson intervals, and how many runs had too little data to compare.

Serving reads the running experiment at most every 30 s per container
(tailor.experiments.store.RUNNING_CACHE_SECONDS): after an experiment is created, answers that
do not carry it yet are stale; the shopper does not see them and the visit is asked again after
`STALE_RETRY_SECONDS`. They are counted (they are served and recorded under the experiment the
container still had, or none), and reconciled against `GET /v1/metrics/recommendations`.

    python -m bench.experiments [--data ../shared/data] [--visits 3] [--aa-runs 20] [--seed 0]

Writes bench/results/experiments.json and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import save_results
from bench.recommender_api import train_t1
from infra.client import TailorClient
from infra.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
K = 10
CLICK_PREFERRED = 0.6
CLICK_NOISE = 0.01
PURCHASE_PROBABILITY = 0.2
PURCHASE_VALUE = 10.0
BATCH = 500
POLL_SECONDS = 120.0
LOOK_POLL_SECONDS = 30.0
STALE_RETRY_SECONDS = 0.5
STALE_TIMEOUT_SECONDS = 75.0  # two cache periods and some: serving must pick the experiment up by then
Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Tally:
    """What the simulator saw of one arm."""

    recommendations: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    customers: set = field(default_factory=set)

    def to_dict(self) -> dict:
        return {"customers": len(self.customers), "recommendations": self.recommendations, "clicks": self.clicks,
                "conversions": self.conversions, "revenue": round(self.revenue, 2)}


class Shoppers:
    """The simulated shoppers of one experiment: visits, clicks, events, and their own counts."""

    def __init__(self, client: TailorClient, experiment_id: str, hidden: dict[str, set[str]], seed: int,
                 get_ms: list[float], graded: bool = False, include_seen: bool = False):
        self.client, self.experiment_id, self.hidden = client, experiment_id, hidden
        self.query = f"k={K}" + ("&include_seen=true" if include_seen else "")
        self.graded = graded  # False: protocol O1, every listed hidden preference is clicked, nothing else
        self.rng = random.Random(seed)
        self.get_ms = get_ms
        self.tally: dict[str, Tally] = defaultdict(Tally)
        self.pending: list[dict] = []
        self.stale = 0  # answers that did not carry this experiment yet (serving's cache)
        self.answers = 0  # every answer received, stale ones included
        self.distinct_clicks = 0  # over every arm: what metrics by strategy should show
        self.events_sent = 0
        self.resent = 0  # batches sent again after a 504
        self.post_ms: list[float] = []

    def _ask(self, user: str) -> dict:
        deadline = time.monotonic() + STALE_TIMEOUT_SECONDS
        while True:
            began = time.perf_counter()
            body = self.client.call("GET", f"/v1/users/{user}/recommendations?{self.query}")
            self.get_ms.append((time.perf_counter() - began) * 1000)
            self.answers += 1
            if not body.get("recommendation_id"):
                raise SystemExit(f"an answer without recommendation_id: {body}")
            if (body.get("experiment") or {}).get("experiment_id") == self.experiment_id:
                return body
            self.stale += 1
            if time.monotonic() > deadline:
                raise SystemExit(f"serving did not pick experiment {self.experiment_id} up within "
                                 f"{STALE_TIMEOUT_SECONDS:.0f} s: last answer {body.get('experiment')}")
            time.sleep(STALE_RETRY_SECONDS)

    def visit(self, user: str) -> None:
        body = self._ask(user)
        arm, rec_id = body["experiment"]["arm"], body["recommendation_id"]
        tally = self.tally[arm]
        tally.recommendations += 1
        tally.customers.add(user)
        hidden = self.hidden[user]
        clicked: set[str] = set()
        for rank, entry in enumerate(body["items"], start=1):
            item = str(entry["item_id"])
            preferred = item in hidden
            chance = ((CLICK_PREFERRED if preferred else CLICK_NOISE) / math.log2(rank + 1) if self.graded
                      else 1.0 if preferred else 0.0)
            # One draw per rank whatever the list holds, so the click stream depends on the seed only.
            draw, buy = self.rng.random(), self.rng.random()
            if draw >= chance or item in clicked:
                continue
            clicked.add(item)
            now = int(time.time() * 1000)
            event = {"user_id": user, "item_id": item, "timestamp": now, "event_type": "click",
                     "recommendation_id": rec_id}
            self.pending.append(event)
            tally.clicks += 1
            self.distinct_clicks += 1
            if preferred:
                hidden.discard(item)  # found
                if buy < PURCHASE_PROBABILITY:
                    self.pending.append({**event, "event_type": "purchase", "value": PURCHASE_VALUE})
                    tally.conversions += 1
                    tally.revenue += PURCHASE_VALUE

    def flush(self) -> None:
        """Every pending event twice, all shuffled, in batches of at most BATCH."""
        events = self.pending + [dict(e) for e in self.pending]
        self.pending = []
        self.rng.shuffle(events)
        for start in range(0, len(events), BATCH):
            batch = events[start:start + BATCH]
            began = time.perf_counter()
            for attempt in range(3):
                status, answer = self.client.request("POST", "/v1/events", {"events": batch})
                if status == 200:
                    break
                # A 504 (API Gateway's 29 s) may have stored part of the batch: sending it again is
                # safe, attribution counts each (recommendation, item) once.
                if status != 504 or attempt == 2:
                    raise SystemExit(f"POST /v1/events answered {status}: {answer}")
                self.resent += 1
            self.post_ms.append((time.perf_counter() - began) * 1000)
            if answer.get("rows_rejected"):
                raise SystemExit(f"events rejected: {answer}")
            self.events_sent += len(batch)

    def counts(self) -> dict[str, dict]:
        return {arm: t.to_dict() for arm, t in sorted(self.tally.items())}


def poll_until_counted(client: TailorClient, experiment_id: str, shoppers: Shoppers, timeout: float) -> tuple[dict, float]:
    """GET the experiment until each arm's recommendations (then clicks, a little longer) equal the
    simulator's; the last result and how long it took."""
    began = time.monotonic()
    deadline = began + timeout
    expected = shoppers.counts()
    clicks_grace: float | None = None
    while True:
        result = client.call("GET", f"/v1/experiments/{experiment_id}")
        served = {a["name"]: a for a in result["results"]["arms"]}
        recs_equal = all(served.get(arm, {}).get("recommendations") == c["recommendations"] for arm, c in expected.items())
        clicks_equal = all(served.get(arm, {}).get("clicks") == c["clicks"] for arm, c in expected.items())
        now = time.monotonic()
        if recs_equal and clicks_equal:
            return result, now - began
        if recs_equal:
            clicks_grace = clicks_grace or now + 10.0
            if now > clicks_grace:
                return result, now - began
        if now > deadline:
            return result, now - began
        time.sleep(0.25)


def accounting(result: dict, shoppers: Shoppers) -> dict:
    """Per arm: the service's counts beside the simulator's, and whether each pair is equal."""
    served = {a["name"]: a for a in result["results"]["arms"]}
    out = {}
    for arm in sorted(set(served) | set(shoppers.tally)):
        mine = shoppers.tally[arm].to_dict() if arm in shoppers.tally else Tally().to_dict()
        theirs = served.get(arm, {})
        row = {}
        for name in ("customers", "recommendations", "clicks", "conversions", "revenue"):
            row[name] = {"service": theirs.get(name), "simulator": mine[name], "equal": theirs.get(name) == mine[name]}
        out[arm] = row
    return out


def all_equal(check: dict, names: tuple[str, ...] = ("recommendations", "clicks")) -> bool:
    return all(row[name]["equal"] for row in check.values() for name in names)


def look(result: dict, visits: int, seconds: float) -> dict:
    comparisons = result["results"]["comparisons"]
    first = comparisons[0] if comparisons else {}
    return {"visits": visits, "p_value": first.get("p_value"), "lift": first.get("lift"),
            "lift_interval": first.get("lift_interval"), "significant": any(c["significant"] for c in comparisons),
            "verdict": result["results"]["verdict"], "counted_after_s": round(seconds, 2),
            "arms": {a["name"]: {"recommendations": a["recommendations"], "clicks": a["clicks"], "ctr": a["ctr"]}
                     for a in result["results"]["arms"]}}


def start_experiment(client: TailorClient, name: str, arms: list[dict]) -> dict:
    for running in client.call("GET", "/v1/experiments")["experiments"]:
        if running["status"] == "running":
            client.call("POST", f"/v1/experiments/{running['experiment_id']}/stop")
    return client.call("POST", "/v1/experiments", {"name": name, "arms": arms}, expect=(201,))


def copy_hidden(hidden: dict[str, set[str]], users: list[str]) -> dict[str, set[str]]:
    return {u: set(hidden[u]) for u in users}


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval(pair) -> str:
    return "-" if not pair else f"[{pair[0]:.4f}, {pair[1]:.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TAILOR_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--click-model", default="protocol", choices=("protocol", "graded"),
                        help="protocol (O1): every listed hidden preference is clicked, nothing else; graded: "
                             f"{CLICK_PREFERRED}/log2(rank+1) for a preference, {CLICK_NOISE}/log2(rank+1) for any other item")
    parser.add_argument("--visits", type=int, default=None,
                        help="A/B visit rounds, one visit per shopper each (default: 1 for protocol, 3 for graded)")
    parser.add_argument("--aa-runs", type=int, default=20)
    parser.add_argument("--aa-users", type=int, default=400,
                        help="shoppers per A/A run: a seeded sample (0 = every shopper)")
    parser.add_argument("--aa-strategy", default="personalized", choices=("personalized", "popular", "trending"),
                        help="both A/A arms' strategy (protocol O1: personalized)")
    parser.add_argument("--aa-look-every", type=int, default=200, help="A/A: send events and look after this many visits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    graded = args.click_model == "graded"
    if args.visits is None:
        args.visits = 3 if graded else 1
    folder = Path(args.data) / "ml-100k"
    if not (folder / "u.data").exists():
        raise SystemExit(f"{folder} not found: pass --data")
    bench_began = time.monotonic()
    first_day = datetime.now(UTC).date().isoformat()
    get_ms: list[float] = []
    everyone: list[Shoppers] = []
    with tempfile.TemporaryDirectory() as tmp, LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        client, _, test, job, _ = train_t1(stack, folder, Path(tmp))
        version = job["results"]["recommender"]["version"]
        setup_s = time.monotonic() - bench_began
        print(f"setup (stack, upload, training {version}): {setup_s:.0f} s", flush=True)

        hidden: dict[str, set[str]] = defaultdict(set)
        for row in test:
            hidden[row["user_id"]].add(str(row["item_id"]))
        users = sorted(hidden, key=lambda u: (len(u), u))
        test_items = sum(len(v) for v in hidden.values())

        # ---- A/B ------------------------------------------------------------------------------
        ab_began = time.monotonic()
        experiment = start_experiment(client, "O1 A/B: popular vs personalized", [
            {"name": "control", "share": 0.5, "strategy": "popular"},
            {"name": "treatment", "share": 0.5, "strategy": "personalized"}])
        ab_id = experiment["experiment_id"]
        ab = Shoppers(client, ab_id, copy_hidden(hidden, users), args.seed, get_ms, graded)
        everyone.append(ab)
        rounds = []
        visit_s: list[float] = []
        for number in range(1, args.visits + 1):
            began = time.monotonic()
            for user in users:
                ab.visit(user)
            visits_s = time.monotonic() - began
            visit_s.append(visits_s / len(users))
            began_events = time.monotonic()
            pending = len(ab.pending)
            ab.flush()
            events_s = time.monotonic() - began_events
            result, waited = poll_until_counted(client, ab_id, ab, POLL_SECONDS)
            check = accounting(result, ab)
            rounds.append({"round": number, **look(result, number * len(users), waited),
                           "accounting_equal": all_equal(check), "distinct_events": pending,
                           "visit_seconds": round(visits_s, 1), "events_seconds": round(events_s, 1)})
            print(f"A/B round {number}: {len(users)} visits in {visits_s:.1f} s ({1000 * visits_s / len(users):.1f} ms "
                  f"per visit), {2 * pending} events in {events_s:.1f} s, counted after {waited:.1f} s; "
                  f"p={rounds[-1]['p_value']} lift={rounds[-1]['lift']} equal={rounds[-1]['accounting_equal']}",
                  flush=True)
        ab_result = result
        ab_check = check
        ab_s = time.monotonic() - ab_began
        ab_stale = ab.stale

        # ---- A/A ------------------------------------------------------------------------------
        pool = users if args.aa_users <= 0 or args.aa_users >= len(users) else sorted(
            random.Random(args.seed).sample(users, args.aa_users), key=lambda u: (len(u), u))
        # Each A/A run replays the same shoppers with their original hidden preferences and asks
        # with include_seen=true: serving folds every click in and excludes seen items, so without
        # it each run would list fewer of them (a first try: 562 clicks in run 1, 5 in run 7, none
        # from run 13 on, and nothing left to compare). The lists still move a little with the
        # folded-in history; only the assignment (a new experiment id) is meant to differ.
        aa_runs = []
        aa_began = time.monotonic()
        print(f"A/A: {args.aa_runs} runs of {len(pool)} visits, two {args.aa_strategy} arms", flush=True)
        for run in range(args.aa_runs):
            run_began = time.monotonic()
            experiment = start_experiment(client, f"O1 A/A run {run + 1}", [
                {"name": "a1", "share": 0.5, "strategy": args.aa_strategy},
                {"name": "a2", "share": 0.5, "strategy": args.aa_strategy}])
            aa_id = experiment["experiment_id"]
            shoppers = Shoppers(client, aa_id, copy_hidden(hidden, pool), args.seed + 1000 + run, get_ms, graded,
                                include_seen=True)
            everyone.append(shoppers)
            looks = []
            first_fresh_s = None
            for index, user in enumerate(pool, start=1):
                shoppers.visit(user)
                if first_fresh_s is None:
                    first_fresh_s = time.monotonic() - run_began
                if index % args.aa_look_every == 0 or index == len(pool):
                    shoppers.flush()
                    timeout = POLL_SECONDS if index == len(pool) else LOOK_POLL_SECONDS
                    result, waited = poll_until_counted(client, aa_id, shoppers, timeout)
                    looks.append(look(result, index, waited))
            check = accounting(result, shoppers)
            end = looks[-1]
            aa_runs.append({"run": run + 1, "experiment_id": aa_id, "significant_at_end": end["significant"],
                            "significant_at_any_look": any(x["significant"] for x in looks),
                            "p_value_end": end["p_value"], "min_p_value": min(
                                (x["p_value"] for x in looks if x["p_value"] is not None), default=None),
                            "lift_end": end["lift"], "accounting_equal": all_equal(check),
                            "counts": shoppers.counts(), "stale_answers": shoppers.stale,
                            "serving_picked_up_after_s": round(first_fresh_s or 0.0, 1),
                            "seconds": round(time.monotonic() - run_began, 1), "looks": looks})
            print(f"  A/A run {run + 1}: p end {end['p_value']}, min p {aa_runs[-1]['min_p_value']}, "
                  f"significant end/any {end['significant']}/{aa_runs[-1]['significant_at_any_look']}, "
                  f"equal {aa_runs[-1]['accounting_equal']}, stale answers {shoppers.stale} "
                  f"(experiment served after {first_fresh_s:.1f} s), {aa_runs[-1]['seconds']} s", flush=True)
        aa_s = time.monotonic() - aa_began
        if aa_runs:
            client.call("POST", f"/v1/experiments/{aa_runs[-1]['experiment_id']}/stop")
        else:
            client.call("POST", f"/v1/experiments/{ab_id}/stop")

        # Serving keeps a stopped experiment up to 30 s per container: what each one recorded after
        # the reading above (the stale answers of the next experiment's start).
        after_stop = {ab_id: sum(a["recommendations"] for a in client.call("GET", f"/v1/experiments/{ab_id}")[
            "results"]["arms"]) - sum(a["recommendations"] for a in ab_result["results"]["arms"])}
        for run in aa_runs:
            arms = client.call("GET", f"/v1/experiments/{run['experiment_id']}")["results"]["arms"]
            after_stop[run["experiment_id"]] = (sum(a["recommendations"] for a in arms)
                                                - sum(c["recommendations"] for c in run["counts"].values()))

        # ---- metrics --------------------------------------------------------------------------
        last_day = datetime.now(UTC).date().isoformat()
        span = f"from={first_day}&to={last_day}"
        by_strategy = client.call("GET", f"/v1/metrics/recommendations?{span}&by=strategy")
        by_arm = client.call("GET", f"/v1/metrics/recommendations?{span}&by=arm")

    answers = sum(s.answers for s in everyone)
    clicks_all = sum(s.distinct_clicks for s in everyone)
    metric_recs = sum(g["recommendations"] for g in by_strategy["groups"])
    metric_clicks = sum(g["clicks"] for g in by_strategy["groups"])
    arm_keys = {g["key"]: g for g in by_arm["groups"]}
    ab_arm_metrics = {arm: arm_keys.get(f"{ab_id}/{arm}", {}) for arm in ("control", "treatment")}
    total_s = time.monotonic() - bench_began
    n_aa = len(aa_runs)
    fp_end = sum(r["significant_at_end"] for r in aa_runs)
    fp_any = sum(r["significant_at_any_look"] for r in aa_runs)
    comparison = (ab_result["results"]["comparisons"] or [{}])[0]
    out = {
        "protocol": "O1: online A/B (popular vs personalized) and A/A experiments with simulated shoppers over HTTP "
                    "on the local stack (ml-100k, T1)",
        "click_model": {"name": args.click_model,
                        "preferred": f"{CLICK_PREFERRED}/log2(rank+1)" if graded else "1 (every one listed)",
                        "other": f"{CLICK_NOISE}/log2(rank+1)" if graded else "0",
                        "purchase_of_a_preferred_click": PURCHASE_PROBABILITY, "purchase_value": PURCHASE_VALUE,
                        "events": "every click and purchase sent twice, shuffled, batches of <= 500"},
        "model_version": version, "shoppers": len(users), "hidden_preferences": test_items, "seed": args.seed,
        "ab": {"experiment_id": ab_id, "visit_rounds": args.visits, "visits": args.visits * len(users),
               "arms": ab_result["results"]["arms"], "comparison": comparison,
               "test": ab_result["results"]["test"], "alpha": ab_result["results"]["alpha"],
               "verdict": ab_result["results"]["verdict"], "accounting": ab_check,
               "accounting_equal": all_equal(ab_check),
               "accounting_equal_with_conversions_and_revenue": all_equal(
                   ab_check, ("customers", "recommendations", "clicks", "conversions", "revenue")),
               "looks": rounds, "stale_answers": ab_stale, "events_sent": ab.events_sent,
               "metrics_by_arm": ab_arm_metrics},
        "aa": {"runs": n_aa, "strategy": args.aa_strategy, "shoppers_per_run": len(pool),
               "sample": "every shopper" if len(pool) == len(users) else f"seeded sample of {len(pool)} of {len(users)}",
               "look_every_visits": args.aa_look_every,
               "false_positive_rate_end": round(fp_end / n_aa, 4) if n_aa else None,
               "false_positive_rate_end_wilson95": [round(x, 4) for x in wilson(fp_end, n_aa)],
               "false_positive_rate_any_look": round(fp_any / n_aa, 4) if n_aa else None,
               "false_positive_rate_any_look_wilson95": [round(x, 4) for x in wilson(fp_any, n_aa)],
               "significant_at_end": fp_end, "significant_at_any_look": fp_any,
               "accounting_equal_runs": sum(r["accounting_equal"] for r in aa_runs), "run_results": aa_runs},
        "metrics": {"by_strategy": by_strategy, "by_arm_groups": len(by_arm["groups"]),
                    "answers_received": answers, "distinct_clicks_sent": clicks_all,
                    "recommendations_by_strategy_total": metric_recs, "clicks_by_strategy_total": metric_clicks,
                    "every_answer_recorded_once": metric_recs == answers,
                    "every_click_counted_once": metric_clicks == clicks_all,
                    "stale_answers": sum(x.stale for x in everyone),
                    "recorded_under_an_experiment_after_its_final_reading": after_stop,
                    "event_batches_resent_after_504": sum(x.resent for x in everyone)},
        "http_ms": {"get_recommendations_median": round(statistics.median(get_ms), 1),
                    "get_recommendations_p99": percentile(get_ms, 99), "get_requests": len(get_ms),
                    "post_events_batch_median": round(statistics.median(ab.post_ms), 1) if ab.post_ms else None},
        "seconds": {"setup": round(setup_s), "ab": round(ab_s), "aa": round(aa_s), "total": round(total_s),
                    "per_visit_ms_ab": round(1000 * statistics.mean(visit_s), 1) if visit_s else None,
                    "per_aa_run": round(aa_s / n_aa, 1) if n_aa else None},
    }
    save_results("experiments" if not graded else "experiments_graded", out, markdown(out))


def markdown(out: dict) -> str:
    ab, aa, m = out["ab"], out["aa"], out["metrics"]
    c = ab["comparison"]
    lines = [f"O1 on the local stack over HTTP: {out['shoppers']} simulated shoppers (ml-100k users with T1 test items, "
             f"{out['hidden_preferences']} hidden preferences), model {out['model_version']}. Click model: a hidden "
             f"preference at rank r is clicked with probability {out['click_model']['preferred']}, any other item "
             f"{out['click_model']['other']}; a clicked preference is found (no longer hidden) and bought "
             f"(value {out['click_model']['purchase_value']}) with probability "
             f"{out['click_model']['purchase_of_a_preferred_click']}. Every click and purchase is sent twice, shuffled.",
             "",
             f"### A/B: popular (control) vs personalized (treatment), {ab['visit_rounds']} visits per shopper "
             f"({ab['visits']} visits)", "",
             "| arm | strategy | customers | recommendations | clicks | CTR | CTR 95% interval | conversions | "
             "conversion rate | revenue |", "|---|---|---|---|---|---|---|---|---|---|"]
    for a in ab["arms"]:
        lines.append(f"| {a['name']} | {a['strategy']} | {a['customers']} | {a['recommendations']} | {a['clicks']} | "
                     f"{fmt(a['ctr'])} | {interval(a['ctr_interval'])} | {a['conversions']} | "
                     f"{fmt(a['conversion_rate'])} | {a['revenue']:.2f} |")
    lines += ["", "| comparison | lift | lift interval (always valid) | p-value | significant at "
              f"{ab['alpha']} |", "|---|---|---|---|---|",
              f"| {c.get('arm')} vs {c.get('control')} | {fmt(c.get('lift'))} | {interval(c.get('lift_interval'))} | "
              f"{fmt(c.get('p_value'), 6)} | {c.get('significant')} |", "",
              f"Verdict: \"{ab['verdict']}\". Test: {ab['test']}.", "",
              "Peeking (the experiment read after every round, once the service had counted it):", "",
              "| after round | visits | control CTR | treatment CTR | lift | p-value | significant | counted after (s) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in ab["looks"]:
        lines.append(f"| {r['round']} | {r['visits']} | {fmt(r['arms'].get('control', {}).get('ctr'))} | "
                     f"{fmt(r['arms'].get('treatment', {}).get('ctr'))} | {fmt(r['lift'])} | {fmt(r['p_value'], 6)} | "
                     f"{r['significant']} | {r['counted_after_s']} |")
    lines += ["", "### Exact accounting: the service's experiment results against the simulator's counts", "",
              "| experiment | arm | recommendations service / simulator | clicks service / simulator | "
              "conversions service / simulator | revenue service / simulator | equal |", "|---|---|---|---|---|---|---|"]
    for arm, row in ab["accounting"].items():
        equal = all(v["equal"] for v in row.values())
        lines.append(f"| A/B | {arm} | {row['recommendations']['service']} / {row['recommendations']['simulator']} | "
                     f"{row['clicks']['service']} / {row['clicks']['simulator']} | "
                     f"{row['conversions']['service']} / {row['conversions']['simulator']} | "
                     f"{row['revenue']['service']} / {row['revenue']['simulator']} | {'yes' if equal else 'no'} |")
    lines += [f"| A/A | all arms of {aa['runs']} runs | | | | | {aa['accounting_equal_runs']} of {aa['runs']} runs "
              "equal (recommendations and clicks) |",
              f"| metrics by strategy | every answer (stale ones included) | {m['recommendations_by_strategy_total']} / "
              f"{m['answers_received']} | {m['clicks_by_strategy_total']} / {m['distinct_clicks_sent']} | | | "
              f"{'yes' if m['every_answer_recorded_once'] and m['every_click_counted_once'] else 'no'} |", "",
              f"### A/A: {aa['runs']} runs, two {aa['strategy']} arms, {aa['sample']} (one visit each, "
              f"include_seen=true, original hidden preferences), events sent and the experiment read every "
              f"{aa['look_every_visits']} visits", "",
              "| significant (alpha 0.05) | runs | false positive rate | 95% Wilson interval |", "|---|---|---|---|",
              f"| at the end | {aa['significant_at_end']} of {aa['runs']} | {fmt(aa['false_positive_rate_end'], 3)} | "
              f"[{aa['false_positive_rate_end_wilson95'][0]:.3f}, {aa['false_positive_rate_end_wilson95'][1]:.3f}] |",
              f"| at any look | {aa['significant_at_any_look']} of {aa['runs']} | "
              f"{fmt(aa['false_positive_rate_any_look'], 3)} | [{aa['false_positive_rate_any_look_wilson95'][0]:.3f}, "
              f"{aa['false_positive_rate_any_look_wilson95'][1]:.3f}] |"]
    pvals = [r["p_value_end"] for r in aa["run_results"] if r["p_value_end"] is not None]
    smallest = [r["min_p_value"] for r in aa["run_results"] if r["min_p_value"] is not None]
    if pvals:
        lines.append(f"\nA/A p-values at the end: median {statistics.median(pvals):.3f}, smallest "
                     f"{min(pvals):.3f}; smallest at any look {min(smallest):.3f}.")
    clicks = [sum(arm["clicks"] for arm in r["counts"].values()) for r in aa["run_results"]]
    lines.append(f"Runs with too little data to compare (no verdict, counted as not significant): "
                 f"{len(aa['run_results']) - len(pvals)} of {len(aa['run_results'])}; clicks per run: median "
                 f"{statistics.median(clicks) if clicks else 0}, fewest {min(clicks) if clicks else 0}.")
    strategy_rows = ", ".join(f"{g['key']} {g['recommendations']} recommendations, CTR {fmt(g['ctr'])}"
                              for g in m["by_strategy"]["groups"])
    h, s = out["http_ms"], out["seconds"]
    stale = m["stale_answers"]
    late = sum(m["recorded_under_an_experiment_after_its_final_reading"].values())
    lines += ["", f"GET /v1/metrics/recommendations?by=strategy: {strategy_rows}; unattributed events "
              f"{m['by_strategy']['unattributed_events']}. The A/B arms by=arm: " + ", ".join(
                  f"{arm} {g.get('recommendations')} recommendations / {g.get('clicks')} clicks"
                  for arm, g in ab["metrics_by_arm"].items()) + ".",
              "", f"Serving reads the running experiment at most every 30 s per container: {stale} answers "
              "came before it had picked a new experiment up (not shown to the shopper, asked again; they are "
              "recorded under the previous experiment or none, and counted in the metrics line above); "
              f"{late} answers were recorded under an experiment after its final reading (it was stopped, "
              "serving still had it). Event batches sent again after a 504: "
              f"{m['event_batches_resent_after_504']}.",
              "", f"Over HTTP on the local stack: GET recommendations median {h['get_recommendations_median']} ms, "
              f"p99 {h['get_recommendations_p99']} ms ({h['get_requests']} requests); POST /v1/events batch of up to "
              f"{BATCH} median {h['post_events_batch_median']} ms. Time: setup {s['setup']} s, A/B {s['ab']} s "
              f"({s['per_visit_ms_ab']} ms per visit), A/A {s['aa']} s ({s['per_aa_run']} s per run), total {s['total']} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
