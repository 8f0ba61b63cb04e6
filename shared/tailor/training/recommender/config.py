"""What a recommender training run can be told: the retrieval and the rating model's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from tailor.sentiment.text import TokenizerConfig

FULL_SOFTMAX_MAX_ITEMS = 20_000


@dataclass(frozen=True)
class RetrievalConfig:
    """Defaults chosen on the validation split of ml-100k's T1 training part (never its test)."""

    embedding_dim: int = 64
    history_length: int = 50
    recency_tau: float = 20.0  # initial position weights exp(-p / tau), then learned
    learn_position_weights: bool = True
    user_dropout: float = 0.1  # share of examples trained without the user embedding (sessions)
    content_loss_weight: float = 0.3
    mask_history: bool = True
    softmax: str = "auto"  # "full", "in_batch", or "auto" (full up to FULL_SOFTMAX_MAX_ITEMS)
    learning_rate: float = 3e-3
    batch_size: int = 512
    max_epochs: int = 12
    patience: int = 1  # validation NDCG rises smoothly, then falls: one worse epoch is enough
    token_min_items: int = 2  # a token must describe at least this many items to get an embedding
    max_tokens: int = 32  # per item, first distinct known tokens of title + description
    tokenizer: TokenizerConfig = field(default_factory=lambda: TokenizerConfig(word_ngrams=1, cjk_ngrams=2))
    max_validation_users: int = 5000
    # XLA fuses the per-example work on the logits (2-3x faster on ml-100k); Keras' "auto" leaves
    # it off for this model. Compiling costs a few seconds, so tiny test runs turn it off.
    jit_compile: bool = True

    def __post_init__(self) -> None:
        if self.softmax not in ("auto", "full", "in_batch"):
            raise ValueError(f"softmax must be auto, full or in_batch, got {self.softmax!r}")
        if self.embedding_dim < 1 or self.history_length < 1 or self.batch_size < 2:
            raise ValueError("embedding_dim and history_length must be >= 1 and batch_size >= 2")
        if not 0.0 <= self.user_dropout < 1.0:
            raise ValueError("user_dropout must be within [0, 1)")


@dataclass(frozen=True)
class RatingConfig:
    """Defaults chosen on a validation split of ml-100k's u1.base (never a u*.test file)."""

    factors: int = 64
    l2: float = 0.1  # on the user/item factor rows of each batch (mean over the batch)
    bias_l2: float = 0.01
    implicit_l2: float = 100.0  # on all implicit factors y, divided by the number of ratings
    implicit: bool = True
    init_std: float = 0.05
    learning_rate: float = 0.01
    batch_size: int = 4096
    max_epochs: int = 40
    patience: int = 2
    validation: str = "temporal"  # "temporal" (newest 20% per user) or "random" (20% of rows)
    jit_compile: bool = True  # XLA, as for retrieval

    def __post_init__(self) -> None:
        if self.validation not in ("temporal", "random"):
            raise ValueError(f"validation must be temporal or random, got {self.validation!r}")
