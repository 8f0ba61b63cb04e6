"""The lexicon prior alone (no training data) on S1-S4, and protocol S4 with the trained model:
what a shop gets in a language it never labelled, and how a model carries across shops.

- S1 MR (all 10,662 sentences), S2 SST-2 dev, S3 ChnSentiCorp (all, the empty review dropped) and
  S4 waimai_10k (11,987): the prior's accuracy, balanced accuracy and per-class recall.
- S4 cross-shop: the sentiment model trained on all of ChnSentiCorp (as the training job trains),
  scoring every waimai review through the NumPy scorer (its Chinese is well labelled, so it answers
  from the model: `source` counts say so), beside always-the-majority-class.

    python -m bench.sentiment_prior [--data ../shared/data]

Writes bench/results/sentiment_prior.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from bench import save_results
from tailor.sentiment import prior

ROOT = Path(__file__).resolve().parents[1]


def read_label_review(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if (row.get("review") or "").strip():
                texts.append(row["review"])
                labels.append("positive" if row["label"] == "1" else "negative")
    return texts, labels


def datasets(folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    mr = folder / "rt-polarity"
    pos = (mr / "rt-polarity.pos").read_text(encoding="cp1252").splitlines()
    neg = (mr / "rt-polarity.neg").read_text(encoding="cp1252").splitlines()
    sst = [line.rsplit("\t", 1) for line in (folder / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    return {
        "S1 MR (all)": (pos + neg, ["positive"] * len(pos) + ["negative"] * len(neg)),
        "S2 SST-2 dev": ([t for t, _ in sst], ["positive" if y.strip() == "1" else "negative" for _, y in sst]),
        "S3 ChnSentiCorp (all)": read_label_review(folder / "chnsenticorp" / "ChnSentiCorp_htl_all.csv"),
        "S4 waimai_10k": read_label_review(folder / "waimai_10k" / "waimai_10k.csv"),
    }


def scores(truth: list[str], predicted: list[str]) -> dict:
    recall = {label: float(np.mean([p == t for p, t in zip(predicted, truth) if t == label]))
              for label in ("positive", "negative")}
    majority = max(truth.count("positive"), truth.count("negative")) / len(truth)
    return {"texts": len(truth), "accuracy": float(np.mean([p == t for p, t in zip(predicted, truth)])),
            "balanced_accuracy": float(np.mean(list(recall.values()))), "recall": recall,
            "majority_accuracy": majority}


def prior_labels(texts: list[str]) -> list[str]:
    out = []
    for text in texts:
        positive, negative = prior.probabilities(text)
        out.append("positive" if positive >= negative else "negative")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TAILOR_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    args = parser.parse_args()
    data = datasets(Path(args.data))
    results = {"prior": {}}
    for name, (texts, truth) in data.items():
        started = time.perf_counter()
        results["prior"][name] = {**scores(truth, prior_labels(texts)),
                                  "texts_per_second": round(len(texts) / (time.perf_counter() - started))}
    from tailor.sentiment.scorer import SentimentScorer
    from tailor.training.sentiment.fit import train_sentiment

    hotel_texts, hotel_labels = data["S3 ChnSentiCorp (all)"]
    started = time.perf_counter()
    trained = train_sentiment(hotel_texts, hotel_labels, seed=0)
    answers = SentimentScorer(trained.artifact).score(data["S4 waimai_10k"][0], neutral_threshold=0.0)
    sources: dict[str, int] = {}
    for a in answers:
        sources[a["source"]] = sources.get(a["source"], 0) + 1
    results["s4_model"] = {**scores(data["S4 waimai_10k"][1], [a["label"].lower() for a in answers]),
                           "sources": sources, "training_seconds": round(time.perf_counter() - started, 1)}
    lines = ["# The lexicon prior alone, and S4 (ChnSentiCorp → waimai_10k) with the trained model", "",
             "| data | texts | prior accuracy | prior balanced accuracy | recall + / − | majority-class accuracy |",
             "|---|---|---|---|---|---|"]
    for name, r in results["prior"].items():
        lines.append(f"| {name} | {r['texts']:,} | {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | "
                     f"{r['recall']['positive']:.3f} / {r['recall']['negative']:.3f} | {r['majority_accuracy']:.3f} |")
    m = results["s4_model"]
    lines += ["", f"S4 with Tailor's model trained on all of ChnSentiCorp ({m['training_seconds']} s): balanced accuracy "
              f"**{m['balanced_accuracy']:.3f}**, accuracy {m['accuracy']:.3f} (majority class {m['majority_accuracy']:.3f}), "
              f"recall positive {m['recall']['positive']:.3f} / negative {m['recall']['negative']:.3f}; sources {m['sources']}."]
    save_results("sentiment_prior", results, "\n".join(lines))


if __name__ == "__main__":
    main()
