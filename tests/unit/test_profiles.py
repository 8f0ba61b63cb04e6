"""Customer profiles and segments (tailor.customers.profiles): exact activity numbers on a hand-made shop,
and segment behaviour on planted clusters."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor.customers.attributes import parse_price
from tailor.customers.clustering import SILHOUETTE_TOLERANCE, USERS_PER_SEGMENT, min_segment_size
from tailor.customers.describe import MIN_LIFT, NO_ACTIVITY_NAME
from tailor.customers.profiles import build_profiles

SHARED = str(Path(__file__).resolve().parents[2] / "shared")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def interactions_table(rows: list[tuple]) -> pa.Table:
    """rows: (user_id, item_id, ISO time, event_type, value) — typed as stored datasets are."""
    users, items, times, types, values = zip(*rows)
    return pa.table({
        "user_id": pa.array(users, pa.string()),
        "item_id": pa.array(items, pa.string()),
        "timestamp": pa.array([ms(t) for t in times], pa.timestamp("ms", tz="UTC")),
        "event_type": pa.array(types, pa.string()),
        "value": pa.array(values, pa.float64()),
        "_ingested_at": pa.array([0] * len(rows), pa.int64()),
    })


def items_table(categories: dict[str, str | None]) -> pa.Table:
    return pa.table({"item_id": list(categories), "title": [f"title {i}" for i in categories],
                     "description": [None] * len(categories), "categories": list(categories.values())})


def users_table(columns: dict[str, list]) -> pa.Table:
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}
                    | {"_ingested_at": pa.array([0] * len(columns["user_id"]), pa.int64())})


NOW = ms("2024-03-15T00:00:00")


@pytest.fixture(scope="module")
def small():
    interactions = interactions_table([
        ("u1", "i1", "2024-01-01T00:00:00", "rating", 4.0),
        ("u1", "i2", "2024-01-01T12:00:00", "rating", 2.0),
        ("u1", "i1", "2024-01-11T00:00:00", "view", None),
        ("u2", "i3", "2024-01-05T00:00:00", "purchase", 10.5),
        ("u2", "i3", "2024-03-05T00:00:00", "purchase", 4.5),
        ("u3", "i2", "2024-02-01T00:00:00", "view", None),
    ])
    items = items_table({"i1": "Action|Sci-Fi", "i2": "Drama", "i3": "Action"})
    users = users_table({"user_id": ["u1", "u4"], "age": ["30", "40"], "gender": ["F", None]})
    return build_profiles(interactions, items, users, now_ms=NOW)


def test_activity_statistics_are_exact(small):
    a = small.profiles["u1"]["activity"]
    assert a["first_seen"] == "2024-01-01T00:00:00Z" and a["last_seen"] == "2024-01-11T00:00:00Z"
    assert a["events"] == 3 and a["by_event_type"] == {"rating": 2, "view": 1}
    assert a["distinct_items"] == 2 and a["active_days"] == 2
    assert a["recency_days"] == 64.0  # 11 Jan → 15 Mar 2024 (a leap year)
    # a 10-day span counts as a month: 3 events in it
    assert a["frequency_per_month"] == 3.0
    u2 = small.profiles["u2"]["activity"]
    assert u2["recency_days"] == 10.0 and u2["active_days"] == 2 and u2["distinct_items"] == 1
    assert u2["frequency_per_month"] == 1.0  # 2 events over 60 days
    assert small.profiles["u3"]["activity"]["frequency_per_month"] == 1.0  # one event on one day


def test_ratings_and_monetary_values_are_kept_apart(small):
    u1, u2, u3 = (small.profiles[u]["activity"] for u in ("u1", "u2", "u3"))
    assert u1["rating_count"] == 2 and u1["rating_mean"] == 3.0 and "monetary" not in u1
    assert u2["monetary"] == {"value_count": 2, "value_total": 15.0, "value_mean": 7.5}
    assert "rating_count" not in u2
    assert "rating_count" not in u3 and "monetary" not in u3


def test_users_only_and_interactions_only_users_are_profiled(small):
    assert sorted(small.profiles) == ["u1", "u2", "u3", "u4"]
    u4 = small.profiles["u4"]
    assert u4["attributes"] == {"age": "40"}  # the null gender is left out, user_id is not an attribute
    assert u4["activity"]["events"] == 0 and u4["activity"]["first_seen"] is None
    assert u4["top_categories"] == []
    assert u4["segment"]["name"] == NO_ACTIVITY_NAME
    assert small.profiles["u2"]["attributes"] == {}
    assert small.profiles["u1"]["attributes"] == {"age": "30", "gender": "F"}
    inactive = [s for s in small.segments if s["kind"] == "no_activity"]
    assert len(inactive) == 1 and inactive[0]["sample_members"] == ["u4"] and inactive[0]["description"]
    assert all(small.profiles[u]["segment"]["name"] != NO_ACTIVITY_NAME for u in ("u1", "u2", "u3"))


def test_top_categories_share_and_affinity(small):
    # global weights: Action 3, Sci-Fi 1, Drama 2 (i1 splits each event between Action and Sci-Fi)
    top = small.profiles["u1"]["top_categories"]
    assert [c["category"] for c in top] == ["Action", "Sci-Fi", "Drama"]  # equal shares: catalog order
    assert [c["share"] for c in top] == [0.3333] * 3
    # affinity = ((w + 5 g) / (W + 5)) / g
    assert [c["affinity"] for c in top] == [0.875, 1.375, 1.0]
    assert small.profiles["u2"]["top_categories"] == [{"category": "Action", "share": 1.0, "affinity": 1.2857}]


def test_sizes_sum_and_every_profile_points_at_a_segment(small):
    assert sum(s["size"] for s in small.segments) == len(small.profiles)
    ids = {s["segment_id"]: s for s in small.segments}
    for profile in small.profiles.values():
        assert profile["segment"]["name"] == ids[profile["segment"]["segment_id"]]["name"]


def test_output_is_json_without_nan(small):
    text = json.dumps({"profiles": small.profiles, "segments": small.segments, "criterion": small.criterion},
                      allow_nan=False)
    assert json.loads(text)["profiles"]["u1"]["activity"]["events"] == 3


# --------------------------------------------------------------------------- planted clusters

GROUPS = 4


def planted(seed: int = 1, per_group: int = 60, with_items: bool = True):
    """Four groups with their own two categories (90% of events), activity level and region."""
    rng = np.random.default_rng(seed)
    categories = [f"Cat{c}" for c in range(8)]
    item_category = {f"i{i}": categories[i % 8] for i in range(80)}
    items_by_category = {c: [i for i, cat in item_category.items() if cat == c] for c in categories}
    rows, truth, regions = [], {}, {}
    start = ms("2024-01-01T00:00:00")
    for g in range(GROUPS):
        for n in range(per_group):
            user = f"g{g}u{n}"
            truth[user] = g
            regions[user] = f"R{g}" if rng.random() < 0.8 else f"R{rng.integers(GROUPS)}"
            events = int(rng.integers(10, 20) * (1 + 2 * g))
            for _ in range(events):
                own = rng.random() < 0.9
                cat = categories[2 * g + rng.integers(2)] if own else categories[rng.integers(8)]
                item = items_by_category[cat][rng.integers(10)]
                when = start + int(rng.integers(0, 60 * 86_400_000))
                rows.append((user, item, when))
    users, items_col, times = zip(*rows)
    interactions = pa.table({"user_id": pa.array(users, pa.string()), "item_id": pa.array(items_col, pa.string()),
                             "timestamp": pa.array(times, pa.timestamp("ms", tz="UTC")),
                             "event_type": pa.array(["view"] * len(rows), pa.string()),
                             "value": pa.array([None] * len(rows), pa.float64())})
    items = items_table(item_category) if with_items else None
    users_t = users_table({"user_id": list(regions), "region": list(regions.values())})
    return interactions, items, users_t, truth, start + 61 * 86_400_000


def adjusted_rand(a: list, b: list) -> float:
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    index, rows, cols, total = comb(table).sum(), comb(table.sum(1)).sum(), comb(table.sum(0)).sum(), comb(len(a))
    expected = rows * cols / total
    return float((index - expected) / ((rows + cols) / 2 - expected))


@pytest.fixture(scope="module")
def planted_build():
    interactions, items, users, truth, now = planted()
    return build_profiles(interactions, items, users, now_ms=now, seed=0), truth


def test_clustering_recovers_planted_groups(planted_build):
    build, truth = planted_build
    assert build.criterion["chosen_k"] == GROUPS
    users = sorted(truth)
    found = [build.profiles[u]["segment"]["segment_id"] for u in users]
    assert adjusted_rand([truth[u] for u in users], found) > 0.9


def test_k_is_chosen_within_range_by_the_stated_criterion(planted_build):
    build, _ = planted_build
    c = build.criterion
    assert c["name"] == "silhouette" and c["definition"]
    tried = sorted(int(k) for k in c["values"])
    # 240 active customers: at most one segment per USERS_PER_SEGMENT of them
    assert tried == list(range(3, 240 // USERS_PER_SEGMENT + 1))
    assert 3 <= c["chosen_k"] <= 240 // USERS_PER_SEGMENT and c["size_rule"]
    # the stated rule: among large-enough k, the smallest scoring within the tolerance of the best
    eligible = {k: v for k, v in c["values"].items() if int(k) not in c["too_small"]}
    best = max(eligible.values())
    assert c["chosen_k"] == min(int(k) for k, v in eligible.items() if v >= best - SILHOUETTE_TOLERANCE)


def test_segments_are_ordered_by_size_and_sum_to_the_users(planted_build):
    build, truth = planted_build
    sizes = [s["size"] for s in build.segments]
    assert sum(sizes) == len(build.profiles) == len(truth)
    assert sizes == sorted(sizes, reverse=True)
    assert [s["segment_id"] for s in build.segments] == [f"s{i + 1}" for i in range(len(sizes))]
    for s in build.segments:
        assert 0 < len(s["sample_members"]) <= 20 and set(s["sample_members"]) <= set(truth)


def test_descriptions_name_a_taste_and_an_attribute_or_behaviour(planted_build):
    build, truth = planted_build
    for s in build.segments:
        stats = s["statistics"]
        taste = stats["distinguishing_categories"][0]["category"]
        assert taste in s["description"] and taste in s["name"]
        others = [stats["behaviour"]["label"]] + [h["label"] for h in stats["attribute_highlights"][:1]]
        assert any(o in s["description"] for o in others)
        # planted: each group's two categories and its region stand out
        group = truth[s["sample_members"][0]]
        assert taste in (f"Cat{2 * group}", f"Cat{2 * group + 1}")
        assert stats["attribute_highlights"][0]["label"] == f"region R{group}"
    names = [s["name"] for s in build.segments]
    assert len(set(names)) == len(names)
    # the heaviest group (most events per user) is called heavy; the lightest light
    by_group = {truth[s["sample_members"][0]]: s for s in build.segments}
    assert by_group[GROUPS - 1]["statistics"]["behaviour"]["label"] == "heavy users"
    assert by_group[0]["statistics"]["behaviour"]["label"] == "light users"


def test_same_seed_same_result_and_json(planted_build):
    build, _ = planted_build
    interactions, items, users, _, now = planted()
    again = build_profiles(interactions, items, users, now_ms=now, seed=0)
    assert again.segments == build.segments and again.profiles == build.profiles
    assert again.criterion == build.criterion
    json.dumps([build.profiles, build.segments, build.criterion], allow_nan=False)


def test_model_vectors_alone_separate_groups_without_a_catalog():
    interactions, _, _, truth, now = planted(seed=2)
    rng = np.random.default_rng(0)
    ids = np.array(sorted(truth))
    centres = rng.normal(size=(GROUPS, 16)) * 3
    vectors = centres[[truth[u] for u in ids]] + rng.normal(size=(len(ids), 16))
    vectors = np.hstack([vectors, np.ones((len(ids), 1))])  # a constant bias slot, as served models have
    # a third of the users are unknown to the model: they still get a segment
    known = rng.random(len(ids)) > 0.33
    build = build_profiles(interactions, None, None, ids[known], vectors[known], now_ms=now, seed=3)
    assert sum(s["size"] for s in build.segments) == len(truth)
    assert "embedding" in build.criterion["features"]
    users = [u for u, k in zip(ids, known) if k]
    found = [build.profiles[u]["segment"]["segment_id"] for u in users]
    assert adjusted_rand([truth[u] for u in users], found) > 0.8
    assert all(s["description"] for s in build.segments)


def test_tiny_inputs_do_not_break():
    one = interactions_table([("a", "x", "2024-01-01T00:00:00", "view", None)])
    build = build_profiles(one, None, None, now_ms=NOW)
    assert [s["size"] for s in build.segments] == [1] and build.segments[0]["description"]
    only_users = build_profiles(None, None, users_table({"user_id": ["a", "b"], "tier": ["gold", "silver"]}),
                                now_ms=NOW)
    assert [s["name"] for s in only_users.segments] == [NO_ACTIVITY_NAME]
    assert only_users.segments[0]["size"] == 2


BLOCKED_BUILD = """
import sys
class Block:  # as in the Lambda layer: none of these is installed
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('pandas', 'tensorflow', 'keras', 'sklearn', 'scipy'):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, %r)
import pyarrow as pa
from tailor.customers.profiles import build_profiles
table = pa.table({'user_id': ['a', 'b', 'c', 'd'], 'item_id': ['x', 'y', 'x', 'z'],
                  'timestamp': pa.array([0, 86400000, 2, 3], pa.timestamp('ms', tz='UTC'))})
