"""Text normalisation, tokenisation and feature hashing shared by sentiment training and serving.

Pure Python (standard library) plus NumPy for the batch encoder; it never imports TensorFlow,
so the serving layer and the training image run byte-for-byte the same code.

Pipeline, for one text:

1. **Normalise** (:func:`normalize`): Unicode NFKC (full-width Latin letters, digits and
   punctuation in Chinese text become ASCII), case folding, curly apostrophes become ``'``,
   and invisible emoji joiners/modifiers (ZWJ, variation selectors, skin tones) are removed so
   that ``❤️`` and ``❤`` are the same token.
2. **Tokenise** (:func:`tokenize`): URLs become ``<url>``, numbers become ``<num>``, each Chinese
   (Han) character is a token, each emoji is a token (kept: it is a strong sentiment signal),
   ``:)``-style emoticons are tokens, Latin-script words are split Penn-Treebank style
   (``doesn't`` → ``does`` ``n't``, ``it's`` → ``it`` ``'s``; that is how SST is tokenised, so
   raw and pre-tokenised text agree), ``!`` and ``?`` are tokens, and any other punctuation is a
   *boundary* that n-grams do not cross. Empty or whitespace-only text gives no tokens.
3. **N-grams** (:func:`ngrams`): every token, word bigrams (``word_ngrams=2``), and for runs of
   Han characters character bigrams and trigrams (``cjk_ngrams=3``) — Chinese needs no word
   segmenter this way. Mixed-language text simply yields both kinds. Optionally
   (``negation``, ``lexicon``) each token inside a negation scope once more as ``<not> token``,
   and counts of sentiment-lexicon words per valence (:func:`negation_scope`).
4. **Keys** (:func:`encode_batch`): each n-gram becomes a 64-bit key. A token's key is
   ``splitmix64(zlib.crc32(utf-8 bytes))``; an n-gram's key folds the next token's key into the
   key of its prefix. The same text gives the same keys in every process, on every machine and
   Python version (Python's own ``hash()`` is salted per process, so it is never used). A batch
   is tokenised as one joined string, and the tokens of its recurring whitespace-separated
   chunks come from a cache (see ``_ChunkTable``), so the regex runs only on new chunks.

Why hashed keys *plus* a learned vocabulary (rather than a fixed hashing space or a vocabulary of
strings): the trainer keeps the keys it saw in its training data as a sorted ``uint64`` array,
and serving maps keys to weight rows with ``np.searchsorted`` (an unseen key carries no weight,
which is also what a string vocabulary would do). Compared with a fixed hashing space (e.g. 2**20
buckets) the weight matrices stay as small as the real vocabulary, so an embedding tower remains
cheap to train and to ship, and two features never share a weight by bucket collision (64-bit
keys: a collision among a million n-grams has probability ~3e-8). Compared with storing
strings, the artifact is a flat array that loads in milliseconds (cold start), and bigram keys are
computed for a whole batch with vectorised NumPy arithmetic instead of building a Python string
per bigram, which is what makes >20k texts/s on one core easy.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

URL_TOKEN = "<url>"
NUMBER_TOKEN = "<num>"

# Han ideographs: CJK Unified Ideographs, Extension A, and Compatibility Ideographs.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Pictographic emoji and symbols (Misc Symbols, Dingbats, arrows/stars block, the 1F000+ planes).
# Skin-tone modifiers U+1F3FB..1F3FF are stripped during normalisation, so they never show up.
_EMOJI = "\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
# Latin-script (and any other non-Han) letters: \w minus digits, underscore and Han.
_LETTER = rf"[^\W\d_{_HAN}]"

# One alternative per token kind, tried in this order. normalize() has already put a space
# before every "n't", so "doesn't" and SST's "does n't" both give "does" + "n't".
_TOKEN_KINDS = (
    ("url", r"(?:https?://|www\.)\S+"),
    ("num", r"\d+(?:[.,:/]\d+)*"),
    ("han", f"[{_HAN}]"),
    ("word", rf"n't|'?{_LETTER}+"),
    ("mark", r"[!?]"),
    ("emoticon", r"(?<!\w)[:;=]-?[()\[\]dp](?!\w)"),
    ("emoji", f"[{_EMOJI}]"),
    ("boundary", r"[^\s\w]"),
)
# Finding tokens uses a pattern without groups (re.findall then returns plain strings);
# classifying a token seen for the first time uses the named-group twin.
_FIND_RE = re.compile("|".join(f"(?:{pattern})" for _, pattern in _TOKEN_KINDS))
_CLASSIFY_RE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _TOKEN_KINDS))
# The same alternatives for ASCII text (most English reviews): no Han or emoji classes, and
# letters as [a-z] (normalised text is lower case). Same tokens, ~40% less regex time.
_ASCII_KINDS = tuple(
    (kind, pattern.replace(_LETTER, "[a-z]")) for kind, pattern in _TOKEN_KINDS if kind not in ("han", "emoji")
)
_FIND_ASCII_RE = re.compile("|".join(f"(?:{pattern})" for _, pattern in _ASCII_KINDS))
_ASCII_LETTER_RE = re.compile("[A-Za-z]")


def _find_tokens(normalized: str) -> list[str]:
    """Raw token strings of a normalised text."""
    if normalized.isascii():
        return _FIND_ASCII_RE.findall(normalized)
    return _FIND_RE.findall(normalized)
_HAN_CHAR_RE = re.compile(f"[{_HAN}]")
_LATIN_WORD_RE = re.compile(r"[a-z\u00c0-\u024f]+")
_OTHER_LETTER_RE = re.compile(rf"[^\W\d_a-z\u00c0-\u024f{_HAN}]")

# Characters that only glue emoji together or restyle them; dropping them makes
# "❤️" (U+2764 U+FE0F) and "❤" one token and splits ZWJ families into their members.
_INVISIBLE = {0x200D: None, 0xFE0E: None, 0xFE0F: None, **{cp: None for cp in range(0x1F3FB, 0x1F400)}}
_APOSTROPHES = {0x2019: "'", 0x2018: "'", 0x02BC: "'"}
_TRANSLATION = {**_INVISIBLE, **_APOSTROPHES}

# Internal marker for "n-grams do not cross here"; never emitted as a feature.
_BOUNDARY = ""

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


@dataclass(frozen=True)
class TokenizerConfig:
    """Which n-grams become features. Stored in every model artifact so serving matches training."""

    word_ngrams: int = 2
    cjk_ngrams: int = 3
    # Character n-grams of Latin-script words, ``char_min``..``char_ngrams`` characters of the
    # word framed as ``<word>`` (0 = none; see :func:`char_ngrams`).
    char_ngrams: int = 0
    char_min: int = 2
    # Negation scope (see :func:`negation_scope`): each token inside one is also the feature
    # ``<not> token``.
    negation: bool = False
    # Sentiment lexicon features (see :func:`lexicon_features`): "" = none, else the lexicon's
    # name (``tailor.sentiment.lexicon.NAME``).
    lexicon: str = ""

    def __post_init__(self) -> None:
        if self.word_ngrams < 1 or self.cjk_ngrams < 1:
            raise ValueError("word_ngrams and cjk_ngrams must be >= 1")
        if self.char_ngrams and not 1 <= self.char_min <= self.char_ngrams:
            raise ValueError("char_min must be between 1 and char_ngrams")
        if self.lexicon and self.lexicon != _lexicon_name():
            raise ValueError(f"unknown sentiment lexicon {self.lexicon!r} (this code has {_lexicon_name()!r})")

    @property
    def max_n(self) -> int:
        return max(self.word_ngrams, self.cjk_ngrams)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TokenizerConfig:
        return cls(word_ngrams=int(data["word_ngrams"]), cjk_ngrams=int(data["cjk_ngrams"]),
                   char_ngrams=int(data.get("char_ngrams", 0)), char_min=int(data.get("char_min", 2)),
                   negation=bool(data.get("negation", False)), lexicon=str(data.get("lexicon", "")))


# --------------------------------------------------------------------------- negation, lexicon

# A negator opens a negation scope, which runs to the end of the clause: the next boundary
# (punctuation), "!", "?" or contrast word, or the end of the text. Chinese negators are Han
# characters (Han tokens are single characters).
NEGATORS = ("not", "n't", "no", "never", "without", "nor", "nothing", "none", "nobody", "neither", "cannot",
            "hardly", "barely", "不", "没", "无", "非", "别", "未")
SCOPE_ENDS = ("!", "?", "but", "yet", "though", "although")
NOT_TOKEN = "<not>"
# Lexicon features: per valence bucket b (-3..3) of the lexicon words in a text (the bucket of a
# word inside a negation scope flips sign), "<lex+b>" repeated 1, 2 or 3 times for the 1st, 2nd
# and 3rd (or more) such word: binary features that still count a little.
LEXICON_MAX_COUNT = 3


def lexicon_token(bucket: int) -> str:
    return f"<lex{bucket:+d}>"


def _lexicon_name() -> str:
    from tailor.sentiment.lexicon import NAME

    return NAME


_LEXICON: dict[str, int] = {}


def lexicon_buckets() -> dict[str, int]:
    """word -> valence bucket (-3..3) of the sentiment lexicon (``tailor.sentiment.lexicon``)."""
    if not _LEXICON:
        from tailor.sentiment.lexicon import WORDS_BY_VALENCE

        for bucket, words in WORDS_BY_VALENCE.items():
            _LEXICON.update(dict.fromkeys(words.split(), bucket))
    return _LEXICON


def negation_scope(tokens: Sequence[str]) -> list[bool]:
    """Per token (``_BOUNDARY`` included), whether it lies in a negation scope: after a negator
    and before the next scope end; scope ends and boundaries are never inside one."""
    inside, scope = False, []
    for token in tokens:
        if token == _BOUNDARY or token in SCOPE_ENDS:
            inside = False
            scope.append(False)
            continue
        scope.append(inside)
        if token in NEGATORS:
            inside = True
    return scope


def _negation_and_lexicon_features(tokens: list[str], config: TokenizerConfig) -> list[str]:
    if not (config.negation or config.lexicon):
        return []
    scope = negation_scope(tokens)
    features = [f"{NOT_TOKEN} {token}" for token, inside in zip(tokens, scope) if inside] if config.negation else []
    if config.lexicon:
        lexicon = lexicon_buckets()
        counts: dict[int, int] = {}
        for token, inside in zip(tokens, scope):
            bucket = lexicon.get(token)
            if bucket is not None:
                bucket = -bucket if inside else bucket
                counts[bucket] = counts.get(bucket, 0) + 1
        for valence, count in counts.items():
            features += [" ".join([lexicon_token(valence)] * level) for level in range(1, min(count, LEXICON_MAX_COUNT) + 1)]
    return features


def normalize(text: str) -> str:
    """NFKC, case folding, one kind of apostrophe, no invisible emoji modifiers, ``n't`` split off."""
    if not text.isascii():  # ASCII is NFKC-normal and has none of the translated characters
        text = unicodedata.normalize("NFKC", text).translate(_TRANSLATION)
    return text.casefold().replace("n't", " n't")


