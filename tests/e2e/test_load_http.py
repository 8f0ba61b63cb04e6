"""A small version of `make load` (bench/load.py): concurrent keep-alive clients against the local
stack must all get answers - no resets, no 5xx - and the model must keep answering."""

import csv

from bench.load import RECOMMEND, run_clients, summarize


def test_twenty_concurrent_clients_for_five_seconds_without_errors(trained_shop, local_stack):
    client, _, files = trained_shop
    with open(files["interactions"], encoding="utf-8") as handle:
        users = sorted({row["user_id"] for row in csv.DictReader(handle)})
    # Warm both workers first: a cold start (import + model load) is not what this measures.
    warm = run_clients(local_stack.url, clients=2, duration=2, max_requests=2, users=users, routes=(RECOMMEND,))
    assert [row[1] for row in warm] == [200, 200], warm
    rows = run_clients(local_stack.url, clients=20, duration=5, max_requests=20_000, users=users, routes=(RECOMMEND,))
    result = summarize(rows, 5)["all"]
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] >= 50, f"only {result['requests']} answers in 5 s"