build = build_profiles(table, pa.table({'item_id': ['x', 'y'], 'categories': ['A|B', 'C']}), None, now_ms=10**9)
print(sum(s['size'] for s in build.segments))
"""


def test_builds_without_pandas_scipy_or_tensorflow():
    out = subprocess.run([sys.executable, "-c", BLOCKED_BUILD % SHARED], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_numeric_attributes_are_banded_and_identifiers_ignored():
    interactions, items, _, truth, now = planted(seed=4)
    rng = np.random.default_rng(5)
    ids = sorted(truth)
    ages = [str(int(20 + 12 * truth[u] + rng.integers(0, 4))) for u in ids]  # group g: 20+12g .. 23+12g
    zips = [f"{rng.integers(10000, 99999)}" for _ in ids]
    build = build_profiles(interactions, items, users_table({"user_id": ids, "age": ages, "zip": zips}),
                           now_ms=now, seed=0)
    for s in build.segments:
        highlights = s["statistics"]["attribute_highlights"]
        assert all(h["attribute"] != "zip" for h in highlights)
        group = truth[s["sample_members"][0]]
        age = next(h for h in highlights if h["attribute"] == "age")
        low, high = map(int, age["value"].split("–"))
        assert 20 + 12 * group <= low <= high <= 23 + 12 * group  # the band is the group's ages
        assert age["kind"] == "numeric" and age["label"] in s["description"]
    assert build.profiles[ids[0]]["attributes"]["zip"] == zips[0]  # still kept on the profile


# --------------------------------------------------------------------------- real-looking small shops

LIFT_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)× the base share")


def shop_tables(folder) -> dict:
    """A generated shop's CSV files as stored datasets (through the upload parser)."""
    from tailor.datasets.files import read_file
    from tailor.datasets.schemas import SCHEMAS
    from tailor.datasets.store import to_table

    out = {}
    for name in ("interactions", "items", "users", "reviews"):
        _, validated = read_file((folder / f"{name}.csv").read_bytes(), f"{name}.csv", SCHEMAS[name], max_bytes=10**8)
        out[name] = to_table(validated, 0)
    return out


