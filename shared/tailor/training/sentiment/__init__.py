"""Train the sentiment model with Keras and export it for the NumPy scorer (:mod:`tailor.sentiment.scorer`).

Where each part lives:

- :mod:`.labels` (labels from ratings, which classes to train), :mod:`.config` (``SentimentTrainingConfig``);
- :mod:`.features`: the n-gram feature space, NB log-count ratios, IDF and the training batches;
- :mod:`.towers`: the bag-of-n-grams tower, the mixture head, the Keras model;
- :mod:`.split`: the duplicate-aware validation split; :mod:`.metrics`: accuracy, F1, calibration;
- :mod:`.fit`: ``train_sentiment``, the whole run; :mod:`.export`: the arrays the scorer serves;
- :mod:`.job`: the training job step around it.
"""
