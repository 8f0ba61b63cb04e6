"""Seeded generator of realistic shop data in Tailor's dataset schemas.

The shop sells products in a few top-level categories, each with sub-styles
(``Books|Science Fiction``, ``Outdoor|Camping``...). Every user has latent tastes:
a Dirichlet preference over top-level categories (shifted by age band and gender),
and preferences for each sub-style, brand and price tier. An item is chosen with
probability proportional to ``popularity x exp(affinity)``, where popularity is
Zipf-like, so the data has a long tail *and* a personal signal that a popularity
model cannot capture. Each chosen item runs through a funnel (view -> add_to_cart
-> purchase -> rating) whose conversion rates and star ratings rise with affinity.
Some ratings come with a written review (English, ~15% Chinese) whose wording agrees
with the stars, with mixed phrasing so sentiment is not trivially separable.

Everything is drawn from ``numpy.random.Generator`` (or a ``random.Random`` seeded
from it), so the same arguments always produce the same bytes.

    python -m infra.datagen --preset demo --out /tmp/shop [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

PRESETS: dict[str, dict[str, int]] = {
    # unit tests: small enough to generate in milliseconds
    "tiny": {"users": 50, "items": 40, "interactions": 1_500},
    "small": {"users": 300, "items": 150, "interactions": 10_000},
    # the demo shop: a couple of seconds of work end to end
    "demo": {"users": 1_000, "items": 400, "interactions": 40_000},
    # the ingest benchmark's load
    "large": {"users": 25_000, "items": 6_000, "interactions": 1_000_000},
}

EVENT_TYPES = ("view", "add_to_cart", "purchase", "rating")
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "event_type", "value"]
ITEM_COLUMNS = ["item_id", "title", "description", "categories", "price", "brand"]
USER_COLUMNS = ["user_id", "age", "gender", "country", "signup_date", "loyalty_tier"]
REVIEW_COLUMNS = ["review_id", "user_id", "item_id", "rating", "label", "timestamp", "language", "text"]


def _epoch(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


DAY = 86_400
ACTIVITY_START = _epoch(2024, 1, 1)  # interactions fall inside calendar year 2024
ACTIVITY_END = _epoch(2025, 1, 1)
SIGNUP_START = _epoch(2019, 1, 1)
SIGNUP_END = _epoch(2024, 12, 1)

# ---------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """One sub-style of the catalog and the words its products are made of."""

    top: str
    sub: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    features: tuple[str, ...]
    price: tuple[float, float]
    book_kind: str = ""  # set for books, e.g. "A mystery novel"

    @property
    def is_book(self) -> bool:
        return bool(self.book_kind)


# Adjectives and features are chosen so that each fits every noun of its style.
STYLES: tuple[Style, ...] = (
    # Books -----------------------------------------------------------------
    Style("Books", "Science Fiction",
          ("Orbit", "Signal", "Colony", "Horizon", "Machine", "Starfall", "Archive"),
          ("Silent", "Last", "Hollow", "Distant", "Broken", "Infinite", "Red"),
          ("A first-contact story told across three generations",
           "A heist aboard a generation ship",
           "Hard science with a human heart",
           "The first book of an award-winning trilogy"),
          (9, 28), book_kind="A science fiction novel"),
    Style("Books", "Mystery",
          ("Alibi", "Lighthouse", "Ledger", "Witness", "Harbour", "Key"),
          ("Quiet", "Crooked", "Midnight", "Cold", "Missing", "Seventh"),
          ("A detective with nothing left to lose",
           "A locked-room puzzle on a snowbound island",
           "Twists until the very last page",
           "A small town with too many secrets"),
          (8, 24), book_kind="A mystery novel"),
    Style("Books", "Cookbooks",
          ("Kitchen", "Bowls", "Bakes", "Suppers", "Noodles", "Salads"),
          ("Weeknight", "Simple", "Slow", "Green", "One-Pan", "Sunday"),
          ("Over 100 recipes with step-by-step photos",
           "Meals on the table in thirty minutes",
           "Seasonal cooking from a much-loved restaurant",
           "Vegetarian and vegan options throughout"),
          (15, 40), book_kind="A cookbook"),
    Style("Books", "History",
          ("Empire", "River", "Republic", "Century", "Revolution", "Crown"),
          ("Forgotten", "Long", "Iron", "Golden", "Unfinished", "Lost"),
          ("A sweeping narrative history",
           "Drawn from newly opened archives",
           "Maps and illustrations throughout",
           "A prize-winning historian's new account"),
          (12, 35), book_kind="A history book"),
    Style("Books", "Children's",
          ("Dragon", "Owl", "Balloon", "Forest", "Rocket", "Bear"),
          ("Sleepy", "Brave", "Little", "Curious", "Noisy", "Lost"),
          ("A bedtime story for ages 3 to 6",
           "Bright illustrations on every page",
           "Sturdy board pages for little hands",
           "A gentle story about making friends"),
          (6, 18), book_kind="A picture book"),
    # Electronics -----------------------------------------------------------
    Style("Electronics", "Headphones",
          ("Wireless Earbuds", "Over-Ear Headphones", "Sport Earphones", "On-Ear Headphones"),
          ("Noise-Cancelling", "Bluetooth", "Compact", "Bass-Boost", "Foldable"),
          ("Up to 30 hours of battery life", "Active noise cancellation",
           "Multipoint Bluetooth pairing", "Sweat-resistant design"),
          (29, 349)),
    Style("Electronics", "Cameras",
          ("Mirrorless Camera", "Action Camera", "Compact Camera", "Bridge Camera"),
          ("4K", "Weather-Sealed", "Pocket", "Vlogging", "Travel"),
          ("Fast hybrid autofocus", "Optical image stabilisation",
           "Records 4K video at 30 fps", "Flip-out touchscreen"),
          (79, 1_499)),
    Style("Electronics", "Smart Home",
          ("Smart Plug", "Video Doorbell", "Smart Speaker", "Thermostat", "Smart Bulb"),
          ("Wi-Fi", "Voice-Controlled", "Energy-Saving", "Compact", "Matter-Ready"),
          ("Works with all major voice assistants", "Set schedules from the app",
           "Installs in minutes without tools", "Sends alerts to your phone"),
          (15, 249)),
    Style("Electronics", "Computer Accessories",
          ("Mechanical Keyboard", "Wireless Mouse", "USB-C Hub", "Webcam"),
          ("Aluminium", "Travel", "Low-Profile", "Pro", "Slim"),
          ("Plug and play on Windows, macOS and Linux", "Two-year warranty",
           "Slim enough for a laptop bag", "Connects over USB-C"),
          (19, 189)),
    # Outdoor ---------------------------------------------------------------
    Style("Outdoor", "Camping",
          ("Tent", "Sleeping Bag", "Camp Stove", "Lantern", "Hammock"),
          ("Ultralight", "Compact", "Backpacking", "Expedition", "Family"),
          ("Packs down small for backpacking", "Weighs under a kilo",
           "Comes with a stuff sack", "Tested in the Scottish Highlands"),
          (19, 499)),
    Style("Outdoor", "Hiking",
          ("Daypack", "Trekking Poles", "Hiking Boots", "Rain Shell", "Water Bottle"),
          ("Lightweight", "Trail", "Alpine", "All-Weather", "Fastpack"),
          ("Built for long days on rough trails", "Lightweight without losing durability",
           "Tested by mountain guides", "Covered by a lifetime repair programme"),
          (19, 260)),
    Style("Outdoor", "Cycling",
          ("Bike Light", "Helmet", "Saddle Bag", "Mini Pump", "Cycling Jersey"),
          ("Commuter", "Aero", "Reflective", "Gravel", "Road"),
          ("Designed for year-round commuting", "High-visibility reflective details",
           "Tested on cobbles and gravel", "Two-year warranty"),
          (15, 220)),
    Style("Outdoor", "Fishing",
          ("Spinning Rod", "Tackle Box", "Fly Reel", "Landing Net"),
          ("Travel", "Classic", "Freshwater", "Saltwater", "Pro"),
          ("Corrosion-resistant for salt water", "Packs down for travel",
           "Built for freshwater and saltwater", "Lifetime warranty"),
          (19, 280)),
    # Home ------------------------------------------------------------------
    Style("Home", "Kitchen",
          ("Chef's Knife", "Dutch Oven", "Cast Iron Skillet", "Pour-Over Kettle", "Cutting Board"),
          ("Professional", "Heritage", "Everyday", "Classic", "Artisan"),
          ("Built to last a lifetime", "Designed with professional chefs",
           "Easy to clean", "Comes with a ten-year guarantee"),
          (19, 320)),
    Style("Home", "Bedding",
          ("Duvet Cover", "Linen Sheet Set", "Memory Foam Pillow", "Weighted Blanket", "Quilt"),
          ("Organic", "Stonewashed", "Cooling", "Hypoallergenic", "Luxury"),
          ("Gets softer with every use", "Breathable for warm sleepers",
           "OEKO-TEX certified", "Available in six colours"),
          (25, 240)),
    Style("Home", "Decor",
          ("Ceramic Vase", "Wall Print", "Scented Candle", "Throw Cushion", "Wall Mirror"),
          ("Handmade", "Minimalist", "Scandinavian", "Vintage", "Botanical"),
          ("Handmade by independent makers", "Each piece is unique",
           "Ships gift-wrapped", "Designed in Copenhagen"),
          (12, 180)),
    Style("Home", "Lighting",
          ("Desk Lamp", "Floor Lamp", "String Lights", "Pendant Light"),
          ("Dimmable", "Rattan", "Industrial", "Warm-White", "Scandi"),
          ("Dimmable warm-white LED", "Energy-efficient bulb included",
           "Two-metre fabric cable", "Easy to set up"),
          (19, 260)),
    # Fashion ---------------------------------------------------------------
    Style("Fashion", "Sneakers",
          ("Sneakers", "Trainers", "High-Tops", "Slip-Ons"),
          ("Classic", "Retro", "Canvas", "Leather", "Chunky"),
          ("Cushioned insole for all-day comfort", "Vulcanised rubber sole",
           "Available in half sizes", "Made with recycled materials"),
          (39, 180)),
    Style("Fashion", "Outerwear",
          ("Rain Jacket", "Puffer Jacket", "Wool Coat", "Denim Jacket"),
          ("Packable", "Recycled", "Oversized", "Tailored", "Insulated"),
          ("Two inside pockets", "Cut for easy layering",
           "Made with recycled materials", "Designed for city winters"),
          (49, 350)),
    Style("Fashion", "Dresses",
          ("Wrap Dress", "Midi Dress", "Shirt Dress", "Slip Dress"),
          ("Linen", "Floral", "Satin", "Pleated", "Summer"),
          ("Relaxed fit with a tie waist", "Lined and fully washable",
           "Cut from breathable fabric", "Hidden side pockets"),
          (35, 160)),
    Style("Fashion", "Bags",
          ("Tote Bag", "Backpack", "Crossbody Bag", "Weekender"),
          ("Canvas", "Leather", "Water-Resistant", "Roll-Top", "Everyday"),
          ("Fits a 13-inch laptop", "Lifetime warranty",
           "Water-resistant fabric", "Plenty of inside pockets"),
          (29, 260)),
    # Beauty ----------------------------------------------------------------
    Style("Beauty", "Skincare",
          ("Face Serum", "Moisturiser", "Sunscreen SPF 50", "Cleansing Balm", "Eye Cream"),
          ("Hydrating", "Vitamin C", "Fragrance-Free", "Brightening", "Gentle"),
          ("Dermatologist tested", "Suitable for sensitive skin",
           "With hyaluronic acid and niacinamide", "Cruelty-free and vegan"),
          (9, 75)),
    Style("Beauty", "Fragrance",
          ("Eau de Parfum", "Eau de Toilette", "Body Mist", "Solid Perfume"),
          ("Citrus", "Woody", "Amber", "Fresh", "Floral"),
          ("Notes of bergamot, cedar and vanilla", "Long-lasting wear",
           "Refillable container", "Blended in Grasse"),
          (18, 140)),
    Style("Beauty", "Makeup",
          ("Lipstick", "Mascara", "Foundation", "Eyeshadow Palette", "Concealer"),
          ("Matte", "Long-Wear", "Volumising", "Dewy", "Waterproof"),
          ("Long-wearing formula", "Enriched with vitamin E",
           "Cruelty-free", "Dermatologist tested"),
          (8, 55)),
    # Toys & Games ----------------------------------------------------------
    Style("Toys & Games", "Board Games",
          ("Strategy Board Game", "Party Game", "Co-op Adventure Game", "Card Game"),
          ("Family", "Epic", "Quick-Play", "Deluxe", "Two-Player"),
          ("For 2 to 6 players, ages 10 and up", "Games last about 45 minutes",
           "Beautifully illustrated", "Easy to learn, hard to master"),
          (15, 90)),
    Style("Toys & Games", "Puzzles",
          ("1000-Piece Puzzle", "3D Puzzle", "Wooden Puzzle", "Puzzle Box"),
          ("Panoramic", "Challenging", "Botanical", "Vintage Map", "Mini"),
          ("Snug-fitting pieces", "Made from recycled board",
           "Great for a rainy afternoon", "Includes a picture guide"),
          (12, 60)),
    Style("Toys & Games", "Building Sets",
          ("Building Set", "Robot Kit", "Marble Run", "Magnetic Tiles"),
          ("Creative", "Starter", "Deluxe", "STEM", "Junior"),
          ("Over 300 pieces", "Encourages open-ended play",
           "For ages 6 and up", "Compatible with our other sets"),
          (19, 150)),
    # Sports ----------------------------------------------------------------
    Style("Sports", "Yoga",
          ("Yoga Mat", "Yoga Blocks", "Meditation Cushion", "Yoga Strap"),
          ("Non-Slip", "Cork", "Eco", "Travel", "Studio"),
          ("Made from sustainable materials", "Non-toxic and latex-free",
           "Easy to clean", "Designed with yoga teachers"),
          (12, 120)),
    Style("Sports", "Running",
          ("Running Shoes", "Running Vest", "GPS Watch", "Running Belt"),
          ("Lightweight", "Trail", "Race", "Reflective", "Marathon"),
          ("Built for long runs", "Reflective details for dark mornings",
           "Lightweight and breathable", "Tested by marathon runners"),
          (19, 399)),
    Style("Sports", "Fitness",
          ("Adjustable Dumbbells", "Resistance Bands", "Kettlebell", "Jump Rope", "Foam Roller"),
          ("Home-Gym", "Heavy-Duty", "Compact", "Pro", "Speed"),
          ("Built for home workouts", "Compact enough for small flats",
           "Comes with a workout guide", "Two-year warranty"),
          (10, 349)),
)

TOP_CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(style.top for style in STYLES))

BRANDS = ("Northwind", "Alder & Co", "Summit", "Lumen", "Bramble", "Kestrel", "Oak & Iron",
          "Nimbus", "Marlow", "Tidewater", "Juniper", "Atlas", "Fjell", "Copperleaf")
PUBLISHERS = ("Harbor Press", "Lantern Books", "Quill & Ink", "Blue Door", "Fieldstone")
AUTHOR_FIRST = ("Mara", "Jonah", "Priya", "Elena", "Tomas", "Aiko", "Samuel", "Noor", "Felix",
                "Ines", "Wen", "Oliver", "Amara", "Lucas")
AUTHOR_LAST = ("Lindqvist", "Okafor", "Reyes", "Hartley", "Nakamura", "Brennan", "Castillo",
               "Whitlock", "Zhou", "Moreau", "Adeyemi", "Kowalski")

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS = (0.16, 0.27, 0.22, 0.16, 0.11, 0.08)
GENDERS = ("F", "M", "X")
GENDER_WEIGHTS = (0.49, 0.47, 0.04)
COUNTRIES = ("US", "GB", "DE", "FR", "CN", "CA", "AU", "JP", "IN", "BR", "ES", "NL")
COUNTRY_WEIGHTS = (0.27, 0.12, 0.10, 0.08, 0.10, 0.06, 0.05, 0.05, 0.06, 0.05, 0.03, 0.03)
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
LOYALTY_SHARES = (0.50, 0.30, 0.15, 0.05)

# Which top-level categories each age band leans towards (added to a flat Dirichlet prior),
# so that customer attributes say something about taste, as they do in real shops.
AGE_LEANINGS: dict[str, tuple[str, ...]] = {
    "18-24": ("Electronics", "Fashion", "Toys & Games", "Sports"),
    "25-34": ("Electronics", "Outdoor", "Sports", "Fashion"),
    "35-44": ("Home", "Toys & Games", "Outdoor"),
    "45-54": ("Home", "Books", "Outdoor"),
    "55-64": ("Books", "Home"),
    "65+": ("Books", "Home"),
}

# Review vocabularies. "{a}" is a product aspect, "{noun}" the product's noun.
EN_ASPECTS: dict[str, tuple[str, ...]] = {
    "Books": ("the story", "the writing", "the characters", "the print quality", "the ending"),
    "Electronics": ("the battery life", "the sound", "the build quality", "the setup", "the connection"),
    "Outdoor": ("the material", "the weight", "the stitching", "the durability"),
    "Home": ("the finish", "the quality", "the size", "the colour"),
    "Fashion": ("the fit", "the fabric", "the colour", "the sizing"),
    "Beauty": ("the scent", "the texture", "the packaging"),
    "Toys & Games": ("the rules", "the pieces", "the replay value"),
    "Sports": ("the grip", "the comfort", "the quality"),
}
EN_SERVICE_ASPECTS = ("delivery", "the packaging", "customer service", "the price")
EN_PHRASES: dict[str, tuple[str, ...]] = {
    "positive": ("{a} is excellent", "{a} is really good", "{a} exceeded my expectations",
                 "very happy with {a}", "{a} feels premium", "{a} is great for the price",
                 "love {a}"),
    "negative": ("{a} is disappointing", "{a} is poor", "not happy with {a}",
                 "{a} fell apart quickly", "{a} is much worse than described", "{a} was a letdown"),
    "neutral": ("{a} is okay", "{a} is fine, nothing special", "{a} is about what I expected",
                "{a} is average"),
    # Negated phrases carry the opposite polarity of their loudest word, so a bag of
    # words alone cannot separate the classes perfectly.
    "negated_positive": ("{a} is not bad at all", "I can't complain about {a}",
                         "no problems with {a}"),
    "negated_negative": ("{a} is not great", "{a} is not worth it", "{a} could be better"),
}
EN_OPENERS = {
    "positive": ("Great purchase!", "Would buy again.", "Really pleased with this {noun}.", "Five stars."),
    "negative": ("Very disappointed.", "Returned it.", "Do not buy this {noun}.", "Waste of money."),
    "neutral": ("It's okay.", "Mixed feelings about this {noun}.", "Does the job."),
}
EN_CLOSERS = {
    "positive": ("Highly recommend!", "Will order again.", "Perfect gift."),
    "negative": ("Would not recommend.", "Asking for a refund.", "Avoid."),
    "neutral": ("Might buy again if it's on sale.", "Fine for the money.", "Three stars."),
}

ZH_ASPECTS: dict[str, tuple[str, ...]] = {
    "Books": ("故事", "文笔", "印刷质量", "纸张"),
    "Electronics": ("音质", "续航", "做工", "连接"),
    "Outdoor": ("材质", "重量", "做工", "耐用性"),
    "Home": ("质感", "尺寸", "颜色", "做工"),
    "Fashion": ("尺码", "面料", "颜色", "版型"),
    "Beauty": ("味道", "质地", "包装"),
    "Toys & Games": ("玩法", "零件", "说明书"),
    "Sports": ("舒适度", "防滑", "质量"),
}
ZH_SERVICE_ASPECTS = ("物流", "包装", "客服", "价格")
ZH_PHRASES: dict[str, tuple[str, ...]] = {
    "positive": ("{a}很好", "{a}非常不错", "{a}超出预期", "{a}很满意", "{a}没得说",
                 "物流很快", "包装精美", "性价比高", "质量很好"),
    "negative": ("{a}很差", "{a}太差了", "{a}让人失望", "{a}跟描述不符",
                 "物流太慢", "客服态度差", "和图片不一样", "用了两天就坏了"),
    "neutral": ("{a}一般", "{a}还行", "{a}中规中矩", "{a}马马虎虎", "一般般吧", "凑合能用"),
    "negated_positive": ("{a}还不错", "{a}没什么问题", "{a}不算差"),
    "negated_negative": ("{a}不太好", "{a}不怎么样", "{a}没有想象中好"),
}
ZH_OPENERS = {
    "positive": ("非常满意！", "好评！", "很喜欢这个宝贝。"),
    "negative": ("很失望。", "差评！", "后悔买了。"),
    "neutral": ("还可以吧。", "感觉一般。"),
}
ZH_CLOSERS = {
    "positive": ("会回购的。", "推荐购买！", "五星好评。"),
    "negative": ("不会再买了。", "不推荐。", "已申请退货。"),
    "neutral": ("凑合用吧。", "打折的话可以考虑。"),
}
EMOJI = {
    "positive": ("👍", "😍", "🙂", "🎉", "⭐⭐⭐⭐⭐"),
    "negative": ("👎", "😡", "😞"),
    "neutral": ("😐", "🤷"),
}


# ---------------------------------------------------------------------------
# Catalog and customers
# ---------------------------------------------------------------------------

MAKERS = BRANDS + PUBLISHERS  # an item's brand indexes this tuple
PRICE_TIERS = ("budget", "mid-range", "premium")


@dataclass
class Catalog:
    ids: np.ndarray  # str
    style: np.ndarray  # index into STYLES
    top: np.ndarray  # index into TOP_CATEGORIES
    brand: np.ndarray  # index into MAKERS
    tier: np.ndarray  # index into PRICE_TIERS
    log_popularity: np.ndarray
    quality: np.ndarray  # shifts every rating of the item
    price: np.ndarray
    noun: list[str]
    table: pd.DataFrame


@dataclass
class Customers:
    ids: np.ndarray
    country: np.ndarray  # str
    log_taste: np.ndarray  # (n, n_top): log of each top category's weight x n_top
    style_taste: np.ndarray  # (n, n_styles)
    brand_taste: np.ndarray  # (n, n_makers)
    tier_taste: np.ndarray  # (n, n_tiers)
    bias: np.ndarray  # how generously the user rates
    activity: np.ndarray  # relative number of engagements
    active_from: np.ndarray  # first second at which the user can interact
    table: pd.DataFrame


def _format_ids(prefix: str, count: int, min_width: int) -> np.ndarray:
    width = max(min_width, len(str(max(count - 1, 0))))
    return np.array([f"{prefix}{index:0{width}d}" for index in range(count)])


def _roman(number: int) -> str:
    numerals = ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    text = ""
    for value, numeral in numerals:
        while number >= value:
            text += numeral
            number -= value
    return text


STYLE_TOP = np.array([TOP_CATEGORIES.index(style.top) for style in STYLES])
STYLE_IS_BOOK = np.array([style.is_book for style in STYLES])


def _make_catalog(rng: np.random.Generator, count: int) -> Catalog:
    styles_per_top = np.bincount(STYLE_TOP)
    # every top category gets the same expected share, split evenly over its sub-styles
    style_weights = 1.0 / styles_per_top[STYLE_TOP]
    style = rng.choice(len(STYLES), size=count, p=style_weights / style_weights.sum())
    brand = np.where(STYLE_IS_BOOK[style],
                     len(BRANDS) + rng.integers(0, len(PUBLISHERS), count),
                     rng.integers(0, len(BRANDS), count))
    tier = rng.integers(0, len(PRICE_TIERS), count)

    popularity_rank = rng.permutation(count) + 1
    log_popularity = -1.1 * np.log(popularity_rank)  # Zipf-like long tail
    quality = rng.normal(0.0, 0.35, count)
    # each price tier takes a third of the style's price range on a log scale
    low = np.log([STYLES[s].price[0] for s in style])
    high = np.log([STYLES[s].price[1] for s in style])
    position = (tier + rng.random(count)) / len(PRICE_TIERS)
    price = np.floor(np.exp(low + position * (high - low))) + 0.99

    words = random.Random(int(rng.integers(2**63)))
    ids = _format_ids("i", count, 4)
    titles, descriptions, nouns = [], [], []
    seen_titles: dict[str, int] = {}
    for index in range(count):
        spec, maker = STYLES[style[index]], MAKERS[brand[index]]
        noun, adjective = words.choice(spec.nouns), words.choice(spec.adjectives)
        first, second = words.sample(spec.features, 2)
        if spec.is_book:
            author = f"{words.choice(AUTHOR_FIRST)} {words.choice(AUTHOR_LAST)}"
            title = f"The {adjective} {noun}"
            description = f"{spec.book_kind} by {author}, published by {maker}. {first}. {second}."
            nouns.append("book")
        else:
            title = f"{maker} {adjective} {noun}"
            description = f"{adjective} {noun.lower()} from {maker}. {first}. {second}."
            nouns.append(noun.lower())
        # repeated titles become a series, which is what a real catalog does with them
        repeats = seen_titles.get(title, 0) + 1
        seen_titles[title] = repeats
        if repeats > 1:
            title = f"{title}: Book {repeats}" if spec.is_book else f"{title} {_roman(repeats)}"
        titles.append(title)
        descriptions.append(description)

    table = pd.DataFrame({
        "item_id": ids,
        "title": titles,
        "description": descriptions,
        "categories": [f"{STYLES[s].top}|{STYLES[s].sub}" for s in style],
        "price": [f"{p:.2f}" for p in price],
        "brand": np.array(MAKERS)[brand],
    }, columns=ITEM_COLUMNS)
    return Catalog(ids, style, STYLE_TOP[style], brand, tier, log_popularity, quality, price, nouns, table)


def _make_customers(rng: np.random.Generator, count: int) -> Customers:
    ids = _format_ids("u", count, 5)
    age = rng.choice(len(AGE_BANDS), size=count, p=AGE_WEIGHTS)
    gender = rng.choice(len(GENDERS), size=count, p=GENDER_WEIGHTS)
    country = np.array(COUNTRIES)[rng.choice(len(COUNTRIES), size=count, p=COUNTRY_WEIGHTS)]
    signup = rng.integers(SIGNUP_START, SIGNUP_END, size=count)

    n_top = len(TOP_CATEGORIES)
    leaning = np.zeros((len(AGE_BANDS), n_top))
    for band, tops in AGE_LEANINGS.items():
        for top in tops:
            leaning[AGE_BANDS.index(band), TOP_CATEGORIES.index(top)] = 1.0
    alpha = 0.25 + 0.5 * leaning[age]
    alpha[gender == GENDERS.index("F"), TOP_CATEGORIES.index("Beauty")] += 0.5
    # a sparse Dirichlet draw: most users care about one or two top categories ...
    taste = rng.gamma(alpha)
    taste /= taste.sum(axis=1, keepdims=True)
    # ... but still browse everything now and then
    taste = 0.85 * taste + 0.15 / n_top
    log_taste = np.log(taste * n_top)

    style_taste = rng.normal(0.0, 1.0, (count, len(STYLES)))
    brand_taste = rng.normal(0.0, 1.0, (count, len(MAKERS)))
    tier_taste = rng.normal(0.0, 1.0, (count, len(PRICE_TIERS)))
    bias = rng.normal(0.0, 0.3, count)
    activity = rng.lognormal(0.0, 1.0, count)

    loyalty_score = np.log(activity) + rng.normal(0.0, 0.5, count)
    cut_points = np.quantile(loyalty_score, np.cumsum(LOYALTY_SHARES)[:-1])
    loyalty = np.array(LOYALTY_TIERS)[np.searchsorted(cut_points, loyalty_score)]

    table = pd.DataFrame({
        "user_id": ids,
        "age": np.array(AGE_BANDS)[age],
        "gender": np.array(GENDERS)[gender],
        "country": country,
        "signup_date": np.datetime_as_string(signup.astype("datetime64[s]"), unit="D"),
        "loyalty_tier": loyalty,
    }, columns=USER_COLUMNS)
    return Customers(ids, country, log_taste, style_taste, brand_taste, tier_taste, bias, activity,
                     np.maximum(signup, ACTIVITY_START), table)


# ---------------------------------------------------------------------------
# Interactions
# ---------------------------------------------------------------------------

STYLE_WEIGHT = 0.7
BRAND_WEIGHT = 0.6
TIER_WEIGHT = 0.6
SAMPLING_CHUNK = 100_000  # engagements drawn per vectorised step, to bound memory


def _affinity_pairs(people: Customers, catalog: Catalog, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Taste affinity of each (user, item) pair."""
    return (people.log_taste[user, catalog.top[item]]
            + STYLE_WEIGHT * people.style_taste[user, catalog.style[item]]
            + BRAND_WEIGHT * people.brand_taste[user, catalog.brand[item]]
            + TIER_WEIGHT * people.tier_taste[user, catalog.tier[item]])


