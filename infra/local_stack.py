"""Serve Tailor's HTTP API locally from template.yaml: no AWS account, no Docker.

    python -m infra.local_stack [--port 3000] [--moto-port 4566] [--template template.yaml] [--stage local]
                                [--auth [--api-key KEY]]

What runs (all read from the template, see infra/local/):
- an embedded moto server with the template's bucket, table and queues;
- every function in its own worker processes, with the template's environment variables and
  layers, and AWS_ENDPOINT_URL_* pointing at moto (and, for Lambda's Invoke, back here);
- the API routes on http://127.0.0.1:<port>, as API Gateway REST proxy events;
- S3 ObjectCreated notifications delivered to the functions whose S3 events match;
- GET /__local/health (local only): moto URL, physical names of buckets, tables, functions.

Open by default: every route answers without credentials. `--auth` checks what the template
declares, as API Gateway does: the administrative routes need a SigV4 signature (service
execute-api, region us-east-1, access key `testing` / secret `testing`), the website routes
need `x-api-key` (generated per run and printed at start, or `--api-key`). See infra/local/auth.py.

`--port 0` and `--moto-port 0` pick free ports; the ready line shows the real URL. Ctrl-C or
SIGTERM stops everything and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import yaml

from infra.local import LocalStack
from infra.local.intrinsics import TemplateError

__all__ = ["LocalStack", "main"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.local_stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="API port; 0 picks a free one (default 3000)")
    parser.add_argument("--moto-port", type=int, default=4566,
                        help="moto server port; 0 picks a free one (default 4566)")
    parser.add_argument("--template", default="template.yaml", help="SAM template (default template.yaml)")
    parser.add_argument("--stage", default="local", help="value of the template's Stage parameter (default local)")
    parser.add_argument("--max-workers", type=int, default=2,
                        help="worker processes per function unless it reserves concurrency (default 2)")
    parser.add_argument("--auth", action="store_true",
                        help="require SigV4 on admin routes and x-api-key on website routes, as deployed")
    parser.add_argument("--api-key", help="with --auth: the website API key (default: a new one, printed at start)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log every request moto serves")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.api_key is not None and not args.auth:
        print("local stack: --api-key needs --auth", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)

    stopping = threading.Event()
    # Ctrl-C and SIGTERM both end the wait below; the stack then shuts down in order.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    stack = LocalStack(args.template, port=args.port, moto_port=args.moto_port, stage=args.stage,
                       host=args.host, max_workers=args.max_workers, auth=args.auth, api_key=args.api_key)
    try:
        stack.start()
    except (TemplateError, OSError, ValueError, yaml.YAMLError) as exc:
        print(f"local stack: cannot start: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.INFO)
    print(stack.describe(), flush=True)
    print(f"Tailor local stack ready on {stack.url}", flush=True)
    stopping.wait()
    print("Stopping the local stack...", file=sys.stderr, flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
