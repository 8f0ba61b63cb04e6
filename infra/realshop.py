"""Seeded generator of *small real-looking shops*: the data that made Tailor stumble in issue #11.

Unlike ``infra.datagen`` (a big, clean synthetic catalog with a rich funnel), a shop here looks
like public review data of a small web shop:

- a few hundred to ~1,000 customers and 30-85 listings, where a listing is one *variant* of a
  product (size or colour): several listings share a product, an optional ``group_id`` column
  names the product family;
- a review is written once and then *copied onto the product's variants* (same customer, same
  text, same stars, same time), so the same customers review several variants and the files
  hold few distinct texts; one product is bought by most customers (``dominant_share``);
- star ratings skewed positive (few 1-2 star reviews), no sentiment labels by default;
- some reviews in Chinese (never labelled), a few accented Latin-1 characters in titles and
  texts; optional: no ``categories`` column, no ``price`` column (a metadata column),
  Latin-1/cp1252 encoded CSVs (Chinese reviews are then left out: Latin-1 cannot hold them);
- interactions are the reviews' star ratings (``event_type=rating``, ``value`` = stars).

Each shop is a folder of the files the upload API takes: ``interactions.csv``, ``items.csv``,
``reviews.csv`` and ``users.csv`` (``user_id,country,signup_date``). Two domains, ``shoes`` and
``kitchen``, with different products, words and sizes, so a "train on one shop, score the other"
check is possible. Same arguments, same bytes.

    python -m infra.realshop --out /tmp/shops                    # both shops: /tmp/shops/{shoes,kitchen}
    python -m infra.realshop --out /tmp/s --domain shoes --seed 3 --customers 600 \\
        [--no-group-id] [--no-categories] [--no-price] [--encoding latin-1] [--labels]

From Python: ``generate(out_dir, domain="shoes", seed=0, ...) -> {dataset: path}`` and
``generate_pair(out_dir) -> [shoes_dir, kitchen_dir]``.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ENCODINGS = ("utf-8", "latin-1", "cp1252")
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "event_type", "value"]
REVIEW_COLUMNS = ["review_id", "user_id", "item_id", "rating", "label", "timestamp", "text"]
USER_COLUMNS = ["user_id", "country", "signup_date"]
START = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400


@dataclass(frozen=True)
class Product:
    name: str
    sub: str  # sub-category, e.g. "Running"
    style: str  # the taste group of customers it appeals to most
    price: float
    variants: int  # how many listings (sizes/colours) it has
    quality: float = 0.0  # shifts its stars


@dataclass(frozen=True)
class Domain:
    name: str
    top: str  # the top-level category of every listing
    products: tuple[Product, ...]
    styles: tuple[str, ...]
    colours: tuple[str, ...]
    sizes: tuple[str, ...]
    customers: int
    dominant_share: float  # share of customers who review the first product
    copy_share: float  # share of reviews copied onto every variant of the product
    nouns: tuple[str, ...]  # what a customer calls the product in a review
    aspects: tuple[str, ...]
    zh_aspects: tuple[str, ...]
    brand: str
    extra_reviews: float = 0.8  # mean number of further products a customer reviews


SHOES = Domain(
    name="shoes", top="Shoes",
    products=(
        Product("CloudStride Running Shoe", "Running", "runner", 89.0, 8, 0.3),
        Product("Trail Blazer GTX", "Running", "outdoor", 129.0, 5),
        Product("Everyday Canvas Sneaker", "Sneakers", "casual", 49.0, 6, 0.1),
        Product("Retro Court Sneaker", "Sneakers", "casual", 69.0, 4),
        Product("Classic Leather Loafer", "Formal", "formal", 110.0, 4, -0.1),
        Product("Derby Oxford Shoe", "Formal", "formal", 125.0, 3),
        Product("Alpine Hiking Boot", "Boots", "outdoor", 149.0, 4, 0.2),
        Product("Chelsea Suède Boot", "Boots", "formal", 135.0, 3, -0.3),
        Product("Summer Slide Sandal", "Sandals", "casual", 29.0, 4, -0.2),
        Product("Recovery Flip-Flop", "Sandals", "runner", 25.0, 3),
        Product("Merino Running Socks (3-pack)", "Accessories", "runner", 19.0, 2, 0.2),
        Product("Waterproof Shoe Spray", "Accessories", "outdoor", 12.0, 1, -0.4),
    ),
    styles=("runner", "casual", "formal", "outdoor"),
    colours=("Black", "White", "Navy", "Grey", "Olive", "Bordeaux"),
    sizes=("EU 38", "EU 39", "EU 40", "EU 41", "EU 42", "EU 43", "EU 44", "EU 45"),
    customers=420, dominant_share=0.85, copy_share=0.9,
    nouns=("shoes", "pair", "shoe"),
    aspects=("the fit", "the sole", "the cushioning", "the sizing", "the material", "the grip",
             "the colour", "the stitching"),
    zh_aspects=("鞋子", "尺码", "鞋底", "做工", "颜色", "穿着感"),
    brand="Fjällwalk", extra_reviews=0.5,
)

KITCHEN = Domain(
    name="kitchen", top="Kitchen",
    products=(
        Product("Cast Iron Skillet 26 cm", "Cookware", "cook", 39.0, 2, 0.3),
        Product("Enamelled Dutch Oven", "Cookware", "cook", 79.0, 3, 0.2),
        Product("Non-Stick Crêpe Pan", "Cookware", "baker", 29.0, 2, -0.2),
        Product("Stainless Sauté Pan", "Cookware", "cook", 55.0, 2),
        Product("Chef's Knife 20 cm", "Knives", "cook", 65.0, 1, 0.3),
        Product("Santoku Knife", "Knives", "cook", 49.0, 2),
        Product("Bread Knife", "Knives", "baker", 29.0, 1),
        Product("Knife Sharpener", "Knives", "cook", 19.0, 1, -0.4),
        Product("Pâtisserie Mixing Bowl Set", "Bakeware", "baker", 34.0, 3, 0.1),
        Product("Loaf Tin", "Bakeware", "baker", 14.0, 2),
        Product("Springform Cake Tin", "Bakeware", "baker", 18.0, 3, -0.1),
        Product("Silicone Baking Mat", "Bakeware", "baker", 12.0, 2, 0.2),
        Product("Pour-Over Coffee Kettle", "Coffee & Tea", "coffee", 45.0, 2, 0.2),
        Product("Burr Coffee Grinder", "Coffee & Tea", "coffee", 89.0, 1, -0.1),
        Product("French Press 1 L", "Coffee & Tea", "coffee", 29.0, 3),
        Product("Glass Teapot", "Coffee & Tea", "coffee", 24.0, 2, -0.3),
        Product("Milk Frother", "Coffee & Tea", "coffee", 22.0, 2, -0.5),
        Product("Wooden Spoon Set", "Utensils", "cook", 15.0, 2, 0.1),
        Product("Silicone Spatula Set", "Utensils", "baker", 13.0, 3),
        Product("Digital Kitchen Scale", "Utensils", "baker", 21.0, 2, 0.1),
        Product("Olive Wood Cutting Board", "Utensils", "cook", 35.0, 3, 0.2),
        Product("Garlic Press", "Utensils", "cook", 11.0, 1, -0.6),
        Product("Herb Scissors", "Utensils", "cook", 9.0, 1, -0.2),
        Product("Oven Gloves", "Utensils", "baker", 14.0, 3),
        Product("Linen Tea Towels (2-pack)", "Textiles", "cook", 16.0, 4, 0.1),
        Product("Apron", "Textiles", "baker", 19.0, 4),
    ),
    styles=("cook", "baker", "coffee"),
    colours=("Black", "Red", "Cream", "Sage", "Charcoal", "Blue"),
    sizes=("S", "M", "L", "XL"),
    customers=900, dominant_share=0.3, copy_share=0.6,
    nouns=("pan", "item", "product", "set"),
    aspects=("the quality", "the handle", "the finish", "the size", "the weight", "the coating",
             "the price", "the packaging"),
    zh_aspects=("质量", "手柄", "做工", "尺寸", "重量", "涂层"),
    brand="Maison Crémeux",
)

DOMAINS = {d.name: d for d in (SHOES, KITCHEN)}

COUNTRIES = ("US", "GB", "DE", "FR", "CN", "CA", "ES")
COUNTRY_WEIGHTS = (0.35, 0.2, 0.12, 0.1, 0.08, 0.1, 0.05)
STARS = np.array([1, 2, 3, 4, 5])

# Review words. Generic texts are written by many customers word for word ("Great!"), the
# rest are composed of clauses whose tone follows the stars.
GENERIC = {
    5: ("Great!", "Love them!", "Perfect.", "Excellent product.", "Five stars", "Very happy.",
        "Exactly as described.", "Très bien, merci."),
    4: ("Good.", "Nice, does the job.", "Pretty good overall.", "Happy with it."),
    3: ("OK.", "It's fine.", "Average.", "Nothing special."),
    2: ("Not great.", "Disappointed.", "Expected better."),
    1: ("Terrible.", "Waste of money.", "Returned it.", "Awful quality."),
}
CLAUSES = {
    "positive": ("{a} is excellent", "really happy with {a}", "{a} is perfect", "love {a}",
                 "{a} is great for the price", "{a} feels premium", "{a} exceeded my expectations"),
    "mild": ("{a} is good", "{a} is fine", "{a} is decent", "no complaints about {a}"),
    "neutral": ("{a} is okay", "{a} is average", "{a} is about what I expected"),
    "negative": ("{a} is poor", "{a} fell apart after a week", "{a} is much worse than described",
                 "very disappointed with {a}", "{a} is cheap and flimsy", "{a} was a letdown"),
}
OPENERS = {
    "positive": ("Great {n}!", "Really pleased with these {n}.", "Would buy again.",
                 "Best {n} I have owned."),
    "negative": ("Do not buy these {n}.", "Very disappointed.", "Sent them back.", "Waste of money."),
    "neutral": ("Mixed feelings.", "They're okay.", "Does the job, just about."),
}
CLOSERS = {
    "positive": ("Highly recommend!", "Will order again.", "Perfect gift.", "Great value."),
    "negative": ("Would not recommend.", "Asked for a refund.", "Avoid."),
    "neutral": ("Fine for the money.", "Might buy again on sale."),
}
ZH = {
    5: ("{a}很好，非常满意", "质量很好，会回购的", "{a}没得说，推荐购买", "物流很快，{a}很棒"),
    4: ("{a}不错", "还不错，挺满意的", "{a}挺好的，物流也快"),
    3: ("{a}一般", "还行吧，中规中矩", "一般般，凑合能用"),
    2: ("{a}不太好，有点失望", "{a}跟描述不符"),
    1: ("{a}很差，太失望了", "质量太差了，不推荐", "用了两天就坏了，差评"),
}


@dataclass
class _Shop:
    items: list[dict] = field(default_factory=list)
    reviews: list[dict] = field(default_factory=list)
    interactions: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listings(domain: Domain, words: random.Random, group_id: bool, categories: bool,
              price: bool) -> tuple[list[dict], list[list[str]]]:
    rows, of_product = [], []
    serial = 0
    for p_index, product in enumerate(domain.products):
        colours = words.sample(domain.colours, min(len(domain.colours), max(1, (product.variants + 1) // 2)))
        sizes = words.sample(domain.sizes, min(len(domain.sizes), max(1, -(-product.variants // len(colours)))))
        combos = [(c, s) for c in colours for s in sizes][:product.variants]
        ids = []
        for colour, size in combos:
            serial += 1
            item_id = f"{domain.name[0]}{serial:03d}"
            ids.append(item_id)
            variant = f"{colour}, {size}" if product.variants > 1 else colour
            row = {"item_id": item_id, "title": f"{domain.brand} {product.name} ({variant})",
                   "description": f"{product.name} by {domain.brand}. Colour {colour}, size {size}."}
            if categories:
                row["categories"] = f"{domain.top}|{product.sub}"
            if group_id:
                row["group_id"] = f"{domain.name}-p{p_index + 1:02d}"
            if price:
                # variants of one product cost about the same; larger sizes a little more
                row["price"] = f"{product.price + (domain.sizes.index(size) % 3) * 2.0 * (product.price > 30):.2f}"
            row["brand"] = domain.brand
            row["colour"] = colour
            row["size"] = size
            rows.append(row)
        of_product.append(ids)
    return rows, of_product


def _stars(rng: np.random.Generator, quality: float, bias: float) -> int:
    # Skewed positive: about 70% five stars, about 5% one or two stars.
    logits = np.array([-1.5, -2.0, -1.0, 0.6, 1.8]) + (quality + bias) * np.array([-1.5, -1.0, -0.3, 0.4, 1.0])
    p = np.exp(logits - logits.max())
    return int(rng.choice(STARS, p=p / p.sum()))


def _text(words: random.Random, domain: Domain, stars: int, chinese: bool) -> str:
    if chinese:
        return words.choice(ZH[stars]).format(a=words.choice(domain.zh_aspects))
    if words.random() < 0.35:
        return words.choice(GENERIC[stars])
    tone = {5: "positive", 4: "positive", 3: "neutral", 2: "negative", 1: "negative"}[stars]
    aspects = iter(words.sample(domain.aspects, 3))

    def clause(kind: str) -> str:
        text = words.choice(CLAUSES[kind]).format(a=next(aspects))
        return text[0].upper() + text[1:] + "."

    parts = []
    if words.random() < 0.5:
        parts.append(words.choice(OPENERS[tone]).format(n=words.choice(domain.nouns)))
    if stars == 5:
        parts += [clause("positive")] + ([clause("positive")] if words.random() < 0.5 else [])
    elif stars == 4:
        parts += [clause("positive"), clause(words.choice(("mild", "neutral")))]
    elif stars == 3:
        parts += [clause(words.choice(("mild", "positive"))), clause("negative")]
    elif stars == 2:
        parts += [clause("negative"), clause(words.choice(("mild", "neutral")))]
    else:
        parts += [clause("negative")] + ([clause("negative")] if words.random() < 0.6 else [])
    if words.random() < 0.35:
        parts.append(words.choice(CLOSERS[tone]))
    return " ".join(parts)


def _build(domain: Domain, seed: int, customers: int, group_id: bool, categories: bool, price: bool,
           labels: bool, chinese_share: float) -> _Shop:
    rng = np.random.default_rng([seed, sum(map(ord, domain.name))])
    words = random.Random(int(rng.integers(2**63)))
    shop = _Shop()
    shop.items, of_product = _listings(domain, words, group_id, categories, price)
    n_products = len(domain.products)
    popularity = 1.0 / np.arange(1, n_products + 1) ** 0.7
    style_of = np.array([domain.styles.index(p.style) for p in domain.products])
    quality = np.array([p.quality for p in domain.products])

    review_no = 0
    for c in range(customers):
        user_id = f"{domain.name[0]}c{c + 1:04d}"
        taste = int(rng.integers(len(domain.styles)))
        bias = float(rng.normal(0.0, 0.4))
        writes_chinese = rng.random() < chinese_share
        country = "CN" if writes_chinese else str(rng.choice(COUNTRIES, p=COUNTRY_WEIGHTS))
        signup = int(rng.integers(START - 365 * DAY, END - 120 * DAY))
        shop.users.append({"user_id": user_id, "country": country, "signup_date": _iso(signup)[:10]})

        chosen: list[int] = []
        if rng.random() < domain.dominant_share:
            chosen.append(0)
        weight = popularity * np.where(style_of == taste, 6.0, 1.0)
        weight[chosen] = 0.0
        extra = int(rng.poisson(domain.extra_reviews)) + (0 if chosen else 1)
        for _ in range(min(extra, n_products - len(chosen))):
            pick = int(rng.choice(n_products, p=weight / weight.sum()))
            chosen.append(pick)
            weight[pick] = 0.0
        moment = max(signup, START) + int(rng.integers(0, 200 * DAY))
        for product in chosen:
            moment = min(moment + int(rng.integers(DAY, 120 * DAY)), END - DAY)
            stars = _stars(rng, float(quality[product]), bias)
            text = _text(words, domain, stars, writes_chinese)
            variants = of_product[product]
            listed = variants if rng.random() < domain.copy_share else [variants[int(rng.integers(len(variants)))]]
            for item_id in listed:  # the same review, copied onto the product's variants
                review_no += 1
                label = ""
                if labels and not writes_chinese:
                    label = "positive" if stars >= 4 else "negative" if stars <= 2 else "neutral"
                shop.reviews.append({"review_id": f"{domain.name[0]}r{review_no:05d}", "user_id": user_id,
                                     "item_id": item_id, "rating": str(stars), "label": label,
                                     "timestamp": _iso(moment), "text": text})
                shop.interactions.append({"user_id": user_id, "item_id": item_id, "timestamp": _iso(moment),
                                          "event_type": "rating", "value": str(stars)})
    return shop


def _write(path: Path, rows: list[dict], columns: list[str], encoding: str) -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def generate(out_dir: str | Path, *, domain: str = "shoes", seed: int = 0, customers: int | None = None,
             group_id: bool = True, categories: bool = True, price: bool = True, labels: bool = False,
             chinese_share: float = 0.06, encoding: str = "utf-8") -> dict[str, Path]:
    """Write interactions.csv, items.csv, reviews.csv and users.csv of one shop into out_dir.

    domain: "shoes" (one product bought by most customers, 8 variants, every listing in
    category Shoes) or "kitchen" (more products, fewer variants). customers: default 420 (shoes)
    or 900 (kitchen). group_id/categories/price: write that items column. labels: fill the
    reviews' label column from the stars (English reviews only; default: empty, as in most real
    shops). chinese_share: share of customers who write in Chinese (never labelled). encoding:
    utf-8, latin-1 or cp1252; with the latter two, Chinese reviews (and their interactions) are
    left out since the encoding cannot hold them. Returns the path of each file by dataset name.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {domain!r}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    spec = DOMAINS[domain]
    customers = spec.customers if customers is None else customers
    if not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a positive integer, got {customers!r}")
    if not 0.0 <= chinese_share <= 1.0:
        raise ValueError(f"chinese_share must lie in [0, 1], got {chinese_share!r}")
    shop = _build(spec, seed, customers, group_id, categories, price, labels, chinese_share)
    if encoding != "utf-8":
        def fits(row: dict) -> bool:
            try:
                "".join(row.values()).encode(encoding)
            except UnicodeEncodeError:
                return False
            return True
        kept = [r for r in shop.reviews if fits(r)]
        dropped = {(r["user_id"], r["item_id"], r["timestamp"]) for r in shop.reviews if not fits(r)}
        shop.reviews = kept
        shop.interactions = [r for r in shop.interactions
                             if (r["user_id"], r["item_id"], r["timestamp"]) not in dropped]
    item_columns = list(shop.items[0])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "interactions": _write(out / "interactions.csv", shop.interactions, INTERACTION_COLUMNS, encoding),
        "items": _write(out / "items.csv", shop.items, item_columns, encoding),
        "reviews": _write(out / "reviews.csv", shop.reviews, REVIEW_COLUMNS, encoding),
        "users": _write(out / "users.csv", shop.users, USER_COLUMNS, encoding),
    }