def real_shop_build(tmp_path, **options):
    from infra import realshop

    realshop.generate(tmp_path, seed=0, **options)
    t = shop_tables(tmp_path)
    return build_profiles(t["interactions"], t["items"], t["users"], now_ms=ms("2025-01-01T00:00:00"),
                          reviews=t["reviews"])


def assert_segments_hold(build):
    names = [s["name"] for s in build.segments]
    assert len(set(names)) == len(names), names
    clusters = [s for s in build.segments if s["kind"] == "cluster"]
    active = sum(s["size"] for s in clusters)
    assert len(clusters) <= max(1, active // USERS_PER_SEGMENT)
    if len(clusters) > 1:
        assert min(s["size"] for s in clusters) >= min_segment_size(active)
    for s in build.segments:
        assert "without category data" not in s["name"] and "(s" not in s["name"]
        for lift in LIFT_IN_TEXT.findall(s["description"]):
            assert float(lift) >= MIN_LIFT, s["description"]
        stats = s["statistics"]
        assert all(t["lift"] >= MIN_LIFT for t in stats["distinguishing_categories"])
        assert all(h["lift"] >= MIN_LIFT for h in stats["attribute_highlights"])
        for h in stats["attribute_highlights"]:
            if h.get("phrase") and h["phrase"].capitalize() in s["name"].capitalize():
                assert h["lift"] >= MIN_LIFT


def test_a_shop_without_categories_gets_few_distinct_segments_described_by_what_it_has(tmp_path):
    build = real_shop_build(tmp_path, domain="shoes", categories=False, labels=True)
    assert_segments_hold(build)
    assert 2 <= len(build.segments) <= 10
    assert "ratings_prices_sentiment" in build.criterion["features"]
    names = " | ".join(s["name"] for s in build.segments)
    assert "Critical raters" in names or "Unhappy reviewers" in names  # the few unhappy customers stand out
    kinds = {h["attribute"] for s in build.segments for h in s["statistics"]["attribute_highlights"]}
    assert {"mean rating", "item price"} <= kinds
    for s in build.segments:
        assert "items have no categories" in s["description"] and "lean" not in s["description"]
        assert not s["statistics"]["distinguishing_categories"]


def test_a_category_held_by_everyone_is_never_named(tmp_path):
    # every listing of the shoe shop is "Shoes|<sub>": Shoes leans nowhere
    build = real_shop_build(tmp_path, domain="shoes")
    assert_segments_hold(build)
    for s in build.segments:
        assert "Shoes" not in s["name"] and "Shoes (" not in s["description"]
    # one category only: no segment claims any taste, each says so
    interactions, _, users, _, now = planted(seed=3)
    items = items_table({f"i{i}": "Shoes" for i in range(80)})
    only = build_profiles(interactions, items, users, now_ms=now)
    assert_segments_hold(only)
    for s in only.segments:
        assert "follow the base's" in s["description"] and "fans" not in s["name"]


def test_a_small_shop_gets_few_segments(tmp_path):
    build = real_shop_build(tmp_path, domain="kitchen", customers=300)
    assert_segments_hold(build)
    assert build.criterion["k_range"][1] <= 300 // USERS_PER_SEGMENT
    assert len(build.segments) <= 300 // USERS_PER_SEGMENT


def test_too_few_customers_make_one_segment():
    interactions, items, users, _, now = planted(seed=5, per_group=15)  # 60 active customers
    build = build_profiles(interactions, items, users, now_ms=now)
    assert build.criterion["chosen_k"] == 1 and "too few" in build.criterion["note"]
    assert [s["kind"] for s in build.segments] == ["cluster"]


@given(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_prices_parse_in_common_spellings(value):
    x = float(value)
    english = f"{x:,.2f}"
    german = english.replace(",", "_").replace(".", ",").replace("_", ".")
    for text in (f"{x:.2f}", f"${english}", f"{german} €", f"EUR {x:.2f}"):
        assert parse_price(text) == pytest.approx(x), text
    assert math.isnan(parse_price("free")) and math.isnan(parse_price(None))
