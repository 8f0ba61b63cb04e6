"""The retrieval loss: next-item softmax over the whole catalog or over the batch's targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import ops

if TYPE_CHECKING:  # the towers module imports this one
    from tailor.training.recommender.towers import ItemTower


_MASKED = -1e9


class RetrievalTask:
    """Next-item softmax loss over the catalog (``full``) or the batch's targets (``in_batch``)."""

    def __init__(self, mode: str, n_items: int, *, content_loss_weight: float, mask_history: bool):
        self.mode, self.n_items = mode, n_items
        self.content_loss_weight = content_loss_weight
        self.mask_history = mask_history

    def _cross_entropy(self, targets, logits):
        return ops.mean(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))

    def compute_loss(self, queries, targets, history, item_tower: ItemTower, log_q):
        """``log_q``: log sampling probability of each item as an in-batch negative (its frequency)."""
        if self.mode == "full":
            loss = self._full(queries, targets, history, item_tower)
        else:
            loss = self._in_batch(queries, targets, item_tower(targets), log_q)
        if self.content_loss_weight > 0:
            # Content-only vectors must rank well against the same queries (items new after
            # training get nothing else); in-batch negatives keep this second loss cheap.
            loss = loss + self.content_loss_weight * self._in_batch(
                queries, targets, item_tower(targets, content_only=True), log_q)
        return loss

    def _full(self, queries, targets, history, item_tower):
        logits = ops.matmul(queries, ops.transpose(item_tower(None)))
        if self.mask_history:
            # Items already in the example's history cannot be its next item (serving excludes them).
            batch = ops.shape(history)[0]
            rows = ops.broadcast_to(ops.expand_dims(ops.arange(batch), 1), ops.shape(history))
            columns = ops.where(history >= 0, history, self.n_items)  # pads land in a dropped column
            indices = ops.reshape(ops.stack([rows, ops.cast(columns, rows.dtype)], axis=-1), (-1, 2))
            hits = ops.scatter(indices, ops.ones((ops.shape(indices)[0],)), (batch, self.n_items + 1))
            logits = ops.where(hits[:, : self.n_items] > 0, _MASKED, logits)
        return self._cross_entropy(targets, logits)

    def _in_batch(self, queries, targets, candidates, log_q):
        """Softmax over the batch's own targets, with logQ correction and accidental hits masked."""
        batch = ops.shape(targets)[0]
        # logQ correction: popular items are over-represented as in-batch negatives.
        log_q = ops.take(log_q, targets, axis=0)
        same = ops.equal(ops.expand_dims(targets, 1), ops.expand_dims(targets, 0))
        accidental = ops.logical_and(same, ops.logical_not(ops.eye(batch, dtype="bool")))
        logits = ops.matmul(queries, ops.transpose(candidates)) - ops.expand_dims(log_q, 0)
        logits = ops.where(accidental, _MASKED, logits)
        return self._cross_entropy(ops.arange(batch), logits)
