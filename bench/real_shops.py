"""Real-shop acceptance, through the public API only: is what Tailor serves ever worse than a
simple baseline on a small shop, and does its sentiment hold on a shop it never trained on?

Each shop is a folder of the files a shop would upload (``interactions.csv``, ``items.csv``,
``reviews.csv``; ``infra.realshop`` generates two such shops with variant listings, review text
copied across variants and few negatives, or pass real ones with ``--shop``). Per shop, on a
fresh local stack:

1. Recommender: the interactions are split as protocol T1 (per user the newest ceil(0.2 n) by
   (timestamp, item id)); the training part, the catalog and the reviews are uploaded, both models
   are trained with ``POST /v1/training-jobs``, and every test user's top 10 is asked over HTTP.
   The lists are scored here, outside the service, beside popularity and EASE (λ = 300 and the best
   λ of a small grid, on the same split: the baseline at its best). When items carry ``group_id``,
   the same lists are also scored per product family (a variant of a family counts once).
2. Sentiment across shops: the other shop's review texts are scored through ``POST /v1/sentiment``
   (the star rating gives the truth: >= 4 positive, <= 2 negative, 3 left out), against
   always-positive (balanced accuracy 0.5).
3. Chinese out of the box: 20 plain Chinese review sentences (10 positive, 10 negative) scored by
   a shop whose labelled reviews hold no Chinese.

    python -m bench.real_shops [--shop DIR --shop DIR]

Writes bench/results/real_shops.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bench import save_results
from bench.baselines import ease, popularity
from infra.client import ApiError, TailorClient
from infra.local_stack import LocalStack
from tailor.recommend import evaluation

ROOT = Path(__file__).resolve().parents[1]
EASE_LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1000.0)
CJK = re.compile(r"[\u3400-\u9fff]")

# Plain review sentences a Chinese shopper might write; none of them is in any training data.
CHINESE_REVIEWS = [
    ("质量很好，很满意", "positive"), ("物流很快，包装也很好", "positive"), ("非常喜欢，会再来买", "positive"),
    ("性价比很高，推荐购买", "positive"), ("穿着很舒服，尺码合适", "positive"), ("东西不错，值得购买", "positive"),
    ("客服态度很好，很耐心", "positive"), ("做工精细，颜色漂亮", "positive"), ("很好用，超出预期", "positive"),
    ("宝贝收到了，非常满意", "positive"),
    ("太失望了，质量很差", "negative"), ("物流太慢了，等了两个星期", "negative"), ("东西是坏的，不能用", "negative"),
    ("尺码不对，穿着不舒服", "negative"), ("客服态度很差，不理人", "negative"), ("和图片完全不一样，不推荐", "negative"),
    ("用了一天就坏了，很糟糕", "negative"), ("味道很难闻，退货了", "negative"), ("做工粗糙，不值这个价", "negative"),
    ("非常不满意，再也不买了", "negative"),
]


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def t1_split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    users = np.array([r["user_id"] for r in rows])
    items = np.array([r["item_id"] for r in rows])
    stamps = np.array([_seconds(r["timestamp"]) for r in rows])
    held = evaluation.temporal_holdout(users, items, stamps, 0.2)
    return [r for r, h in zip(rows, held) if not h], [r for r, h in zip(rows, held) if h]


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        from datetime import datetime

        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class Split:
    """The T1 split as index arrays, with the groups (product families) when the catalog has them."""

    def __init__(self, train: list[dict], test: list[dict], groups: dict[str, str]):
        self.user_ids = sorted({r["user_id"] for r in train + test})
        self.item_ids = sorted({r["item_id"] for r in train + test})
        self.user = {u: i for i, u in enumerate(self.user_ids)}
        self.item = {x: i for i, x in enumerate(self.item_ids)}
        rows = np.array([self.user[r["user_id"]] for r in train])
        cols = np.array([self.item[r["item_id"]] for r in train])
        matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(self.user_ids), len(self.item_ids)))
        matrix.data[:] = 1.0  # repeats of a pair count once
        self.train = matrix
        self.relevant = [set() for _ in self.user_ids]
        for r in test:
            self.relevant[self.user[r["user_id"]]].add(self.item[r["item_id"]])
        self.groups = groups

    def metrics(self, top: np.ndarray) -> dict:
        return evaluation.ranking_metrics(top, [np.array(sorted(r), dtype=np.int64) for r in self.relevant],
                                          len(self.item_ids), 10)

    def group_metrics(self, top: np.ndarray) -> dict | None:
        """T1 per product family: a list's variants of one family count once, and a family the user
        already had in training is not a new find."""
        if not self.groups:
            return None
        family_ids = sorted({self.groups.get(i, i) for i in self.item_ids})
        family = {f: n for n, f in enumerate(family_ids)}
        of_item = np.array([family[self.groups.get(i, i)] for i in self.item_ids])
        lists = np.full_like(top, -1)
        relevant = []
        for u in range(len(self.user_ids)):
            had = set(of_item[self.train.indices[self.train.indptr[u]:self.train.indptr[u + 1]]].tolist())
            ranked = []
            for i in top[u]:
                if i >= 0 and of_item[i] not in ranked and of_item[i] not in had:
                    ranked.append(of_item[i])
            lists[u, :len(ranked)] = ranked
            relevant.append(np.array(sorted({of_item[i] for i in self.relevant[u]} - had), dtype=np.int64))
        return evaluation.ranking_metrics(lists, relevant, len(family_ids), 10)

    def top_of(self, scores: np.ndarray) -> np.ndarray:
        return evaluation.top_k_unseen(np.asarray(scores, dtype=np.float64), self.train.indptr,
                                       self.train.indices, 10)


def baselines(split: Split) -> dict:
    out = {"popularity": split.top_of(popularity(split.train))}
    best = None
    for lam in EASE_LAMBDAS:
        top = split.top_of(ease(split.train, lam))
        ndcg = split.metrics(top)["ndcg"]
        if lam == 300.0:
            out["EASE λ=300"] = top
        if best is None or ndcg > best[0]:
            best = (ndcg, lam, top)
    out[f"EASE best λ={best[1]:g}"] = best[2]
    return out


def labelled(reviews: list[dict]) -> tuple[list[str], list[str]]:
    texts, truth = [], []
    for r in reviews:
        try:
            rating = float(r.get("rating") or "nan")
        except ValueError:
            continue
        if not r.get("text") or not (rating >= 4 or rating <= 2):
            continue
        texts.append(r["text"])
        truth.append("positive" if rating >= 4 else "negative")
    return texts, truth


def score_texts(client: TailorClient, texts: list[str]) -> list[dict]:
    results = []
    for start in range(0, len(texts), 100):
        body = client.call("POST", "/v1/sentiment", {"texts": texts[start:start + 100], "neutral_threshold": 0})
        results += body["results"]
    return results


def classification(truth: list[str], answers: list[dict]) -> dict:
    predicted = [a["label"].lower() for a in answers]
    recall = {}
    for label in ("positive", "negative"):
        picked = [p == label for p, t in zip(predicted, truth) if t == label]
        recall[label] = round(float(np.mean(picked)), 3) if picked else None
    known = [v for v in recall.values() if v is not None]
    sources: dict[str, int] = {}
    for a in answers:
        sources[a.get("source", "?")] = sources.get(a.get("source", "?"), 0) + 1
    return {"texts": len(truth), "negatives": truth.count("negative"),
            "accuracy": round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 3),
            "balanced_accuracy": round(float(np.mean(known)), 3), "recall": recall,
            "always_positive_balanced_accuracy": 0.5,
            "always_positive_accuracy": round(truth.count("positive") / len(truth), 3), "sources": sources}


def run_shop(folder: Path, other: Path, tmp: Path) -> dict:
    interactions = read_csv(folder / "interactions.csv")
    items = read_csv(folder / "items.csv")
    groups = {r["item_id"]: r["group_id"] for r in items if r.get("group_id")}
    train, test = t1_split(interactions)
    split = Split(train, test, groups)
    lists = baselines(split)
    started = time.perf_counter()
    with LocalStack(ROOT / "template.yaml", port=0, moto_port=0) as stack:
        client = TailorClient(stack.url, timeout=120)
        client.wait_for_ingest(client.upload("items", folder / "items.csv"), "items")
        client.wait_for_ingest(client.upload("interactions", write_csv(tmp / f"{folder.name}-t1.csv", train)),
                               "interactions")
        # An English-speaking shop: its Chinese reviews stay out, so the Chinese check below is
        # scored with no Chinese training data at all (labels or stars).
        reviews = [r for r in read_csv(folder / "reviews.csv") if not CJK.search(r.get("text") or "")]
        client.wait_for_ingest(client.upload("reviews", write_csv(tmp / f"{folder.name}-reviews.csv", reviews)),
                               "reviews")
        job = client.call("POST", "/v1/training-jobs", {"models": ["recommender", "sentiment"]})
        job = client.wait_for_job(job["job_id"], timeout=1800)
        if job["status"] != "SUCCEEDED":
            raise SystemExit(f"{folder.name}: training failed: {job.get('error')}")
        top = np.full((len(split.user_ids), 10), -1, dtype=np.int64)
        strategies: dict[str, int] = {}
        for user in {r["user_id"] for r in test}:
            body = client.call("GET", f"/v1/users/{user}/recommendations?k=10")
            strategies[body["strategy"]] = strategies.get(body["strategy"], 0) + 1
            ranked = [split.item[i["item_id"]] for i in body["items"] if i["item_id"] in split.item]
            top[split.user[user], :len(ranked)] = ranked
        texts, truth = labelled(read_csv(other / "reviews.csv"))
        try:
            cross = classification(truth, score_texts(client, texts))
            chinese = score_texts(client, [t for t, _ in CHINESE_REVIEWS])
        except ApiError as exc:  # e.g. no sentiment model served: a result too, reported as such
            cross, chinese = {"error": str(exc)}, None
        models = client.call("GET", "/v1/models")["models"]
    lists = {"Tailor (served)": top, **lists}
    table = {name: split.metrics(ranked) for name, ranked in lists.items()}
    by_family = {name: split.group_metrics(ranked) for name, ranked in lists.items()} if groups else None
    results = job["results"]
    return {
        "shop": folder.name, "users": len(split.user_ids), "items": len(split.item_ids),
        "interactions": len(interactions), "families": len(set(groups.values())) if groups else None,
        "seconds": round(time.perf_counter() - started, 1), "t1": table, "t1_by_family": by_family,
        "strategies": strategies,
        "recommender_decision": results["recommender"]["decision"],
        "sentiment_decision": results["sentiment"]["decision"],
        "served": {m["model"]: {k: m.get(k) for k in ("current_version", "served", "decision") if k in m}
                   for m in models},
        "cross_shop_sentiment": {"trained_on": folder.name, "scored": other.name, **cross},
        "chinese_without_chinese_training": None if chinese is None else {
            "right": sum(a["label"].lower() == t for a, (_, t) in zip(chinese, CHINESE_REVIEWS)),
            "of": len(CHINESE_REVIEWS),
            "sources": sorted({a.get("source", "?") for a in chinese}),
            "note": chinese[0].get("note")},
    }


def markdown(runs: list[dict]) -> str:
    lines = ["# Real-shop acceptance (through the API, scored outside the service)", ""]
    for run in runs:
        lines += [f"## {run['shop']}: {run['users']} customers, {run['items']} listings"
                  + (f" in {run['families']} product families" if run["families"] else "")
                  + f", {run['interactions']:,} interactions", "",
                  "| T1 (item level) | P@10 | R@10 | NDCG@10 |" + (" NDCG@10 per family |" if run["t1_by_family"] else ""),
                  "|---|---|---|---|" + ("---|" if run["t1_by_family"] else "")]
        for name, m in run["t1"].items():
            family = run["t1_by_family"][name]["ndcg"] if run["t1_by_family"] else None
            lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['ndcg']:.3f} |"
                         + (f" {family:.3f} |" if family is not None else ""))
        cross, zh = run["cross_shop_sentiment"], run["chinese_without_chinese_training"]
        lines += ["", f"Recommender decision: {run['recommender_decision']}", "",
                  f"Sentiment decision: {run['sentiment_decision']}", ""]
        if zh is None:
            lines += [f"Sentiment through the API: {cross['error']}", ""]
            continue
        lines += [
                  f"Sentiment trained on {cross['trained_on']}, scoring {cross['scored']}'s {cross['texts']} rated "
                  f"reviews ({cross['negatives']} negative): balanced accuracy **{cross['balanced_accuracy']:.3f}** "
                  f"(always-positive 0.500), recall of negatives {cross['recall']['negative']}, of positives "
                  f"{cross['recall']['positive']}; accuracy {cross['accuracy']:.3f} (always-positive "
                  f"{cross['always_positive_accuracy']:.3f}); sources {cross['sources']}.", "",
                  f"20 plain Chinese sentences, no Chinese training data: **{zh['right']} of {zh['of']}** right "
                  f"(sources {zh['sources']}; note: {zh['note']!r}).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shop", action="append", type=Path,
                        help="a shop folder (twice: each is scored by the other's sentiment); default: two generated shops")
    parser.add_argument("--one", nargs=3, type=Path, metavar=("SHOP", "OTHER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # one shop on a fresh stack: moto's state lives in the process, so one process per shop
        shop, other, out = args.one
        out.write_text(json.dumps(run_shop(shop, other, out.parent), ensure_ascii=False))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shops = args.shop or generated_shops(tmp)
        if len(shops) != 2:
            raise SystemExit("pass --shop twice (two shops), or nothing for the generated pair")
        runs = []
        for shop, other in ((shops[0], shops[1]), (shops[1], shops[0])):
            out = tmp / f"{shop.name}-result.json"
            subprocess.run([sys.executable, "-m", "bench.real_shops", "--one", str(shop), str(other), str(out)],
                           check=True, cwd=ROOT)
            runs.append(json.loads(out.read_text()))
    save_results("real_shops", {"runs": runs}, markdown(runs))


def generated_shops(tmp: Path) -> list[Path]:
    from infra import realshop

    return realshop.generate_pair(tmp)


if __name__ == "__main__":
    main()
