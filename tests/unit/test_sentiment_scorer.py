"""The NumPy sentiment scorer (tailor.sentiment.scorer) on hand-made artifacts: no TensorFlow needed."""

import json

import numpy as np
import pytest

from tailor.sentiment.scorer import (
    CONFIG_FILE,
    EMPTY_NOTE,
    WEIGHTS_FILE,
    SentimentArtifact,
    SentimentScorer,
    rows_of_keys,
)
from tailor.sentiment.text import encode_batch, ngram_key


def artifact(classes=("negative", "positive"), weights=None, head_weights=(0.5, 0.5), threshold=0.6):
    """One feature per word; ``weights`` maps a word to its logits (per class) in both heads."""
    weights = weights or {"great": (-3.0, 3.0), "awful": (3.0, -3.0), "好": (-3.0, 3.0), "差": (3.0, -3.0)}
    words = sorted(weights, key=lambda word: ngram_key([word]))
    vocabulary = np.array([ngram_key([word]) for word in words], dtype=np.uint64)
    table = np.array([weights[word] for word in words], dtype=np.float32)
    return SentimentArtifact(
        vocabulary=vocabulary,
        nb_table=table,
        idf=np.ones(len(words), dtype=np.float32),
        idf_table=table,
        bias=np.zeros((2, len(classes)), dtype=np.float32),
        head_weights=np.array(head_weights, dtype=np.float32),
        classes=tuple(classes),
        neutral_threshold=threshold,
        model_version="v-test",
    )


def test_labels_scores_and_probabilities():
    results = SentimentScorer(artifact()).score(["A great film", "awful, AWFUL service", "房间很好"])
    assert [r["label"] for r in results] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    assert [r["language"] for r in results] == ["en", "en", "zh"]
    for result in results:
        probabilities = result["probabilities"]
        assert set(probabilities) == {"positive", "negative", "neutral"}
        assert probabilities["neutral"] == 0.0  # a 2-class model
        assert probabilities["positive"] + probabilities["negative"] == pytest.approx(1.0)
        assert result["score"] == pytest.approx(probabilities["positive"] - probabilities["negative"])
    assert results[0]["score"] > 0.9 and results[1]["score"] < -0.9


def test_the_probability_is_the_mixture_of_both_heads():
    # Head 0: one feature adds its row; head 1: the same row divided by sqrt(Σ idf²) = sqrt(2).
    scorer = SentimentScorer(artifact(head_weights=(0.25, 0.75)))
    positive = scorer.probabilities(["great plot"])[0, 1]  # "plot" is unknown: one feature
    both = scorer.probabilities(["great awful"])[0, 1]
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert positive == pytest.approx(0.25 * sigmoid(6.0) + 0.75 * sigmoid(6.0))
    assert both == pytest.approx(0.5)
    repeated = scorer.probabilities(["great great great"])[0, 1]
    assert repeated == pytest.approx(positive)  # a feature counts once per text


def test_not_confident_means_neutral():
    weak = artifact(weights={"fine": (-0.2, 0.2)})
    result = SentimentScorer(weak).score(["fine"])[0]
    assert result["label"] == "NEUTRAL"
    assert 0 < result["score"] < 0.2
    result = SentimentScorer(weak).score(["nothing known here"])[0]
    assert result["label"] == "NEUTRAL" and result["score"] == 0.0 and "note" not in result


def test_a_request_can_choose_the_neutral_threshold():
    weak = SentimentScorer(artifact(weights={"fine": (-0.2, 0.2)}))
    assert weak.score(["fine"])[0]["label"] == "NEUTRAL"  # below the artifact's 0.6
    assert weak.score(["fine"], neutral_threshold=0.0)[0]["label"] == "POSITIVE"
    assert weak.score(["fine", ""], neutral_threshold=0.0)[1]["label"] == "NEUTRAL"  # empty text stays NEUTRAL
    assert SentimentScorer(artifact()).score(["great"], neutral_threshold=1.0)[0]["label"] == "NEUTRAL"
    with pytest.raises(ValueError, match="neutral_threshold"):
        weak.score(["fine"], neutral_threshold=1.5)


def test_character_ngrams_add_each_distinct_words_known_grams():
    from tailor.sentiment.text import TokenizerConfig, char_ngram_key, char_ngrams

    config = TokenizerConfig(char_ngrams=4, char_min=3)
    weights = {"<go": (-1.0, 1.0), "ood": (-0.5, 0.5), "<ba": (2.0, -2.0)}  # character n-grams
    keys = {char_ngram_key(gram): weight for gram, weight in weights.items()}
    keys[ngram_key(["good"])] = (-3.0, 3.0)  # and a word
    vocabulary = np.array(sorted(keys), dtype=np.uint64)
    table = np.array([keys[k] for k in sorted(keys)], dtype=np.float32)
    idf = np.array([1.0, 2.0, 0.5, 1.5], dtype=np.float32)
    model = SentimentArtifact(vocabulary=vocabulary, nb_table=table, idf=idf, idf_table=table * 2,
                              bias=np.zeros((2, 2), np.float32), head_weights=np.array([0.5, 0.5], np.float32),
                              classes=("negative", "positive"), tokenizer=config)
    scorer = SentimentScorer(model)
    texts = ["good goods, good", "bad", "google", "", "好"]
    sums = scorer.feature_sums(texts)
    row = {int(k): i for i, k in enumerate(vocabulary)}

    def expected(features: list[int]) -> np.ndarray:
        rows = [row[k] for k in features if k in row]
        return np.concatenate([table[rows].sum(0), 2 * table[rows].sum(0), [np.sum(idf[rows] ** 2)]])

    for index, text in enumerate(texts):
        words = {w for w in text.replace(",", " ").split() if char_ngrams(w, config)}
        features = [ngram_key(["good"])] if "good" in words else []
        features += [char_ngram_key(g) for w in sorted(words) for g in char_ngrams(w, config)]  # per word
        np.testing.assert_allclose(sums[index], expected(features), atol=1e-6)
    # The per-word cache gives the same answer batch by batch.
    np.testing.assert_allclose(np.vstack([scorer.feature_sums([t]) for t in texts]), sums, atol=1e-12)


