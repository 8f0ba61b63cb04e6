"""Training job step for the `sentiment` model: stored reviews → versioned model + report.

Labels: a review's `label` when given; otherwise derived from its `rating` (>= 4 positive,
<= 2 negative, 3 neutral — `labels_from_ratings`). Reviews with neither are not used.
The promotion gate compares validation balanced accuracy (mean per-class recall, which always
answering the majority class scores 1 / classes on) with the majority-class baseline, and with
the current model scored on the same validation texts: a candidate that reads a newly labelled
language wins against a model that looked better on an easier split.
"""

from __future__ import annotations

from tailor.datasets.store import read_dataset
from tailor.sentiment.scorer import SentimentScorer
from tailor.sentiment.service import SentimentService
from tailor.training.report import json_bytes, markdown_table, png
from tailor.training.runner import Candidate, TrainingContext
from tailor.training.sentiment.fit import train_sentiment
from tailor.training.sentiment.labels import labels_from_ratings


def labelled_reviews(table) -> tuple[list[str], list[str], dict]:
    texts = table.column("text").to_pylist()
    given = table.column("label").to_pylist() if "label" in table.column_names else [None] * len(texts)
    ratings = table.column("rating").to_pylist() if "rating" in table.column_names else [None] * len(texts)
    derived = labels_from_ratings(ratings)
    keep_texts, keep_labels = [], []
    counts = {"from_label": 0, "from_rating": 0, "unlabelled": 0}
    for text, label, from_rating in zip(texts, given, derived):
        if label:
            counts["from_label"] += 1
        elif from_rating:
            label = from_rating
            counts["from_rating"] += 1
        else:
            counts["unlabelled"] += 1
            continue
        keep_texts.append(text)
        keep_labels.append(label)
    return keep_texts, keep_labels, counts


def train(ctx: TrainingContext) -> Candidate:
    table = read_dataset(ctx.store, "reviews")
    if table is None or table.num_rows == 0:
        raise ValueError("no reviews are stored: upload reviews before training the sentiment model")
    texts, labels, sources = labelled_reviews(table)
    ctx.progress(f"{len(texts):,} labelled reviews ({sources['from_label']:,} labelled, "
                 f"{sources['from_rating']:,} labelled from ratings, {sources['unlabelled']:,} without either)")
    if len(set(labels) & {"positive", "negative"}) < 2:
        raise ValueError("training needs both positive and negative reviews (labels or ratings)")
    result = train_sentiment(texts, labels, seed=int(ctx.options.get("seed", 0)), progress=ctx.progress,
                             model_version=ctx.version)
    metrics = {**result.metrics, "label_sources": sources}
    current = current_on(ctx, *result.validation)
    if current is not None:
        metrics["current_model_on_this_validation"] = current
    report = {"report.json": json_bytes(metrics), "report.md": _markdown(ctx.version, metrics).encode(),
              "calibration.png": png(lambda fig: _calibration_chart(fig, metrics))}

    def rescore_all_reviews() -> None:
        scored = SentimentService(ctx.store, ctx.state, None).score_all(SentimentScorer(result.artifact), ctx.version)
        ctx.progress(f"scored {scored:,} stored reviews with the new model; item and customer summaries refreshed")

    return Candidate(artifacts=result.artifact.to_files(), metrics=metrics, report=report,
                     gate_metric="balanced_accuracy", score=metrics["balanced_accuracy"],
                     baseline_name="majority class", baseline=metrics["majority_baseline_balanced_accuracy"],
                     on_promoted=rescore_all_reviews,
                     current_score=None if current is None else current["balanced_accuracy"])


def current_on(ctx: TrainingContext, texts: list[str], truth: list[str]) -> dict | None:
    """The current model's balanced accuracy (and per-class recall) on this candidate's validation texts."""
    from tailor.models.registry import ModelRegistry
    from tailor.sentiment.service import load_scorer

    registry = ModelRegistry(ctx.store, ctx.state)
    pointer = registry.current("sentiment")
    if pointer is None or not texts:
        return None
    scorer = load_scorer(registry, pointer["version"])
    answers = [r["label"].lower() for r in scorer.score(texts, neutral_threshold=0.0)]
    recall = {}
    for label in sorted(set(truth)):
        picked = [a == t for a, t in zip(answers, truth) if t == label]
        recall[label] = sum(picked) / len(picked)
    return {"version": pointer["version"], "balanced_accuracy": sum(recall.values()) / len(recall), "recall": recall}


def _markdown(version: str, m: dict) -> str:
    calibration = m["calibration"]
    rows = [[name, c["support"], c["precision"], c["recall"], c["f1"]] for name, c in m["per_class"].items()]
    bins = [[f"{b['low']:.1f}–{b['high']:.1f}", b["count"], b["mean_confidence"], b["accuracy"]]
            for b in calibration["bins"] if b["count"]]
    return "\n\n".join([
        f"# Sentiment model {version}",
        f"Validation split: {m['validation_examples']:,} of {m['examples']:,} labelled reviews "
        f"(classes: {', '.join(m['classes'])}).",
        f"Duplicates: {m.get('duplicate_texts', 0):,} reviews repeat another's text (case, spacing and punctuation "
        "aside); every copy of a text is on one side of the split. Labelled reviews per language: "
        + ", ".join(f"{lang} {counts}" for lang, counts in (m.get("languages") or {}).items()) + ".",
        markdown_table(["metric", "value"], [
            ["balanced accuracy (the gate)", m.get("balanced_accuracy")],
            ["majority class, balanced accuracy (baseline)", m.get("majority_baseline_balanced_accuracy")],
            ["macro-F1", m["macro_f1"]], ["accuracy", m["accuracy"]],
            ["majority-class accuracy", m["majority_baseline_accuracy"]],
            ["current model on this validation split, balanced accuracy",
             (m.get("current_model_on_this_validation") or {}).get("balanced_accuracy", "no current model")],
            ["expected calibration error", calibration["expected_calibration_error"]]]),
        "## Per class", markdown_table(["class", "support", "precision", "recall", "F1"], rows),
        "## Reliability (confidence vs accuracy)", markdown_table(["confidence", "texts", "mean confidence", "accuracy"], bins),
        "![calibration](calibration.png)", ""])


def _calibration_chart(figure, m: dict) -> None:
    bins = [b for b in m["calibration"]["bins"] if b["count"]]
    left, right = figure.subplots(1, 2)
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    left.plot([b["mean_confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="model")
    ece = m["calibration"]["expected_calibration_error"]
    left.set(xlabel="confidence", ylabel="accuracy", title=f"Reliability (ECE {ece:.3f})")
    left.legend()
    names = list(m["per_class"])
    right.bar(names, [m["per_class"][n]["f1"] for n in names])
    right.axhline(m["accuracy"], color="black", linestyle=":", label=f"accuracy {m['accuracy']:.3f}")
    right.set(ylim=(0, 1), title="Validation F1 per class")
    right.legend()
