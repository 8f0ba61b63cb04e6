"""The lexicon prior reads plain reviews in a language the shop never labelled, and serving
says when it answered from it."""

import numpy as np

from tailor.sentiment import prior

# Our own plain review sentences (bench/real_shops.py scores another 20).
CHINESE = [
    ("这双鞋很合脚，颜色也好看", "positive"), ("发货速度快，服务态度好", "positive"), ("价格便宜，质量也不错", "positive"),
    ("孩子很喜欢，下次还会买", "positive"), ("没有任何问题，很好", "positive"), ("非常满意的一次购物", "positive"),
    ("用起来很方便，推荐", "positive"), ("做工精致，值得购买", "positive"), ("物流给力，包装完好", "positive"),
    ("性价比不错，很实惠", "positive"),
    ("包装破损，东西也脏了", "negative"), ("等了十天才到，太慢了", "negative"), ("穿了两天就坏了，质量太差", "negative"),
    ("客服态度差，很失望", "negative"), ("不好用，浪费钱", "negative"), ("有异味，已经退货", "negative"),
    ("颜色和图片不一样，不推荐", "negative"), ("尺码偏小，穿着不舒服", "negative"), ("垃圾产品，再也不买了", "negative"),
    ("假货，非常不满意", "negative"),
]
ENGLISH = [("Great value, I love it", "positive"), ("Comfortable and well made", "positive"),
           ("Not good at all", "negative"), ("Terrible, it broke after a day", "negative"),
           ("not bad for the price", "positive"), ("I hate the colour, very disappointed", "negative")]


def label(text: str) -> str:
    positive, negative = prior.probabilities(text)
    return "positive" if positive > negative else "negative"


def test_plain_chinese_reviews_are_read_without_training_data():
    right = sum(label(text) == truth for text, truth in CHINESE)
    assert right >= 16, [(t, label(t)) for t, truth in CHINESE if label(t) != truth]


def test_english_reviews_and_negation():
    assert [label(text) for text, _ in ENGLISH] == [truth for _, truth in ENGLISH]
    assert prior.probabilities("the box arrived on tuesday") == (0.5, 0.5)


def test_a_language_the_model_never_trained_on_is_scored_by_the_prior_with_a_note():
    from tailor.sentiment.scorer import SentimentScorer

    class Artifact:  # what _blend_prior reads of an artifact
        metadata = {"languages": {"en": {"positive": 900, "negative": 300}}}

    scorer = SentimentScorer.__new__(SentimentScorer)
    scorer.artifact, scorer._column = Artifact(), {"negative": 0, "positive": 1}
    probabilities = np.array([[0.5, 0.5], [0.9, 0.1]])  # the model is lost on the Chinese text
    sources, notes = scorer._blend_prior(["太失望了，质量很差", "great"], ["zh", "en"], probabilities)
    assert sources == ["prior", "model"] and "no zh reviews were labelled" in notes[0] and notes[1] is None
    assert probabilities[0, 0] > 0.8 and probabilities[1].tolist() == [0.9, 0.1]
    Artifact.metadata = {"languages": {"en": {"positive": 900, "negative": 300}, "zh": {"positive": 40, "negative": 25}}}
    sources, notes = scorer._blend_prior(["太失望了"], ["zh"], np.array([[0.5, 0.5]]))
    assert sources == ["blend"] and "75%" in notes[0]  # 2 * 25 of 200: the lexicon weighs 75%


def test_the_word_list_data_file_loads_every_valence():
    from tailor.sentiment.lexicon import WORDS_BY_VALENCE

    assert sorted(WORDS_BY_VALENCE) == [-3, -2, -1, 0, 1, 2, 3]
    words = {word: valence for valence, text in WORDS_BY_VALENCE.items() for word in text.split()}
    assert len(words) > 5_000 and words["great"] > 0 and words["awful"] < 0