def test_three_class_model_can_say_neutral_itself():
    three = artifact(classes=("negative", "neutral", "positive"),
                     weights={"okay": (0.0, 4.0, 0.0), "great": (-2.0, 0.0, 4.0)})
    okay, great = SentimentScorer(three).score(["okay", "great"])
    assert okay["label"] == "NEUTRAL" and okay["probabilities"]["neutral"] > 0.9
    assert great["label"] == "POSITIVE"
    assert sum(great["probabilities"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_empty_text_is_neutral_with_a_note(blank):
    results = SentimentScorer(artifact()).score(["great", blank, "awful"])
    assert results[1] == {
        "label": "NEUTRAL", "score": 0.0, "probabilities": {"positive": 0.0, "negative": 0.0, "neutral": 1.0},
        "language": "und", "note": EMPTY_NOTE,
    }
    assert results[0]["label"] == "POSITIVE" and results[2]["label"] == "NEGATIVE"  # order kept


def test_empty_batch_and_wrong_types():
    scorer = SentimentScorer(artifact())
    assert scorer.score([]) == []
    assert scorer.probabilities([]).shape == (0, 2)
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        scorer.score(["fine", 3])


def test_batch_results_equal_one_by_one_results():
    scorer = SentimentScorer(artifact())
    texts = ["great", "", "awful great", "差", "no feature", "好 好 差"]
    batch = scorer.probabilities(texts)
    single = np.vstack([scorer.probabilities([text]) for text in texts])
    np.testing.assert_allclose(batch, single, atol=1e-12)


def test_artifact_round_trips_through_files_and_folders(tmp_path):
    original = artifact(head_weights=(0.75, 0.25))
    files = original.to_files()
    assert set(files) == {WEIGHTS_FILE, CONFIG_FILE}
    config = json.loads(files[CONFIG_FILE])
    assert config["classes"] == ["negative", "positive"] and config["model_version"] == "v-test"
    assert config["neutral_threshold"] == 0.6 and config["tokenizer"] == {"word_ngrams": 2, "cjk_ngrams": 3,
                                                                   "char_ngrams": 0, "char_min": 2,
                                                                   "negation": False, "lexicon": ""}
    original.save(tmp_path)
    for restored in (SentimentArtifact.from_files(files), SentimentArtifact.load(tmp_path)):
        texts = ["great", "awful 差", "meh"]
        np.testing.assert_array_equal(SentimentScorer(restored).probabilities(texts),
                                      SentimentScorer(original).probabilities(texts))
        assert restored.model_version == "v-test"


def test_bad_artifacts_are_refused_with_a_reason():
    good = artifact()
    with pytest.raises(ValueError, match="missing sentiment.json"):
        SentimentArtifact.from_files({WEIGHTS_FILE: good.to_files()[WEIGHTS_FILE]})
    files = good.to_files()
    config = json.loads(files[CONFIG_FILE])
    config["format_version"] = 99
    with pytest.raises(ValueError, match="format 99"):
        SentimentArtifact.from_files({**files, CONFIG_FILE: json.dumps(config).encode()})
    with pytest.raises(ValueError, match="nb_table has shape"):
        SentimentArtifact(**{**_fields(good), "nb_table": np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match="sorted"):
        SentimentArtifact(**{**_fields(good), "vocabulary": good.vocabulary[::-1].copy()})
    with pytest.raises(ValueError, match="classes"):
        SentimentArtifact(**{**_fields(good), "classes": ("positive", "happy")})
    with pytest.raises(ValueError, match="head_weights"):
        SentimentArtifact(**{**_fields(good), "head_weights": np.array([0.9, 0.9], np.float32)})


def _fields(a: SentimentArtifact) -> dict:
    return {name: getattr(a, name) for name in a.__dataclass_fields__}


def test_rows_of_keys_drops_unknown_and_repeated_features():
    vocabulary = np.array(sorted([ngram_key(["good"]), ngram_key(["bad"])]), dtype=np.uint64)
    keys, splits = encode_batch(["good good bad", "", "unknown", "bad"])
    rows, row_splits = rows_of_keys(vocabulary, keys, splits)
    assert list(np.diff(row_splits)) == [2, 0, 0, 1]
    bad_row = int(np.searchsorted(vocabulary, ngram_key(["bad"])))
    assert rows[row_splits[3]] == bad_row
