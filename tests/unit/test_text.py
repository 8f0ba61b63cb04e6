"""The tokenizer shared by sentiment training and serving (tailor.sentiment.text)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.sentiment.text import (
    NOT_TOKEN,
    NUMBER_TOKEN,
    URL_TOKEN,
    TokenizerConfig,
    char_ngram_key,
    char_ngram_keys,
    char_ngrams,
    detect_language,
    encode_batch,
    encode_batch_words,
    lexicon_buckets,
    lexicon_token,
    negation_scope,
    ngram_key,
    ngrams,
    normalize,
    tokenize,
)
from tailor.sentiment.text import _lexicon_name as lexicon_name

ROOT = Path(__file__).resolve().parents[2]


def keys_of(text: str, config: TokenizerConfig = TokenizerConfig()) -> list[int]:
    keys, splits = encode_batch([text], config)
    assert list(splits) == [0, len(keys)]
    return sorted(int(key) for key in keys)


def reference_keys(text: str, config: TokenizerConfig = TokenizerConfig()) -> list[int]:
    return sorted(ngram_key(gram.split(" ")) for gram in ngrams(text, config))


# --------------------------------------------------------------------------- tokens


def test_words_are_case_folded_and_split_like_the_treebank():
    assert tokenize("It's GREAT, isn't it?") == ["it", "'s", "great", "is", "n't", "it", "?"]
    # Pre-tokenised corpora (SST-2, MR) and raw text give the same tokens.
    assert tokenize("does n't work") == tokenize("doesn't work") == ["does", "n't", "work"]
    assert tokenize("Doesn’t") == ["does", "n't"]  # curly apostrophe


def test_urls_and_numbers_become_placeholder_tokens():
    tokens = tokenize("See https://example.com/a?b=1 and www.shop.cn: 4.5 stars, 10/10, 2,000 rooms")
    assert tokens == ["see", URL_TOKEN, "and", URL_TOKEN, NUMBER_TOKEN, "stars", NUMBER_TOKEN, NUMBER_TOKEN, "rooms"]


def test_emoji_and_emoticons_are_kept_as_tokens():
    assert tokenize("love it 😍👍 :) ") == ["love", "it", "😍", "👍", ":)"]
    # Variation selectors and skin tones do not make a different token.
    assert tokenize("❤️👍🏽") == tokenize("❤👍") == ["❤", "👍"]


def test_full_width_characters_are_normalised():
    assert normalize("ＧＯＯＤ，２Ｍ") == "good,2m"
    assert tokenize("床有２Ｍ宽") == ["床", "有", NUMBER_TOKEN, "m", "宽"]


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000", "...", "，。"])
def test_blank_or_punctuation_only_text_has_no_tokens(text):
    assert tokenize(text) == []
    assert ngrams(text) == []
    assert keys_of(text) == []


# --------------------------------------------------------------------------- n-grams


def test_english_gets_word_bigrams_but_no_trigrams():
    assert ngrams("not very good") == ["not", "not very", "very", "very good", "good"]


def test_chinese_gets_characters_bigrams_and_trigrams_without_a_segmenter():
    features = ngrams("不太好")
    assert features == ["不", "不 太", "不 太 好", "太", "太 好", "好"]


def test_ngrams_do_not_cross_punctuation():
    features = ngrams("房间不错，服务差")
    assert "错 服" not in features and "不 错" in features and "服 务 差" in features
    assert "good bad" not in ngrams("good. bad")


def test_mixed_language_text_gets_both_kinds_of_features():
    features = ngrams("WiFi很好 but slow")
    assert {"wifi", "很 好", "wifi 很", "but slow"} <= set(features)


def test_config_controls_ngram_lengths():
    assert ngrams("a b c", TokenizerConfig(word_ngrams=1)) == ["a", "b", "c"]
    assert "好 吃 的" not in ngrams("好吃的", TokenizerConfig(cjk_ngrams=2))
    with pytest.raises(ValueError):
        TokenizerConfig(word_ngrams=0)
    config = TokenizerConfig(word_ngrams=3, cjk_ngrams=2)
    assert TokenizerConfig.from_dict(config.to_dict()) == config


def test_character_ngrams_of_words():
    config = TokenizerConfig(char_ngrams=4, char_min=3)
    assert char_ngrams("good", config) == ["<go", "goo", "ood", "od>", "<goo", "good", "ood>"]
    assert char_ngrams("aaaa", TokenizerConfig(char_ngrams=2)) == ["<a", "aa", "a>"]  # distinct
    assert char_ngrams("good", TokenizerConfig()) == []  # off by default
    for not_a_word in ("好", "<num>", "!", "😍", ":)"):
        assert char_ngrams(not_a_word, config) == []
    # Salted: the key of the character n-gram "goo" is not the key of the word "goo".
    assert char_ngram_key("goo") != ngram_key(["goo"])
    assert list(char_ngram_keys("good", config)) == [char_ngram_key(g) for g in char_ngrams("good", config)]
    with pytest.raises(ValueError):
        TokenizerConfig(char_ngrams=3, char_min=4)
    assert TokenizerConfig.from_dict(config.to_dict()) == config
    # Artifacts written before character n-grams existed have none.
    assert TokenizerConfig.from_dict({"word_ngrams": 2, "cjk_ngrams": 3}).char_ngrams == 0


def test_batch_words_are_each_texts_distinct_word_tokens():
    config = TokenizerConfig(char_ngrams=5)
    texts = ["Good movie, good GOOD!", "", "房间 很好 wifi", "it's not 3 :)"]
    keys, splits, words, word_ids, word_splits = encode_batch_words(texts, config)
    plain_keys, plain_splits = encode_batch(texts, config)
    np.testing.assert_array_equal(splits, plain_splits)  # the n-gram keys are unchanged
    np.testing.assert_array_equal(np.sort(keys), np.sort(plain_keys))
    per_text = [sorted(words[i] for i in word_ids[word_splits[t] : word_splits[t + 1]]) for t in range(len(texts))]
    assert per_text == [["good", "movie"], [], ["wifi"], ["'s", "it", "not"]]
    assert len(set(words)) == len(words)


SCOPED = TokenizerConfig(char_ngrams=5, negation=True, lexicon=lexicon_name())


def test_negation_scope_runs_to_the_end_of_the_clause():
    tokens = ["it", "is", "not", "a", "good", "movie", "", "great", "!"]
    assert negation_scope(tokens) == [False, False, False, True, True, True, False, False, False]
    # "but" and "!" end a scope; a scope never leaves its text; Chinese negators are characters.
    features = ngrams("Not funny but clever. I didn't like it!", TokenizerConfig(negation=True))
    assert [f for f in features if f.startswith(NOT_TOKEN)] == ["<not> funny", "<not> like", "<not> it"]
    assert "<not> 好" in ngrams("不好", TokenizerConfig(negation=True))
    assert not [f for f in ngrams("not good", TokenizerConfig()) if f.startswith(NOT_TOKEN)]  # off by default


def test_lexicon_features_count_each_valence_and_flip_under_negation():
    lexicon = lexicon_buckets()
    assert lexicon["good"] > 0 and lexicon["bad"] < 0 and "movie" not in lexicon
    config = TokenizerConfig(lexicon=lexicon_name())
    good, bad = lexicon_token(lexicon["good"]), lexicon_token(lexicon["bad"])
    def lexicon_features(text):
        return sorted(f for f in ngrams(text, config) if f.startswith("<lex"))

    assert lexicon_features("a bad movie") == [bad]
    assert lexicon_features("not bad") == [lexicon_token(-lexicon["bad"])]
    assert lexicon_features("good " * 5) == sorted([good, f"{good} {good}", f"{good} {good} {good}"])  # up to 3
    with pytest.raises(ValueError):
        TokenizerConfig(lexicon="some-other-lexicon")
    assert TokenizerConfig.from_dict(SCOPED.to_dict()) == SCOPED
    assert not TokenizerConfig.from_dict({"word_ngrams": 2, "cjk_ngrams": 3}).negation  # older artifacts


# --------------------------------------------------------------------------- keys


def test_batch_encoding_matches_the_reference_keys_per_text():
    texts = ["Great movie!", "", "房间很大，床有2M宽", "I love 北京 😍", "so-so"]
    keys, splits = encode_batch(texts)
    assert len(splits) == len(texts) + 1
    for index, text in enumerate(texts):
        assert sorted(int(k) for k in keys[splits[index] : splits[index + 1]]) == reference_keys(text)


def test_keys_are_stable_across_processes_and_hash_seeds():
    """Python's str hash is salted per process; the keys must not be."""
    script = "from tailor.sentiment.text import encode_batch; print(sorted(int(k) for k in encode_batch(['Nice 房间 :)'])[0]))"
    outputs = set()
    for seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
            env={"PYTHONPATH": f"{ROOT / 'shared'}", "PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        outputs.add(completed.stdout.strip())
    assert outputs == {str(keys_of("Nice 房间 :)"))}


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    "text, language",
    [
        ("The room was clean", "en"),
        ("房间很干净，服务也好", "zh"),
        ("房间很干净, WiFi 很快, 服务也好", "zh"),  # a Latin brand name inside Chinese
        ("I love 北京 hotel", "mixed"),
        ("", "und"),
        ("12345 !!!", "und"),
        ("Очень хорошо", "und"),
    ],
)
def test_detect_language_is_script_based(text, language):
    assert detect_language(text) == language


