"""The shop data generator: schemas, determinism, and the structure a recommender can learn."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from infra import datagen
from infra.datagen import PRESETS, generate

CJK = re.compile(r"[\u4e00-\u9fff]")
EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2B50]")


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("tiny"), **PRESETS["tiny"])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Big enough for the statistical checks, still well under a second."""
    paths = generate(tmp_path_factory.mktemp("small"), **PRESETS["small"], seed=1)
    return {name: _read(path) for name, path in paths.items()}


def _with_top_category(interactions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    top = items.set_index("item_id")["categories"].str.split("|").str[0]
    return interactions.assign(top=interactions["item_id"].map(top))


# --- files and schemas ---------------------------------------------------------------------

def test_writes_the_four_datasets_with_tailor_headers(tiny):
    assert set(tiny) == {"interactions", "items", "users", "reviews"}
    headers = {name: _read(path).columns.tolist() for name, path in tiny.items()}
    assert headers["interactions"] == ["user_id", "item_id", "timestamp", "event_type", "value"]
    assert headers["items"][:4] == ["item_id", "title", "description", "categories"]
    assert headers["users"] == ["user_id", "age", "gender", "country", "signup_date", "loyalty_tier"]
    assert headers["reviews"] == ["review_id", "user_id", "item_id", "rating", "label",
                                  "timestamp", "language", "text"]


def test_row_counts_match_the_request(tiny):
    assert len(_read(tiny["interactions"])) == PRESETS["tiny"]["interactions"]
    assert len(_read(tiny["items"])) == PRESETS["tiny"]["items"]
    assert len(_read(tiny["users"])) == PRESETS["tiny"]["users"]


def test_ids_are_formatted_strings_and_interactions_reference_known_rows(tiny):
    interactions, items, users = (_read(tiny[name]) for name in ("interactions", "items", "users"))
    assert users["user_id"].str.fullmatch(r"u\d{5}").all()
    assert items["item_id"].str.fullmatch(r"i\d{4}").all()
    assert users["user_id"].is_unique and items["item_id"].is_unique
    assert set(interactions["user_id"]) <= set(users["user_id"])
    assert set(interactions["item_id"]) <= set(items["item_id"])


def test_items_are_shop_products_with_top_level_and_sub_style(small):
    items = small["items"]
    assert items["categories"].str.fullmatch(r"[A-Z][^|]+\|[^|]+").all()
    assert items["categories"].str.split("|").str[0].nunique() >= 6
    assert items["title"].is_unique
    assert (items["description"].str.len() > 30).all()
    assert (items["price"].astype(float) > 0).all()


def test_users_have_attributes(small):
    users = small["users"]
    assert set(users["age"]) <= {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    assert set(users["gender"]) <= {"F", "M", "X"}
    assert users["country"].nunique() >= 5
    assert set(users["loyalty_tier"]) == {"bronze", "silver", "gold", "platinum"}
    assert pd.to_datetime(users["signup_date"], format="%Y-%m-%d").notna().all()


def test_timestamps_are_iso_utc_in_2024_and_after_signup(small):
    interactions, users = small["interactions"], small["users"]
    assert interactions["timestamp"].str.fullmatch(r"2024-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    when = pd.to_datetime(interactions["timestamp"], utc=True)
    signup = pd.to_datetime(interactions["user_id"].map(users.set_index("user_id")["signup_date"]), utc=True)
    assert (when >= signup).all()
    assert when.dt.month.nunique() == 12  # spread over the whole year
    assert when.is_monotonic_increasing  # the file is in time order


def test_event_values_follow_the_event_type(small):
    interactions, items = small["interactions"], small["items"]
    assert set(interactions["event_type"]) == {"view", "add_to_cart", "purchase", "rating"}
    by_type = dict(tuple(interactions.groupby("event_type")))
    assert (by_type["view"]["value"] == "").all()
    assert (by_type["add_to_cart"]["value"] == "").all()
    purchases = by_type["purchase"]
    price = purchases["item_id"].map(items.set_index("item_id")["price"])
    assert (purchases["value"] == price).all()
    assert set(by_type["rating"]["value"]) == {"1", "2", "3", "4", "5"}
    assert len(by_type["view"]) > len(by_type["add_to_cart"]) > len(by_type["purchase"])


def test_a_pair_is_viewed_before_it_is_bought_and_bought_before_it_is_rated(small):
    interactions = small["interactions"]
    first = interactions.pivot_table(index=["user_id", "item_id"], columns="event_type",
                                     values="timestamp", aggfunc="min")
    bought = first.dropna(subset=["purchase"])
    assert (bought["view"] <= bought["purchase"]).all()
    rated = first.dropna(subset=["rating"])
    assert (rated["purchase"] <= rated["rating"]).all()
    ratings = interactions[interactions["event_type"] == "rating"]
    assert not ratings.duplicated(["user_id", "item_id"]).any()  # one rating per pair


# --- determinism ---------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes(tiny, tmp_path):
    again = generate(tmp_path / "again", **PRESETS["tiny"])
    for name, path in tiny.items():
        assert again[name].read_bytes() == path.read_bytes(), name


def test_another_seed_gives_other_data(tiny, tmp_path):
    other = generate(tmp_path / "other", **PRESETS["tiny"], seed=1)
    assert other["interactions"].read_bytes() != tiny["interactions"].read_bytes()
    assert other["items"].read_bytes() != tiny["items"].read_bytes()


def test_more_users_leaves_the_catalog_unchanged(tiny, tmp_path):
    sizes = dict(PRESETS["tiny"], users=PRESETS["tiny"]["users"] * 2)
    bigger = generate(tmp_path / "bigger", **sizes)
    assert bigger["items"].read_bytes() == tiny["items"].read_bytes()


# --- structure a recommender can learn -------------------------------------------------------

def test_item_popularity_has_a_long_tail(small):
    counts = small["interactions"]["item_id"].value_counts()
    top_tenth = counts.iloc[: len(small["items"]) // 10].sum() / counts.sum()
    assert top_tenth > 0.35  # 0.10 if popularity were flat
    assert counts.iloc[0] > 10 * counts.median()


def test_users_keep_returning_to_their_preferred_category(small):
    """A user's favourite category in the first half of their history predicts the second
    half far better than the category's overall share (what popularity alone would predict)."""
    events = _with_top_category(small["interactions"], small["items"])
    events = events[events.groupby("user_id")["user_id"].transform("size") >= 10]
    position = events.groupby("user_id").cumcount()
    size = events.groupby("user_id")["user_id"].transform("size")
    early, late = events[position < size // 2], events[position >= size // 2]
    favourite = early.groupby("user_id")["top"].agg(lambda tops: tops.value_counts().index[0])
    late = late.assign(favourite=late["user_id"].map(favourite))
    share_in_favourite = (late["top"] == late["favourite"]).groupby(late["user_id"]).mean()
    overall_share = events["top"].value_counts(normalize=True)
    expected_by_popularity = late.groupby("user_id")["favourite"].first().map(overall_share)
    assert len(share_in_favourite) >= 100
    assert share_in_favourite.mean() > 2 * expected_by_popularity.mean()


def test_ratings_are_higher_in_the_users_preferred_category(small):
    events = _with_top_category(small["interactions"], small["items"])
    browsing = events[events["event_type"] != "rating"]
    favourite = browsing.groupby("user_id")["top"].agg(lambda tops: tops.value_counts().index[0])
    ratings = events[events["event_type"] == "rating"]
    stars = ratings["value"].astype(int)
    in_favourite = ratings["top"] == ratings["user_id"].map(favourite)
    assert in_favourite.sum() > 50 and (~in_favourite).sum() > 50
    assert stars[in_favourite].mean() > stars[~in_favourite].mean() + 0.2


# --- reviews -------------------------------------------------------------------------------

def test_review_labels_agree_with_ratings(small):
    reviews = small["reviews"]
    stars = reviews["rating"].astype(int)
    expected = stars.map(lambda s: "positive" if s >= 4 else "negative" if s <= 2 else "neutral")
    assert (reviews["label"] == expected).all()
    assert set(reviews["label"]) == {"positive", "negative", "neutral"}


def test_reviews_belong_to_rating_events(small):
    reviews, interactions = small["reviews"], small["interactions"]
    ratings = interactions[interactions["event_type"] == "rating"]
    rated = dict(zip(zip(ratings["user_id"], ratings["item_id"]), ratings["value"]))
    assert all(rated[(u, i)] == r for u, i, r in zip(reviews["user_id"], reviews["item_id"], reviews["rating"]))
    assert len(reviews) == len(ratings) // 2  # the default: half of the ratings


def test_reviews_are_mostly_english_with_some_chinese_and_emoji(small):
    reviews = small["reviews"]
    chinese = reviews[reviews["language"] == "zh"]
    english = reviews[reviews["language"] == "en"]
    assert 0.05 < len(chinese) / len(reviews) < 0.30
    assert chinese["text"].str.contains(CJK).all()
    assert not english["text"].str.contains(CJK).any()
    assert reviews["text"].str.contains(EMOJI).any()


def test_reviews_file_is_valid_utf8_with_real_chinese(tiny, small):
    text = tiny["reviews"].read_bytes().decode("utf-8")  # raises if not UTF-8
    assert text
    assert small["reviews"]["text"].str.contains("质量|物流|满意|失望|不错").any()


POSITIVE_WORDS = re.compile(r"excellent|really good|exceeded|very happy|premium|great|love|recommend|"
                            r"很好|不错|超出预期|满意|没得说|好评|推荐")
NEGATIVE_WORDS = re.compile(r"disappointing|poor|not happy|fell apart|worse|letdown|waste|refund|avoid|"
                            r"不推荐|很差|太差|失望|不符|太慢|态度差|坏了|不会再买", re.IGNORECASE)


def test_review_wording_follows_the_stars_but_not_trivially(small):
    reviews = small["reviews"]
    tone = (reviews["text"].str.count(POSITIVE_WORDS) - reviews["text"].str.count(NEGATIVE_WORDS))
    mean_tone = tone.groupby(reviews["rating"].astype(int)).mean()
    assert mean_tone[5] > mean_tone[3] > mean_tone[1]
    # mixed phrasing: some positive reviews carry a complaint and vice versa
    positive, negative = reviews["label"] == "positive", reviews["label"] == "negative"
    assert reviews.loc[positive, "text"].str.contains(r" but |, however |但是|不过|not great|could be better").any()
    assert reviews.loc[negative, "text"].str.contains(POSITIVE_WORDS).any()


def test_number_of_reviews_can_be_chosen(tmp_path):
    paths = generate(tmp_path, **PRESETS["tiny"], reviews=5)
    assert len(_read(paths["reviews"])) == 5
    with pytest.raises(ValueError, match="rating events"):
        generate(tmp_path / "too_many", **PRESETS["tiny"], reviews=10_000)


@pytest.mark.parametrize("sizes", [{"users": 0}, {"items": -1}, {"interactions": 2.5}])
def test_bad_sizes_are_refused(tmp_path, sizes):
    with pytest.raises(ValueError, match="positive integer"):
        generate(tmp_path, **dict(PRESETS["tiny"], **sizes))


def test_presets(tmp_path):
    assert set(PRESETS) == {"tiny", "small", "demo", "large"}
    assert PRESETS["large"]["interactions"] == 1_000_000
    assert PRESETS["tiny"]["interactions"] < PRESETS["demo"]["interactions"] < PRESETS["large"]["interactions"]


def test_command_line_writes_and_reports(tmp_path, capsys):
    assert datagen.main(["--preset", "tiny", "--out", str(tmp_path), "--seed", "3", "--users", "20"]) == 0
    printed = capsys.readouterr().out
    for name in ("interactions", "items", "users", "reviews"):
        assert f"{name}.csv" in printed
    assert "1,500 rows" in printed
    assert _read(tmp_path / "users.csv").shape[0] == 20
