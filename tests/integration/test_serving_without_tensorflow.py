"""After RecommendFunction and SentimentFunction have served requests, TensorFlow and Keras are
not loaded: each handler runs in a fresh interpreter (as a Lambda container does) against moto,
with models exported as plain arrays."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
sys.path[:0] = [sys.argv[1] + "/shared", sys.argv[1] + "/tests/integration"]
from pathlib import Path
import boto3
from harness import BUCKET, LambdaContext, call, fresh_account

class Env:  # fresh_account wants a monkeypatch; in a throwaway process setting os.environ is fine
    def setenv(self, key, value):
        import os; os.environ[key] = value

artifacts = Path(sys.argv[2])
with fresh_account(Env()):
    s3 = boto3.client("s3")
    for model in ("recommender", "sentiment"):
        for path in (artifacts / model).iterdir():
            s3.put_object(Bucket=BUCKET, Key=f"models/{model}/v1/{path.name}", Body=path.read_bytes())
        s3.put_object(Bucket=BUCKET, Key=f"models/{model}/current.json", Body=json.dumps({"version": "v1"}))
    statuses = [
        call("recommend", "GET", "/v1/users/alice/recommendations", resource="/v1/users/{user_id}/recommendations",
             path_params={"user_id": "alice"}, query={"k": "2"})[0],
        call("recommend", "GET", "/v1/items/a/similar", resource="/v1/items/{item_id}/similar",
             path_params={"item_id": "a"})[0],
        call("sentiment", "POST", "/v1/sentiment", {"texts": ["good", "bad"]})[0],
    ]
heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")})
print(json.dumps({"statuses": statuses, "heavy": heavy}))
"""


def hand_made_recommender(directory: Path) -> None:
    spec = importlib.util.spec_from_file_location("hand_made", ROOT / "tests" / "unit" / "test_recommender.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.artifact().save(directory)
    (directory / "catalog.json").write_text(json.dumps({i: {"title": f"Item {i}"} for i in "abcd"}))


def tiny_sentiment(directory: Path) -> None:
    from tailor.training.sentiment.fit import train_sentiment  # TensorFlow here, in the test process only

    texts = ["good great love it", "great product, good value", "bad awful hate it", "awful, bad value"] * 10
    labels = ["positive", "positive", "negative", "negative"] * 10
    train_sentiment(texts, labels, model_version="v1").artifact.save(directory)


def test_serving_functions_never_load_tensorflow(tmp_path):
    hand_made_recommender(tmp_path / "recommender")
    tiny_sentiment(tmp_path / "sentiment")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["statuses"] == [200, 200, 200]
    assert answer["heavy"] == []
