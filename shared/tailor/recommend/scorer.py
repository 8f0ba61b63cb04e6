"""Serve the recommender from exported arrays, with NumPy only (never TensorFlow).

The model is trained by :mod:`tailor.training.recommender` (Keras); this module is the serving
half. Both halves compute the same functions, and ``tests/unit/test_recommender_parity.py``
checks that they agree.

**Retrieval (top-K) scores.** One user vector, one item vector, one dot product:

- user vector ``u = user_embedding[user] + pooled(history)``, where ``pooled`` is the weighted
  mean of ``history_embeddings`` over the user's most recent ``history_length`` items (newest
  first; ``position_weights[p]`` is the weight of the p-th newest). An anonymous session has no
  user embedding (zeros: training drops the user embedding for a share of examples so that the
  history alone also works).
- item vector ``v = item_embedding[item] + content(item)``, where ``content`` is the mean of the
  item's category embeddings plus the mean of its title/description token embeddings
  (tokens from :mod:`tailor.sentiment.text`). A new item has no id embedding; its content alone gives it
  a vector (:meth:`Recommender.item_vector_from_content`).
- vectors have ``dim + 1`` columns: the last item column is the item's bias (popularity in the
  model's eyes) and the last user column is a constant 1, so ``score = [u, 1] · v``.

**Ratings.** ``global_mean + user_bias + item_bias + user_factors · item_factors``, clipped to the
rating scale; the exported user factors already include the implicit-feedback term (the items
the user rated), see the training module.

Artifact: :class:`RecommenderArtifact` = a dict of plain arrays + a JSON-able config, stored as
``recommender.npz`` + ``recommender.json`` (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tailor.core.errors import NotFound, Unavailable
from tailor.models.artifact import read_files, write_files
from tailor.sentiment.text import TokenizerConfig, encode_batch

FORMAT_VERSION = 1
WEIGHTS_FILE = "recommender.npz"
CONFIG_FILE = "recommender.json"
ARTIFACT_FILES = (WEIGHTS_FILE, CONFIG_FILE)

RETRIEVAL_ARRAYS = (
    "user_ids", "item_ids", "user_embeddings", "history_embeddings", "position_weights", "user_history",
    "seen_indptr", "seen_indices", "item_vectors", "category_names", "category_embeddings",
    "item_category_indptr", "item_category_indices", "token_keys", "token_embeddings",
    "item_popularity", "user_activity", "user_log_normalizer",
)
RATING_ARRAYS = ("rating_user_factors", "rating_item_factors", "rating_user_bias", "rating_item_bias")

# How an audience ranks users for one item (chosen on the validation split by the trainer):
# "score" is the raw user-item score; "activity" adds log P(item | user) and the log of the
# user's activity, i.e. the expected number of times the user picks the item next.
AUDIENCE_RULES = ("score", "activity")


# --------------------------------------------------------------------------- content features


def normalize_category(name: str) -> str:
    """Categories match case-insensitively and ignore surrounding/double spaces."""
    return " ".join(str(name).split()).casefold()


def split_categories(categories: str | Iterable[str] | None) -> list[str]:
    """A ``|``-separated string (the dataset format) or a list, normalised, empty names dropped."""
    if categories is None:
        return []
    if isinstance(categories, str):
        categories = categories.split("|")
    names = [normalize_category(name) for name in categories]
    return list(dict.fromkeys(name for name in names if name))


def item_text(title: str | None, description: str | None) -> str:
    return " ".join(part for part in (title, description) if part)


def text_token_keys(texts: Sequence[str], tokenizer: TokenizerConfig) -> list[np.ndarray]:
    """Distinct token keys of each text, in first-occurrence order (the item tower's token bag)."""
    keys, splits = encode_batch(texts, tokenizer)
    result = []
    for start, end in zip(splits[:-1], splits[1:]):
        text_keys = keys[start:end]
        _, first = np.unique(text_keys, return_index=True)
        result.append(text_keys[np.sort(first)])
    return result


def content_rows(categories: Sequence[Sequence[str]], texts: Sequence[str], *, category_names: np.ndarray,
                 token_keys: np.ndarray, tokenizer: TokenizerConfig, max_tokens: int
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per item, the rows of its known categories and of its known tokens (first ``max_tokens``).

    ``category_names`` and ``token_keys`` are sorted vocabularies; unknown names and keys have
    no embedding and are skipped, as a word never seen in training would be.
    """
    category_rows = []
    for item_names in categories:
        names = np.asarray(list(item_names), dtype=str)
        rows = np.searchsorted(category_names, names) if len(category_names) else np.zeros(0, np.int64)
        known = rows < len(category_names)
        known[known] = category_names[rows[known]] == names[known]
        category_rows.append(rows[known].astype(np.int64))
    token_rows = []
    for keys in text_token_keys(texts, tokenizer):
        rows = np.searchsorted(token_keys, keys) if len(token_keys) else np.zeros(0, np.int64)
        known = rows < len(token_keys)
        known[known] = token_keys[rows[known]] == keys[known]
        token_rows.append(rows[known][:max_tokens].astype(np.int64))
    return category_rows, token_rows


def bag_mean(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean of the given rows of ``table`` (zeros when there are none)."""
    if len(rows) == 0:
        return np.zeros(table.shape[1], dtype=table.dtype)
    return table[rows].mean(axis=0)


def pooled_history(history_embeddings: np.ndarray, position_weights: np.ndarray, history: np.ndarray,
                   chunk: int = 4096) -> np.ndarray:
    """Weighted mean of history item embeddings; ``history`` is ``(n, L)``, newest first, ``-1`` pads.

    Works through ``chunk`` rows at a time so that the ``(rows, L, dim)`` gather stays small.
    """
    pooled = np.zeros((len(history), history_embeddings.shape[1]), dtype=np.float32)
    for start in range(0, len(history), chunk):
        rows = history[start: start + chunk]
        valid = rows >= 0
        weights = np.where(valid, position_weights[None, : rows.shape[1]], 0.0).astype(np.float32)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-6)
        embedded = history_embeddings[np.where(valid, rows, 0)]  # (rows, L, dim)
        pooled[start: start + chunk] = np.einsum("nl,nld->nd", weights, embedded)
    return pooled


# --------------------------------------------------------------------------- artifact


@dataclass
class RecommenderArtifact:
    """Exported weights (``arrays``, see ``RETRIEVAL_ARRAYS``/``RATING_ARRAYS``) and config."""

    arrays: dict[str, np.ndarray]
    config: dict

    def __post_init__(self) -> None:
        missing = [name for name in RETRIEVAL_ARRAYS if name not in self.arrays]
        if missing:
            raise ValueError(f"recommender artifact is missing arrays: {', '.join(missing)}")
        if self.config.get("rating") is not None:
            missing = [name for name in RATING_ARRAYS if name not in self.arrays]
            if missing:
                raise ValueError(f"recommender artifact has a rating config but no {', '.join(missing)}")
        a = self.arrays
        n_users, n_items = len(a["user_ids"]), len(a["item_ids"])
        dim = a["user_embeddings"].shape[1]
        expected = {
            "user_embeddings": (n_users, dim), "history_embeddings": (n_items, dim),
            "user_history": (n_users, len(a["position_weights"])), "seen_indptr": (n_users + 1,),
            "item_vectors": (n_items, dim + 1), "category_embeddings": (len(a["category_names"]), dim + 1),
            "item_category_indptr": (n_items + 1,), "token_embeddings": (len(a["token_keys"]), dim + 1),
            "item_popularity": (n_items,), "user_activity": (n_users,), "user_log_normalizer": (n_users,),
        }
        for name, shape in expected.items():
            if a[name].shape != shape:
                raise ValueError(f"{name} has shape {a[name].shape}, expected {shape}")
        for name in ("category_names", "token_keys"):
            values = a[name]
            if len(values) > 1 and np.any(values[1:] <= values[:-1]):
                raise ValueError(f"{name} must be sorted and free of duplicates")

    # Arrays with one row per user (``user_ids`` order); seen_indptr/seen_indices are per-user CSR.
    USER_ROW_ARRAYS = ("user_ids", "user_embeddings", "user_history", "user_activity", "user_log_normalizer",
                       "rating_user_factors", "rating_user_bias", "reason_history")

    def without_users(self, user_ids: Iterable) -> RecommenderArtifact:
        """The same model with every row of the given users removed (privacy erase).

        The users become unknown to the scorer (anonymous fallback, never in an audience);
        item-side weights are kept: they hold no per-user row.
        """
        ids = self.arrays["user_ids"].astype(str)
        drop = np.isin(ids, np.asarray([str(u) for u in user_ids], dtype=str))
        if not drop.any():
            return self
        keep = ~drop
        arrays = dict(self.arrays)
        for name in self.USER_ROW_ARRAYS:
            if name in arrays:
                arrays[name] = arrays[name][keep]
        indptr = self.arrays["seen_indptr"]
        counts = np.diff(indptr)
        arrays["seen_indices"] = self.arrays["seen_indices"][np.repeat(keep, counts)]
        new_indptr = np.zeros(int(keep.sum()) + 1, dtype=indptr.dtype)
        np.cumsum(counts[keep], out=new_indptr[1:])
        arrays["seen_indptr"] = new_indptr
        return RecommenderArtifact(arrays, dict(self.config))

    def to_files(self) -> dict[str, bytes]:
        """``{"recommender.npz": weights, "recommender.json": config}``, stored side by side."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)  # type: ignore[arg-type]  # numpy's stub types the first keyword as allow_pickle
        config = json.dumps({"format_version": FORMAT_VERSION, **self.config}, indent=2, sort_keys=True)
        return {WEIGHTS_FILE: buffer.getvalue(), CONFIG_FILE: config.encode("utf-8")}

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> RecommenderArtifact:
        missing = [name for name in ARTIFACT_FILES if name not in files]
        if missing:
            raise ValueError(f"recommender artifact is missing {', '.join(missing)}")
        config = json.loads(files[CONFIG_FILE])
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"recommender artifact format {config.get('format_version')!r} is not supported "
                             f"(this code reads format {FORMAT_VERSION})")
        with np.load(io.BytesIO(files[WEIGHTS_FILE]), allow_pickle=False) as weights:
            arrays = {name: weights[name] for name in weights.files}
        return cls(arrays, config)

    def save(self, directory: str | os.PathLike) -> None:
        write_files(directory, self.to_files())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> RecommenderArtifact:
        return cls.from_files(read_files(directory, ARTIFACT_FILES))


# --------------------------------------------------------------------------- scorer


Scored = list[tuple[str, float]]


@dataclass(frozen=True)
class FoldedUser:
    """A customer as the model sees them at request time: the training history merged with the
    events that arrived since (``Recommender.fold_in``), pooled exactly as the user tower pools."""

    vector: np.ndarray  # (dim + 1,): user embedding (zeros for a customer new since training) + pooled history, 1
    history_rows: np.ndarray  # the merged history, newest first (what EASE scores from)
    seen_rows: np.ndarray  # training interactions and every recent event's item
    reason_rows: np.ndarray  # the items a reason may cite, newest first (never a disliked one)
    known: bool  # the model has the customer's own embedding
    new_items: int  # recent events' items that were not in the training history
SCORERS = ("two_tower", "ease", "popularity")


class Recommender:
    """Answers recommendation queries from one artifact; build once per container and reuse.

    Ids are strings (other values are converted with ``str``). Unknown user or item ids raise
    :class:`tailor.core.errors.NotFound`, so a caller can fall back (e.g. to :meth:`popular`).
    """

    def __init__(self, artifact: RecommenderArtifact):
        a, config = artifact.arrays, artifact.config
        self.artifact = artifact
        self.config = config
        self.model_version = str(config.get("model_version", "unversioned"))
        self.tokenizer = TokenizerConfig.from_dict(config["tokenizer"])
        self.max_tokens = int(config["max_tokens"])
        self.audience_rule = config.get("audience_rule", "score")
        if self.audience_rule not in AUDIENCE_RULES:
            raise ValueError(f"unknown audience_rule {self.audience_rule!r}")
        self.user_ids = a["user_ids"].astype(str)
        self._user_index = {user: index for index, user in enumerate(self.user_ids.tolist())}
        self._item_ids = a["item_ids"].astype(str).tolist()
        self._item_index = {item: index for index, item in enumerate(self._item_ids)}
        self._history_embeddings = a["history_embeddings"].astype(np.float32)
        self._position_weights = a["position_weights"].astype(np.float32)
        self._user_history = a["user_history"].astype(np.int64)
        self._seen_indptr, self._seen_indices = a["seen_indptr"], a["seen_indices"]
        self._category_names = a["category_names"].astype(str)
        self._category_embeddings = a["category_embeddings"].astype(np.float32)
        self._token_keys = a["token_keys"].astype(np.uint64)
        self._token_embeddings = a["token_embeddings"].astype(np.float32)
        self._item_popularity = a["item_popularity"].astype(np.float32)
        self._user_activity = a["user_activity"].astype(np.float32)
        self._user_log_normalizer = a["user_log_normalizer"].astype(np.float32)
        self._item_categories = np.split(a["item_category_indices"].astype(np.int64), a["item_category_indptr"][1:-1])
        self._items = np.ascontiguousarray(a["item_vectors"], dtype=np.float32)
        # User vectors are computed once here: serving a known user is then one matmul.
        pooled = pooled_history(self._history_embeddings, self._position_weights, self._user_history)
        self._user_embeddings = a["user_embeddings"].astype(np.float32)
        users = self._user_embeddings + pooled
        self._users = np.hstack([users, np.ones((len(users), 1), np.float32)])
        self._unit_items: np.ndarray | None = None
        self._category_members: dict[str, np.ndarray] | None = None
        self._item_seen_by: tuple[np.ndarray, np.ndarray] | None = None
        rating = config.get("rating")
        self._rating = None if rating is None else RatingPredictor(a, rating, self._user_index, self._item_index)
        self._n_trained_items = len(self._item_ids)
        self._item_ids_view: tuple[str, ...] | None = None
        # Which candidate the training job chose to serve (SCORERS): the two towers, EASE's
        # item-item weights (small catalogs), or popularity, whichever won on validation.
        self.scorer = config.get("scorer", "two_tower")
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}")
        self._ease = a.get("ease_weights")
        if self.scorer == "ease" and (self._ease is None or self._ease.shape != (self._n_trained_items,) * 2):
            raise ValueError("an EASE-served artifact needs ease_weights of shape (n_items, n_items)")
        # Items the user may be reminded of ("because you chose ..."): recent items minus the ones
        # they rated low or reviewed negatively (training decides; older artifacts: the history).
        self._reason_history = a["reason_history"].astype(np.int64) if "reason_history" in a else self._user_history

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> Recommender:
        return cls(RecommenderArtifact.from_files(files))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Recommender:
        return cls(RecommenderArtifact.load(directory))

    # ----------------------------------------------------------------- lookups

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Item ids in row order (cached: cheap to call in a loop)."""
        if self._item_ids_view is None:
            self._item_ids_view = tuple(self._item_ids)
        return self._item_ids_view

    def item_id(self, row: int) -> str:
        return self._item_ids[row]

    @property
    def n_items(self) -> int:
        return len(self._item_ids)

    def has_user(self, user_id) -> bool:
        return str(user_id) in self._user_index

    def has_item(self, item_id) -> bool:
        return str(item_id) in self._item_index

    def user_row(self, user_id) -> int:
        """Row of the user in :attr:`user_matrix` (``NotFound`` if unknown)."""
        try:
            return self._user_index[str(user_id)]
        except KeyError:
            raise NotFound(f"unknown user {str(user_id)!r}: the current model has no interactions for it") from None

    def item_row(self, item_id) -> int:
        """Row of the item in :attr:`item_matrix` (``NotFound`` if unknown)."""
        try:
            return self._item_index[str(item_id)]
        except KeyError:
            raise NotFound(f"unknown item {str(item_id)!r}") from None

    def _known_items(self, item_ids: Iterable) -> np.ndarray:
        """Indices of the ids that are in the catalog; unknown ids are ignored (filters, exclusions)."""
        index = self._item_index
        return np.fromiter((index[i] for i in map(str, item_ids) if i in index), dtype=np.int64)

    @property
    def user_matrix(self) -> np.ndarray:
        """Read-only ``(n_users, dim + 1)`` user vectors, rows in ``user_ids`` order."""
        view = self._users.view()
        view.flags.writeable = False
        return view

    @property
    def item_matrix(self) -> np.ndarray:
        """Read-only ``(n_items, dim + 1)`` item vectors (last column: bias), rows in ``item_ids`` order."""
        view = self._items.view()
        view.flags.writeable = False
        return view

    def seen_rows(self, user_row: int) -> np.ndarray:
        """Item rows the user (by row) interacted with in the training data."""
        return self._seen_indices[self._seen_indptr[user_row]: self._seen_indptr[user_row + 1]]

    def recent_item_rows(self, user_id) -> np.ndarray:
        """Rows of the user's latest items (the history the model pools), newest first."""
        history = self._user_history[self.user_row(user_id)]
        return history[history >= 0]

    def seen_items(self, user_id) -> list[str]:
        """Items the user interacted with in the training data."""
        return [self._item_ids[i] for i in self.seen_rows(self.user_row(user_id))]

    # ----------------------------------------------------------------- ranking

    def _scores_of_history(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Scores of every item (fresh array, ``n_items`` long) under the served scorer, for a
        user or session with item ``rows`` in its history and two-tower ``vector``."""
        if self.scorer == "two_tower":
            return self._items @ vector
        scores = np.full(self.n_items, -np.inf, dtype=np.float32)  # items added after training: unscored
        if self.scorer == "ease":
            assert self._ease is not None  # checked when the artifact was loaded
            rows = np.unique(np.asarray(rows, dtype=np.int64))
            rows = rows[rows < self._n_trained_items]
            scores[: self._n_trained_items] = self._ease[rows].sum(axis=0) if len(rows) else 0.0
        else:
            scores[: self._n_trained_items] = self._item_popularity
        return scores

    def user_scores(self, user_id) -> np.ndarray:
        """The served scorer's score of every item for a known user."""
        user = self.user_row(user_id)
        return self._scores_of_history(self.seen_rows(user), self._users[user])

    def score_floor(self, user_id) -> float:
        """Below this score an item is filler, not a match: the median score of a fixed spread of
        up to 256 catalog items for this user (EASE: 0, no evidence either way)."""
        return self._floor(self.user_scores(user_id))

    def _floor(self, scores: np.ndarray) -> float:
        if self.scorer == "ease":
            return 0.0
        sample = scores[:: max(1, len(scores) // 256)]
        sample = sample[np.isfinite(sample)]
        return float(np.median(sample)) if len(sample) else -np.inf

    def reason_item_rows(self, user_id) -> np.ndarray:
        """Rows of the user's recent items that a reason may cite, newest first."""
        history = self._reason_history[self.user_row(user_id)]
        return history[history >= 0]

    def _top(self, scores: np.ndarray, k: int, excluded: np.ndarray, allowed: np.ndarray | None) -> Scored:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if allowed is not None:
            candidates = np.setdiff1d(allowed, excluded, assume_unique=False)
            candidate_scores = scores[candidates]
        else:
            candidates = None
            candidate_scores = scores
            candidate_scores[excluded] = -np.inf  # scores is a fresh array owned by the caller
        n = len(candidate_scores)
        if n == 0:
            return []
        take = min(k, n)
        top = np.argpartition(-candidate_scores, take - 1)[:take] if take < n else np.arange(n)
        top = top[np.argsort(-candidate_scores[top], kind="stable")]
        top = top[np.isfinite(candidate_scores[top])]
        rows = top if candidates is None else candidates[top]
        return [(self._item_ids[row], float(candidate_scores[i])) for row, i in zip(rows, top)]

    def _filters(self, exclude: Iterable, allowed_items: Iterable | None, categories: Iterable[str] | None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        excluded = self._known_items(exclude)
        allowed = None if allowed_items is None else self._known_items(allowed_items)
        if categories is not None:
            in_categories = self.items_in_categories(categories)
            allowed = in_categories if allowed is None else np.intersect1d(allowed, in_categories)
        return excluded, allowed

    def recommend(self, user_id, k: int = 10, exclude_seen: bool = True, exclude: Iterable = (),
                  allowed_items: Iterable | None = None, categories: Iterable[str] | None = None) -> Scored:
        """Top-``k`` ``(item_id, score)`` for a known user, best first.

        ``exclude_seen`` drops the items the user interacted with in training; ``exclude`` drops
        more ids; ``allowed_items`` and ``categories`` (any of) restrict the candidates. Unknown
        ids in ``exclude``/``allowed_items`` are ignored.
        """
        user = self.user_row(user_id)
        excluded, allowed = self._filters(exclude, allowed_items, categories)
        if exclude_seen:
            excluded = np.concatenate([excluded, self.seen_rows(user)])
        return self._top(self._scores_of_history(self.seen_rows(user), self._users[user]), k, excluded, allowed)

    # ----------------------------------------------------------------- fold-in

    def fold_in(self, user_id, recent_item_ids: Sequence, disliked: Iterable = ()) -> FoldedUser:
        """The customer with the events that arrived after training (``recent_item_ids``, newest
        first; unknown ids ignored): the history the user tower pools becomes the recent items,
        then the training history, each item once, cut at the model's history length, and the
        user's own embedding is kept. A customer the model has never seen gets the pooled recent
        items alone (a session vector); with no known item at all, ``NotFound``."""
        index, trained = self._item_index, self._n_trained_items
        recent = [index[i] for i in map(str, recent_item_ids) if i in index]
        dislikes = {index[i] for i in map(str, disliked) if i in index}
        known = self.has_user(user_id)
        if known:
            row = self.user_row(user_id)
            history, reasons, seen, own = (self.recent_item_rows(user_id), self.reason_item_rows(user_id),
                                           self.seen_rows(row), self._user_embeddings[row])
        else:
            if not any(r < trained for r in recent):
                raise NotFound(f"unknown user {str(user_id)!r}: no interactions in the model and no recent "
                               "event on an item it knows")
            history = reasons = seen = np.zeros(0, np.int64)
            own = np.zeros(self._user_embeddings.shape[1], np.float32)
        length = len(self._position_weights)
        # Items added after training have no history embedding: excluded as seen, not pooled.
        merged = np.array(list(dict.fromkeys([r for r in recent if r < trained] + history.tolist()))[:length],
                          dtype=np.int64)
        new_items = len(set(recent) - set(seen.tolist()))
        if known and not new_items and np.array_equal(merged, history[:length]):
            vector = self._users[row]  # nothing new: exactly the vector computed at load
        else:
            padded = np.full((1, length), -1, dtype=np.int64)
            padded[0, : len(merged)] = merged
            pooled = pooled_history(self._history_embeddings, self._position_weights, padded)[0]
            vector = np.append(own + pooled, np.float32(1.0)).astype(np.float32)
        reason_rows = np.array(list(dict.fromkeys(
            [r for r in recent if r < trained and r not in dislikes] + reasons.tolist())), dtype=np.int64)
        return FoldedUser(vector, merged, np.union1d(seen, np.array(recent, dtype=np.int64)).astype(np.int64),
                          reason_rows, known, new_items)

    def folded_scores(self, folded: FoldedUser) -> np.ndarray:
        """The served scorer's score of every item for a folded-in customer (a fresh array)."""
        return self._scores_of_history(folded.seen_rows, folded.vector)

    def folded_floor(self, folded: FoldedUser) -> float:
        """``score_floor`` for a folded-in customer."""
        return self._floor(self.folded_scores(folded))

    def recommend_folded(self, folded: FoldedUser, k: int = 10, exclude_seen: bool = True, exclude: Iterable = (),
                         allowed_items: Iterable | None = None, categories: Iterable[str] | None = None) -> Scored:
        """``recommend`` for a folded-in customer: the recent events' items are seen too."""
        return self.recommend_folded_with_floor(folded, k, exclude_seen, exclude, allowed_items, categories)[0]

    def recommend_folded_with_floor(self, folded: FoldedUser, k: int = 10, exclude_seen: bool = True,
                                    exclude: Iterable = (), allowed_items: Iterable | None = None,
                                    categories: Iterable[str] | None = None) -> tuple[Scored, float]:
        """``recommend_folded`` and ``folded_floor`` from one scoring of the catalog (the request's
        one full matmul; the floor is read before the exclusions overwrite scores)."""
        excluded, allowed = self._filters(exclude, allowed_items, categories)
        if exclude_seen:
            excluded = np.concatenate([excluded, folded.seen_rows])
        scores = self.folded_scores(folded)
        floor = self._floor(scores)
        return self._top(scores, k, excluded, allowed), floor

    def score_items(self, user_id, item_ids: Sequence) -> Scored:
        """``(item_id, score)`` for each given item, in input order (re-ranking a candidate list)."""
        return self.score_items_folded(self.fold_in(user_id, []), item_ids)

    def score_items_folded(self, folded: FoldedUser, item_ids: Sequence) -> Scored:
        """``score_items`` for a folded-in customer."""
        ids = [str(item) for item in item_ids]
        unknown = [item for item in ids if item not in self._item_index]
        if unknown:
            raise NotFound(f"unknown items: {', '.join(unknown[:10])}" + (" …" if len(unknown) > 10 else ""),
                           details={"unknown_items": unknown})
        rows = np.array([self._item_index[item] for item in ids], dtype=np.int64)
        scores = self.folded_scores(folded)[rows] if len(rows) else np.zeros(0)
        finite = np.isfinite(scores)
        if not finite.all():  # items newer than an EASE/popularity model rank last, still as numbers
            scores = np.where(finite, scores, (scores[finite].min() if finite.any() else 0.0) - 1.0)
        return [(item, float(score)) for item, score in zip(ids, scores)]

    def session_vector(self, recent_items: Sequence) -> np.ndarray:
        """The user vector of an anonymous session; ``recent_items`` oldest first, unknown ids ignored."""
        known = [self._item_index[item] for item in map(str, recent_items)
                 if item in self._item_index and self._item_index[item] < self._n_trained_items]
        if not known:
            raise NotFound("none of the recent items is known to the current model")
        history = np.full((1, len(self._position_weights)), -1, dtype=np.int64)
        newest_first = list(dict.fromkeys(reversed(known)))[: history.shape[1]]
        history[0, : len(newest_first)] = newest_first
        pooled = pooled_history(self._history_embeddings, self._position_weights, history)[0]
        return np.append(pooled, np.float32(1.0)).astype(np.float32)

    def from_recent_items(self, item_ids: Sequence, k: int = 10, exclude: Iterable = (),
                          allowed_items: Iterable | None = None, categories: Iterable[str] | None = None) -> Scored:
        """Recommendations for an anonymous session from the items it touched (oldest first).

        The session's items are excluded from the result. Items the model has no history
        embedding for (unknown, or added after training) are ignored; if none is known,
        :class:`NotFound` is raised.
        """
        vector = self.session_vector(item_ids)
        excluded, allowed = self._filters(list(exclude) + list(item_ids), allowed_items, categories)
        rows = [self._item_index[item] for item in map(str, item_ids) if item in self._item_index]
        return self._top(self._scores_of_history(np.array(rows, dtype=np.int64), vector), k, excluded, allowed)

    def popular(self, k: int = 10, exclude: Iterable = (), allowed_items: Iterable | None = None,
                categories: Iterable[str] | None = None) -> Scored:
        """Most interacted-with items in the training data (the cold-start fallback)."""
        excluded, allowed = self._filters(exclude, allowed_items, categories)
        popularity = np.zeros(self.n_items, dtype=np.float32)
        popularity[: len(self._item_popularity)] = self._item_popularity
        return self._top(popularity, k, excluded, allowed)

    # ----------------------------------------------------------------- items

    def items_in_categories(self, categories: Iterable[str]) -> np.ndarray:
        """Indices of items with any of the given categories (case-insensitive)."""
        if self._category_members is None:
            members: dict[str, list[int]] = {}
            for item, rows in enumerate(self._item_categories):
                for row in rows:
                    members.setdefault(self._category_names[row], []).append(item)
            self._category_members = {name: np.array(items, dtype=np.int64) for name, items in members.items()}
        looked_up = [self._category_members.get(name) for name in split_categories(categories)]
        found = [items for items in looked_up if items is not None]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def _content(self, title: str | None, categories, description: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Content-only vector and the known category rows of an item description."""
        category_rows, token_rows = content_rows(
            [split_categories(categories)], [item_text(title, description)], category_names=self._category_names,
            token_keys=self._token_keys, tokenizer=self.tokenizer, max_tokens=self.max_tokens)
        vector = bag_mean(self._category_embeddings, category_rows[0]) + bag_mean(self._token_embeddings, token_rows[0])
        return vector.astype(np.float32), category_rows[0]

    def item_vector_from_content(self, title: str | None, categories: str | Iterable[str] | None = None,
                                 description: str | None = None) -> np.ndarray:
        """An item vector (``dim + 1`` values, the last one the bias) from content alone."""
        return self._content(title, categories, description)[0]

    def add_item(self, item_id, title: str | None, categories: str | Iterable[str] | None = None,
                 description: str | None = None) -> np.ndarray:
        """Add an item that arrived after training, with its content-only vector; returns the vector.

        It can then be recommended, re-ranked and used in :meth:`similar_items`. Each call copies
        the item matrix (O(catalog)): meant for the few items that arrive between two trainings.
        """
        item = str(item_id)
        if item in self._item_index:
            raise ValueError(f"item {item!r} is already in the model")
        vector, category_rows = self._content(title, categories, description)
        self._items = np.vstack([self._items, vector[None, :]])
        self._item_index[item] = len(self._item_ids)
        self._item_ids.append(item)
        self._item_categories.append(category_rows)
        self._item_ids_view = None
        self._unit_items = None
        self._category_members = None
        return vector.copy()

    def _unit_vectors(self) -> np.ndarray:
        if self._unit_items is None:
            vectors = self._items[:, :-1]  # the bias column is popularity, not similarity
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self._unit_items = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return self._unit_items

    @property
    def unit_item_matrix(self) -> np.ndarray:
        """Read-only unit-length item vectors without the bias: what :meth:`similar_items` compares."""
        view = self._unit_vectors().view()
        view.flags.writeable = False
        return view

    def similar_items(self, item_id, k: int = 10, exclude: Iterable = (), allowed_items: Iterable | None = None,
                      categories: Iterable[str] | None = None) -> Scored:
        """Items whose vectors point the same way (cosine similarity), the item itself excluded."""
        item = self.item_row(item_id)
        unit = self._unit_vectors()
        excluded, allowed = self._filters(exclude, allowed_items, categories)
        excluded = np.append(excluded, item)
        return self._top(unit @ unit[item], k, excluded, allowed)

    # ----------------------------------------------------------------- audiences

    def audience_matrix(self, item_rows: np.ndarray, rule: str | None = None) -> np.ndarray:
        """``(n_users, len(item_rows))``: how likely each user is to engage with each item.

        ``rule`` defaults to the one the trainer chose on its validation split (``AUDIENCE_RULES``).
        """
        rule = self.audience_rule if rule is None else rule
        if rule not in AUDIENCE_RULES:
            raise ValueError(f"unknown audience rule {rule!r}")
        scores = self._users @ self._items[np.asarray(item_rows, dtype=np.int64)].T
        if rule == "activity":
            scores += (np.log1p(self._user_activity) - self._user_log_normalizer)[:, None]
        return scores

    def audience_scores(self, item_id) -> np.ndarray:
        """Per user (in ``user_ids`` order), how likely they are to engage with the item."""
        return self.audience_matrix(np.array([self.item_row(item_id)]))[:, 0]

    def audience(self, item_id, k: int = 50, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top-``k`` ``(user_id, score)`` most likely to engage with the item, best first."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        item = self.item_row(item_id)
        scores = self.audience_scores(item_id)
        if exclude_seen and item < self._n_trained_items:
            scores[self._users_who_saw(item)] = -np.inf
        take = min(k, len(scores))
        top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return [(self.user_ids[u], float(scores[u])) for u in top]

    def users_who_engaged(self, item_rows: Iterable[int]) -> np.ndarray:
        """Rows of users who interacted with any of the items in the training data."""
        rows = [int(r) for r in item_rows if int(r) < self._n_trained_items]
        if not rows:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([self._users_who_saw(r) for r in rows]))

    def _users_who_saw(self, item: int) -> np.ndarray:
        if self._item_seen_by is None:
            users = np.repeat(np.arange(len(self.user_ids)), np.diff(self._seen_indptr))
            order = np.argsort(self._seen_indices, kind="stable")
            indptr = np.zeros(self._n_trained_items + 1, dtype=np.int64)
            np.cumsum(np.bincount(self._seen_indices, minlength=self._n_trained_items), out=indptr[1:])
            self._item_seen_by = (indptr, users[order])
        indptr, users = self._item_seen_by
        return users[indptr[item]: indptr[item + 1]]

    # ----------------------------------------------------------------- ratings

    @property
    def has_ratings(self) -> bool:
        return self._rating is not None

    def predict_ratings(self, user_ids: Sequence, item_ids: Sequence) -> np.ndarray:
        """Predicted ratings for (user, item) pairs; see :meth:`RatingPredictor.predict`."""
        if self._rating is None:
            raise Unavailable("the current model has no rating model: the interactions had no rating values")
        return self._rating.predict(user_ids, item_ids)

    def predict_rating(self, user_id, item_id) -> float:
        return float(self.predict_ratings([user_id], [item_id])[0])


class RatingPredictor:
    """Biased matrix factorisation: ``mean + user_bias + item_bias + user_factors · item_factors``.

    ``user_index``/``item_index`` map ids to rows. A user or item the rating model has not seen
    contributes no bias and no factors (the prediction falls back towards the global mean),
    which is the best guess without data. Predictions are clipped to ``[low, high]``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], rating_config: Mapping,
                 user_index: Mapping[str, int], item_index: Mapping[str, int]):
        self.mean = float(rating_config["global_mean"])
        self.low, self.high = float(rating_config["min"]), float(rating_config["max"])
        self._user_factors = arrays["rating_user_factors"].astype(np.float32)
        self._item_factors = arrays["rating_item_factors"].astype(np.float32)
        self._user_bias = arrays["rating_user_bias"].astype(np.float32)
        self._item_bias = arrays["rating_item_bias"].astype(np.float32)
        self._user_index, self._item_index = user_index, item_index

    def predict(self, user_ids: Sequence, item_ids: Sequence) -> np.ndarray:
        if len(user_ids) != len(item_ids):
            raise ValueError("user_ids and item_ids must have the same length")
        users = np.array([self._user_index.get(str(u), -1) for u in user_ids], dtype=np.int64)
        items = np.array([self._item_index.get(str(i), -1) for i in item_ids], dtype=np.int64)
        items[items >= len(self._item_bias)] = -1  # items added after training have no rating factors
        known_user, known_item = users >= 0, items >= 0
        prediction = np.full(len(users), self.mean, dtype=np.float64)
        prediction[known_user] += self._user_bias[users[known_user]]
        prediction[known_item] += self._item_bias[items[known_item]]
        both = known_user & known_item
        prediction[both] += np.einsum("nk,nk->n", self._user_factors[users[both]], self._item_factors[items[both]])
        return np.clip(prediction, self.low, self.high)