def generate_pair(out_dir: str | Path, *, seed: int = 0, **options) -> list[Path]:
    """Two shops for train-on-one, score-the-other checks: out_dir/shoes and out_dir/kitchen
    (seeds seed and seed + 1). options go to generate()."""
    folders = []
    for offset, domain in enumerate(("shoes", "kitchen")):
        folder = Path(out_dir) / domain
        generate(folder, domain=domain, seed=seed + offset, **options)
        folders.append(folder)
    return folders


def describe(folder: Path, encoding: str = "utf-8") -> dict:
    """What a shop folder holds: the figures the issue quotes for real shops."""
    def rows(name: str) -> list[dict]:
        with open(folder / f"{name}.csv", encoding=encoding, newline="") as handle:
            return list(csv.DictReader(handle))
    items, reviews = rows("items"), rows("reviews")
    stars = [float(r["rating"]) for r in reviews]
    return {"customers": len({r["user_id"] for r in reviews}), "listings": len(items),
            "products": len({r.get("group_id") or r["item_id"] for r in items}) if "group_id" in items[0] else None,
            "reviews": len(reviews), "distinct_texts": len({r["text"] for r in reviews}),
            "negative_reviews": sum(s <= 2 for s in stars), "five_star_share": round(stars.count(5.0) / len(stars), 3),
            "chinese_reviews": sum(any("\u4e00" <= ch <= "\u9fff" for ch in r["text"]) for r in reviews)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.realshop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--domain", choices=sorted(DOMAINS) + ["both"], default="both",
                        help="one shop, or both (OUT/shoes and OUT/kitchen; the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--no-group-id", dest="group_id", action="store_false")
    parser.add_argument("--no-categories", dest="categories", action="store_false")
    parser.add_argument("--no-price", dest="price", action="store_false")
    parser.add_argument("--labels", action="store_true", help="fill the label column of English reviews")
    parser.add_argument("--chinese-share", type=float, default=0.06)
    parser.add_argument("--encoding", choices=ENCODINGS, default="utf-8")
    args = parser.parse_args(argv)
    options = dict(customers=args.customers, group_id=args.group_id, categories=args.categories,
                   price=args.price, labels=args.labels, chinese_share=args.chinese_share, encoding=args.encoding)
    try:
        if args.domain == "both":
            folders = generate_pair(args.out, seed=args.seed, **options)
        else:
            generate(args.out, domain=args.domain, seed=args.seed, **options)
            folders = [args.out]
    except ValueError as error:
        parser.error(str(error))
    for folder in folders:
        print(f"{folder}: {describe(folder, args.encoding)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