# --------------------------------------------------------------------------- properties

any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
scoped_text = st.lists(
    st.sampled_from(["good", "not", "bad", "never", "but", "great", "awful", " ", ",", "!", "不", "好", "n't", "no",
                     "\x00", "\t", "Good"]),
    max_size=25,
).map(" ".join)
mixed_text = st.lists(
    st.sampled_from(["good", "not", "bad", "很", "好", "差", "😍", "!", ",", " ", "。", "3.5", "n't", "http://x.io/y"]),
    max_size=25,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_never_crashes_on_arbitrary_unicode(text):
    tokens = tokenize(text)
    assert all(isinstance(token, str) and token for token in tokens)
    assert detect_language(text) in {"en", "zh", "mixed", "und"}
    keys, splits = encode_batch([text])
    assert keys.dtype == np.uint64 and splits[-1] == len(keys)


@settings(max_examples=200, deadline=None)
@given(st.one_of(any_text, mixed_text))
def test_deterministic_and_equal_to_the_reference(text):
    assert tokenize(text) == tokenize(text)
    assert keys_of(text) == keys_of(text) == reference_keys(text)
    if not text.strip():
        assert tokenize(text) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(any_text, mixed_text), max_size=6))
def test_a_batch_encodes_each_text_as_alone(texts):
    keys, splits = encode_batch(texts)
    for index, text in enumerate(texts):
        assert sorted(int(k) for k in keys[splits[index] : splits[index + 1]]) == keys_of(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(any_text, mixed_text, scoped_text), max_size=6))
def test_negation_and_lexicon_keys_equal_the_reference_in_any_batch(texts):
    keys, splits = encode_batch(texts, SCOPED)
    for index, text in enumerate(texts):
        assert sorted(int(k) for k in keys[splits[index] : splits[index + 1]]) == reference_keys(text, SCOPED)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(any_text, mixed_text), max_size=6))
def test_batch_words_equal_the_word_tokens_of_each_text(texts):
    config = TokenizerConfig(char_ngrams=5)
    _, _, words, word_ids, word_splits = encode_batch_words(texts, config)
    for index, text in enumerate(texts):
        expected = {token for token in tokenize(text) if char_ngrams(token, config)}
        assert {words[i] for i in word_ids[word_splits[index] : word_splits[index + 1]]} == expected
        assert len(set(word_ids[word_splits[index] : word_splits[index + 1]])) == word_splits[index + 1] - word_splits[index]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_ascii_fast_path_finds_the_same_tokens(text):
    from tailor.sentiment import text as module

    normalized = normalize(text)
    assert module._FIND_ASCII_RE.findall(normalized) == module._FIND_RE.findall(normalized)
    letters = [c for c in normalized if c.isalpha()]
    assert detect_language(text) == ("en" if letters else "und")
