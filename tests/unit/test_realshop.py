"""The small-real-shop generator (infra.realshop): the shape of issue #11's real shops, files
the upload path accepts whole, determinism, and its options."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict

import pytest

from infra import realshop
from tailor.datasets.files import read_file
from tailor.datasets.schemas import SCHEMAS

CJK = re.compile(r"[\u4e00-\u9fff]")


def _rows(path, encoding="utf-8"):
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return realshop.generate_pair(tmp_path_factory.mktemp("pair"))


def test_two_small_shops_of_different_domains(pair):
    shoes, kitchen = pair
    assert (shoes.name, kitchen.name) == ("shoes", "kitchen")
    for folder in pair:
        facts = realshop.describe(folder)
        assert 300 <= facts["customers"] <= 1000
        assert 30 <= facts["listings"] <= 85
        assert facts["products"] < facts["listings"]  # variants
    shoe_items = {r["item_id"] for r in _rows(shoes / "items.csv")}
    kitchen_items = {r["item_id"] for r in _rows(kitchen / "items.csv")}
    assert not shoe_items & kitchen_items
    shoe_texts = {r["text"] for r in _rows(shoes / "reviews.csv")}
    kitchen_texts = {r["text"] for r in _rows(kitchen / "reviews.csv")}
    assert len(kitchen_texts - shoe_texts) > 0.5 * len(kitchen_texts)  # domain words differ


def test_variants_share_customers_and_copied_texts(pair):
    shoes = pair[0]
    items = {r["item_id"]: r for r in _rows(shoes / "items.csv")}
    reviews = _rows(shoes / "reviews.csv")
    assert len({r["text"] for r in reviews}) < 0.2 * len(reviews)  # few distinct texts
    # most customers reviewed several listings of the dominant product, with one text
    family_of_user = defaultdict(lambda: defaultdict(set))
    for r in reviews:
        family_of_user[r["user_id"]][items[r["item_id"]]["group_id"]].add((r["item_id"], r["text"]))
    dominant = Counter(items[r["item_id"]]["group_id"] for r in reviews).most_common(1)[0][0]
    several = [u for u, fam in family_of_user.items() if len(fam.get(dominant, ())) >= 5]
    assert len(several) > 0.6 * len(family_of_user)
    for user in several[:20]:
        assert len({text for _, text in family_of_user[user][dominant]}) == 1
    # interactions are the reviews' stars, row for row
    interactions = _rows(shoes / "interactions.csv")
    assert len(interactions) == len(reviews)
    assert {r["event_type"] for r in interactions} == {"rating"}


def test_ratings_skew_positive_chinese_unlabelled(pair):
    for folder in pair:
        reviews = _rows(folder / "reviews.csv")
        stars = Counter(r["rating"] for r in reviews)
        assert stars["5"] > 0.5 * len(reviews)
        negative = stars["1"] + stars["2"]
        assert 0 < negative < 0.1 * len(reviews)
        chinese = [r for r in reviews if CJK.search(r["text"])]
        assert 0 < len(chinese) < 0.15 * len(reviews)
        assert all(r["label"] == "" for r in reviews)  # real shops rarely have labels


def test_files_are_accepted_whole_by_the_upload_parser(pair):
    for folder in pair:
        for name in ("interactions", "items", "reviews", "users"):
            data = (folder / f"{name}.csv").read_bytes()
            _, validated = read_file(data, f"{name}.csv", SCHEMAS[name], max_bytes=10**8)
            assert validated.rejects == [], (folder.name, name, validated.rejects[:3])
            assert validated.rows == len(_rows(folder / f"{name}.csv"))
        _, items = read_file((folder / "items.csv").read_bytes(), "items.csv", SCHEMAS["items"], max_bytes=10**8)
        assert "price" in items.columns and "group_id" in items.columns


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = realshop.generate(tmp_path / "a", domain="kitchen", seed=4, customers=300)
    b = realshop.generate(tmp_path / "b", domain="kitchen", seed=4, customers=300)
    c = realshop.generate(tmp_path / "c", domain="kitchen", seed=5, customers=300)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes()
    assert a["reviews"].read_bytes() != c["reviews"].read_bytes()


def test_options_switch_columns_off_and_latin1_encodes(tmp_path):
    paths = realshop.generate(tmp_path, domain="shoes", seed=2, customers=300, group_id=False,
                              categories=False, price=False, encoding="latin-1", labels=True)
    raw = paths["items"].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really Latin-1: "Fjällwalk" is one byte 0xE4
    items = _rows(paths["items"], "latin-1")
    assert not {"group_id", "categories", "price"} & set(items[0])
    assert any("ä" in r["title"] for r in items)
    reviews = _rows(paths["reviews"], "latin-1")
    assert not any(CJK.search(r["text"]) for r in reviews)  # Latin-1 cannot hold them
    assert {r["label"] for r in reviews} <= {"positive", "negative", "neutral"}
    # the upload parser reads the Latin-1 file with a warning and keeps the accented rows
    _, validated = read_file(raw, "items.csv", SCHEMAS["items"], max_bytes=10**8)
    assert validated.rows == len(items) and validated.warnings
    assert any("Fjällwalk" in t for t in validated.columns["title"])


def test_bad_arguments_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="domain must be one of"):
        realshop.generate(tmp_path, domain="toys")
    with pytest.raises(ValueError, match="encoding must be one of"):
        realshop.generate(tmp_path, encoding="utf-16")
    with pytest.raises(ValueError, match="customers must be a positive integer"):
        realshop.generate(tmp_path, customers=0)
