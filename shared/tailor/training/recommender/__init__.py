"""Train the recommender with Keras and export it for the NumPy scorer (:mod:`tailor.recommend.scorer`).

Two models, factored like TensorFlow Recommenders (towers apart from the task; each model
implements ``compute_loss``; :func:`_fit` is the one training loop):

**Retrieval** (top-K from implicit interactions), :class:`RetrievalModel`:

- :class:`UserTower`: user id embedding + the recency-weighted mean of the embeddings of the
  user's ``history_length`` most recent items (learned weight per position, newest first).
  For a user with history, that pooled part carries most of the signal: on a temporal split
  what a user did last predicts what they do next far better than their long-run taste.
- :class:`ItemTower`: item id embedding + mean category embedding + mean title/description token
  embedding (tokens from :mod:`tailor.sentiment.text`). The content part alone is a usable vector for an
  item that arrives after training: an auxiliary loss trains the content-only vectors against the
  same user vectors. Items with no training interactions use their content part only.
- :class:`RetrievalTask`: next-item softmax. Each training interaction is an example whose query
  is the user *as they were just before it* (their earlier items), so training mirrors serving
  (predict what comes after the history we have). ``full`` softmax scores the whole catalog
  (exact, affordable up to ~20k items) and masks the items already in the example's history,
  as serving excludes seen items; ``in_batch`` uses the other targets of the batch as negatives
  with the logQ correction (Yi et al., RecSys 2019) for catalogs where the full softmax is too
  costly.

**Ratings**, :class:`RatingModel`: biased matrix factorisation trained on MSE with L2 on the
rows a batch touches (the classic SGD-MF regulariser), plus the SVD++-style implicit term
(Koren 2008): the user factor adds ``|N(u)|^-1/2 * sum of y_j`` over the items ``j`` the user
rated. The exported user factors already include that term, so serving is a plain dot product.

:func:`train_recommender` carves a validation split from the data it is given (per user the
newest 20%, as protocol T1), trains until the validation metric stops improving, reports the
validation metrics (and the popularity baseline's), then refits on all the data for the best
number of epochs and exports. Only the training data chooses anything.

Where each part lives:

- :mod:`.config`: ``RetrievalConfig``, ``RatingConfig`` (defaults and their validation).
- :mod:`.data`: ``Interactions``, ``ItemCatalog``; their encoding as indices, histories and tower inputs.
- :mod:`.towers` (``ItemTower``, ``UserTower``, ``RetrievalModel``, ``RatingModel``), :mod:`.tasks` (``RetrievalTask``).
- :mod:`.fit`: the training loop with early stopping; :mod:`.validation`: T1/A1 metrics on the held-out split.
- :mod:`.retrieval` and :mod:`.rating`: training each model; :mod:`.export`: the arrays the scorer serves.
- :mod:`.train`: ``train_recommender``, the whole run; :mod:`.job`: the training job step around it.
"""