def _categorical(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """One draw per row of a (rows, k) weight matrix, by inverse CDF with the given uniforms."""
    cdf = np.cumsum(weights, axis=1)
    index = (cdf <= (uniform * cdf[:, -1])[:, None]).sum(axis=1)
    return np.minimum(index, weights.shape[1] - 1)


def _choose_items(rng: np.random.Generator, people: Customers, catalog: Catalog,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw counts[u] items for each user u with P(i | u) ∝ popularity_i x exp(affinity_ui).

    The affinity only depends on an item's (style, brand, price tier) cell, so the draw
    factorises exactly into style | user, then cell | user and style, then item | cell
    by popularity. That costs O(draws x cells per style) instead of O(users x items).
    """
    n_users = len(counts)
    n_styles, n_makers, n_tiers = len(STYLES), len(MAKERS), len(PRICE_TIERS)
    user = np.repeat(np.arange(n_users), counts)
    draws = len(user)
    popularity = np.exp(catalog.log_popularity)
    cell = (catalog.style * n_makers + catalog.brand) * n_tiers + catalog.tier
    cell_mass = np.bincount(cell, weights=popularity, minlength=n_styles * n_makers * n_tiers)
    cell_mass = cell_mass.reshape(n_styles, n_makers * n_tiers)

    # maker x tier preference per user, flattened like a style's row of cell_mass
    maker_tier = (np.exp(BRAND_WEIGHT * people.brand_taste)[:, :, None]
                  * np.exp(TIER_WEIGHT * people.tier_taste)[:, None, :]).reshape(n_users, -1)
    style_weight = (np.exp(people.log_taste[:, STYLE_TOP] + STYLE_WEIGHT * people.style_taste)
                    * (maker_tier @ cell_mass.T))

    style = np.empty(draws, dtype=np.int64)
    chosen_cell = np.empty(draws, dtype=np.int64)
    style_uniform, cell_uniform, item_uniform = rng.random((3, draws))
    for lo in range(0, draws, SAMPLING_CHUNK):
        part = slice(lo, lo + SAMPLING_CHUNK)
        who = user[part]
        style[part] = _categorical(style_weight[who], style_uniform[part])
        in_style = _categorical(cell_mass[style[part]] * maker_tier[who], cell_uniform[part])
        chosen_cell[part] = style[part] * n_makers * n_tiers + in_style

    # item | cell ∝ popularity: one cumulative sum over items sorted by cell
    by_cell = np.argsort(cell, kind="stable")
    cumulative = np.cumsum(popularity[by_cell])
    first = np.searchsorted(cell[by_cell], chosen_cell, side="left")
    last = np.searchsorted(cell[by_cell], chosen_cell, side="right") - 1
    before = np.where(first > 0, cumulative[np.maximum(first - 1, 0)], 0.0)
    target = before + item_uniform * cell_mass.ravel()[chosen_cell]
    position = np.clip(np.searchsorted(cumulative, target, side="right"), first, last)
    return user, by_cell[position]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Events:
    user: np.ndarray
    item: np.ndarray
    step: np.ndarray  # index into EVENT_TYPES
    timestamp: np.ndarray  # Unix seconds
    rating: np.ndarray  # stars for rating events, 0 elsewhere


def _simulate(rng: np.random.Generator, people: Customers, catalog: Catalog, n_events: int) -> Events:
    n_users = len(people.ids)
    engagements = int(n_events / 1.5) + 16  # an engagement yields ~1.5 events on average
    while True:
        share = people.activity / people.activity.sum()
        counts = rng.multinomial(engagements, share)
        user, item = _choose_items(rng, people, catalog, counts)
        # Shuffle so that trimming to exactly n_events below removes a random few
        # engagements, rather than the last users' whole histories.
        order = rng.permutation(len(user))
        user, item = user[order], item[order]

        affinity = _affinity_pairs(people, catalog, user, item)
        z = (affinity - affinity.mean()) / max(float(affinity.std()), 1e-9)
        carted = rng.random(len(user)) < _sigmoid(-0.9 + 0.8 * z)
        bought = carted & (rng.random(len(user)) < _sigmoid(0.2 + 0.6 * z))
        pair = user.astype(np.int64) * len(catalog.ids) + item
        first_time = np.zeros(len(user), dtype=bool)
        first_time[np.unique(pair, return_index=True)[1]] = True
        rated = bought & first_time & (rng.random(len(user)) < 0.8)  # one rating per pair
        stars = np.clip(np.rint(3.3 + 1.1 * z + catalog.quality[item] + people.bias[user]
                                + rng.normal(0.0, 0.6, len(user))), 1, 5).astype(np.int64)

        funnel = np.stack([np.ones(len(user), dtype=bool), carted, bought, rated], axis=1)
        if funnel.sum() >= n_events:
            break
        engagements = int(engagements * 1.3) + 16

    # Keep the first n_events funnel steps in engagement order: the last engagement
    # kept may lose its tail (say, the rating), never its view.
    kept = funnel.ravel() & (np.cumsum(funnel.ravel()) <= n_events)
    funnel = kept.reshape(funnel.shape)
    alive = funnel[:, 0]
    user, item, stars, funnel = user[alive], item[alive], stars[alive], funnel[alive]

    # Sessions: each user's engagements are grouped into sessions of 1-6 items,
    # each session at a random moment after the user's signup.
    order = np.argsort(user, kind="stable")
    user, item, stars, funnel = user[order], item[order], stars[order], funnel[order]
    n = len(user)
    rank = np.arange(n) - np.searchsorted(user, np.arange(n_users))[user]
    session_size = rng.integers(1, 7, n_users)[user]
    session_no, position = rank // session_size, rank % session_size
    sessions_per_user_bound = int(session_no.max(initial=0)) + 1
    session_keys, session_of = np.unique(user.astype(np.int64) * sessions_per_user_bound + session_no,
                                         return_inverse=True)
    session_user = session_keys // sessions_per_user_bound
    window_start = people.active_from[session_user]
    window = ACTIVITY_END - 2 * DAY - window_start
    session_start = window_start + (rng.random(len(session_keys)) * window).astype(np.int64)

    view = session_start[session_of] + position * 180 + rng.integers(0, 120, n)
    cart = view + rng.integers(15, 240, n)
    purchase = cart + rng.integers(60, 900, n)
    rating = purchase + rng.integers(DAY, 21 * DAY, n)  # reviews arrive after delivery
    times = np.minimum(np.stack([view, cart, purchase, rating], axis=1), ACTIVITY_END - 1)

    engagement, step = np.nonzero(funnel)
    timestamp = times[engagement, step]
    ev_user, ev_item = user[engagement], item[engagement]
    ev_rating = np.where(step == EVENT_TYPES.index("rating"), stars[engagement], 0)
    order = np.lexsort((step, ev_item, ev_user, timestamp))
    return Events(ev_user[order], ev_item[order], step[order], timestamp[order], ev_rating[order])


def _iso(timestamps: np.ndarray) -> list[str]:
    """Unix seconds -> '2024-03-01T12:00:00Z', via per-day and per-second-of-day lookup
    tables: formatting a million timestamps one by one is the slowest step otherwise."""
    if len(timestamps) == 0:
        return []
    day, second = np.divmod(timestamps, DAY)
    first_day = int(day.min())
    dates = np.datetime_as_string(np.arange(first_day, int(day.max()) + 1).astype("datetime64[D]"))
    clock = np.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)], dtype=object)
    return [f"{d}T{c}Z" for d, c in zip(dates.astype(object)[day - first_day].tolist(), clock[second].tolist())]


def _write_interactions(path: Path, events: Events, people: Customers, catalog: Catalog) -> None:
    # Written line by line rather than through pandas (3x slower at a million rows);
    # no field can need CSV quoting: ids, ISO timestamps, event names and numbers.
    price_text = np.array([f"{p:.2f}" for p in catalog.price], dtype=object)
    star_text = np.array(["", "1", "2", "3", "4", "5"], dtype=object)
    value = np.where(events.step == EVENT_TYPES.index("purchase"), price_text[events.item],
                     star_text[events.rating])
    columns = (people.ids.astype(object)[events.user].tolist(),
               catalog.ids.astype(object)[events.item].tolist(),
               _iso(events.timestamp),
               np.array(EVENT_TYPES, dtype=object)[events.step].tolist(),
               value.tolist())
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(INTERACTION_COLUMNS) + "\n")
        handle.writelines(f"{u},{i},{t},{e},{v}\n" for u, i, t, e, v in zip(*columns))


# ---------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------

def label_for_rating(rating: int) -> str:
    if rating >= 4:
        return "positive"
    if rating <= 2:
        return "negative"
    return "neutral"


def _sentence(text: str, language: str) -> str:
    if language == "zh":
        return text if text.endswith(("。", "！")) else text + "。"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!")) else text + "."


def _review_text(words: random.Random, rating: int, language: str, top: str, noun: str) -> str:
    """Compose a review whose tone follows the stars, with mixed clauses for 2-4 stars."""
    if language == "zh":
        phrases, openers, closers = ZH_PHRASES, ZH_OPENERS, ZH_CLOSERS
        aspects = ZH_ASPECTS[top] + ZH_SERVICE_ASPECTS
        but, although = ("，但是", "，不过"), ("，还好", "，好在")
    else:
        phrases, openers, closers = EN_PHRASES, EN_OPENERS, EN_CLOSERS
        aspects = EN_ASPECTS[top] + EN_SERVICE_ASPECTS
        but, although = (" but ", ", however "), (", although ", ", even if ")
    picked = iter(words.sample(aspects, 3))

    def clause(kind: str) -> str:
        return words.choice(phrases[kind]).format(a=next(picked))

    label = label_for_rating(rating)
    parts: list[str] = []
    if words.random() < {5: 0.6, 1: 0.7}.get(rating, 0.35):
        parts.append(words.choice(openers[label]).format(noun=noun))
    if rating == 5:
        parts.append(clause("positive"))
        if words.random() < 0.7:
            parts.append(clause("positive"))
    elif rating == 4:
        if words.random() < 0.55:
            parts.append(clause("positive") + words.choice(but) + clause(words.choice(("neutral", "negated_negative"))))
        else:
            parts.append(clause(words.choice(("positive", "negated_positive"))))
    elif rating == 3:
        shape = words.randrange(3)
        if shape == 0:
            parts.append(clause("positive") + words.choice(but) + clause("negative"))
        elif shape == 1:
            parts.extend([clause("neutral"), clause("neutral")])
        else:
            parts.append(clause("negated_positive") + words.choice(but) + clause("negated_negative"))
    elif rating == 2:
        if words.random() < 0.5:
            parts.append(clause("negative") + words.choice(although) + clause(words.choice(("positive", "neutral"))))
        else:
            parts.append(clause(words.choice(("negative", "negated_negative"))))
    else:
        parts.append(clause("negative"))
        if words.random() < 0.6:
            parts.append(clause("negative"))
    if words.random() < {5: 0.4, 1: 0.5}.get(rating, 0.25):
        parts.append(words.choice(closers[label]))

    separator = "" if language == "zh" else " "
    text = separator.join(_sentence(part, language) for part in parts)
    if words.random() < 0.12:
        text += " " + words.choice(EMOJI[label])
    return text


def _reviews_table(rng: np.random.Generator, events: Events, people: Customers, catalog: Catalog,
                   count: int | None) -> pd.DataFrame:
    rating_rows = np.flatnonzero(events.step == EVENT_TYPES.index("rating"))
    if count is None:
        count = len(rating_rows) // 2
    if count > len(rating_rows):
        raise ValueError(f"asked for {count} reviews but the generated data has only "
                         f"{len(rating_rows)} rating events; ask for fewer reviews or more interactions")
    chosen = np.sort(rng.choice(rating_rows, size=count, replace=False))
    user, item, stars = events.user[chosen], events.item[chosen], events.rating[chosen]
    # Shoppers in China mostly write in Chinese, a few elsewhere do too: ~15% overall.
    chinese_share = np.where(people.country[user] == "CN", 0.9, 0.06)
    language = np.where(rng.random(count) < chinese_share, "zh", "en")

    words = random.Random(int(rng.integers(2**63)))
    texts = [_review_text(words, int(s), lang, TOP_CATEGORIES[catalog.top[i]], catalog.noun[i])
             for s, lang, i in zip(stars, language, item)]
    return pd.DataFrame({
        "review_id": _format_ids("r", count, 6),
        "user_id": people.ids[user],
        "item_id": catalog.ids[item],
        "rating": stars,
        "label": [label_for_rating(int(s)) for s in stars],
        "timestamp": _iso(events.timestamp[chosen]),
        "language": language,
        "text": texts,
    }, columns=REVIEW_COLUMNS)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

def generate(out_dir: str | Path, *, users: int, items: int, interactions: int, seed: int = 0,
             reviews: int | None = None) -> dict[str, Path]:
    """Write interactions.csv, items.csv, users.csv and reviews.csv into out_dir.

    reviews: how many reviews to write (default: half of the rating events).
    Returns the path of each file by dataset name.
    """
    for name, value in (("users", users), ("items", items), ("interactions", interactions)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if reviews is not None and (not isinstance(reviews, int) or reviews < 0):
        raise ValueError(f"reviews must be a non-negative integer, got {reviews!r}")

    # Independent streams per stage: asking for more users does not change the catalog.
    catalog_rng, people_rng, events_rng, reviews_rng = np.random.default_rng(seed).spawn(4)
    catalog = _make_catalog(catalog_rng, items)
    people = _make_customers(people_rng, users)
    events = _simulate(events_rng, people, catalog, interactions)
    tables = {
        "items": catalog.table,
        "users": people.table,
        "reviews": _reviews_table(reviews_rng, events, people, catalog, reviews),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"interactions": out / "interactions.csv"}
    _write_interactions(paths["interactions"], events, people, catalog)
    for name, table in tables.items():
        paths[name] = out / f"{name}.csv"
        table.to_csv(paths[name], index=False, lineterminator="\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.datagen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="sizes to start from (default: demo)")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the CSV files into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--users", type=int, help="override the preset's number of users")
    parser.add_argument("--items", type=int, help="override the preset's number of items")
    parser.add_argument("--interactions", type=int, help="override the preset's number of interaction rows")
    parser.add_argument("--reviews", type=int, help="number of reviews (default: half of the ratings)")
    args = parser.parse_args(argv)

    sizes = dict(PRESETS[args.preset])
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    started = time.perf_counter()
    try:
        paths = generate(args.out, seed=args.seed, reviews=args.reviews, **sizes)
    except ValueError as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - started
    print(f"generated preset {args.preset!r} {sizes} seed={args.seed} in {elapsed:.1f} s")
    for path in paths.values():
        with path.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1
        print(f"  {path}  {rows:,} rows  {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