def _canonical(raw: str) -> str:
    """The token a raw regex match stands for: ``<url>``, ``<num>``, ``_BOUNDARY`` or itself."""
    match = _CLASSIFY_RE.fullmatch(raw)
    kind = match.lastgroup if match else "boundary"
    if kind == "url":
        return URL_TOKEN
    if kind == "num":
        return NUMBER_TOKEN
    if kind == "boundary":
        return _BOUNDARY
    return raw


def _scan(text: str) -> list[str]:
    """Tokens of a normalised text, with ``_BOUNDARY`` wherever n-grams must break."""
    return [_canonical(raw) for raw in _find_tokens(text)]


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` (see the module docstring); ``[]`` for empty or blank text."""
    return [token for token in _scan(normalize(text)) if token != _BOUNDARY]


def _is_han(token: str) -> bool:
    return len(token) == 1 and _HAN_CHAR_RE.match(token) is not None


def _ngram_allowed(tokens: Sequence[str], config: TokenizerConfig) -> bool:
    n = len(tokens)
    if _BOUNDARY in tokens:
        return False
    if n <= config.word_ngrams:
        return True
    return n <= config.cjk_ngrams and all(_is_han(token) for token in tokens)


def ngrams(text: str, config: TokenizerConfig = TokenizerConfig()) -> list[str]:
    """Readable features of ``text``: tokens and n-grams joined by a space, in text order.

    Reference implementation, used by tests and for explaining a prediction; the fast path
    :func:`encode_batch` produces the keys of exactly these n-grams.
    """
    tokens = _scan(normalize(text))
    features = []
    for start in range(len(tokens)):
        for n in range(1, config.max_n + 1):
            gram = tokens[start : start + n]
            if len(gram) == n and _ngram_allowed(gram, config):
                features.append(" ".join(gram))
    return features + _negation_and_lexicon_features(tokens, config)


def _mix(value: int) -> int:
    """splitmix64 finaliser: spreads a 64-bit value over all 64 bits."""
    z = (value + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def token_key(token: str) -> int:
    """The stable 64-bit key of one token (a unigram feature)."""
    return _mix(zlib.crc32(token.encode("utf-8")))


def ngram_key(tokens: Sequence[str]) -> int:
    """The stable 64-bit key of an n-gram given as its tokens (pure-Python reference)."""
    key = token_key(tokens[0])
    for token in tokens[1:]:
        key = _mix((key * _GOLDEN + token_key(token)) & _MASK64)
    return key


def _mix_array(values: np.ndarray) -> np.ndarray:
    z = values + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


# raw token -> crc32 of its canonical form | flag << 32 | negation and lexicon bits, where flag
# is 1 for a boundary, 2 for an ordinary token, 3 for a Han character, 4 for a Latin-script word
# and 5 for the batch separator (never 0, so a cached value is truthy); bit 36 marks a negator,
# bit 37 a scope end, and bits 40-43 hold the lexicon bucket + 4 (0: not in the lexicon).
# Packing it all in one int lets the batch encoder convert the whole batch with a single
# np.array call. Bounded, so that a stream of unique URLs or numbers cannot grow it without limit.
_TOKEN_INFO: dict[str, int] = {}
_TOKEN_INFO_LIMIT = 200_000
_BOUNDARY_FLAG, _TOKEN_FLAG, _HAN_FLAG, _WORD_FLAG = 1, 2, 3, 4  # _WORD_FLAG: a Latin-script word
_TOKEN_INFO["\x00"] = 5 << 32  # the batch separator (_SEPARATOR_FLAG, below)
_NEGATOR_BIT, _SCOPE_END_BIT, _LEXICON_SHIFT = 36, 37, 40


def _token_info(raw: str) -> int:
    token = _canonical(raw)
    if token == _BOUNDARY:
        info = _BOUNDARY_FLAG << 32
    else:
        flag = _HAN_FLAG if _is_han(token) else _WORD_FLAG if _is_word(token) else _TOKEN_FLAG
        info = zlib.crc32(token.encode("utf-8")) | flag << 32
        info |= (token in NEGATORS) << _NEGATOR_BIT | (token in SCOPE_ENDS) << _SCOPE_END_BIT
        bucket = lexicon_buckets().get(token)
        if bucket is not None:
            info |= (bucket + 4) << _LEXICON_SHIFT
    if len(_TOKEN_INFO) >= _TOKEN_INFO_LIMIT:
        _TOKEN_INFO.clear()
        _TOKEN_INFO[_SEPARATOR_TOKEN] = _SEPARATOR_FLAG << 32
    _TOKEN_INFO[raw] = info
    return info


def _is_word(token: str) -> bool:
    """A Latin-script (or other non-Han letter) word: the tokens that get character n-grams."""
    match = _CLASSIFY_RE.fullmatch(token)
    return match is not None and match.lastgroup == "word"


def char_ngrams(word: str, config: TokenizerConfig) -> list[str]:
    """Character n-grams of one word token, ``char_min``..``char_ngrams`` characters of
    ``<word>`` (``<`` and ``>`` mark its start and end, as fastText does), distinct, in order.
    ``[]`` when the config has no character n-grams or ``word`` is not a word token."""
    if not config.char_ngrams or not _is_word(word):
        return []
    framed = f"<{word}>"
    grams: dict[str, None] = {}
    for n in range(config.char_min, config.char_ngrams + 1):
        for start in range(len(framed) - n + 1):
            grams.setdefault(framed[start : start + n], None)
    return list(grams)


def char_ngram_key(gram: str) -> int:
    """The stable 64-bit key of a character n-gram; salted, so it never equals a token's key."""
    return _mix(zlib.crc32(b"\x01c" + gram.encode("utf-8")))


_CHAR_KEYS: dict[tuple[str, int, int], np.ndarray] = {}


def char_ngram_keys(word: str, config: TokenizerConfig) -> np.ndarray:
    """``uint64`` keys of :func:`char_ngrams` (cached per word; bounded like the token cache)."""
    cache_key = (word, config.char_min, config.char_ngrams)
    keys = _CHAR_KEYS.get(cache_key)
    if keys is None:
        keys = np.array([char_ngram_key(gram) for gram in char_ngrams(word, config)], dtype=np.uint64)
        if len(_CHAR_KEYS) >= _TOKEN_INFO_LIMIT:
            _CHAR_KEYS.clear()
        _CHAR_KEYS[cache_key] = keys
    return keys


def encode_batch(
    texts: Iterable[str], config: TokenizerConfig = TokenizerConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Feature keys of many texts as a CSR-like pair ``(keys, row_splits)``.

    ``keys[row_splits[i]:row_splits[i + 1]]`` are the ``uint64`` keys of text ``i``'s n-grams
    (exactly the keys of :func:`ngrams`, duplicates included, in no particular order).
    Python touches each *token* once (regex + a cached lookup); n-gram keys are computed for
    the whole batch with vectorised NumPy.
    """
    keys, row_splits, _ = _encode(texts, config, words=False)
    return keys, row_splits


def encode_batch_words(
    texts: Iterable[str], config: TokenizerConfig = TokenizerConfig()
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """:func:`encode_batch` plus each text's distinct Latin-script words:
    ``(keys, row_splits, words, word_ids, word_splits)``, where ``words`` lists the batch's
    distinct word tokens and ``word_ids[word_splits[i]:word_splits[i + 1]]`` are the indices
    (into ``words``) of text ``i``'s distinct words, sorted. Character n-gram features
    (``config.char_ngrams``) are per distinct word of a text: :func:`char_ngram_keys` of each.
    """
    keys, row_splits, (words, word_ids, word_splits) = _encode(texts, config, words=True)
    return keys, row_splits, words, word_ids, word_splits


# A batch is tokenised as one string: the normalised texts joined by a separator. No token
# spans whitespace and every pattern's look-around sees whitespace exactly as it sees the start
# or end of a text, so the tokens of the joined string are the texts' tokens in order, and so
# are the tokens of its whitespace-separated chunks. The separator chunk, a lone NUL, is a
# one-character token that marks where the next text begins; a batch with a NUL inside a text
# is tokenised text by text instead.
#
# Most chunks are words that recur, so each short chunk's tokens are kept in a table (flat
# arrays of token infos and raw tokens, a slice per chunk): a batch of known chunks becomes a
# dict lookup per chunk and a NumPy gather, and the regex runs only for new chunks. A batch
# with a long chunk (Chinese has no spaces: a chunk can be a whole sentence) runs the regex
# over the joined string instead.
_SEPARATOR = " \x00 "
_SEPARATOR_TOKEN = "\x00"
_SEPARATOR_FLAG = 5
_CHUNK_MAX_CHARS = 40


class _ChunkTable:
    """chunk -> id; chunk ``i``'s tokens are ``raw[start[i] : start[i] + length[i]]`` and their
    infos ``info[...]`` (the same slice). Bounded: it starts over past ``_TOKEN_INFO_LIMIT`` chunks."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.ids: dict[str, int] = {}
        self.start = np.zeros(4096, dtype=np.int64)
        self.length = np.zeros(4096, dtype=np.int64)
        self.info = np.zeros(8192, dtype=np.uint64)
        self.raw: list[str] = []

    def add(self, chunk: str) -> int:
        raws = _find_tokens(chunk)
        get = _TOKEN_INFO.get
        infos = [get(raw) or _token_info(raw) for raw in raws]
        index, flat = len(self.ids), len(self.raw)
        if index == len(self.start):
            self.start = np.concatenate([self.start, np.zeros_like(self.start)])
            self.length = np.concatenate([self.length, np.zeros_like(self.length)])
        while flat + len(raws) > len(self.info):
            self.info = np.concatenate([self.info, np.zeros_like(self.info)])
        self.start[index], self.length[index] = flat, len(raws)
        self.info[flat : flat + len(raws)] = infos
        self.raw += raws
        self.ids[chunk] = index
        return index

    def positions(self, chunks: list[str]) -> np.ndarray | None:
        """Flat positions of the tokens of ``chunks``, in order; ``None`` if one is too long."""
        if len(self.ids) >= _TOKEN_INFO_LIMIT:
            self.clear()
        ids = list(map(self.ids.get, chunks))
        if None in ids:
            missing = [chunk for chunk, index in zip(chunks, ids) if index is None]
            if max(map(len, missing)) > _CHUNK_MAX_CHARS:
                return None
            known = self.ids
            ids = [index if index is not None else known.get(chunk) or self._add_once(chunk)
                   for chunk, index in zip(chunks, ids)]
        positions = np.array(ids, dtype=np.int64)
        lengths = self.length[positions]
        ends = np.cumsum(lengths)
        return np.repeat(self.start[positions] - (ends - lengths), lengths) + np.arange(ends[-1] if len(ends) else 0)

    def _add_once(self, chunk: str) -> int:
        index = self.ids.get(chunk)
        return self.add(chunk) if index is None else index


_CHUNKS = _ChunkTable()


def _infos_of(raw_tokens: list[str]) -> np.ndarray:
    infos = list(map(_TOKEN_INFO.get, raw_tokens))
    if None in infos:
        infos = [info or _token_info(raw) for raw, info in zip(raw_tokens, infos)]
    return np.array(infos, dtype=np.uint64).reshape(-1)


def _batch_tokens(texts: list[str]):
    """``(packed infos, raw_of, tokens per text)``: the infos (``_TOKEN_INFO``) of all tokens of
    the texts in order, a function from token positions to raw tokens, and the token count per
    text — or ``None`` when the texts were joined and separator tokens mark where each begins."""
    joined = _SEPARATOR.join(texts)
    if not joined.isascii():  # normalize() minus its casefold and "n't" split, done once below
        joined = _SEPARATOR.join([text if text.isascii() else
                                  unicodedata.normalize("NFKC", text).translate(_TRANSLATION) for text in texts])
    # Case folding and the "n't" split are per character and cannot reach across a separator.
    normalized = joined.casefold().replace("n't", " n't")
    if normalized.count(_SEPARATOR_TOKEN) == len(texts) - 1:
        table = _CHUNKS
        positions = table.positions(normalized.split())
        if positions is not None:
            raw = table.raw
            return table.info[positions], lambda at: [raw[i] for i in positions[at].tolist()], None
        raw_tokens = _find_tokens(normalized)
        return _infos_of(raw_tokens), lambda at: [raw_tokens[i] for i in at.tolist()], None
    raw_tokens, tokens_per_text = [], []
    for text in texts:
        found = _find_tokens(normalize(text))
        raw_tokens += found
        tokens_per_text.append(len(found))
    return _infos_of(raw_tokens), lambda at: [raw_tokens[i] for i in at.tolist()], tokens_per_text


def encode_for_scoring(texts: Iterable[str], config: TokenizerConfig):
    """What the NumPy scorer needs, cheaper than :func:`encode_batch_words`:
    ``(keys, key_text, n_texts, words, word_ids, word_splits)`` where ``keys`` are in no
    particular order, ``key_text`` gives each key's text, and — when the config has character
    n-grams — the unigram keys of word tokens are left out (the scorer adds a word's unigram
    with its character n-grams, once per distinct word of a text: the same features)."""
    return _encode(texts, config, words=bool(config.char_ngrams), scoring=True)


def _encode(texts: Iterable[str], config: TokenizerConfig, words: bool, scoring: bool = False):
    texts = texts if isinstance(texts, list) else list(texts)
    if texts:
        packed, raw_of, tokens_per_text = _batch_tokens(texts)
    else:
        packed, raw_of, tokens_per_text = np.zeros(0, dtype=np.uint64), None, []
    n_texts = len(texts)
    flag = ((packed >> np.uint64(32)) & np.uint64(0xF)).astype(np.int8)
    if tokens_per_text is None:  # one joined batch: drop the separators, count texts by them
        is_separator = flag == _SEPARATOR_FLAG
        token_text = np.cumsum(is_separator)
        token_index = np.flatnonzero(~is_separator)
        token_text, packed, flag = token_text[token_index], packed[token_index], flag[token_index]
    else:  # texts one by one: a NUL inside a text is an ordinary boundary
        separators = flag == _SEPARATOR_FLAG
        if separators.any():
            packed[separators], flag[separators] = np.uint64(_BOUNDARY_FLAG << 32), _BOUNDARY_FLAG
        token_text = np.repeat(np.arange(n_texts, dtype=np.int64), tokens_per_text)
        token_index = None
    n_tokens = len(packed)
    unigram = _mix_array(packed & np.uint64(0xFFFFFFFF))

    prefix = unigram  # prefix[i]: key of the n-gram (of the current length) starting at token i
    allowed_any = flag != _BOUNDARY_FLAG  # that n-gram crosses no boundary
    allowed_han = flag == _HAN_FLAG  # that n-gram is all Han characters
    is_word = flag == _WORD_FLAG
    unigrams = allowed_any & ~is_word if scoring and words else allowed_any
    keys = [unigram[unigrams]]
    key_text = [token_text[unigrams]]
    for n in range(2, config.max_n + 1):
        head = slice(0, max(n_tokens - n + 1, 0))  # n-grams that still fit
        tail = slice(n - 1, None)  # the token each of them adds
        prefix = _mix_array(prefix[head] * np.uint64(_GOLDEN) + unigram[tail])
        same_text = token_text[head] == token_text[tail]
        allowed_any = allowed_any[head] & (flag[tail] != _BOUNDARY_FLAG) & same_text
        allowed_han = allowed_han[head] & (flag[tail] == _HAN_FLAG) & same_text
        keep = np.zeros(len(prefix), dtype=bool)
        if n <= config.word_ngrams:
            keep |= allowed_any
        if n <= config.cjk_ngrams:
            keep |= allowed_han
        keys.append(prefix[keep])
        key_text.append(token_text[head][keep])

    if config.negation or config.lexicon:
        _add_negation_and_lexicon_keys(packed, unigram, token_text, config, keys, key_text)
    all_keys = np.concatenate(keys)
    all_text = np.concatenate(key_text)
    if scoring:
        word_parts = _distinct_words(is_word, unigram, token_text, token_index, raw_of, n_texts) if words else ([], None, None)
        return (all_keys, all_text, n_texts, *word_parts)
    order = np.argsort(all_text, kind="stable")
    row_splits = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_text, minlength=n_texts), out=row_splits[1:])
    if not words:
        return all_keys[order], row_splits, None
    return all_keys[order], row_splits, _distinct_words(is_word, unigram, token_text, token_index, raw_of, n_texts)


def _distinct_words(is_word, unigram, token_text, token_index, raw_of, n_texts):
    """``(words, word_ids, word_splits)``: see :func:`encode_batch_words`."""
    # Distinct words per text: word tokens are identified by their unigram key.
    word_positions = np.flatnonzero(is_word)
    word_keys = unigram[word_positions]
    # np.unique hashes in NumPy 2.4, which is far slower than sorting on many large integers.
    by_key = np.argsort(word_keys, kind="stable")
    sorted_keys = word_keys[by_key]
    starts = np.ones(len(sorted_keys), dtype=bool)
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    inverse = np.empty(len(sorted_keys), dtype=np.int64)
    inverse[by_key] = np.cumsum(starts) - 1
    first_positions = word_positions[by_key[starts]]
    if token_index is not None:
        first_positions = token_index[first_positions]
    word_list = raw_of(first_positions) if len(first_positions) else []
    n_words = max(len(word_list), 1)
    pairs = np.sort(token_text[word_positions] * n_words + inverse)
    if len(pairs) > 1:
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    pair_text, word_ids = np.divmod(pairs, n_words)
    word_splits = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair_text, minlength=n_texts), out=word_splits[1:])
    return word_list, word_ids.astype(np.int64), word_splits


_SCOPE_KEYS: dict[str, np.ndarray] = {}


def _scope_keys(name: str) -> np.ndarray:
    """The key of ``<not>`` (``"not"``) and the keys of the lexicon features, ``[bucket + 3, level - 1]``."""
    if not _SCOPE_KEYS:
        _SCOPE_KEYS["not"] = np.array([token_key(NOT_TOKEN)], dtype=np.uint64)
        _SCOPE_KEYS["lexicon_features"] = np.array(
            [[ngram_key([lexicon_token(b)] * level) for level in range(1, LEXICON_MAX_COUNT + 1)] for b in range(-3, 4)],
            dtype=np.uint64)
    return _SCOPE_KEYS[name]


def _add_negation_and_lexicon_keys(packed, unigram, token_text, config, keys: list, key_text: list) -> None:
    """The keys of :func:`_negation_and_lexicon_features`, vectorised over the batch's tokens
    (each text's tokens contiguous and in order) from the bits of their infos."""
    n_tokens = len(unigram)
    if n_tokens == 0:
        return
    positions = np.arange(n_tokens)
    high = (packed >> np.uint64(32)).astype(np.int64)
    is_negator = (high >> (_NEGATOR_BIT - 32)) & 1 == 1
    is_end = ((high & 0xF) == _BOUNDARY_FLAG) | ((high >> (_SCOPE_END_BIT - 32)) & 1 == 1)
    last_negator = np.maximum.accumulate(np.where(is_negator, positions, -1))
    previous_negator = np.concatenate(([-1], last_negator[:-1]))
    last_end = np.maximum.accumulate(np.where(is_end, positions, -1))
    inside = (previous_negator > last_end) & (previous_negator >= 0)
    inside &= token_text[np.maximum(previous_negator, 0)] == token_text
    if config.negation:
        keys.append(_mix_array(_scope_keys("not") * np.uint64(_GOLDEN) + unigram[inside]))
        key_text.append(token_text[inside])
    if config.lexicon:
        bucket = (high >> (_LEXICON_SHIFT - 32)) & 0xF
        found = np.flatnonzero(bucket)
        bucket = bucket[found] - 4
        bucket = np.where(inside[found], -bucket, bucket)
        pairs = np.sort(token_text[found] * 7 + (bucket + 3))
        if len(pairs):
            starts = np.flatnonzero(np.concatenate(([True], pairs[1:] != pairs[:-1])))
            counts = np.diff(np.append(starts, len(pairs)))
            unique = pairs[starts]
            table = _scope_keys("lexicon_features")
            for level in range(1, LEXICON_MAX_COUNT + 1):
                chosen = unique[counts >= level]
                keys.append(table[chosen % 7, level - 1])
                key_text.append(chosen // 7)


def detect_language(text: str) -> str:
    """Script-based language guess: ``"en"``, ``"zh"``, ``"mixed"`` or ``"und"``.

    Counts Han characters against Latin-script words (a Han character carries roughly a
    word's meaning). A script with at least 80% of those units decides (``"zh"`` for Han,
    ``"en"`` for Latin); both present below that share is ``"mixed"``. ``"und"`` (undetermined)
    when there are no letters, or when other scripts (Cyrillic, kana, Hangul, …) outnumber
    both. This is a script test, not a language model: French is reported as ``"en"``,
    Japanese written only in kanji as ``"zh"``.
    """
    if text.isascii():  # no Han, no other script: Latin letters or nothing (normalising changes neither)
        return "en" if _ASCII_LETTER_RE.search(text) else "und"
    normalized = normalize(text)
    if normalized.isascii():
        return "en" if _ASCII_LETTER_RE.search(normalized) else "und"
    han = len(_HAN_CHAR_RE.findall(normalized))
    latin = len(_LATIN_WORD_RE.findall(normalized))
    other = len(_OTHER_LETTER_RE.findall(normalized))
    if han + latin == 0 or other > han + latin:
        return "und"
    if han >= 0.8 * (han + latin):
        return "zh"
    if latin >= 0.8 * (han + latin):
        return "en"
    return "mixed"
